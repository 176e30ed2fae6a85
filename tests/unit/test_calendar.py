"""Wedding calendar context and the migration freeze policy: pure, no database."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wedsync_db.calendar import CalendarContext, calendar_context
from wedsync_db.errors import ConfigError, MigrationFrozen
from wedsync_db.migrate.freeze import FreezeConfig, apply_override, freeze_decision
from wedsync_db.settings import (
    FreezeMode,
    FreezeWindow,
    Settings,
    load_settings,
    parse_freeze_windows,
)

LONDON = "Europe/London"
LONDON_TZ = ZoneInfo(LONDON)
PEAK = frozenset(range(5, 11))
PRODUCTION = FreezeConfig(timezone=LONDON, mode="enforce")

# 2026-06-13 is a Saturday, 2026-06-10 a Wednesday, 2026-02-10 a Tuesday.
SATURDAY_JUNE = "2026-06-13T10:00"


def at(local: str, tz: str = LONDON) -> datetime:
    """A naive ISO string read as wall-clock time in ``tz``."""
    return datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(tz))


SATURDAY, WEDDING_DAY, OUTSIDE_WINDOW = "saturday", "wedding-day", "peak-season-outside-window"
# id: (local time, weddings that day, blocking, allowed, reasons)
PRODUCTION_CASES: dict[str, tuple[str, int, bool, bool, tuple[str, ...]]] = {
    "sat-june-safe": (SATURDAY_JUNE, 0, False, False, (SATURDAY,)),
    "sat-june-blocking": (SATURDAY_JUNE, 0, True, False, (SATURDAY, OUTSIDE_WINDOW)),
    "sat-june-weddings-blocking": (
        "2026-06-13T02:00",
        12,
        True,
        False,
        (SATURDAY, WEDDING_DAY, OUTSIDE_WINDOW),
    ),
    "wed-june-safe": ("2026-06-10T14:00", 0, False, True, ()),
    "wed-june-blocking-afternoon": ("2026-06-10T14:00", 0, True, False, (OUTSIDE_WINDOW,)),
    "wed-june-blocking-in-window": ("2026-06-10T02:00", 0, True, True, ()),
    "window-start-inclusive": ("2026-06-10T01:00", 0, True, True, ()),
    "window-end-exclusive": ("2026-06-10T05:00", 0, True, False, (OUTSIDE_WINDOW,)),
    "friday-not-a-maintenance-day": ("2026-06-12T02:00", 0, True, False, (OUTSIDE_WINDOW,)),
    "wed-june-weddings-safe": ("2026-06-10T14:00", 3, False, True, ()),
    "wed-june-weddings-blocking-in-window": ("2026-06-10T02:00", 3, True, False, (WEDDING_DAY,)),
    "wed-june-weddings-blocking-afternoon": (
        "2026-06-10T14:00",
        3,
        True,
        False,
        (WEDDING_DAY, OUTSIDE_WINDOW),
    ),
    "tue-feb-safe": ("2026-02-10T14:00", 0, False, True, ()),
    "tue-feb-blocking": ("2026-02-10T14:00", 0, True, True, ()),
    "tue-feb-wedding-blocking": ("2026-02-10T14:00", 1, True, False, (WEDDING_DAY,)),
    "sat-feb-safe": ("2026-02-14T10:00", 0, False, False, (SATURDAY,)),
}


@pytest.mark.parametrize(
    ("local", "weddings", "blocking", "allowed", "reasons"),
    list(PRODUCTION_CASES.values()),
    ids=list(PRODUCTION_CASES),
)
def test_production_policy(
    local: str, weddings: int, blocking: bool, allowed: bool, reasons: tuple[str, ...]
) -> None:
    decision = freeze_decision(at(local), PRODUCTION, weddings_today=weddings, blocking=blocking)
    assert decision.allowed is allowed
    assert decision.active is (not allowed)
    assert decision.reasons == reasons
    assert len(decision.messages) == len(reasons)
    assert decision.warnings == ()


def test_messages_name_the_day_time_and_weddings() -> None:
    decision = freeze_decision(at("2026-06-13T14:00"), PRODUCTION, weddings_today=3, blocking=True)
    saturday, weddings, peak = decision.messages
    assert "Saturday 2026-06-13 14:00 Europe/London" in saturday
    assert "3 weddings are scheduled" in weddings
    assert "01:00–05:00" in peak and "Monday–Thursday" in peak and "June" in peak
    single = freeze_decision(at("2026-02-10T14:00"), PRODUCTION, weddings_today=1, blocking=True)
    assert "1 wedding is scheduled" in single.messages[0]


@pytest.mark.parametrize(
    ("utc", "tz", "allowed", "reasons", "local_weekday"),
    [
        # Saturday 20:00 UTC is still Saturday evening in London...
        pytest.param("2026-06-13T20:00", LONDON, False, ("saturday",), 5, id="sat-in-london"),
        # ...but already Sunday 08:00 in Auckland (UTC+12 in June).
        pytest.param("2026-06-13T20:00", "Pacific/Auckland", True, (), 6, id="sun-in-auckland"),
        # Friday 13:00 UTC is Friday in London and Saturday 01:00 in Auckland.
        pytest.param("2026-06-12T13:00", LONDON, True, (), 4, id="fri-in-london"),
        pytest.param(
            "2026-06-12T13:00", "Pacific/Auckland", False, ("saturday",), 5, id="sat-in-auckland"
        ),
    ],
)
def test_weekday_is_taken_in_the_platform_timezone(
    utc: str, tz: str, allowed: bool, reasons: tuple[str, ...], local_weekday: int
) -> None:
    config = FreezeConfig(timezone=tz, mode="enforce")
    decision = freeze_decision(at(utc, "UTC"), config, weddings_today=0, blocking=False)
    assert decision.allowed is allowed
    assert decision.reasons == reasons
    assert decision.context.weekday == local_weekday
    assert decision.context.timezone == tz


def test_staging_warns_but_allows() -> None:
    config = FreezeConfig(timezone=LONDON, mode="warn")
    decision = freeze_decision(at(SATURDAY_JUNE), config, weddings_today=4, blocking=True)
    assert decision.allowed is True
    assert decision.active is True
    assert decision.reasons == ("saturday", "wedding-day", "peak-season-outside-window")
    assert decision.warnings == decision.messages
    assert decision.warnings


def test_staging_without_a_freeze_has_no_warnings() -> None:
    config = FreezeConfig(timezone=LONDON, mode="warn")
    decision = freeze_decision(at("2026-02-10T14:00"), config, weddings_today=0, blocking=True)
    assert (decision.allowed, decision.active, decision.warnings) == (True, False, ())


def test_development_never_freezes() -> None:
    config = FreezeConfig(timezone=LONDON, mode="off")
    decision = freeze_decision(at(SATURDAY_JUNE), config, weddings_today=9, blocking=True)
    assert (decision.allowed, decision.active) == (True, False)
    assert (decision.reasons, decision.messages, decision.warnings) == ((), (), ())
    # The calendar itself still knows what day it is.
    assert decision.context.level == "wedding-day"


def test_nothing_pending_is_allowed_but_still_reports_saturday() -> None:
    decision = freeze_decision(
        at(SATURDAY_JUNE), PRODUCTION, weddings_today=2, blocking=True, has_pending=False
    )
    assert decision.allowed is True
    assert decision.active is True
    # Computed as for safe migrations: only the weekday applies.
    assert decision.reasons == ("saturday",)


def test_nothing_pending_outside_window_is_not_active() -> None:
    decision = freeze_decision(
        at("2026-06-10T14:00"), PRODUCTION, weddings_today=0, blocking=True, has_pending=False
    )
    assert (decision.allowed, decision.active, decision.reasons) == (True, False, ())


@pytest.mark.parametrize(
    ("local", "allowed", "reasons"),
    [
        pytest.param("2026-12-23T23:59", True, (), id="before"),
        pytest.param("2026-12-24T00:00", False, ("window:christmas",), id="first-minute"),
        # The date-only end covers the whole of the 27th.
        pytest.param("2026-12-27T23:59", False, ("window:christmas",), id="last-minute"),
        pytest.param("2026-12-28T00:00", True, (), id="after"),
        pytest.param("2026-12-31T18:00", False, ("window:new year release",), id="datetime-window"),
    ],
)
def test_configured_windows_freeze_everything(
    local: str, allowed: bool, reasons: tuple[str, ...]
) -> None:
    windows = parse_freeze_windows(
        "2026-12-24/2026-12-27 christmas, 2026-12-31T12:00/2027-01-01T12:00 new year release",
        LONDON_TZ,
    )
    config = FreezeConfig(timezone=LONDON, mode="enforce", windows=windows)
    decision = freeze_decision(at(local), config, weddings_today=0, blocking=False)
    assert decision.allowed is allowed
    assert decision.reasons == reasons


def test_window_and_saturday_are_both_listed() -> None:
    window = FreezeWindow(at("2026-06-13T00:00"), at("2026-06-14T00:00"), "launch")
    config = FreezeConfig(timezone=LONDON, windows=(window,))
    decision = freeze_decision(at(SATURDAY_JUNE), config, weddings_today=0, blocking=False)
    assert decision.reasons == ("saturday", "window:launch")
    assert "'launch'" in decision.messages[1]


def test_override_with_a_reason_allows_and_records_it() -> None:
    decision = freeze_decision(at(SATURDAY_JUNE), PRODUCTION, weddings_today=0, blocking=False)
    overridden = apply_override(decision, "  hotfix for the RSVP outage  ", "alice")
    assert overridden.allowed is True
    assert overridden.overridden is True
    assert overridden.override_reason == "hotfix for the RSVP outage"
    assert overridden.override_actor == "alice"
    # The freeze is still reported as in force; only the run is let through.
    assert overridden.active is True
    assert overridden.reasons == ("saturday",)
    assert any("alice" in w for w in overridden.warnings)


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_override_without_a_reason_is_refused(reason: str | None) -> None:
    decision = freeze_decision(at(SATURDAY_JUNE), PRODUCTION, weddings_today=0, blocking=False)
    with pytest.raises(MigrationFrozen, match="written reason"):
        apply_override(decision, reason, "alice")


@pytest.mark.parametrize(
    ("mode", "local"),
    [
        pytest.param("enforce", "2026-02-10T14:00", id="enforce-not-frozen"),
        pytest.param("warn", SATURDAY_JUNE, id="warn-saturday"),
    ],
)
def test_override_of_an_allowed_run_changes_nothing(mode: FreezeMode, local: str) -> None:
    config = FreezeConfig(timezone=LONDON, mode=mode)
    decision = freeze_decision(at(local), config, weddings_today=0, blocking=True)
    assert apply_override(decision, None, "alice") is decision
    assert apply_override(decision, "because", "alice").overridden is False


@pytest.mark.parametrize(
    ("local", "frozen_weekdays", "reasons"),
    [
        pytest.param("2026-06-12T10:00", frozenset({4}), ("friday",), id="friday-frozen"),
        pytest.param("2026-06-13T10:00", frozenset({4}), (), id="saturday-not-frozen"),
        pytest.param("2026-06-12T10:00", frozenset({4, 5}), ("friday",), id="fri-sat-on-fri"),
        pytest.param("2026-06-13T10:00", frozenset({4, 5}), ("saturday",), id="fri-sat-on-sat"),
        pytest.param("2026-06-13T10:00", frozenset(), (), id="no-frozen-day"),
    ],
)
def test_custom_frozen_weekdays(
    local: str, frozen_weekdays: frozenset[int], reasons: tuple[str, ...]
) -> None:
    config = FreezeConfig(timezone=LONDON, frozen_weekdays=frozen_weekdays)
    decision = freeze_decision(at(local), config, weddings_today=0, blocking=False)
    assert decision.reasons == reasons
    assert decision.allowed is (not reasons)


@pytest.mark.parametrize(
    ("local", "allowed"),
    [
        pytest.param("2026-06-11T23:30", True, id="thursday-night"),
        pytest.param("2026-06-12T02:00", True, id="friday-morning-belongs-to-thursday"),
        pytest.param("2026-06-12T03:00", False, id="end-exclusive"),
        pytest.param("2026-06-15T02:00", False, id="monday-morning-belongs-to-sunday"),
        pytest.param("2026-06-15T23:00", True, id="monday-night"),
        pytest.param("2026-06-10T22:00", False, id="before-start"),
        pytest.param("2026-06-10T12:00", False, id="midday"),
    ],
)
def test_maintenance_window_wrapping_midnight(local: str, allowed: bool) -> None:
    config = FreezeConfig(
        timezone=LONDON,
        frozen_weekdays=frozenset(),
        maintenance_start=time(23, 0),
        maintenance_end=time(3, 0),
    )
    decision = freeze_decision(at(local), config, weddings_today=0, blocking=True)
    assert decision.allowed is allowed


def test_empty_maintenance_window_never_opens() -> None:
    config = FreezeConfig(timezone=LONDON, maintenance_start=time(2), maintenance_end=time(2))
    decision = freeze_decision(at("2026-06-10T02:00"), config, weddings_today=0, blocking=True)
    assert decision.reasons == ("peak-season-outside-window",)


@pytest.mark.parametrize(
    ("local", "weddings", "level", "is_saturday", "in_peak"),
    [
        pytest.param("2026-02-14T10:00", 0, "wedding-day", True, False, id="saturday-feb"),
        pytest.param("2026-06-13T10:00", 0, "wedding-day", True, True, id="saturday-june"),
        pytest.param("2026-02-10T10:00", 2, "wedding-day", False, False, id="weddings-feb"),
        pytest.param("2026-06-10T10:00", 0, "peak-season", False, True, id="wed-june"),
        pytest.param("2026-02-10T10:00", 0, "normal", False, False, id="tue-feb"),
    ],
)
def test_calendar_context_levels(
    local: str, weddings: int, level: str, is_saturday: bool, in_peak: bool
) -> None:
    context = calendar_context(at(local), LONDON, PEAK, weddings)
    assert context.level == level
    assert context.is_saturday is is_saturday
    assert context.in_peak_season is in_peak
    assert context.weddings_today == weddings


def test_calendar_context_is_local_and_json_ready() -> None:
    context = calendar_context(at("2026-06-13T23:30", "UTC"), "Asia/Tokyo", PEAK, 0)
    assert context == CalendarContext(
        level="peak-season",
        local_date=date(2026, 6, 14),
        local_time=time(8, 30),
        weekday=6,
        weddings_today=0,
        is_saturday=False,
        in_peak_season=True,
        timezone="Asia/Tokyo",
    )
    data = json.loads(json.dumps(context.to_dict()))
    assert data["local_date"] == "2026-06-14"
    assert data["local_time"] == "08:30:00"
    assert data["level"] == "peak-season"


@pytest.mark.parametrize(
    ("now", "weddings"),
    [
        pytest.param(datetime(2026, 6, 13, 10, 0), 0, id="naive"),
        pytest.param(at(SATURDAY_JUNE), -1, id="negative-weddings"),
    ],
)
def test_calendar_context_rejects_bad_input(now: datetime, weddings: int) -> None:
    with pytest.raises(ValueError):
        calendar_context(now, LONDON, PEAK, weddings)


def test_decision_to_dict_is_json_ready() -> None:
    decision = freeze_decision(at(SATURDAY_JUNE), PRODUCTION, weddings_today=1, blocking=True)
    data = json.loads(json.dumps(decision.to_dict()))
    assert set(data) >= {
        "allowed",
        "active",
        "mode",
        "reasons",
        "messages",
        "warnings",
        "context",
        "blocking",
        "overridden",
        "override_reason",
        "evaluated_at",
    }
    assert data["reasons"] == ["saturday", "wedding-day", "peak-season-outside-window"]
    assert data["context"]["level"] == "wedding-day"
    assert data["evaluated_at"] == "2026-06-13T10:00:00+01:00"


def test_parse_freeze_windows() -> None:
    assert parse_freeze_windows("", LONDON_TZ) == ()
    assert parse_freeze_windows(" , ", LONDON_TZ) == ()
    christmas, launch, utc = parse_freeze_windows(
        "2026-12-24/2026-12-27 christmas,2027-06-01T09:30/2027-06-01T17:00 launch day,"
        "2027-03-01T00:00Z/2027-03-02T00:00Z utc",
        LONDON_TZ,
    )
    assert christmas == FreezeWindow(at("2026-12-24T00:00"), at("2026-12-28T00:00"), "christmas")
    assert launch.label == "launch day"
    assert launch.start == at("2027-06-01T09:30")
    assert utc.start == datetime(2027, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "item",
    [
        pytest.param("2026-12-24/2026-12-27", id="no-label"),
        pytest.param("2026-12-24 christmas", id="no-end"),
        pytest.param("2026-13-24/2026-12-27 christmas", id="no-such-month"),
        pytest.param("tomorrow/2026-12-27 christmas", id="not-a-date"),
        pytest.param("2026-12-27/2026-12-24 backwards", id="backwards"),
        pytest.param("2026-12-24T10:00/2026-12-24T10:00 empty", id="empty"),
    ],
)
def test_parse_freeze_windows_names_the_bad_item(item: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        parse_freeze_windows(f"2026-01-01/2026-01-02 fine, {item}", LONDON_TZ)
    assert repr(item) in str(excinfo.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "unknown timezone"),
        ({"mode": "strict"}, "unknown freeze mode"),
        ({"frozen_weekdays": frozenset({7})}, "frozen_weekdays"),
        ({"maintenance_weekdays": frozenset({-1})}, "maintenance_weekdays"),
        ({"peak_months": frozenset({0, 5})}, "peak_months"),
    ],
)
def test_freeze_config_rejects_bad_values(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FreezeConfig(**kwargs)  # type: ignore[arg-type]


def test_freeze_config_defaults() -> None:
    config = FreezeConfig()
    assert config.mode == "enforce"
    assert config.frozen_weekdays == {5}
    assert config.peak_months == set(range(5, 11))
    assert (config.maintenance_start, config.maintenance_end) == (time(1, 0), time(5, 0))
    assert config.maintenance_weekdays == {0, 1, 2, 3}
    assert config.windows == ()


@pytest.mark.parametrize(
    ("env", "mode"), [("development", "off"), ("staging", "warn"), ("production", "enforce")]
)
def test_freeze_config_from_settings(env: str, mode: str) -> None:
    settings = Settings(
        _env_file=None,
        env=env,
        timezone="America/New_York",
        freeze_weekdays="fri,sat",
        peak_months="6-9",
        maintenance_window="22:00-02:00",
        maintenance_weekdays="sun-wed",
        freeze_windows="2026-11-26/2026-11-27 thanksgiving",
    )
    config = FreezeConfig.from_settings(settings)
    assert config.mode == mode
    assert config.timezone == "America/New_York"
    assert config.frozen_weekdays == {4, 5}
    assert config.peak_months == {6, 7, 8, 9}
    assert (config.maintenance_start, config.maintenance_end) == (time(22, 0), time(2, 0))
    assert config.maintenance_weekdays == {6, 0, 1, 2}
    assert [w.label for w in config.windows] == ["thanksgiving"]
    assert config.windows[0].start == at("2026-11-26T00:00", "America/New_York")


def test_bad_freeze_windows_are_refused_with_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEDSYNC_FREEZE_WINDOWS", "next week")
    with pytest.raises(ConfigError, match=r"^WEDSYNC_FREEZE_WINDOWS:"):
        load_settings(_env_file=None, generate_key=False)


aware_datetimes = st.datetimes(
    min_value=datetime(2020, 1, 1),
    max_value=datetime(2035, 12, 31),
    timezones=st.sampled_from([UTC, LONDON_TZ, ZoneInfo("Pacific/Auckland")]),
)


@given(now=aware_datetimes, weddings=st.integers(0, 50), blocking=st.booleans())
def test_development_always_allows(now: datetime, weddings: int, blocking: bool) -> None:
    config = FreezeConfig(timezone=LONDON, mode="off")
    decision = freeze_decision(now, config, weddings_today=weddings, blocking=blocking)
    assert decision.allowed and not decision.active and decision.reasons == ()


@given(now=aware_datetimes, weddings=st.integers(0, 50))
def test_safe_runs_are_never_more_frozen_than_blocking_ones(now: datetime, weddings: int) -> None:
    safe = freeze_decision(now, PRODUCTION, weddings_today=weddings, blocking=False)
    blocking = freeze_decision(now, PRODUCTION, weddings_today=weddings, blocking=True)
    assert set(safe.reasons) <= set(blocking.reasons)
    assert blocking.allowed <= safe.allowed


@given(now=aware_datetimes, weddings=st.integers(0, 50), blocking=st.booleans())
def test_warn_mode_reports_what_enforce_would_freeze(
    now: datetime, weddings: int, blocking: bool
) -> None:
    warn = FreezeConfig(timezone=LONDON, mode="warn")
    warned = freeze_decision(now, warn, weddings_today=weddings, blocking=blocking)
    enforced = freeze_decision(now, PRODUCTION, weddings_today=weddings, blocking=blocking)
    assert warned.allowed
    assert warned.reasons == enforced.reasons
    assert warned.active is enforced.frozen
    assert warned.warnings == enforced.messages
