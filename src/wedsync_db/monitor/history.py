"""Metric history in ``ops.metric_snapshots``: store, purge by retention, read a series."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from wedsync_db.db.client import Database
from wedsync_db.db.queries import statements
from wedsync_db.db.session import Session
from wedsync_db.jsonable import JsonRecord
from wedsync_db.monitor import forecast
from wedsync_db.monitor.snapshot import QueryBaseline, QueryCounters, Snapshot
from wedsync_db.settings import Settings

# A metric name is a jsonb key written by Snapshot.metrics(); anything else is a typo.
METRIC_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# Points returned for one series (API and CLI): enough for a chart, small enough for one
# response or one screen of rows.
DEFAULT_MAX_POINTS = 200
# Drill-down rows kept per snapshot; the flat metrics carry the trends.
DETAIL_ROWS = 10
# Without an explicit start a series covers this much: a week shows the Saturday peak.
DEFAULT_SPAN = timedelta(days=7)


_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# the start of a series when none is given, in the form parse_moment reads
DEFAULT_SINCE = "7d"


def parse_moment(value: str, now: datetime) -> datetime:
    """``7d``, ``24h``, ``90m``, ``2w`` before ``now``, or an ISO 8601 time (UTC if naive).

    Raises ValueError for anything else."""
    match = _RELATIVE.match(value.strip())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{value!r}: use e.g. 7d, 24h or 2026-06-01T00:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class UnknownMetric(ValueError):
    """No history for a metric name that the latest snapshot does not carry either."""

    def __init__(self, metric: str, known: list[str]) -> None:
        self.metric = metric
        self.known = known
        super().__init__(f"no history for {metric!r}; known metrics: {', '.join(known)}")


_q = statements("wedsync_db.monitor", "sql/history.sql")


@dataclass(frozen=True)
class MetricPoint(JsonRecord):
    """One time bucket of a series: when (mean capture time), mean, extremes, and how many
    snapshots fell in it."""

    at: datetime
    value: float
    min: float
    max: float
    samples: int


def snapshot_details(snapshot: Snapshot) -> dict[str, Any]:
    """The drill-down stored next to the metrics: top statements, largest tables, errors."""
    details: dict[str, Any] = {}
    q = snapshot.queries
    if q is not None and q.window is not None:
        details["top_queries"] = [
            {
                "queryid": str(s.queryid),
                "calls": s.calls,
                "total_ms": round(s.total_ms, 3),
                "mean_ms": round(s.mean_ms, 3),
                "query": s.query[:200],
            }
            for s in q.window.top[:DETAIL_ROWS]
        ]
    if snapshot.storage is not None:
        details["largest_tables"] = [
            {"table": f"{t.schema_name}.{t.table_name}", "bytes": t.total_bytes}
            for t in snapshot.storage.largest[:DETAIL_ROWS]
        ]
    if snapshot.errors:
        details["errors"] = [
            {"collector": e.collector, "message": e.message} for e in snapshot.errors
        ]
    return details


async def store(s: Session, snapshot: Snapshot, *, source: str) -> int:
    """Insert one snapshot; returns its id."""
    row_id = await s.fetch_val(
        _q("insert_snapshot"),
        {
            "captured_at": snapshot.captured_at,
            "source": source,
            "metrics": json.dumps(snapshot.metrics()),
            "details": json.dumps(snapshot_details(snapshot), default=str),
        },
    )
    return int(row_id)


async def save_query_baseline(s: Session, baseline: QueryBaseline) -> None:
    """Keep the statement counters of this capture for the next difference."""
    await s.execute(
        _q("save_query_baseline"),
        {
            "captured_at": baseline.captured_at,
            "stats_reset": baseline.stats_reset,
            "counters": json.dumps(baseline.to_json()),
        },
    )


async def load_query_baseline(db: Database) -> QueryBaseline | None:
    """The statement counters of the latest stored capture, if any."""
    async with db.ops(reason="monitor history") as s:
        rows = await s.fetch_tuples(_q("load_query_baseline"))
    if not rows:
        return None
    captured_at, stats_reset, counters = rows[0]
    return QueryBaseline(
        captured_at=captured_at,
        stats_reset=stats_reset,
        counters={k: QueryCounters.from_list(v) for k, v in dict(counters).items()},
    )


async def record(
    db: Database, snapshot: Snapshot, *, source: str, purge_before: datetime | None = None
) -> int:
    """Store a snapshot and its query baseline (and purge old rows) in one transaction."""
    async with db.ops(reason="monitor history") as s:
        row_id = await store(s, snapshot, source=source)
        if snapshot.queries is not None:
            await save_query_baseline(s, snapshot.queries.baseline(snapshot.captured_at))
        if purge_before is not None:
            await s.execute(_q("purge_snapshots"), {"before": purge_before})
    return row_id


def retention_cutoff(retention_days: int, now: datetime | None = None) -> datetime:
    """The oldest capture time kept."""
    return (now or datetime.now(UTC)) - timedelta(days=retention_days)


async def series(
    db: Database,
    metric: str,
    since: datetime,
    until: datetime | None = None,
    *,
    max_points: int = DEFAULT_MAX_POINTS,
) -> list[MetricPoint]:
    """One metric between ``since`` and ``until`` (default now), in at most ``max_points``
    equal time buckets."""
    if not METRIC_NAME.match(metric):
        raise ValueError(f"invalid metric name {metric!r}")
    end = until or datetime.now(UTC)
    if end <= since:
        return []
    bucket = max((end - since) / max(1, max_points), timedelta(seconds=1))
    async with db.ops(reason="monitor history") as s:
        rows = await s.fetch_tuples(
            _q("series"), {"bucket": bucket, "metric": metric, "since": since, "until": end}
        )
    return [
        MetricPoint(at=at, value=float(v), min=float(lo), max=float(hi), samples=int(n))
        for at, v, lo, hi, n in rows
    ]


async def known_metrics(db: Database) -> list[str]:
    """Metric names present in the latest stored snapshot."""
    async with db.ops(reason="monitor history") as s:
        return [str(r[0]) for r in await s.fetch_tuples(_q("known_metrics"))]


async def settings_series_report(
    db: Database,
    settings: Settings,
    metric: str,
    window: tuple[datetime, datetime | None],
    max_points: int,
    now: datetime,
) -> dict[str, Any]:
    """:func:`series_report` with the disk budget and time zone ``settings`` give (the API's
    and the CLI's report)."""
    return await series_report(
        db,
        metric,
        since=window[0],
        until=window[1],
        max_points=max_points,
        disk_budget_bytes=settings.disk_budget_gb * 2**30,
        timezone=settings.timezone,
        now=now,
    )


async def series_report(
    db: Database,
    metric: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    max_points: int = DEFAULT_MAX_POINTS,
    disk_budget_bytes: float | None = None,
    timezone: str = "Europe/London",
    now: datetime | None = None,
) -> dict[str, Any]:
    """A series with its forecast: the size in 30 / 90 days and the days until the disk budget
    for ``database_size_bytes``, the Saturday peak trend for ``connections*``, and the linear
    trend of any metric. Raises UnknownMetric for a name with no history at all."""
    moment = now or datetime.now(UTC)
    end = until or moment
    start = since or end - DEFAULT_SPAN
    points = await series(db, metric, start, end, max_points=max_points)
    if not points:
        known = await known_metrics(db)
        if known and metric not in known:
            raise UnknownMetric(metric, known)
    values = [(p.at, p.value) for p in points]
    budget = disk_budget_bytes if metric == "database_size_bytes" else None
    report: dict[str, Any] = {
        "metric": metric,
        "since": start.isoformat(),
        "until": end.isoformat(),
        "points": [p.to_dict() for p in points],
        "forecast": forecast.growth_forecast(values, metric=metric, budget=budget).to_dict(),
    }
    if metric.startswith("connections"):
        # the peak of each bucket: a Saturday's busiest minute is what needs headroom
        report["saturday_peak"] = forecast.saturday_peak_forecast(
            [(p.at, p.max) for p in points], timezone=timezone, now=moment, metric=metric
        ).to_dict()
    return report
