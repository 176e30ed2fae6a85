"""The change feed's reader: one per Database, shared by every subscriber of the process.

A subscriber watches one stream (a wedding, or an organization for its clients) from a cursor.
The hub wakes on a NOTIFY from the listener or every ``poll_interval`` seconds, whichever comes
first (a lost NOTIFY delays a change by at most one interval, never loses it), and then:

1. reads the heads of every watched stream (one service query);
2. for the streams that moved, computes the access key of each of their subscribers, as their
   own claims would now (one service query, ``feed.access_keys``), and groups the subscribers of
   a stream by key: equal keys see exactly the same changes;
3. per group, reads the new changes once, in the scope of one member (RLS on the outbox decides,
   and the statement also returns that member's key, so a key that changed in between is
   noticed), and hands every member the changes after its own cursor.

So the queries per wake grow with the streams that changed and the distinct kinds of access to
them, not with the subscribers. Access is evaluated at every read, which makes revocation take
effect from the next batch. A change is read only up to the head seen in step 1, which was read
before the keys: a change a member receives was committed before its key was computed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from wedsync_db.background import BackgroundTask
from wedsync_db.db.client import Claims, Database
from wedsync_db.db.listener import Listener
from wedsync_db.db.queries import statements
from wedsync_db.errors import WedsyncDBError
from wedsync_db.feed.model import Change, CursorExpired, SubscriberTooSlow, check_cursor

log = logging.getLogger(__name__)

CHANNEL = "wedsync_feed"
# changes read per group and batch; a longer backlog is read in several batches
BATCH_LIMIT = 1000
# group reads of one batch in flight at once (each holds a user pool connection)
READ_CONCURRENCY = 4
# changes waiting for a subscriber that does not read them; beyond, it must reconnect
MAX_PENDING = 10_000


_sql = statements("wedsync_db.feed", "sql/feed.sql")


@dataclass(eq=False)
class Subscription:
    """One subscriber's place in a stream; iterate it for its changes."""

    hub: ChangeHub
    claims: Claims
    stream: UUID
    cursor: int
    _pending: list[Change] = field(default_factory=list)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    _error: WedsyncDBError | None = None
    closed: bool = False

    def _deliver(self, changes: Iterable[Change], upto: int) -> int:
        n = 0
        for change in changes:
            if change.seq > self.cursor:
                self._pending.append(change)
                self.cursor = change.seq
                n += 1
        self.cursor = max(self.cursor, upto)
        if len(self._pending) > MAX_PENDING:
            self._fail(SubscriberTooSlow(MAX_PENDING))
        if n:
            self._ready.set()
        return n

    def _fail(self, error: WedsyncDBError) -> None:
        self._error = error
        self._ready.set()
        self.hub._drop(self)

    async def next_batch(self, timeout: float | None = None) -> list[Change]:
        """The changes received since the last call (waits up to ``timeout`` seconds for one;
        an empty list on expiry). Raises when the subscription failed (too slow, pruned)."""
        if not self._pending and self._error is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), timeout)
        self._ready.clear()
        if self._pending:
            batch, self._pending = self._pending, []
            return batch
        if self._error is not None:
            raise self._error
        return []

    async def __aiter__(self) -> AsyncIterator[Change]:
        while True:
            for change in await self.next_batch():
                yield change

    async def close(self) -> None:
        """Stop receiving."""
        self.closed = True
        self.hub._drop(self)


class ChangeHub:
    """Subscriptions, the listener and the polling loop of one Database."""

    def __init__(
        self,
        db: Database,
        listen_dsn: str,
        *,
        poll_interval: float = 1.0,
        min_interval: float = 0.05,
    ) -> None:
        self.db = db
        self.poll_interval = poll_interval
        # at most one batch per this many seconds: a burst of commits is read together
        self.min_interval = min_interval
        self._streams: dict[UUID, set[Subscription]] = defaultdict(set)
        self._wake = asyncio.Event()
        self.listener = Listener(listen_dsn, CHANNEL, self._wake.set)
        self._task = BackgroundTask(self._loop, "change-feed")
        self._poll_lock = asyncio.Lock()
        self.polls = 0
        self.queries = 0
        self.delivered = 0
        self.failures = 0
        self.last_error: str | None = None
        # seconds from a change's write to its hand-over, of the latest batch
        self.last_lag_seconds: float | None = None

    # --- subscriptions -------------------------------------------------------------------------
    @property
    def subscribers(self) -> int:
        """Subscriptions open."""
        return sum(len(subs) for subs in self._streams.values())

    async def subscribe(
        self, claims: Claims | dict[str, Any], stream: UUID, after: int | None = None
    ) -> Subscription:
        """Watch ``stream`` from change number ``after`` (None: from now). Raises CursorExpired
        when changes after ``after`` were pruned, CursorAhead when the stream has no such
        change yet."""
        c = Claims.coerce(claims)
        head, pruned = await _head(self.db, stream)
        self.queries += 1
        if after is None:
            after = head
        else:
            check_cursor(stream, after, head, pruned)
        sub = Subscription(self, c, stream, after)
        self._streams[stream].add(sub)
        self._start()
        if after < head:
            self._wake.set()
        return sub

    def _drop(self, sub: Subscription) -> None:
        subs = self._streams.get(sub.stream)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._streams[sub.stream]

    # --- the loop --------------------------------------------------------------------------------
    def _start(self) -> None:
        if not self._task.running:
            self.listener.start()
            self._task.start()

    async def close(self) -> None:
        """Stop the loop and the listener; open subscriptions receive nothing more."""
        await self._task.stop()
        await self.listener.stop()

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            self._wake.clear()
            try:
                more = await self.poll()
                self.last_error = None
            except WedsyncDBError as exc:
                self.failures += 1
                self.last_error = str(exc)
                log.warning("change feed poll failed: %s", exc)
                more = False
            except Exception:  # the loop must outlive any one batch
                self.failures += 1
                log.exception("change feed poll failed")
                more = False
            if more:
                self._wake.set()
            await asyncio.sleep(self.min_interval)

    async def poll(self) -> bool:
        """Read and hand out what is new; True when a group hit the batch limit (poll again)."""
        async with self._poll_lock:
            return await self._poll_locked()

    async def _poll_locked(self) -> bool:
        self.polls += 1
        if not self._streams:
            return False
        streams = list(self._streams)
        async with self.db.service(reason="change feed: heads") as s:
            rows = await s.fetch_tuples(_sql("heads"), (streams,))
        self.queries += 1
        heads = {r[0]: (int(r[1]), int(r[2])) for r in rows}
        due: dict[UUID, list[Subscription]] = {}
        for stream in streams:
            head, pruned = heads.get(stream, (0, 0))
            waiting = [sub for sub in list(self._streams.get(stream, ())) if sub.cursor < head]
            for sub in waiting:
                if sub.cursor < pruned:
                    sub._fail(CursorExpired(stream, sub.cursor, pruned))
            waiting = [sub for sub in waiting if not sub.closed and sub._error is None]
            if waiting:
                due[stream] = waiting
        if not due:
            return False
        pairs = {
            (stream, sub.claims.sub, sub.claims.aud) for stream, subs in due.items() for sub in subs
        }
        ordered = sorted(pairs, key=lambda p: (str(p[0]), str(p[1]), p[2]))
        async with self.db.service(reason="change feed: access") as s:
            key_rows = await s.fetch_tuples(
                _sql("access_keys"),
                ([p[0] for p in ordered], [p[1] for p in ordered], [p[2] for p in ordered]),
            )
        self.queries += 1
        keys = {(r[0], r[1], r[2]): r[3] or "" for r in key_rows}
        reads = []
        for stream, subs in due.items():
            head = heads[stream][0]
            groups: dict[str, list[Subscription]] = defaultdict(list)
            for sub in subs:
                groups[keys.get((stream, sub.claims.sub, sub.claims.aud), "")].append(sub)
            for key, members in groups.items():
                if key == "":
                    # nothing of this stream is theirs to see
                    for sub in members:
                        sub._deliver((), head)
                    continue
                reads.append(self._read_group(stream, key, members, head))
        # groups are independent (each subscriber is in one): read a few at a time
        gate = asyncio.Semaphore(READ_CONCURRENCY)

        async def gated(read: Awaitable[bool]) -> bool:
            async with gate:
                return await read

        return any(await asyncio.gather(*(gated(r) for r in reads)))

    async def _read_group(
        self, stream: UUID, key: str, members: list[Subscription], head: int
    ) -> bool:
        reader = members[0]
        after = min(sub.cursor for sub in members)
        async with self.db.as_user(reader.claims) as s:
            rows = await s.fetch_tuples(
                _sql("read_changes"),
                {"stream": stream, "after": after, "upto": head, "limit": BATCH_LIMIT},
            )
        self.queries += 1
        reader_key = rows[0][0] if rows else ""
        changes = [_change(stream, r) for r in rows if r[1] is not None]
        full = len(changes) >= BATCH_LIMIT
        upto = changes[-1].seq if full else head
        if reader_key != key:
            # the reader's access changed since the keys were computed: what it read is right
            # for it alone; the others are served by the next batch
            self._hand_over([reader], changes, upto)
            return True
        self._hand_over(members, changes, upto)
        return full

    def _hand_over(self, members: list[Subscription], changes: list[Change], upto: int) -> None:
        now = time.time()
        for sub in members:
            self.delivered += sub._deliver(changes, upto)
        if changes:
            self.last_lag_seconds = max(0.0, now - changes[-1].changed_at.timestamp())

    def stats(self) -> dict[str, Any]:
        """Counters of this process's feed (no I/O)."""
        return {
            "subscribers": self.subscribers,
            "streams": len(self._streams),
            "polls": self.polls,
            "queries": self.queries,
            "delivered": self.delivered,
            "failures": self.failures,
            "last_error": self.last_error,
            "last_lag_seconds": self.last_lag_seconds,
            "listener_connected": self.listener.connected.is_set(),
            "listener_connections": self.listener.connections,
            "notifications": self.listener.notifications,
        }


@dataclass(frozen=True)
class Page:
    """Changes after a cursor, and the cursor to continue from (``next_after``)."""

    changes: list[Change]
    next_after: int
    head: int


async def _head(db: Database, stream: UUID) -> tuple[int, int]:
    """A stream's head and how far it was pruned ((0, 0): nothing recorded yet)."""
    async with db.service(reason="change feed: cursor") as s:
        rows = await s.fetch_tuples(_sql("heads"), ([stream],))
    return (int(rows[0][1]), int(rows[0][2])) if rows else (0, 0)


async def read_page(
    db: Database, claims: Claims, stream: UUID, after: int | None, limit: int = BATCH_LIMIT
) -> Page:
    """One read for a poller: the changes after ``after`` (None: none, just the head) that
    ``claims`` may see, at most ``limit``. Raises CursorExpired / CursorAhead."""
    head, pruned = await _head(db, stream)
    if after is not None:
        check_cursor(stream, after, head, pruned)
    if after is None or after == head:
        return Page([], head, head)
    async with db.as_user(claims) as s:
        found = await s.fetch_tuples(
            _sql("read_changes"), {"stream": stream, "after": after, "upto": head, "limit": limit}
        )
    changes = [_change(stream, r) for r in found if r[1] is not None]
    next_after = changes[-1].seq if len(changes) >= limit else head
    return Page(changes, next_after, head)


def _change(stream: UUID, r: tuple[Any, ...]) -> Change:
    changed_at: datetime = r[9]
    return Change(
        stream=stream,
        seq=int(r[1]),
        entity=r[2],
        op=r[3],
        key=r[4],
        changed=tuple(r[5]) if r[5] is not None else None,
        wedding_id=r[6],
        organization_id=r[7],
        version=r[8],
        changed_at=changed_at,
    )
