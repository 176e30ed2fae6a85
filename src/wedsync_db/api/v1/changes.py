"""A wedding's live changes: Server-Sent Events, or JSON pages for pollers.

``GET /api/v1/weddings/{id}/changes`` with ``Accept: text/event-stream`` streams every change
the user may see as an event whose ``id:`` is the change id; a reconnecting client sends
``Last-Event-ID`` (browsers do) and gets exactly the changes after it. Without that Accept it
answers one JSON page (``?after=N``; no ``after``: none, and the cursor to start from). A cursor
older than the retention is 410 with a resync hint: reload the rows, then follow from ``head``.
A stream ends with a ``reauthenticate`` event when the token it was opened with expires: the
client reconnects with a fresh token and ``Last-Event-ID``, and misses nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel

from wedsync_db.api.problems import problem
from wedsync_db.api.v1.deps import Context, TokenExpiry, UserClaims
from wedsync_db.data import weddings
from wedsync_db.feed import CursorAhead, CursorExpired, SubscriberTooSlow, hub_for
from wedsync_db.feed.hub import read_page

router = APIRouter(tags=["changes"])

EVENT_STREAM = "text/event-stream"
EXPIRED = (
    "the access token has expired: reconnect with a fresh token and Last-Event-ID to go on "
    "from the last change received"
)


class ChangeItem(BaseModel):
    """One change: what happened to which row; read the row itself through the data API."""

    id: int
    entity: str
    op: str
    key: dict[str, Any]
    changed: list[str] | None
    wedding_id: str | None
    organization_id: str | None
    version: int | None
    changed_at: str


class ChangePage(BaseModel):
    """Changes after the cursor; pass ``next_after`` as ``after`` next time."""

    changes: list[ChangeItem]
    next_after: int
    head: int


def _cursor(value: str | None, name: str) -> int | None:
    if value is None or value.strip() == "":
        return None
    text = value.strip()
    if not text.isdigit() or len(text) > 18:
        raise _BadCursor(
            f"{name} must be a change id this feed gave (a whole number), not {text!r}"
        )
    return int(text)


class _BadCursor(ValueError):
    pass


def _gone(exc: CursorExpired, wedding_id: UUID) -> JSONResponse:
    return problem(
        410,
        "Cursor older than the feed's retention",
        str(exc),
        resync={
            "reload": f"/api/v1/weddings/{wedding_id}",
            "then": f"/api/v1/weddings/{wedding_id}/changes",
        },
        pruned_through=exc.pruned_through,
    )


@router.get(
    "/weddings/{wedding_id}/changes",
    summary="A wedding's changes: SSE (Accept: text/event-stream) or a JSON page",
    response_model=ChangePage,
    responses={
        200: {"content": {EVENT_STREAM: {}}, "description": "events, or one JSON page"},
        410: {"description": "the cursor is older than the retention: reload, then follow"},
    },
)
async def wedding_changes(
    request: Request,
    ctx: Context,
    claims: UserClaims,
    expires: TokenExpiry,
    wedding_id: UUID,
    after: Annotated[str | None, Query(description="Changes after this change id")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Changes per JSON page")] = 500,
    last_event_id: Annotated[str | None, Header(description="SSE reconnection cursor")] = None,
) -> Response:
    db = ctx.database
    # a wedding the user cannot see is 404, as everywhere in the data API
    await weddings.get_wedding(db, claims, (wedding_id,))
    streaming = EVENT_STREAM in request.headers.get("accept", "")
    try:
        cursor = _cursor(last_event_id, "Last-Event-ID") if streaming else None
        if cursor is None:
            cursor = _cursor(after, "after")
    except _BadCursor as exc:
        return problem(400, "Invalid cursor", str(exc))
    try:
        if not streaming:
            page = await read_page(db, claims, wedding_id, cursor, limit)
            body = {
                "changes": [c.to_dict() for c in page.changes],
                "next_after": page.next_after,
                "head": page.head,
            }
            return Response(json.dumps(body), media_type="application/json")
        sub = await hub_for(db).subscribe(claims, wedding_id, cursor)
    except CursorExpired as exc:
        return _gone(exc, wedding_id)
    except CursorAhead as exc:
        return problem(400, "Invalid cursor", str(exc))

    heartbeat = ctx.settings.feed_heartbeat_interval

    async def events() -> AsyncIterator[bytes]:
        try:
            # the cursor the stream starts from, so a client that saw nothing can resume too
            yield f"retry: 1000\nid: {sub.cursor}\nevent: ready\ndata: {{}}\n\n".encode()
            while True:
                left = heartbeat if expires is None else expires - time.time()
                if left <= 0:
                    # no changes for a token that is no longer valid
                    yield _event("reauthenticate", None, json.dumps({"detail": EXPIRED}))
                    return
                try:
                    batch = await sub.next_batch(timeout=min(heartbeat, left))
                except CursorExpired as exc:
                    yield _event("resync", None, json.dumps({"detail": str(exc)}))
                    return
                except SubscriberTooSlow as exc:
                    yield _event("reconnect", None, json.dumps({"detail": str(exc)}))
                    return
                if not batch:
                    yield b": heartbeat\n\n"
                    continue
                yield b"".join(_event("change", c.seq, c.to_json()) for c in batch)
        finally:
            await sub.close()

    return StreamingResponse(
        events(),
        media_type=EVENT_STREAM,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _event(kind: str, event_id: int | None, data: str) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {data}\n\n".encode()
