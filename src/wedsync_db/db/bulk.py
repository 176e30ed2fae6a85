"""COPY FROM STDIN of text the caller produces chunk by chunk (bulk import's staging load)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from psycopg import sql

from wedsync_db.db.errors import awrap_errors
from wedsync_db.db.session import Session


async def copy_csv(
    session: Session,
    table: tuple[str, str],
    columns: Sequence[str],
    chunks: AsyncIterator[str],
    after_chunk: Callable[[], Awaitable[None] | None] | None = None,
) -> None:
    """COPY ``table`` (schema, name) ``columns`` FROM STDIN in CSV format, writing each chunk
    as it comes (memory holds one chunk); ``after_chunk`` runs after each one is sent."""
    statement = sql.SQL("copy {} ({}) from stdin (format csv)").format(
        sql.Identifier(*table), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )
    cur = session.connection.cursor()
    async with awrap_errors(session.pool), cur, cur.copy(statement) as copy:
        async for chunk in chunks:
            await copy.write(chunk)
            if after_chunk is not None:
                result = after_chunk()
                if result is not None:
                    await result
