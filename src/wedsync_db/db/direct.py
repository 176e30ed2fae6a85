"""Direct (non-pooled) connections, for migrations and session-level advisory locks."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from psycopg import AsyncConnection
from psycopg.conninfo import make_conninfo

from wedsync_db.db.errors import awrap_errors
from wedsync_db.db.session import Session


@contextlib.asynccontextmanager
async def connect(
    dsn: str, *, application_name: str = "wedsync:ops", connect_timeout: float = 10.0
) -> AsyncIterator[Session]:
    """An autocommit connection; use ``session.transaction()`` for explicit transactions."""
    async with awrap_errors("direct"):
        conn: AsyncConnection[Any] = await AsyncConnection.connect(
            make_conninfo(
                dsn,
                application_name=application_name,
                connect_timeout=str(max(1, int(connect_timeout))),
            ),
            autocommit=True,
        )
    try:
        yield Session(conn, "direct")
    finally:
        await conn.close()
