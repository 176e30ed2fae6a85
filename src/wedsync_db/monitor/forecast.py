"""Growth rates and linear forecasts over metric history (pure: points in, forecasts out).

Database size: least-squares growth per day, the size in 30 and 90 days, and the days until the
disk budget is reached. Connections: the peak of every Saturday (platform time), its trend, and
the predicted peak of the next Saturday. Too little history gives no number but a reason.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from wedsync_db.jsonable import JsonRecord, json_as

SATURDAY = 5
SECONDS_PER_DAY = 86_400.0
# Two points always fit a line exactly; three are the fewest that can disagree with it.
MIN_POINTS = 3
# Size measured over less than an hour mostly shows page preallocation and autovacuum, not
# growth.
MIN_SPAN = timedelta(hours=1)
# Same reasoning as MIN_POINTS, one point per Saturday.
MIN_SATURDAYS = 3
HORIZONS_DAYS = (30, 90)

Point = tuple[datetime, float]


@dataclass(frozen=True)
class LinearFit:
    """value ≈ intercept + slope_per_day × days since ``origin``."""

    origin: datetime
    slope_per_day: float
    intercept: float
    r_squared: float | None
    points: int

    def at(self, when: datetime) -> float:
        """The fitted value at ``when``."""
        days = (when - self.origin).total_seconds() / SECONDS_PER_DAY
        return self.intercept + self.slope_per_day * days


def fit_line(points: Sequence[Point]) -> LinearFit | None:
    """Ordinary least squares over (time, value); None for fewer than two distinct times."""
    if len(points) < 2:
        return None
    origin = min(t for t, _ in points)
    xs = [(t - origin).total_seconds() / SECONDS_PER_DAY for t, _ in points]
    ys = [float(v) for _, v in points]
    if len(set(xs)) < 2:
        return None
    slope, intercept = statistics.linear_regression(xs, ys)
    # with an intercept, the share of variance the line explains is the squared correlation
    r2 = None if len(set(ys)) < 2 else statistics.correlation(xs, ys) ** 2
    return LinearFit(origin, slope, intercept, r2, len(xs))


@dataclass(frozen=True)
class GrowthForecast(JsonRecord):
    """Growth of a metric and where it is heading; ``reason`` says why a figure is missing."""

    metric: str
    points: int
    current: float | None
    rate_per_day: float | None
    # written keyed ``in_30_days``…
    projections: dict[int, float] = field(
        default_factory=dict,
        metadata=json_as(lambda p: {f"in_{d}_days": v for d, v in sorted(p.items())}),
    )
    budget: float | None = None
    days_until_budget: float | None = None
    r_squared: float | None = None
    reason: str | None = None


def growth_forecast(
    points: Sequence[Point],
    *,
    metric: str = "database_size_bytes",
    budget: float | None = None,
    horizons: Sequence[int] = HORIZONS_DAYS,
) -> GrowthForecast:
    """Linear growth from history: the value in each horizon (days) and the days until
    ``budget`` is reached, both counted from the latest point."""
    ordered = sorted(points)
    current = ordered[-1][1] if ordered else None
    base = GrowthForecast(metric=metric, points=len(ordered), current=current, rate_per_day=None)
    if len(ordered) < MIN_POINTS:
        return replace(base, reason=f"need at least {MIN_POINTS} points, have {len(ordered)}")
    span = ordered[-1][0] - ordered[0][0]
    if span < MIN_SPAN:
        return replace(
            base,
            reason=f"history spans {span.total_seconds() / 60:.0f} min; need at least "
            f"{MIN_SPAN.total_seconds() / 3600:.0f} h",
        )
    fit = fit_line(ordered)
    if fit is None or current is None:
        return replace(base, reason="all points share one timestamp")
    rate = fit.slope_per_day
    projections = {d: current + rate * d for d in horizons}
    days: float | None = None
    reason: str | None = None
    if budget is not None:
        if current >= budget:
            days = 0.0
        elif rate > 0:
            days = (budget - current) / rate
        else:
            reason = "not growing, so the budget is never reached at this rate"
    return replace(
        base,
        rate_per_day=rate,
        projections=projections,
        budget=budget,
        days_until_budget=days,
        r_squared=fit.r_squared,
        reason=reason,
    )


@dataclass(frozen=True)
class SaturdayPeakForecast(JsonRecord):
    """Peak of a metric on each Saturday, the weekly trend, and the next Saturday's peak."""

    metric: str
    saturdays: tuple[tuple[date, float], ...] = field(
        metadata=json_as(lambda s: [{"date": d.isoformat(), "peak": v} for d, v in s])
    )
    next_saturday: date
    weekly_change: float | None = None
    predicted_peak: float | None = None
    r_squared: float | None = None
    reason: str | None = None


def next_saturday(today: date) -> date:
    """``today`` when it is a Saturday, else the coming one."""
    return today + timedelta(days=(SATURDAY - today.weekday()) % 7)


def saturday_peak_forecast(
    points: Sequence[Point], *, timezone: str, now: datetime, metric: str = "connections_total"
) -> SaturdayPeakForecast:
    """Fit the Saturday peaks (platform time) and predict the peak of the next Saturday."""
    zone = ZoneInfo(timezone)
    peaks: dict[date, float] = {}
    for at, value in points:
        local = at.astimezone(zone).date()
        if local.weekday() == SATURDAY:
            peaks[local] = max(value, peaks.get(local, value))
    saturdays = tuple(sorted(peaks.items()))
    upcoming = next_saturday(now.astimezone(zone).date())
    if len(saturdays) < MIN_SATURDAYS:
        return SaturdayPeakForecast(
            metric=metric,
            saturdays=saturdays,
            next_saturday=upcoming,
            reason=f"need at least {MIN_SATURDAYS} Saturdays of history, have {len(saturdays)}",
        )
    # each Saturday's peak placed at local noon, so the fit is in whole days
    fit = fit_line([(datetime.combine(d, time(12), zone), v) for d, v in saturdays])
    if fit is None:  # pragma: no cover - distinct dates always give distinct times
        return SaturdayPeakForecast(metric, saturdays, upcoming, reason="no spread in dates")
    return SaturdayPeakForecast(
        metric=metric,
        saturdays=saturdays,
        next_saturday=upcoming,
        weekly_change=fit.slope_per_day * 7,
        predicted_peak=max(0.0, fit.at(datetime.combine(upcoming, time(12), zone))),
        r_squared=fit.r_squared,
    )
