"""Wedding calendar context and the migration freeze policy (SPEC §5).

Everything here is pure: the current time, the configuration and the number of weddings come
in as arguments, decisions come out as frozen dataclasses. The migration runner, the CLI and
the API do the I/O (clock, database, audit log) around these functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from wedsync_db.errors import ConfigError, MigrationFrozen
from wedsync_db.settings import FreezeMode, parse_months, parse_time_window, parse_weekdays

if TYPE_CHECKING:
    from wedsync_db.settings import Settings

ContextLevel = Literal["normal", "peak-season", "wedding-day"]

WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
SATURDAY = 5
FREEZE_MODES: tuple[FreezeMode, ...] = ("off", "warn", "enforce")
# next_allowed_time checks this grid; every zone's UTC offset is a multiple of 15 minutes, so
# a UTC grid is also a grid in platform time.
GRID = timedelta(minutes=15)

_WINDOW_EXAMPLE = "use START/END LABEL, e.g. 2026-12-24/2026-12-27 christmas"


# --- freeze windows -------------------------------------------------------------------------
@dataclass(frozen=True)
class FreezeWindow:
    """A configured period [start, end) during which every migration is frozen."""

    start: datetime
    end: datetime
    label: str

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError(f"freeze window {self.label!r} needs timezone-aware bounds")
        if self.end <= self.start:
            raise ValueError(f"freeze window {self.label!r} ends before it starts")

    def contains(self, now: datetime) -> bool:
        """True when ``now`` falls inside the window."""
        return self.start <= now < self.end


def parse_freeze_windows(value: str, tz: ZoneInfo) -> tuple[FreezeWindow, ...]:
    """Parse ``WEDSYNC_FREEZE_WINDOWS`` (``START/END LABEL, ...``) in platform time."""
    windows: list[FreezeWindow] = []
    for item in (p.strip() for p in value.split(",")):
        if not item:
            continue
        parts = item.split(None, 1)
        if len(parts) != 2 or "/" not in parts[0]:
            raise ValueError(f"bad freeze window {item!r} ({_WINDOW_EXAMPLE})")
        span, label = parts[0], parts[1].strip()
        start_text, end_text = span.split("/", 1)
        try:
            start = _parse_bound(start_text, tz, is_end=False)
            end = _parse_bound(end_text, tz, is_end=True)
            windows.append(FreezeWindow(start=start, end=end, label=label))
        except ValueError as exc:
            raise ValueError(f"bad freeze window {item!r}: {exc} ({_WINDOW_EXAMPLE})") from None
    return tuple(windows)


def _parse_bound(text: str, tz: ZoneInfo, *, is_end: bool) -> datetime:
    """An ISO date or datetime; naive values are platform time, a date-only end is inclusive."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{text!r} is not an ISO date or datetime") from None
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)
    if is_end:
        day += timedelta(days=1)
    return datetime.combine(day, time(), tzinfo=tz)


# --- configuration --------------------------------------------------------------------------
@dataclass(frozen=True)
class FreezeConfig:
    """Everything the freeze policy needs to know, already parsed."""

    timezone: str = "Europe/London"
    mode: FreezeMode = "enforce"
    frozen_weekdays: frozenset[int] = frozenset({SATURDAY})
    peak_months: frozenset[int] = frozenset(range(5, 11))
    maintenance_start: time = time(1, 0)
    maintenance_end: time = time(5, 0)
    maintenance_weekdays: frozenset[int] = frozenset({0, 1, 2, 3})
    windows: tuple[FreezeWindow, ...] = ()

    def __post_init__(self) -> None:
        _zone(self.timezone)
        if self.mode not in FREEZE_MODES:
            raise ValueError(f"unknown freeze mode {self.mode!r} (use off, warn or enforce)")
        for name in ("frozen_weekdays", "maintenance_weekdays"):
            if any(not 0 <= d <= 6 for d in getattr(self, name)):
                raise ValueError(f"{name} must hold weekday numbers 0 (Monday) to 6 (Sunday)")
        if any(not 1 <= m <= 12 for m in self.peak_months):
            raise ValueError("peak_months must hold month numbers 1 to 12")

    @property
    def zone(self) -> ZoneInfo:
        """The platform timezone."""
        return _zone(self.timezone)

    @classmethod
    def from_settings(cls, settings: Settings) -> FreezeConfig:
        """Build the policy configuration from validated settings."""
        start, end = parse_time_window(settings.maintenance_window)
        try:
            windows = parse_freeze_windows(settings.freeze_windows, _zone(settings.timezone))
        except ValueError as exc:
            # Not validated by Settings itself, so name the variable here.
            raise ConfigError("WEDSYNC_FREEZE_WINDOWS", str(exc)) from None
        return cls(
            timezone=settings.timezone,
            mode=settings.effective_freeze_mode,
            frozen_weekdays=parse_weekdays(settings.freeze_weekdays),
            peak_months=parse_months(settings.peak_months),
            maintenance_start=start,
            maintenance_end=end,
            maintenance_weekdays=parse_weekdays(settings.maintenance_weekdays),
            windows=windows,
        )

    def in_maintenance_window(self, local: datetime) -> bool:
        """True when the platform-local time is inside the maintenance window."""
        return in_time_window(
            local, self.maintenance_start, self.maintenance_end, self.maintenance_weekdays
        )


def in_time_window(local: datetime, start: time, end: time, weekdays: frozenset[int]) -> bool:
    """True when ``local`` is in [start, end) on one of ``weekdays``; start == end is empty."""
    moment = local.time().replace(tzinfo=None)
    if start < end:
        return start <= moment < end and local.weekday() in weekdays
    if start > end:
        # A window that wraps midnight belongs to the day it starts on (Thursday 23:00–03:00
        # runs into Friday morning).
        if moment >= start:
            return local.weekday() in weekdays
        if moment < end:
            return (local.weekday() - 1) % 7 in weekdays
    return False


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r} (use an IANA name)") from None


# --- calendar context -----------------------------------------------------------------------
@dataclass(frozen=True)
class CalendarContext:
    """What kind of day it is on the platform right now."""

    level: ContextLevel
    local_date: date
    local_time: time
    weekday: int
    weddings_today: int
    is_saturday: bool
    in_peak_season: bool
    timezone: str

    @property
    def weekday_name(self) -> str:
        """Lower-case English name of the local weekday."""
        return WEEKDAY_NAMES[self.weekday]

    def describe(self) -> str:
        """``Saturday 2026-06-13 14:00 Europe/London``, for messages."""
        return (
            f"{self.weekday_name.capitalize()} {self.local_date.isoformat()} "
            f"{self.local_time.strftime('%H:%M')} {self.timezone}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready representation."""
        return {
            "level": self.level,
            "local_date": self.local_date.isoformat(),
            "local_time": self.local_time.isoformat(timespec="seconds"),
            "weekday": self.weekday,
            "weekday_name": self.weekday_name,
            "weddings_today": self.weddings_today,
            "is_saturday": self.is_saturday,
            "in_peak_season": self.in_peak_season,
            "timezone": self.timezone,
        }


def calendar_context(
    now: datetime, timezone: str, peak_months: frozenset[int], weddings_today: int
) -> CalendarContext:
    """Classify ``now`` as a normal, peak-season or wedding day in the platform timezone."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware (e.g. datetime.now(UTC))")
    if weddings_today < 0:
        raise ValueError(f"weddings_today cannot be negative ({weddings_today})")
    local = now.astimezone(_zone(timezone))
    is_saturday = local.weekday() == SATURDAY
    in_peak = local.month in peak_months
    level: ContextLevel
    if is_saturday or weddings_today > 0:
        level = "wedding-day"
    elif in_peak:
        level = "peak-season"
    else:
        level = "normal"
    return CalendarContext(
        level=level,
        local_date=local.date(),
        local_time=local.time().replace(tzinfo=None),
        weekday=local.weekday(),
        weddings_today=weddings_today,
        is_saturday=is_saturday,
        in_peak_season=in_peak,
        timezone=timezone,
    )


# --- freeze decision ------------------------------------------------------------------------
@dataclass(frozen=True)
class FreezeDecision:
    """Whether a migration run may proceed now, and why not."""

    allowed: bool
    active: bool
    mode: FreezeMode
    reasons: tuple[str, ...]
    messages: tuple[str, ...]
    warnings: tuple[str, ...]
    context: CalendarContext
    blocking: bool
    evaluated_at: datetime
    overridden: bool = False
    override_reason: str | None = None
    override_actor: str | None = None

    @property
    def frozen(self) -> bool:
        """True when the run must not proceed."""
        return not self.allowed

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready representation."""
        return {
            "allowed": self.allowed,
            "active": self.active,
            "mode": self.mode,
            "reasons": list(self.reasons),
            "messages": list(self.messages),
            "warnings": list(self.warnings),
            "context": self.context.to_dict(),
            "blocking": self.blocking,
            "overridden": self.overridden,
            "override_reason": self.override_reason,
            "override_actor": self.override_actor,
            "evaluated_at": self.evaluated_at.isoformat(),
        }


def freeze_decision(
    now: datetime,
    config: FreezeConfig,
    *,
    weddings_today: int,
    blocking: bool,
    has_pending: bool = True,
) -> FreezeDecision:
    """Apply the freeze policy to a run of (blocking or safe) migrations at ``now``."""
    context = calendar_context(now, config.timezone, config.peak_months, weddings_today)
    # With nothing to run, report the freeze that applies to any migration, so an operator
    # still sees it is Saturday, but never stop the (empty) run.
    blocking_considered = blocking and has_pending
    reasons: list[str] = []
    messages: list[str] = []
    if config.mode != "off":
        for code, message in _freeze_reasons(now, config, context, blocking_considered):
            reasons.append(code)
            messages.append(message)
    active = bool(reasons)
    allowed = not active or config.mode == "warn" or not has_pending
    warnings = tuple(messages) if config.mode == "warn" else ()
    return FreezeDecision(
        allowed=allowed,
        active=active,
        mode=config.mode,
        reasons=tuple(reasons),
        messages=tuple(messages),
        warnings=warnings,
        context=context,
        blocking=blocking,
        evaluated_at=now,
    )


def _freeze_reasons(
    now: datetime, config: FreezeConfig, context: CalendarContext, blocking: bool
) -> list[tuple[str, str]]:
    """Every (code, message) pair that freezes this run, in a stable order."""
    found: list[tuple[str, str]] = []
    when = context.describe()
    if context.weekday in config.frozen_weekdays:
        day = context.weekday_name
        found.append((day, f"It is {when}: every migration is frozen on {day.capitalize()}s."))
    if blocking and context.weddings_today > 0:
        count = context.weddings_today
        weddings = "1 wedding is" if count == 1 else f"{count} weddings are"
        found.append(
            (
                "wedding-day",
                f"{weddings} scheduled on {when}: migrations that take blocking locks on "
                "tenant tables are frozen for the day.",
            )
        )
    if (
        blocking
        and context.in_peak_season
        and not config.in_maintenance_window(now.astimezone(config.zone))
    ):
        found.append(
            (
                "peak-season-outside-window",
                f"{MONTH_NAMES[context.local_date.month - 1]} is peak season: migrations that "
                "take blocking locks may only run "
                f"{config.maintenance_start.strftime('%H:%M')}–"
                f"{config.maintenance_end.strftime('%H:%M')} {config.timezone} on "
                f"{_describe_weekdays(config.maintenance_weekdays)}; it is {when}.",
            )
        )
    for window in config.windows:
        if window.contains(now):
            start = window.start.astimezone(config.zone).strftime("%Y-%m-%d %H:%M")
            end = window.end.astimezone(config.zone).strftime("%Y-%m-%d %H:%M")
            found.append(
                (
                    f"window:{window.label}",
                    f"Freeze window {window.label!r} ({start} to {end} {config.timezone}) is "
                    f"in force at {when}: every migration is frozen.",
                )
            )
    return found


def _describe_weekdays(days: frozenset[int]) -> str:
    """``Monday–Thursday`` for a run of days, otherwise a list; ``no day`` when empty."""
    ordered = sorted(days)
    if not ordered:
        return "no day"
    names = [WEEKDAY_NAMES[d].capitalize() for d in ordered]
    if len(ordered) > 2 and ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{names[0]}–{names[-1]}"
    return ", ".join(names)


def apply_override(decision: FreezeDecision, reason: str | None, actor: str) -> FreezeDecision:
    """Let a frozen run proceed when an operator gives a written reason (stored with the actor)."""
    if decision.allowed:
        return decision
    if reason is None or not reason.strip():
        raise MigrationFrozen(
            " ".join(decision.messages)
            + " Overriding the freeze needs a written reason, which is stored in the audit "
            "log with who gave it; give one or wait until the freeze ends."
        )
    if not actor.strip():
        raise ValueError("an override needs the name of the operator who gives it")
    note = f"Freeze overridden by {actor.strip()}: {reason.strip()}"
    return replace(
        decision,
        allowed=True,
        overridden=True,
        override_reason=reason.strip(),
        override_actor=actor.strip(),
        warnings=(*decision.warnings, note),
    )


def next_allowed_time(
    now: datetime,
    config: FreezeConfig,
    *,
    weddings_by_date: Mapping[date, int],
    blocking: bool,
    horizon_days: int = 14,
) -> datetime | None:
    """Earliest moment within the horizon (15-minute grid) when the run would be allowed."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware (e.g. datetime.now(UTC))")
    zone = config.zone
    limit = now + timedelta(days=horizon_days)

    def allowed_at(moment: datetime) -> bool:
        weddings = weddings_by_date.get(moment.astimezone(zone).date(), 0)
        decision = freeze_decision(moment, config, weddings_today=weddings, blocking=blocking)
        return decision.allowed

    if allowed_at(now):
        return now.astimezone(zone)
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    candidate = epoch + GRID * -(-(now - epoch) // GRID)  # round up to the grid
    while candidate <= limit:
        if candidate > now and allowed_at(candidate):
            return candidate.astimezone(zone)
        candidate += GRID
    return None
