"""Operator actions: cancel / terminate a backend, EXPLAIN a tracked statement, check silences
(service key; every action needs a reason and is recorded in ops.operator_actions)."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from wedsync_db.api.auth import ServiceKey
from wedsync_db.api.context import AppContext, get_context
from wedsync_db.api.limits import read_body
from wedsync_db.api.problems import error_response, problem
from wedsync_db.errors import WedsyncDBError
from wedsync_db.ops import actions
from wedsync_db.ops.silences import InvalidSilence, parse_duration

router = APIRouter(prefix="/api/database", tags=["operations"], dependencies=[ServiceKey])
_BOOK_KEY = "ops.silences"


class ActionRequest(BaseModel):
    """Why the action is taken (required, recorded) and, optionally, who takes it."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)
    actor: str | None = Field(default=None, min_length=1, max_length=200)


class SilenceRequest(ActionRequest):
    """How long the check stays silenced (``30m``, ``2h``, ``3d``) and why."""

    duration: str = Field(alias="for", min_length=1, max_length=20)


class ExplainRequest(BaseModel):
    """EXPLAIN options: ANALYZE (runs the statement, rolled back) and parameter values."""

    model_config = ConfigDict(extra="forbid")

    analyze: bool = False
    params: list[str] | None = Field(default=None, max_length=100)
    format: Literal["text", "json"] = "text"


def silence_book(ctx: AppContext) -> actions.SilenceBook:
    """The app's in-memory silences (created on first use)."""
    book = ctx.extras.get(_BOOK_KEY)
    if not isinstance(book, actions.SilenceBook):
        book = ctx.extras[_BOOK_KEY] = actions.SilenceBook(lambda: ctx.runner.dsn, ctx.database)
    return book


def silenced_report(ctx: AppContext, doc: dict[str, Any]) -> dict[str, Any]:
    """The health document with the active silences applied (read in the background)."""
    return silence_book(ctx).apply(doc)


def _actor(body: ActionRequest) -> str:
    return body.actor.strip() if body.actor else f"api:service-key@{socket.gethostname()}"


def _error(exc: WedsyncDBError) -> JSONResponse:
    if isinstance(exc, actions.BackendNotFound):
        return problem(404, "Not found", str(exc))
    if isinstance(exc, actions.ActionRefused):
        return problem(409, "Refused", str(exc))
    if isinstance(exc, InvalidSilence):
        return problem(422, "Invalid request", str(exc))
    return error_response(exc)


async def _answer(work: Callable[[], Awaitable[Any]]) -> Any:
    """The action's result as JSON, or the problem for the error it raised."""
    try:
        result = await work()
    except WedsyncDBError as exc:
        return _error(exc)
    return result.to_dict()


_SIGNAL_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or invalid service key"},
    404: {"description": "no backend with this pid"},
    409: {"description": "the tool's own connection, a server process or another database"},
    422: {"description": "missing or blank reason, or an invalid body"},
}


@router.post(
    "/backends/{pid}/{action}",
    summary="Cancel the running statement of a backend, or terminate its session (reason "
    "required, audited)",
    responses=_SIGNAL_RESPONSES,
)
async def signal_backend(
    pid: int,
    action: actions.SignalAction,
    request: Request,
    ctx: Annotated[AppContext, Depends(get_context)],
) -> Any:
    body = await read_body(request, ActionRequest)
    return await _answer(
        lambda: actions.signal_backend(
            ctx.database, pid, action, reason=body.reason, actor=_actor(body)
        )
    )


@router.get("/actions", summary="The newest operator actions (audit), newest first")
async def list_actions(
    ctx: Annotated[AppContext, Depends(get_context)], limit: int = 50
) -> dict[str, Any]:
    return {"actions": await actions.recent_actions(ctx.database, max(1, min(limit, 1000)))}


_EXPLAIN_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "no statement with this queryid"},
    409: {"description": "not explainable as asked (parameters needed, no pg_stat_statements)"},
}


@router.post(
    "/queries/{queryid}/explain",
    summary="EXPLAIN a statement of pg_stat_statements (ANALYZE only when asked, rolled back)",
    responses=_EXPLAIN_RESPONSES,
)
async def explain_query(
    queryid: int, request: Request, ctx: Annotated[AppContext, Depends(get_context)]
) -> Any:
    body = await read_body(request, ExplainRequest)
    return await _answer(
        lambda: actions.explain_statement(
            ctx.database,
            queryid,
            analyze=body.analyze,
            params=body.params,
            json_format=body.format == "json",
        )
    )


@router.get("/silences", summary="Checks silenced now, with who, why and until when")
async def list_silences(ctx: Annotated[AppContext, Depends(get_context)]) -> dict[str, Any]:
    return {"silences": [s.to_dict() for s in await actions.active_silences(ctx.database)]}


@router.put(
    "/silences/{check_id}",
    summary="Silence a check for a while: it stays visible but no longer drives the status",
    responses={422: {"description": "bad check id, duration or missing reason"}},
)
async def put_silence(
    check_id: str, request: Request, ctx: Annotated[AppContext, Depends(get_context)]
) -> Any:
    body = await read_body(request, SilenceRequest)
    answer = await _answer(
        lambda: actions.silence_check(
            ctx.database,
            check_id,
            parse_duration(body.duration),
            reason=body.reason,
            actor=_actor(body),
        )
    )
    await silence_book(ctx).refresh()
    return answer


@router.delete("/silences/{check_id}", summary="Lift the silence of a check")
async def delete_silence(check_id: str, ctx: Annotated[AppContext, Depends(get_context)]) -> Any:
    lifted = await actions.unsilence_check(
        ctx.database, check_id, actor=f"api:service-key@{socket.gethostname()}"
    )
    await silence_book(ctx).refresh()
    if lifted is None:
        return problem(404, "Not found", f"{check_id} is not silenced")
    return {"lifted": lifted.to_dict()}
