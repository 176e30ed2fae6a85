"""A connection inside a scope, with typed fetch helpers; driver errors are converted here."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, LiteralString, TypeVar, cast

from psycopg import AsyncConnection, pq, sql
from psycopg.rows import class_row, dict_row

from wedsync_db.db.errors import awrap_errors

T = TypeVar("T")
QueryText = str | sql.Composable
Params = Sequence[Any] | Mapping[str, Any] | None


def _q(query: QueryText) -> sql.Composable | LiteralString:
    # Queries come from our own .sql files or psycopg.sql compositions, never from user input.
    if isinstance(query, sql.Composable):
        return query
    return cast(LiteralString, query)


def ident(*names: str) -> sql.Identifier:
    """A quoted (optionally qualified) identifier."""
    return sql.Identifier(*names)


def compose(template: str, **parts: sql.Composable) -> sql.Composed:
    """Fill ``{name}`` placeholders of a trusted template with identifiers or literals."""
    return sql.SQL(cast(LiteralString, template)).format(**parts)


def literal(value: Any) -> sql.Literal:
    """A value rendered as an SQL literal (for statements that cannot take parameters)."""
    return sql.Literal(value)


class Session:
    """A psycopg ``AsyncConnection`` inside a scope (``.connection``), plus typed helpers."""

    def __init__(self, connection: AsyncConnection[Any], pool: str) -> None:
        self.connection = connection
        self.pool = pool

    async def execute(self, query: QueryText, params: Params = None) -> int:
        """Run a statement; returns the affected row count."""
        async with awrap_errors(self.pool):
            cur = await self.connection.execute(_q(query), params)
            return cur.rowcount

    async def fetch_all(self, query: QueryText, params: Params = None, *, row: type[T]) -> list[T]:
        """All rows as instances of ``row`` (a dataclass or pydantic model)."""
        async with awrap_errors(self.pool):
            cur = self.connection.cursor(row_factory=class_row(row))
            await cur.execute(_q(query), params)
            return await cur.fetchall()

    async def fetch_one(
        self, query: QueryText, params: Params = None, *, row: type[T]
    ) -> T | None:
        """The first row as ``row``, or None."""
        async with awrap_errors(self.pool):
            cur = self.connection.cursor(row_factory=class_row(row))
            await cur.execute(_q(query), params)
            return await cur.fetchone()

    async def fetch_dicts(self, query: QueryText, params: Params = None) -> list[dict[str, Any]]:
        """All rows as dicts (for reports whose columns vary by server version)."""
        async with awrap_errors(self.pool):
            cur = self.connection.cursor(row_factory=dict_row)
            await cur.execute(_q(query), params)
            return await cur.fetchall()

    async def fetch_val(self, query: QueryText, params: Params = None) -> Any:
        """The first column of the first row, or None."""
        async with awrap_errors(self.pool):
            cur = await self.connection.execute(_q(query), params)
            found = await cur.fetchone()
            return found[0] if found else None

    async def copy_rows(
        self, table: Sequence[str], columns: Sequence[str], rows: Iterable[Sequence[Any]]
    ) -> int:
        """Bulk-load rows with COPY FROM STDIN; returns the number of rows sent."""
        stmt = sql.SQL("copy {} ({}) from stdin").format(
            sql.Identifier(*table), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        )
        count = 0
        async with awrap_errors(self.pool):
            async with self.connection.cursor().copy(stmt) as copy:
                for values in rows:
                    await copy.write_row(values)
                    count += 1
        return count

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """A transaction (a savepoint when one is already open); errors roll it back."""
        async with awrap_errors(self.pool):
            async with self.connection.transaction():
                yield

    savepoint = transaction

    @property
    def in_transaction(self) -> bool:
        """True while a transaction is open on this connection."""
        return self.connection.info.transaction_status != pq.TransactionStatus.IDLE

    @property
    def backend_pid(self) -> int:
        """The server process id of this connection."""
        return self.connection.info.backend_pid
