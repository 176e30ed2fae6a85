"""Liveness, readiness and the health+json document."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from wedsync_db.api.auth import is_service_request, presented_key
from wedsync_db.api.context import AppContext, context_of, get_context
from wedsync_db.api.problems import problem
from wedsync_db.api.routes_ops import silenced_report
from wedsync_db.monitor import health as monitor_health
from wedsync_db.monitor.health import HealthDocument, http_status

router = APIRouter(prefix="/api/database/health", tags=["health"])
HEALTH_JSON = "application/health+json"
# Load balancers poll this endpoint hard; one rendering per second is plenty and keeps a
# thousand pollers from costing more than a constant response.
RENDER_TTL_SECONDS = 1.0
_NO_STORE = {"Cache-Control": "no-store"}
_CACHE_KEY = "health.rendered"


class HealthJSONResponse(JSONResponse):
    """An encoded health+json document."""

    media_type = HEALTH_JSON


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
        "service key: observed values, limits and the wedding readiness section; with any "
        "other key: 401."
    ),
    responses={
        200: {"model": HealthDocument},
        401: {"description": "A key was presented that is not the service key"},
        503: {"model": HealthDocument},
    },
    response_class=HealthJSONResponse,
)
async def health(request: Request) -> Response:
    ctx = context_of(request)
    full = is_service_request(request, ctx)
    if not full and presented_key(request) is not None:
        # a key was given but is not the service key: say so rather than answer the summary
        return problem(
            401,
            "Invalid service key",
            "the key presented is not the service key; send none for the public summary",
            headers={"WWW-Authenticate": 'Bearer realm="wedsync-db", error="invalid_token"'},
        )
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


def _render(ctx: AppContext, full: bool) -> tuple[bytes, int]:
    report = health_report(ctx, full)
    body = json.dumps(report, separators=(",", ":"), default=str).encode()
    return body, http_status(report["status"])


def health_report(ctx: AppContext, full: bool) -> dict[str, Any]:
    """The health+json document from cached data only (no queries on the request path)."""
    report = monitor_health.health_report(
        ctx.settings,
        ctx.database.heartbeat_snapshots(),
        ctx.monitor.assessment if ctx.monitor is not None else None,
        full=full,
        now=datetime.now(UTC),
        max_sample_age=3 * ctx.settings.sample_interval,
        heartbeat_stale_after=ctx.database.heartbeat_stale_after,
    )
    return silenced_report(ctx, report)
