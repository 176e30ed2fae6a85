"""Wedding calendar context (SPEC §5): what kind of day it is on the platform.

Pure: the current time, the timezone, the peak months and the number of weddings come in as
arguments, a frozen dataclass comes out. The freeze policy built on it is
:mod:`wedsync_db.migrate.freeze`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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


def platform_zone(name: str) -> ZoneInfo:
    """The ZoneInfo of an IANA name; ValueError naming it when unknown."""
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
    local = now.astimezone(platform_zone(timezone))
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
