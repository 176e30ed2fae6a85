"""Liveness, readiness and the health+json summary."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from wedsync_db import __version__
from wedsync_db.api.auth import is_service_request
from wedsync_db.api.context import AppContext, get_context
from wedsync_db.api.problems import problem
from wedsync_db.monitor.health import health_document, heartbeat_checks

router = APIRouter(prefix="/api/database/health", tags=["health"])
HEALTH_JSON = "application/health+json"


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
    responses={200: {"content": {HEALTH_JSON: {}}}, 503: {"content": {HEALTH_JSON: {}}}},
)
async def health(
    request: Request, ctx: Annotated[AppContext, Depends(get_context)]
) -> JSONResponse:
    full = is_service_request(request, ctx)
    report = health_report(ctx, full)
    code = 503 if report["status"] == "fail" else 200
    return JSONResponse(
        report, status_code=code, media_type=HEALTH_JSON, headers={"Cache-Control": "no-store"}
    )


def health_report(ctx: AppContext, full: bool) -> dict[str, Any]:
    """The health+json document from cached data only (no queries on the request path)."""
    checks = heartbeat_checks(ctx.database.heartbeat_snapshots(), datetime.now(UTC))
    return health_document(checks, version=__version__, full=full)
