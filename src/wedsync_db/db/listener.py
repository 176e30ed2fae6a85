"""One LISTEN connection per process: notifications become a wake-up call, nothing more.

The connection is a direct one (``DIRECT_DATABASE_URL`` when a transaction pooler sits in front:
a pooler in transaction mode cannot keep a LISTEN). Notifications can be lost (while the
connection is down, or never sent), so whoever is woken must also poll on its own clock; the
listener only makes that poll happen sooner. It reconnects with backoff for as long as it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.conninfo import make_conninfo

from wedsync_db.background import BackgroundTask
from wedsync_db.db.backoff import Backoff

log = logging.getLogger(__name__)


class Listener:
    """LISTEN on ``channel`` in the background and call ``wake`` for every notification (and
    after every reconnection, since notifications sent meanwhile were lost)."""

    def __init__(
        self,
        dsn: str,
        channel: str,
        wake: Callable[[], None],
        *,
        connect_timeout: float = 5.0,
        retry: Backoff | None = None,
    ) -> None:
        self._conninfo = make_conninfo(
            dsn,
            application_name="wedsync:feed-listener",
            connect_timeout=str(max(1, int(connect_timeout))),
        )
        self.channel = channel
        self._wake = wake
        self._retry = retry or Backoff(0.0, 0.5, cap=10.0)
        self._task = BackgroundTask(self._run, f"listen-{channel}")
        self._conn: AsyncConnection[Any] | None = None
        self.connected = asyncio.Event()
        self.notifications = 0
        # connections made so far (more than one: it reconnected)
        self.connections = 0
        self.last_error: str | None = None

    def start(self) -> None:
        """Start listening in the background (idempotent)."""
        self._task.start()

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        await self._task.stop()

    async def drop_connection(self) -> None:
        """Close the current connection as a network failure would (the listener reconnects);
        for fault tests."""
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self._listen_once()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: the connection is gone, so reconnect
                failures += 1
                self.last_error = str(exc).strip().splitlines()[0] if str(exc) else repr(exc)
                if failures == 1:
                    log.warning("change feed listener lost its connection: %s", self.last_error)
            finally:
                self.connected.clear()
                conn, self._conn = self._conn, None
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
            await asyncio.sleep(self._retry.delay(failures))

    async def _listen_once(self) -> None:
        conn = await AsyncConnection.connect(self._conninfo, autocommit=True)
        self._conn = conn
        await conn.execute(sql.SQL("listen {}").format(sql.Identifier(self.channel)))
        self.connections += 1
        self.connected.set()
        # what was sent while no connection listened is lost: let the reader poll now
        self._wake()
        async for _ in conn.notifies():
            self.notifications += 1
            self._wake()
        # notifies() ends only when the connection is closed
        raise psycopg.OperationalError("the listener connection was closed")
