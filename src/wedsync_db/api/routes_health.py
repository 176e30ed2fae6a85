"""Liveness, readiness and the health+json document."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request, Response

from wedsync_db import __version__
from wedsync_db.api.auth import is_service_request
from wedsync_db.api.context import AppContext, get_context
from wedsync_db.api.problems import problem
from wedsync_db.api.routes_ops import silenced_report
from wedsync_db.calendar import CalendarContext, FreezeConfig, calendar_context
from wedsync_db.errors import ConfigError
from wedsync_db.monitor.assess import Assessment
from wedsync_db.monitor.health import (
    HealthInputs,
    health_document,
    http_status,
    wedding_readiness,
)
from wedsync_db.monitor.thresholds import thresholds_for
from wedsync_db.settings import parse_months

router = APIRouter(prefix="/api/database/health", tags=["health"])
HEALTH_JSON = "application/health+json"
# Load balancers poll this endpoint hard; one rendering per second is plenty and keeps a
# thousand pollers from costing more than a constant response.
RENDER_TTL_SECONDS = 1.0
_NO_STORE = {"Cache-Control": "no-store"}
_CACHE_KEY = "health.rendered"


@router.get("/live", summary="Process is alive (never touches the database)")
async def live() -> dict[str, str]:
    return {"status": "pass"}


@router.get("/ready", summary="Database reachable and schema current")
async def ready(ctx: Annotated[AppContext, Depends(get_context)]) -> Any:
    problems = await ctx.readiness()
    if problems:
        return problem(
            503, "Not ready", "; ".join(problems), headers={"Retry-After": "5"}, reasons=problems
        )
    return {"status": "ready"}


@router.get(
    "",
    summary="Health summary (full report with the service key)",
    description=(
        "application/health+json built from the heartbeat cache and the latest monitoring "
        "sample; never queries the database. 200 for pass/warn, 503 for fail. With the "
        "service key: observed values, limits and the wedding readiness section."
    ),
    responses={200: {"content": {HEALTH_JSON: {}}}, 503: {"content": {HEALTH_JSON: {}}}},
)
async def health(request: Request) -> Response:
    ctx = get_context(request)
    full = is_service_request(request, ctx)
    cache: RenderedHealth = ctx.extras.get(_CACHE_KEY) or ctx.extras.setdefault(
        _CACHE_KEY, RenderedHealth(RENDER_TTL_SECONDS)
    )
    body, code = cache.get(full, lambda: _render(ctx, full))
    return Response(body, status_code=code, media_type=HEALTH_JSON, headers=_NO_STORE)


class RenderedHealth:
    """The encoded document per audience (public / service), reused for ``ttl`` seconds."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[bool, tuple[float, bytes, int]] = {}

    def get(self, full: bool, render: Callable[[], tuple[bytes, int]]) -> tuple[bytes, int]:
        """The cached rendering, or a fresh one when older than ``ttl``."""
        now = time.monotonic()
        entry = self._entries.get(full)
        if entry is not None and now - entry[0] < self.ttl:
            return entry[1], entry[2]
        body, code = render()
        self._entries[full] = (now, body, code)
        return body, code

    def clear(self) -> None:
        """Forget every rendering (after a new sample, for instance)."""
        self._entries.clear()


def _render(ctx: AppContext, full: bool) -> tuple[bytes, int]:
    report = health_report(ctx, full)
    body = json.dumps(report, separators=(",", ":"), default=str).encode()
    return body, http_status(report["status"])


def latest_sample(ctx: AppContext) -> tuple[Assessment | None, CalendarContext | None]:
    """The monitor's latest assessment and the calendar context it was taken in, if any."""
    assessment = ctx.monitor.assessment if ctx.monitor is not None else None
    if assessment is None:
        return None, None
    return assessment, assessment.context


def health_report(ctx: AppContext, full: bool) -> dict[str, Any]:
    """The health+json document from cached data only (no queries on the request path)."""
    settings = ctx.settings
    now = datetime.now(UTC)
    assessment, context = latest_sample(ctx)
    weddings_known = context is not None
    if context is None or context.local_date != _local_date(now, settings.timezone):
        # no sample yet (or it is from yesterday): the clock alone decides Saturday / season;
        # weddings are counted by the next sample
        context = calendar_context(now, settings.timezone, parse_months(settings.peak_months), 0)
        weddings_known = False
    budget = round(settings.disk_budget_gb * 2**30)
    thresholds = (
        assessment.thresholds
        if assessment is not None and assessment.thresholds.level == context.level
        else thresholds_for(context.level, disk_budget_bytes=budget, environment=settings.env)
    )
    inputs = HealthInputs(
        heartbeats=ctx.database.heartbeat_snapshots(),
        assessment=assessment,
        thresholds=thresholds,
        now=now,
        max_sample_age=3 * settings.sample_interval,
        heartbeat_stale_after=ctx.database.heartbeat_stale_after,
    )
    readiness: dict[str, Any] | None = None
    if full:
        try:
            freeze = FreezeConfig.from_settings(settings)
        except ConfigError as exc:
            readiness = {"context": context.level, "error": str(exc)}
        else:
            readiness = wedding_readiness(
                context, freeze, now, assessment, weddings_known=weddings_known
            )
    return silenced_report(
        ctx, health_document(inputs, version=__version__, full=full, readiness=readiness)
    )


def _local_date(now: datetime, timezone: str) -> date:
    return now.astimezone(ZoneInfo(timezone)).date()
