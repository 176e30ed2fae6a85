"""A connection inside a scope, with typed fetch helpers; driver errors are converted here.

A scope's settings (role, claims, application_name) never cost a round trip of their own:

* Scoped connections start their transactions with ``begin; select set_config(…, true) …`` in
  one simple-protocol message instead of a bare BEGIN.
* In a user scope, a statement run through the helpers while no transaction is open is first
  tried in *one* pipelined round trip, in autocommit mode: ``select set_config(…, true) …,
  set_config('transaction_read_only', 'on', true)`` then the (prepared) statement, then a
  single Sync — one implicit transaction and no COMMIT. Under READ COMMITTED every statement
  takes a fresh snapshot anyway, so a read committed on its own cannot be told apart from one
  inside the scope's transaction. A statement that tries to write fails with SQLSTATE 25006
  before doing anything and is re-run inside a real transaction.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, LiteralString, TypeVar

import psycopg
from psycopg import AsyncConnection, AsyncCursor, AsyncTransaction, generators, pq, sql
from psycopg import errors as pgerr
from psycopg.abc import PQGen
from psycopg.rows import AsyncRowFactory, class_row, dict_row, tuple_row

from wedsync_db.db.errors import awrap_errors, convert

T = TypeVar("T")
R = TypeVar("R")
QueryText = str | sql.SQL | sql.Composed
Params = Sequence[Any] | Mapping[str, Any] | None


def _q(query: QueryText) -> sql.SQL | sql.Composed | LiteralString:
    # Queries come from our own .sql files or psycopg.sql compositions, never from user input.
    if isinstance(query, sql.SQL | sql.Composed):
        return query
    return query


def ident(*names: str) -> sql.Identifier:
    """A quoted (optionally qualified) identifier."""
    return sql.Identifier(*names)


def compose(template: str, **parts: sql.Composable) -> sql.Composed:
    """Fill ``{name}`` placeholders of a trusted template with identifiers or literals."""
    return sql.SQL(template).format(**parts)


def scope_settings(settings: Mapping[str, str]) -> sql.Composed:
    """``select set_config(k, v, true), …`` with literal values (for the BEGIN message)."""
    calls = [
        sql.SQL("set_config({}, {}, true)").format(sql.Literal(k), sql.Literal(v))
        for k, v in settings.items()
    ]
    return sql.SQL("select ") + sql.SQL(", ").join(calls)


@functools.cache
def _fast_settings_statement(keys: tuple[str, ...]) -> bytes:
    # same text for every user of a scope type, so the server keeps it prepared; keys are our
    # own constant setting names, never input
    calls = [f"set_config('{k}', %s, true)" for k in keys]
    calls.append("set_config('transaction_read_only', 'on', true)")
    return ("select " + ", ".join(calls)).encode()


_READ_WORDS = ("select", "with", "values", "table", "show", "explain")


def _may_be_read(query: QueryText) -> bool:
    """A cheap guess that spares obvious writes the read-only attempt (never a correctness
    question: the server enforces read-only, a wrong guess costs one round trip)."""
    if not isinstance(query, str):
        return True
    head = query.lstrip(" \t\r\n(").split(None, 1)
    return bool(head) and head[0].lower() in _READ_WORDS


class ScopedConnection(AsyncConnection[Any]):
    """An AsyncConnection whose transactions begin with the current scope's settings."""

    scope_settings: Mapping[str, str] | None = None
    read_committed: bool = True
    # set while a one-round-trip read is in flight: its statements share an implicit
    # transaction that ends at the pipeline's Sync, so no BEGIN may be sent
    implicit_transaction: bool = False

    def _start_query(self) -> PQGen[None]:
        # psycopg's hook that sends BEGIN before the first statement of a transaction; here it
        # sends "begin; select set_config(…)" instead, in one message
        if self.implicit_transaction:
            return
        if (
            self.scope_settings is None
            or self._autocommit
            or self.pgconn.transaction_status != pq.TransactionStatus.IDLE
        ):
            yield from super()._start_query()
            return
        settings = scope_settings(self.scope_settings).as_bytes(self)
        if self._pipeline is not None:
            # pipeline mode takes one statement per command: queue both, then sync
            yield from self._exec_command(b"BEGIN")
            yield from self._exec_command(settings)
            yield from self._pipeline._sync_gen()
            return
        self._check_connection_ok()
        self.pgconn.send_query(b"begin; " + settings)
        results = yield from generators.execute(self.pgconn)
        for result in results:
            if result.status == pq.ExecStatus.FATAL_ERROR:
                raise pgerr.error_from_result(result, encoding=self.pgconn._encoding)

    @contextlib.asynccontextmanager
    async def transaction(
        self, savepoint_name: str | None = None, force_rollback: bool = False
    ) -> AsyncIterator[AsyncTransaction]:
        """Inside a scope, open the scope's transaction first (with its settings), so that the
        block becomes a savepoint in it instead of a bare BEGIN without role or claims."""
        if (
            self.scope_settings is not None
            and not self._autocommit
            and self.pgconn.transaction_status == pq.TransactionStatus.IDLE
        ):
            async with self.lock:
                await self.wait(self._start_query())
        async with super().transaction(savepoint_name, force_rollback) as tx:
            yield tx


class Session:
    """A psycopg ``AsyncConnection`` inside a scope (``.connection``), plus typed helpers."""

    def __init__(
        self,
        connection: AsyncConnection[Any],
        pool: str,
        *,
        settings: Mapping[str, str] | None = None,
        fast_reads: bool = False,
    ) -> None:
        self._conn = connection
        self.pool = pool
        self._fast: tuple[bytes, tuple[str, ...]] | None = None
        if settings and isinstance(connection, ScopedConnection):
            connection.scope_settings = settings
            if fast_reads and connection.read_committed:
                self._fast = (_fast_settings_statement(tuple(settings)), tuple(settings.values()))

    @property
    def connection(self) -> AsyncConnection[Any]:
        """The psycopg connection; its next transaction starts with the scope's settings."""
        return self._conn

    async def close_scope(self, ok: bool) -> None:
        """Commit (``ok``) or roll back the scope's transaction, and forget its settings."""
        conn = self._conn
        try:
            if conn.closed:
                return
            status = conn.info.transaction_status
            if status == pq.TransactionStatus.IDLE:
                return
            if ok and status == pq.TransactionStatus.INTRANS:
                async with awrap_errors(self.pool):
                    await conn.commit()
            else:
                with contextlib.suppress(Exception):
                    await conn.rollback()
        finally:
            if isinstance(conn, ScopedConnection):
                conn.scope_settings = None

    # --- running statements ---------------------------------------------------------------------
    async def _cursor(
        self, query: QueryText, params: Params, factory: AsyncRowFactory[R]
    ) -> AsyncCursor[R]:
        try:
            if (
                self._fast is not None
                and self._conn.info.transaction_status == pq.TransactionStatus.IDLE
                and _may_be_read(query)
            ):
                cur = await self._try_fast_read(query, params, factory)
                if cur is not None:
                    return cur
            cur = self._conn.cursor(row_factory=factory)
            await cur.execute(_q(query), params)
            return cur
        except psycopg.Error as exc:
            raise convert(exc, pool=self.pool) from exc

    async def _try_fast_read(
        self, query: QueryText, params: Params, factory: AsyncRowFactory[R]
    ) -> AsyncCursor[R] | None:
        assert self._fast is not None
        statement, values = self._fast
        conn = self._conn
        assert isinstance(conn, ScopedConnection)
        cur = conn.cursor(row_factory=factory)
        conn.implicit_transaction = True
        try:
            # leave the pipeline before fetching: its exit is the one Sync of this round trip
            async with conn.pipeline():
                await conn.execute(statement, values)
                await cur.execute(_q(query), params)
        except (pgerr.ReadOnlySqlTransaction, pgerr.ActiveSqlTransaction):
            # it writes (or manages transactions): nothing happened, so run it in the scope
            return None
        finally:
            conn.implicit_transaction = False
        return cur

    async def _fetch(self, cur: AsyncCursor[R], one: bool = False) -> list[R]:
        try:
            if one:
                row = await cur.fetchone()
                return [] if row is None else [row]
            return await cur.fetchall()
        except psycopg.Error as exc:
            raise convert(exc, pool=self.pool) from exc

    async def execute(self, query: QueryText, params: Params = None) -> int:
        """Run a statement; returns the affected row count."""
        cur = await self._cursor(query, params, tuple_row)
        return cur.rowcount

    async def fetch_all(self, query: QueryText, params: Params = None, *, row: type[T]) -> list[T]:
        """All rows as instances of ``row`` (a dataclass or pydantic model)."""
        return await self._fetch(await self._cursor(query, params, class_row(row)))

    async def fetch_one(self, query: QueryText, params: Params = None, *, row: type[T]) -> T | None:
        """The first row as ``row``, or None."""
        rows = await self._fetch(await self._cursor(query, params, class_row(row)), one=True)
        return rows[0] if rows else None

    async def fetch_tuples(self, query: QueryText, params: Params = None) -> list[tuple[Any, ...]]:
        """All rows as tuples."""
        return await self._fetch(await self._cursor(query, params, tuple_row))

    async def fetch_dicts(self, query: QueryText, params: Params = None) -> list[dict[str, Any]]:
        """All rows as dicts (for reports whose columns vary by server version)."""
        return await self._fetch(await self._cursor(query, params, dict_row))

    async def fetch_val(self, query: QueryText, params: Params = None) -> Any:
        """The first column of the first row, or None."""
        rows = await self._fetch(await self._cursor(query, params, tuple_row), one=True)
        return rows[0][0] if rows else None

    async def copy_rows(
        self, table: str | Sequence[str], columns: Sequence[str], rows: Iterable[Sequence[Any]]
    ) -> int:
        """Bulk-load rows with COPY FROM STDIN; ``table`` is a name or (schema, name)."""
        names = (table,) if isinstance(table, str) else tuple(table)
        stmt = sql.SQL("copy {} ({}) from stdin").format(
            sql.Identifier(*names), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        )
        count = 0
        async with awrap_errors(self.pool), self._conn.cursor().copy(stmt) as copy:
            for values in rows:
                await copy.write_row(values)
                count += 1
        return count

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """A transaction (a savepoint when one is already open); errors roll it back."""
        async with awrap_errors(self.pool), self._conn.transaction():
            yield

    savepoint = transaction

    @property
    def in_transaction(self) -> bool:
        """True while a transaction is open on this connection."""
        return self._conn.info.transaction_status != pq.TransactionStatus.IDLE

    @property
    def backend_pid(self) -> int:
        """The server process id of this connection."""
        return self._conn.info.backend_pid
