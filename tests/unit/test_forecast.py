"""Growth rates and forecasts over metric history (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from wedsync_db.monitor.forecast import (
    MIN_POINTS,
    MIN_SATURDAYS,
    fit_line,
    growth_forecast,
    next_saturday,
    saturday_peak_forecast,
)

GIB = 2**30
START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday


def daily(values: list[float], start: datetime = START) -> list[tuple[datetime, float]]:
    return [(start + timedelta(days=i), v) for i, v in enumerate(values)]


def test_fit_line_recovers_an_exact_line() -> None:
    fit = fit_line(daily([10.0 + 2.5 * i for i in range(6)]))
    assert fit is not None
    assert fit.slope_per_day == pytest.approx(2.5)
    assert fit.intercept == pytest.approx(10.0)
    assert fit.r_squared == pytest.approx(1.0)
    assert fit.at(START + timedelta(days=10)) == pytest.approx(35.0)


def test_fit_line_needs_two_distinct_times() -> None:
    assert fit_line([]) is None
    assert fit_line([(START, 1.0)]) is None
    assert fit_line([(START, 1.0), (START, 2.0)]) is None


def test_database_growing_one_gib_a_day_reaches_the_budget_on_schedule() -> None:
    points = daily([(10 + i) * GIB for i in range(10)])  # 10 GiB … 19 GiB
    f = growth_forecast(points, budget=50 * GIB)
    assert f.reason is None
    assert f.current == 19 * GIB
    assert f.rate_per_day == pytest.approx(GIB)
    assert f.projections[30] == pytest.approx(49 * GIB)
    assert f.projections[90] == pytest.approx(109 * GIB)
    assert f.days_until_budget == pytest.approx(31.0)
    assert f.to_dict()["projections"] == {
        "in_30_days": f.projections[30],
        "in_90_days": f.projections[90],
    }


def test_noisy_growth_still_gives_the_trend() -> None:
    noise = [0.3, -0.2, 0.1, -0.4, 0.2, 0.0, -0.1, 0.3]
    points = daily([(20 + 0.5 * i + n) * GIB for i, n in enumerate(noise)])
    f = growth_forecast(points, budget=100 * GIB)
    assert f.rate_per_day == pytest.approx(0.5 * GIB, rel=0.2)
    assert f.r_squared is not None and 0.8 < f.r_squared < 1.0
    assert f.days_until_budget is not None and 140 < f.days_until_budget < 190


def test_too_few_points_give_a_reason_not_a_number() -> None:
    f = growth_forecast(daily([1.0] * (MIN_POINTS - 1)), budget=10.0)
    assert f.rate_per_day is None and f.days_until_budget is None
    assert f.reason is not None and "at least" in f.reason


def test_minutes_of_history_are_not_a_trend() -> None:
    points = [(START + timedelta(minutes=i), float(i)) for i in range(10)]
    f = growth_forecast(points)
    assert f.rate_per_day is None
    assert f.reason is not None and "spans" in f.reason


def test_a_shrinking_database_never_reaches_its_budget() -> None:
    f = growth_forecast(daily([30.0, 29.0, 28.0, 27.0]), budget=50.0)
    assert f.rate_per_day == pytest.approx(-1.0)
    assert f.days_until_budget is None
    assert f.reason is not None and "not growing" in f.reason


def test_a_database_over_budget_has_zero_days_left() -> None:
    f = growth_forecast(daily([60.0, 61.0, 62.0]), budget=50.0)
    assert f.days_until_budget == 0.0


def test_saturday_peaks_trend_and_next_saturday() -> None:
    london = ZoneInfo("Europe/London")
    points: list[tuple[datetime, float]] = []
    for week, peak in enumerate([40.0, 45.0, 50.0, 55.0]):
        saturday = datetime(2026, 5, 2, tzinfo=london) + timedelta(weeks=week)
        points += [
            (saturday.replace(hour=9), peak - 20),
            (saturday.replace(hour=15), peak),  # the day's peak
            (saturday.replace(hour=23, minute=30), peak - 30),
            (saturday + timedelta(days=2, hours=14), peak + 100),  # Monday: ignored
        ]
    now = datetime(2026, 5, 27, 10, 0, tzinfo=london)  # a Wednesday
    f = saturday_peak_forecast(points, timezone="Europe/London", now=now)
    assert [p for _, p in f.saturdays] == [40.0, 45.0, 50.0, 55.0]
    assert f.next_saturday == date(2026, 5, 30)
    assert f.weekly_change == pytest.approx(5.0)
    assert f.predicted_peak == pytest.approx(60.0)
    assert f.reason is None


def test_saturday_is_decided_in_platform_time() -> None:
    # 23:30 UTC on a Friday in June is 00:30 on Saturday in London
    friday_night_utc = datetime(2026, 6, 5, 23, 30, tzinfo=UTC)
    points = [(friday_night_utc + timedelta(weeks=w), 10.0 * (w + 1)) for w in range(3)]
    london = saturday_peak_forecast(points, timezone="Europe/London", now=friday_night_utc)
    utc = saturday_peak_forecast(points, timezone="UTC", now=friday_night_utc)
    assert len(london.saturdays) == 3
    assert utc.saturdays == ()


def test_too_few_saturdays_give_a_reason() -> None:
    saturday = datetime(2026, 5, 2, 15, tzinfo=UTC)
    points = [(saturday + timedelta(weeks=w), 10.0) for w in range(MIN_SATURDAYS - 1)]
    f = saturday_peak_forecast(points, timezone="UTC", now=saturday)
    assert f.predicted_peak is None
    assert f.reason is not None and "Saturdays" in f.reason
    assert f.to_dict()["next_saturday"] == "2026-05-02"


def test_next_saturday_is_today_on_a_saturday() -> None:
    assert next_saturday(date(2026, 6, 13)) == date(2026, 6, 13)
    assert next_saturday(date(2026, 6, 14)) == date(2026, 6, 20)
    assert next_saturday(date(2026, 6, 12)) == date(2026, 6, 13)
