"""`/api/database/migrate`: status, plan and freeze state; apply behind the CLI's checks."""

from __future__ import annotations

import copy
import socket
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from wedsync_db.api.auth import ServiceKey
from wedsync_db.api.context import AppContext, get_context
from wedsync_db.api.limits import read_body
from wedsync_db.api.problems import error_response
from wedsync_db.errors import WedsyncDBError
from wedsync_db.migrate.service import apply_migrations, plan_migrations

API_LOCK_WAIT = 5.0

router = APIRouter(prefix="/api/database/migrate", tags=["migrations"], dependencies=[ServiceKey])


class ApplyRequest(BaseModel):
    """Body of POST /api/database/migrate; unknown fields are refused (a typo such as
    ``dryrun`` must not apply migrations)."""

    model_config = ConfigDict(extra="forbid")

    dry_run: bool = False
    target: str | None = Field(default=None, pattern=r"^\d{1,10}$")
    override_freeze_reason: str | None = Field(default=None, max_length=2000)


@router.get("", summary="Migration status, pending plan, drift and the current freeze decision")
async def migrate_status(ctx: Annotated[AppContext, Depends(get_context)]) -> dict[str, Any]:
    status = await ctx.runner.status()
    plan = await plan_migrations(ctx.settings, ctx.runner)
    return {
        "status": status.to_dict(),
        "plan": plan.to_dict(),
        "freeze": plan.freeze.to_dict(),
    }


@router.post(
    "",
    summary="Apply pending migrations (or a dry run)",
    responses={
        401: {"description": "missing or invalid service key"},
        409: {"description": "another migration run holds the lock"},
        413: {"description": "request body too large"},
        422: {"description": "drift or lint refusal, or an invalid body (unknown fields too)"},
        423: {"description": "frozen by the wedding-aware freeze policy"},
    },
    # the body is read by the handler, after the service key was checked
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ApplyRequest.model_json_schema()}},
        }
    },
)
async def migrate_apply(request: Request, ctx: Annotated[AppContext, Depends(get_context)]) -> Any:
    body = await read_body(request, ApplyRequest)
    # an HTTP caller should hear about a held lock quickly rather than hold a request open
    runner = copy.copy(ctx.runner)
    runner.options = replace(
        ctx.runner.options,
        actor=f"api:service-key@{socket.gethostname()}",
        lock_wait=min(ctx.runner.options.lock_wait, API_LOCK_WAIT),
    )
    try:
        result = await apply_migrations(
            ctx.settings,
            runner,
            target=body.target,
            dry_run=body.dry_run,
            override_freeze_reason=body.override_freeze_reason,
            audit_details={"via": "api"},
        )
    except WedsyncDBError as exc:
        return error_response(exc)
    finally:
        ctx.invalidate_status()
    return JSONResponse(result.to_dict())
