"""The live change feed: what changed in a wedding (or in an organization's clients), as the
caller may see it, in commit order, from a cursor.

``async for change in db.changes(claims, wedding_id=..., after=...)`` — or, over HTTP,
``GET /api/v1/weddings/{id}/changes`` (SSE, or JSON with ``?after=N``). Each process reads the
outbox (migration 0011) with one hub per Database (see :mod:`wedsync_db.feed.hub`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from wedsync_db.db.client import Claims, Database
from wedsync_db.feed.hub import ChangeHub, Subscription, _sql
from wedsync_db.feed.model import Change, CursorAhead, CursorExpired, SubscriberTooSlow


def hub_for(db: Database) -> ChangeHub:
    """The Database's change hub (created on first use; closed with the Database)."""
    hub = db.feed_hub
    if hub is None:
        hub = db.feed_hub = ChangeHub(db, db.listen_dsn, poll_interval=db.feed_poll_interval)
    assert isinstance(hub, ChangeHub)
    return hub


def _stream(wedding_id: UUID | None, organization_id: UUID | None) -> UUID:
    if (wedding_id is None) == (organization_id is None):
        raise ValueError(
            "name exactly one of wedding_id (its guests, members, vendor links and "
            "the wedding itself) or organization_id (its clients)"
        )
    stream = wedding_id if wedding_id is not None else organization_id
    assert stream is not None
    return stream


async def subscribe(
    db: Database,
    claims: Claims | Mapping[str, Any],
    *,
    wedding_id: UUID | None = None,
    organization_id: UUID | None = None,
    after: int | None = None,
) -> Subscription:
    """A subscription to one stream from change ``after`` (None: from now); close it when done."""
    return await hub_for(db).subscribe(
        Claims.coerce(claims), _stream(wedding_id, organization_id), after
    )


async def changes(
    db: Database,
    claims: Claims | Mapping[str, Any],
    *,
    wedding_id: UUID | None = None,
    organization_id: UUID | None = None,
    after: int | None = None,
) -> AsyncIterator[Change]:
    """The changes ``claims`` may see, one by one, for as long as the caller iterates."""
    sub = await subscribe(
        db, claims, wedding_id=wedding_id, organization_id=organization_id, after=after
    )
    try:
        async for change in sub:
            yield change
    finally:
        await sub.close()


async def prune(db: Database, before: datetime) -> int:
    """Delete the changes recorded before ``before``; returns how many. The heads remember
    how far each stream was pruned, so older cursors are told to resync."""
    async with db.service(reason="change feed: prune") as s:
        return int(await s.fetch_val(_sql("prune"), (before,)) or 0)


__all__ = [
    "Change",
    "ChangeHub",
    "CursorAhead",
    "CursorExpired",
    "SubscriberTooSlow",
    "Subscription",
    "changes",
    "hub_for",
    "prune",
    "subscribe",
]
