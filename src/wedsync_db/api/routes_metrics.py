"""Metrics: the full snapshot as JSON, metric history with forecasts, and Prometheus text."""

from __future__ import annotations

import dataclasses
import hmac
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from wedsync_db.api.auth import ServiceKey, presented_key
from wedsync_db.api.context import AppContext, context_of, get_context
from wedsync_db.api.problems import problem
from wedsync_db.monitor import history
from wedsync_db.monitor.prometheus import CONTENT_TYPE
from wedsync_db.monitor.snapshot import Snapshot
from wedsync_db.monitor.state import MonitorState

router = APIRouter(tags=["metrics"])
_NO_STORE = {"Cache-Control": "no-store"}


class RecommendationModel(BaseModel):
    """Something to do, keyed stably across samples."""

    key: str = Field(description="e.g. index.unused:public.guests_foo_idx")
    severity: str = Field(description="critical, warning or info")
    title: str
    objects: list[str]
    remedy: str
    remedy_sql: str | None


class MonitorModel(BaseModel):
    """State of the monitor itself."""

    up: bool
    captures: int
    consecutive_failures: int
    last_error: str | None
    snapshot_age_seconds: float | None
    full_captured_at: str | None


class MetricsDocument(BaseModel):
    """The response of GET /api/database/metrics."""

    captured_at: str = Field(description="ISO 8601")
    snapshot: dict[str, Any] = Field(description="every collector's records, by collector")
    metrics: dict[str, float] = Field(description="the flat metrics stored in the history")
    assessment: dict[str, Any] | None = Field(description="status, context, checks, alerts")
    recommendations: list[RecommendationModel]
    monitor: MonitorModel
    plan_usage: dict[str, Any] = Field(
        description="usage counter totals and the organizations at or over each plan limit "
        '(`{"error": …}` when the counters cannot be read)'
    )


def _plan_usage(snap: Snapshot) -> dict[str, Any]:
    """The plan_usage collector's record, or why it is missing."""
    if snap.plan_usage is not None:
        return dataclasses.asdict(snap.plan_usage)
    why = next((e.message for e in snap.errors if e.collector == "plan_usage"), "not collected")
    return {"error": f"plan usage could not be read: {why}"}


def _monitor(ctx: AppContext) -> MonitorState:
    monitor = ctx.monitor
    if monitor is None:
        raise HTTPException(status_code=503, detail="the monitor is not running")
    return monitor


@router.get(
    "/api/database/metrics",
    dependencies=[ServiceKey],
    summary="Full snapshot with the assessment's recommendations",
    description=(
        "Everything the collectors gathered (connections, database counters, statement "
        "differences, storage, maintenance, locks, replication, index advice, security lints), "
        "the latest assessment and its recommendations. Served from the sampler's latest "
        "snapshot; captured on demand when there is none yet."
    ),
    responses={200: {"model": MetricsDocument}},
    response_model=None,
)
async def metrics_json(ctx: Annotated[AppContext, Depends(get_context)]) -> Any:
    monitor = _monitor(ctx)
    await monitor.ensure_full(max_age=2 * ctx.settings.sample_interval)
    snap = monitor.latest
    assert snap is not None
    assessment = monitor.assessment
    body: dict[str, Any] = {
        "captured_at": snap.captured_at.isoformat(),
        "snapshot": snap.to_dict(),
        "metrics": snap.metrics(),
        "assessment": assessment.to_dict() if assessment is not None else None,
        "recommendations": (
            [r.to_dict() for r in assessment.recommendations] if assessment is not None else []
        ),
        "monitor": monitor.to_dict(),
        "plan_usage": _plan_usage(snap),
    }
    return body


@router.get(
    "/api/database/metrics/history",
    dependencies=[ServiceKey],
    summary="Time series of one metric, with growth rate and forecast",
    description=(
        "Snapshots stored in ops.metric_snapshots, bucketed to at most `points` values "
        "(mean, min, max per bucket). `database_size_bytes` comes with the size in 30 / 90 days "
        "and the days until WEDSYNC_DISK_BUDGET_GB; `connections_total` with the Saturday peak "
        "trend and the next Saturday's predicted peak; every metric with its linear trend."
    ),
)
async def metrics_history(
    ctx: Annotated[AppContext, Depends(get_context)],
    metric: Annotated[str, Query(description="e.g. database_size_bytes, connections_total")],
    since: Annotated[
        str, Query(description="7d, 24h, 90m, 2w or an ISO 8601 time (as the CLI)")
    ] = history.DEFAULT_SINCE,
    until: Annotated[str | None, Query(description="the same forms; default now")] = None,
    points: Annotated[int, Query(ge=2, le=5000)] = history.DEFAULT_MAX_POINTS,
) -> Any:
    if not history.METRIC_NAME.match(metric):
        return problem(422, "Invalid metric", f"{metric!r} is not a metric name")
    now = datetime.now(UTC)
    try:
        start = history.parse_moment(since, now)
        end = history.parse_moment(until, now) if until is not None else None
    except ValueError as exc:
        return problem(422, "Invalid time", str(exc))
    try:
        return await history.settings_series_report(
            ctx.database, ctx.settings, metric, (start, end), points, now
        )
    except history.UnknownMetric as exc:
        return problem(404, "Unknown metric", str(exc), known_metrics=exc.known)


@router.get(
    "/metrics",
    summary="Prometheus text format",
    description=(
        "`wedsync_db_*` families. Served from the cached snapshot; when it is older than "
        "WEDSYNC_METRICS_MAX_AGE seconds the cheap collectors are refreshed first (one refresh "
        "at a time, short statement timeout). Needs `Authorization: Bearer <token>` when "
        "WEDSYNC_METRICS_TOKEN is set."
    ),
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}}},
)
async def prometheus_metrics(request: Request) -> Response:
    ctx = context_of(request)
    token = ctx.settings.metrics_token
    if token is not None:
        sent = presented_key(request)
        if sent is None or not hmac.compare_digest(
            sent.encode(), token.get_secret_value().encode()
        ):
            return problem(
                401,
                "Unauthorized",
                "a valid scrape token is required (Authorization: Bearer <token>)",
                headers={"WWW-Authenticate": 'Bearer realm="wedsync-db metrics"'},
            )
    monitor = _monitor(ctx)
    await monitor.snapshot_for_scrape(ctx.settings.metrics_max_age)
    return Response(monitor.exporter.render(), media_type=CONTENT_TYPE, headers=_NO_STORE)
