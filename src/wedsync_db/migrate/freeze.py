"""The wedding-aware migration freeze policy (SPEC §5), pure.

The current time, the configuration and the number of weddings come in as arguments,
decisions come out as frozen dataclasses. The migration runner, the CLI and the API do the
I/O (clock, database, audit log) around these functions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, time
from typing import TYPE_CHECKING, Any, get_args
from zoneinfo import ZoneInfo

from wedsync_db.calendar import (
    MONTH_NAMES,
    SATURDAY,
    WEEKDAY_NAMES,
    CalendarContext,
    calendar_context,
    platform_zone,
)
from wedsync_db.errors import MigrationFrozen
from wedsync_db.settings import FreezeMode, FreezeWindow

if TYPE_CHECKING:
    from wedsync_db.settings import Settings

FREEZE_MODES: tuple[FreezeMode, ...] = get_args(FreezeMode)


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
        platform_zone(self.timezone)
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
        return platform_zone(self.timezone)

    @classmethod
    def from_settings(cls, settings: Settings) -> FreezeConfig:
        """Build the policy configuration from validated settings."""
        start, end = settings.maintenance_window
        return cls(
            timezone=settings.timezone,
            mode=settings.effective_freeze_mode,
            frozen_weekdays=settings.freeze_weekdays,
            peak_months=settings.peak_months,
            maintenance_start=start,
            maintenance_end=end,
            maintenance_weekdays=settings.maintenance_weekdays,
            windows=settings.freeze_windows,
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
