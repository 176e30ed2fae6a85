"""A connection inside a scope, with typed fetch helpers; driver errors are converted here.

A scope's settings (role, signed claims, application_name) never cost a round trip of their
own, and never appear in query text (they are bound parameters):

* Scoped connections start their transactions with ``BEGIN …`` and the scope's first statement
  in one pipelined round trip instead of a bare BEGIN. The BEGIN spells out the isolation level
  and READ WRITE, so no session default left by an earlier scope decides them.
* In a user scope, a statement run through the helpers while no transaction is open is first
  tried in *one* pipelined round trip, in autocommit mode: the first statement (which also sets
  ``transaction_read_only``) then the (prepared) statement, then a single Sync — one implicit
  transaction and no COMMIT. Under READ COMMITTED every statement takes a fresh snapshot
  anyway, so a read committed on its own cannot be told apart from one inside the scope's
  transaction. A statement that tries to write fails with SQLSTATE 25006 before doing anything
  and is re-run inside a real transaction.

A user scope may run any SQL, so when another identity used the connection last, its first
statement is ``wedsync.begin_scope``, which undoes what that scope may have left in the session
(settings and role, LISTEN, cursors, advisory locks); scopes of the same identity share their
session as one user's would. Statements the driver prepares get unguessable names and, where the
database is hardened, user roles can neither list them nor create temporary objects; where they
can, every user scope starts with wedsync.begin_scope, never prepared, which then also refuses a
session holding statements made with SQL PREPARE or temporary objects (WS409). A refused
session, or one whose prepared statements were deallocated behind the driver's back (26000), is
cleaned with DISCARD ALL and the statement tried once more.
"""

from __future__ import annotations

import contextlib
import functools
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, LiteralString, TypeVar

import psycopg
from psycopg import (
    AsyncConnection,
    AsyncCursor,
    AsyncTransaction,
    IsolationLevel,
    adapt,
    generators,
    pq,
    sql,
)
from psycopg import errors as pgerr
from psycopg._preparing import Prepare, PrepareManager
from psycopg.abc import PQGen
from psycopg.rows import AsyncRowFactory, class_row, dict_row, tuple_row

from wedsync_db.db.errors import awrap_errors, convert
from wedsync_db.db.queries import statements
from wedsync_db.errors import DatabaseUnavailable, QueryError

T = TypeVar("T")
R = TypeVar("R")
RV = TypeVar("RV")
QueryText = str | sql.SQL | sql.Composed
Params = Sequence[Any] | Mapping[str, Any] | None

# A session left in a state no scope of ours creates (WS409, raised by wedsync.begin_scope and
# wedsync.assert_clean_session), or whose prepared statements vanished (26000: DEALLOCATE behind
# the driver's back): DISCARD ALL, then one more try.
RESETTABLE_STATES = frozenset({"WS409", "26000"})


def _q(query: QueryText) -> sql.SQL | sql.Composed | LiteralString:
    # Queries come from our own .sql files or psycopg.sql compositions, never from user input.
    if isinstance(query, sql.SQL | sql.Composed):
        return query
    return query


def ident(*names: str) -> sql.Identifier:
    """A quoted (optionally qualified) identifier."""
    return sql.Identifier(*names)


def joined(parts: Sequence[sql.Composable], separator: str = ", ") -> sql.Composed:
    """Identifiers (or literals) separated by ``separator``, for a ``{name}`` placeholder."""
    return sql.SQL(separator).join(parts)


def compose(template: str, **parts: sql.Composable) -> sql.Composed:
    """Fill ``{name}`` placeholders of a trusted template with identifiers or literals."""
    return sql.SQL(template).format(**parts)


_scope_sql = statements("wedsync_db.db", "sql/scopes.sql")


@functools.cache
def _numbered(query: str) -> bytes:
    """``%s`` placeholders as ``$1, $2…`` for statements sent through libpq directly."""
    counter = iter(range(1, 1000))
    return re.sub(r"%s", lambda _: f"${next(counter)}", query).encode()


@dataclass(frozen=True, slots=True)
class ScopeStart:
    """What a scope's first statement sets: role (None: the login's own), signed claims and
    application_name. ``guarded`` scopes (the user pool) start with wedsync.begin_scope, which
    first undoes what an earlier scope left in the session, whenever another identity used the
    connection last (or the login can make what only a check finds)."""

    guarded: bool
    role: str | None
    claims: str
    signature: str
    application_name: str
    # the statements and parameters, computed once (a user's cached ScopeStart serves every one
    # of their scopes)
    _plain: tuple[tuple[str, tuple[Any, ...]], ...] = field(init=False, repr=False, compare=False)
    _guard: tuple[tuple[str, tuple[Any, ...]], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        base = (self.role, self.claims, self.signature, self.application_name)
        plain = (
            (_scope_sql("begin_scope"), base),
            (_scope_sql("begin_read_scope"), base),
        )
        object.__setattr__(self, "_plain", plain)
        if self.guarded:
            guard = tuple(
                (_scope_sql(name), (*base, read_only))
                for name in ("begin_user_scope", "begin_user_scope_checked")
                for read_only in (False, True)
            )
            object.__setattr__(self, "_guard", guard)

    @property
    def identity(self) -> tuple[str | None, str]:
        """Who the scope acts as: scopes of the same identity share what they leave behind."""
        return (self.role, self.claims)

    def statement(
        self, conn: ScopedConnection, *, read_only: bool
    ) -> tuple[str, tuple[Any, ...], bool]:
        """The first statement on ``conn`` (``%s`` placeholders), its parameters, and whether it
        may be prepared (never where the login can list prepared statements)."""
        checked = conn.session_check
        if self.guarded and (checked or conn.last_identity != self.identity):
            query, params = self._guard[2 * checked + read_only]
            return query, params, not conn.prepared_visible
        query, params = self._plain[read_only]
        return query, params, True


class _UnguessableNames(PrepareManager):
    """psycopg's prepared-statement cache, naming statements at random instead of ``_pg3_N``
    (SQL in a scope that cannot guess a name cannot DEALLOCATE and re-PREPARE it)."""

    def get(self, query: Any, prepare: bool | None = None) -> tuple[Prepare, bytes]:
        prep, name = super().get(query, prepare)
        if prep is Prepare.SHOULD:
            name = b"_ws_" + secrets.token_hex(16).encode()
        return prep, name


def _fresh_prepare_manager(old: PrepareManager) -> PrepareManager:
    new = _UnguessableNames()
    new.prepare_threshold = old.prepare_threshold
    new.prepared_max = old.prepared_max
    return new


_READ_WORDS = ("select", "with", "values", "table", "show", "explain")


def _may_be_read(query: QueryText) -> bool:
    """A cheap guess that spares obvious writes the read-only attempt (never a correctness
    question: the server enforces read-only, a wrong guess costs one round trip)."""
    if not isinstance(query, str):
        return True
    return _starts_with_read_word(query)


@functools.lru_cache(maxsize=1024)
def _starts_with_read_word(query: str) -> bool:
    head = query.lstrip(" \t\r\n(").split(None, 1)
    return bool(head) and head[0].lower() in _READ_WORDS


class ScopedConnection(AsyncConnection[Any]):
    """An AsyncConnection whose transactions begin with the current scope's first statement."""

    scope_start: ScopeStart | None = None
    read_committed: bool = True
    # the server's default isolation, spelled out in every BEGIN: a session-level default
    # changed by an earlier scope must not decide the next scope's transaction
    default_isolation: bytes = b"READ COMMITTED"
    # whether this login can list its session's prepared statements, or create temporary
    # objects (not on a hardened database): if it can list them, the guarded first statement is
    # never prepared; if it can do either, that statement checks the session for them
    prepared_visible: bool = True
    temp_allowed: bool = True

    # the identity of the last scope that started on this connection (None: unknown, or the
    # session was discarded)
    last_identity: tuple[str | None, str] | None = None

    @property
    def session_check(self) -> bool:
        """Whether a user scope's first statement must check the session (see above)."""
        return self.prepared_visible or self.temp_allowed

    # set when the session could not be cleaned: the pool must not hand it out again
    discard: bool = False
    # the longest any operation waits for the server (None: no bound); on expiry the
    # connection's state is unknown, so it is closed
    op_timeout: float | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._prepared = _fresh_prepare_manager(self._prepared)

    async def wait(
        self, gen: PQGen[RV], interval: float | None = None, timeout: float | None = None
    ) -> RV:
        """psycopg's wait, bounded by ``op_timeout`` unless a tighter bound is given: a frozen
        server keeps a socket open and silent, and nothing else would end the wait."""
        bound = timeout if timeout is not None else self.op_timeout
        try:
            if interval is None:
                return await super().wait(gen, timeout=bound)
            return await super().wait(gen, interval=interval, timeout=bound)
        except pgerr._WaitTimeout as exc:
            self.discard = True
            with contextlib.suppress(Exception):
                await self.close()
            raise DatabaseUnavailable(
                f"the database gave no answer within {bound:g}s; the connection was closed"
                + (" (WEDSYNC_QUERY_TIMEOUT)" if timeout is None else "")
            ) from exc

    def _begin_command(self) -> bytes:
        level = (
            IsolationLevel(self.isolation_level).name.replace("_", " ").encode()
            if self.isolation_level is not None
            else self.default_isolation
        )
        parts = [b"BEGIN ISOLATION LEVEL", level, b"READ ONLY" if self.read_only else b"READ WRITE"]
        if self.deferrable is not None:
            parts.append(b"DEFERRABLE" if self.deferrable else b"NOT DEFERRABLE")
        return b" ".join(parts)

    def _start_query(self) -> PQGen[None]:
        # psycopg's hook that sends BEGIN before the first statement of a transaction; here it
        # sends BEGIN and the scope's first statement in one round trip
        start = self.scope_start
        if (
            start is None
            or self._autocommit
            or self.pgconn.transaction_status != pq.TransactionStatus.IDLE
        ):
            yield from super()._start_query()
            return
        query, params, _ = start.statement(self, read_only=False)
        command, values = _numbered(query), _text_params(params)
        if self._pipeline is not None:
            # inside the caller's pipeline: queue both, then sync
            yield from self._exec_command(self._begin_command())
            send = functools.partial(self.pgconn.send_query_params, command, values)
            self._pipeline.command_queue.append(send)
            self._pipeline.result_queue.append(None)
            yield from self._pipeline._sync_gen()
            self.last_identity = start.identity
            return
        self._check_connection_ok()
        error = yield from self._begin_pipelined(command, values)
        if error is not None and error.sqlstate in RESETTABLE_STATES:
            yield from self._discard_gen()
            error = yield from self._begin_pipelined(command, values)
        if error is not None:
            if error.sqlstate in RESETTABLE_STATES:
                self.discard = True
            raise error
        self.last_identity = start.identity

    def _begin_pipelined(
        self, command: bytes, values: list[bytes | None]
    ) -> PQGen[psycopg.Error | None]:
        """BEGIN and the first statement in one pipeline; the first error, rolled back."""
        pgconn = self.pgconn
        pgconn.enter_pipeline_mode()
        first_error: pq.abc.PGresult | None = None
        try:
            pgconn.send_query_params(self._begin_command(), None)
            pgconn.send_query_params(command, values)
            pgconn.pipeline_sync()
            yield from generators.send(pgconn)
            while True:
                result = yield from generators.fetch(pgconn)
                if result is None:
                    continue
                if result.status == pq.ExecStatus.PIPELINE_SYNC:
                    break
                if result.status == pq.ExecStatus.FATAL_ERROR and first_error is None:
                    first_error = result
        finally:
            _leave_pipeline_mode(pgconn)
        if first_error is None:
            return None
        if pgconn.transaction_status != pq.TransactionStatus.IDLE:
            yield from self._exec_command(b"ROLLBACK")
        return pgerr.error_from_result(first_error, encoding=pgconn._encoding)

    async def pipelined_read(
        self,
        cur: AsyncCursor[Any],
        first: tuple[str, tuple[Any, ...], bool],
        query: QueryText,
        params: Params,
    ) -> None:
        """The scope's first statement and ``query`` in one pipeline and one round trip; the
        query's result lands on ``cur``. Raises the first error (the implicit transaction is
        then rolled back and over)."""
        async with self.lock:
            await self.wait(self._pipelined_read_gen(cur, first, query, params))

    def _pipelined_read_gen(
        self,
        cur: AsyncCursor[Any],
        first: tuple[str, tuple[Any, ...], bool],
        query: QueryText,
        params: Params,
    ) -> PQGen[None]:
        # What psycopg's cursor does for one statement (convert, prepare per its cache, send,
        # validate the cache, set the results), for two statements and a single Sync, driving
        # libpq's pipeline mode directly: psycopg's Pipeline object costs more than the read.
        self._check_connection_ok()
        if cur.closed:
            raise pgerr.InterfaceError("the cursor is closed")
        cur._reset()
        cur._tx = adapt.Transformer(cur)
        first_query, first_params, first_prepare = first
        statements = (
            (cur._convert_query(_q(first_query), first_params), first_prepare),
            (cur._convert_query(_q(query), params), None),
        )
        fmt = cur.format
        pgconn = self.pgconn
        manager = self._prepared
        sent: list[tuple[Prepare, bytes, Any]] = []
        groups: list[list[pq.abc.PGresult]] = []
        pgconn.enter_pipeline_mode()
        try:
            for pgq, prepare in statements:
                prep, name = manager.get(pgq, prepare)
                if prep is Prepare.NO:
                    pgconn.send_query_params(
                        pgq.query,
                        pgq.params,
                        param_formats=pgq.formats,
                        param_types=pgq.types,
                        result_format=fmt,
                    )
                else:
                    if prep is Prepare.SHOULD:
                        pgconn.send_prepare(name, pgq.query, param_types=pgq.types)
                    pgconn.send_query_prepared(
                        name, pgq.params, param_formats=pgq.formats, result_format=fmt
                    )
                sent.append((prep, name, manager.maybe_add_to_cache(pgq, prep, name)))
            pgconn.pipeline_sync()
            yield from generators.send(pgconn)
            # one group of results per command (a prepare is a command of its own), each
            # ended by None, then the Sync
            current: list[pq.abc.PGresult] = []
            while True:
                result = yield from generators.fetch(pgconn)
                if result is None:
                    groups.append(current)
                    current = []
                elif result.status == pq.ExecStatus.PIPELINE_SYNC:
                    break
                else:
                    current.append(result)
        finally:
            _leave_pipeline_mode(pgconn)
        replies = iter(groups)
        executed: list[list[pq.abc.PGresult]] = []
        error: pq.abc.PGresult | None = None
        for prep, name, key in sent:
            if prep is Prepare.SHOULD:
                for result in next(replies, []):
                    if error is None and result.status == pq.ExecStatus.FATAL_ERROR:
                        error = result
            results = next(replies, [])
            if key is not None:
                manager.validate(key, prep, name, results)
            for result in results:
                if error is None and result.status == pq.ExecStatus.FATAL_ERROR:
                    error = result
            executed.append(results)
        if error is not None:
            raise pgerr.error_from_result(error, encoding=pgconn._encoding)
        cur._check_results(executed[-1])
        cur._set_results(executed[-1])
        yield from manager.maintain_gen(self)

    def _discard_gen(self) -> PQGen[None]:
        # everything a session can hold, prepared statements included; the driver's cache of
        # them starts again empty
        if self.pgconn.transaction_status != pq.TransactionStatus.IDLE:
            yield from self._exec_command(b"ROLLBACK")
        yield from self._exec_command(b"DISCARD ALL")
        self._prepared = _fresh_prepare_manager(self._prepared)
        self.last_identity = None

    async def discard_session_state(self) -> None:
        """DISCARD ALL (after rolling back whatever is open) and forget prepared statements."""
        async with self.lock:
            await self.wait(self._discard_gen())

    @contextlib.asynccontextmanager
    async def transaction(
        self, savepoint_name: str | None = None, force_rollback: bool = False
    ) -> AsyncIterator[AsyncTransaction]:
        """Inside a scope, open the scope's transaction first (with its settings), so that the
        block becomes a savepoint in it instead of a bare BEGIN without role or claims."""
        if (
            self.scope_start is not None
            and not self._autocommit
            and self.pgconn.transaction_status == pq.TransactionStatus.IDLE
        ):
            async with self.lock:
                await self.wait(self._start_query())
        async with super().transaction(savepoint_name, force_rollback) as tx:
            yield tx


def _leave_pipeline_mode(pgconn: Any) -> None:
    # a connection closed meanwhile (an abandoned wait) has no pipeline to leave
    try:
        pgconn.exit_pipeline_mode()
    except psycopg.OperationalError:
        if pgconn.status == pq.ConnStatus.OK:
            raise


# the server ended the session (administrator command, crash, shutdown) or the link broke
_LOST_STATES = frozenset({"57P01", "57P02", "57P03"})


def _connection_lost(exc: psycopg.Error, conn: AsyncConnection[Any]) -> bool:
    """Whether ``exc`` means the connection itself is gone (so a fresh one may succeed)."""
    state = exc.sqlstate or ""
    return (
        conn.closed
        or conn.pgconn.status == pq.ConnStatus.BAD
        or state in _LOST_STATES
        or state.startswith("08")
    )


def _text_params(params: Iterable[Any]) -> list[bytes | None]:
    """Parameters of the scope's first statement in text format (strings and booleans)."""
    out: list[bytes | None] = []
    for value in params:
        if value is None:
            out.append(None)
        elif isinstance(value, bool):
            out.append(b"t" if value else b"f")
        else:
            out.append(str(value).encode())
    return out


class Session:
    """A psycopg ``AsyncConnection`` inside a scope (``.connection``), plus typed helpers."""

    def __init__(
        self,
        connection: AsyncConnection[Any],
        pool: str,
        *,
        start: ScopeStart | None = None,
        fast_reads: bool = False,
        reconnect: Callable[[], Awaitable[AsyncConnection[Any]]] | None = None,
    ) -> None:
        self._conn = connection
        self.pool = pool
        self._start = start
        # gives a fresh connection in place of a lost one (the scope returns the lost one)
        self._reconnect = reconnect
        self._fast: ScopeStart | None = None
        if start is not None and isinstance(connection, ScopedConnection):
            connection.scope_start = start
            if fast_reads and connection.read_committed:
                self._fast = start

    @property
    def connection(self) -> AsyncConnection[Any]:
        """The psycopg connection; its next transaction starts with the scope's settings. After
        a read retried on a fresh connection this is the new one."""
        return self._conn

    def _adopt(self, connection: AsyncConnection[Any]) -> None:
        self._conn = connection
        if isinstance(connection, ScopedConnection):
            connection.scope_start = self._start

    async def close_scope(self, ok: bool) -> None:
        """Commit (``ok``) or roll back the scope's transaction, and forget its first statement."""
        conn = self._conn
        try:
            if conn.closed:
                return
            status = conn.info.transaction_status
            if status == pq.TransactionStatus.IDLE:
                return
            if ok and status == pq.TransactionStatus.INTRANS:
                try:
                    async with awrap_errors(self.pool):
                        await conn.commit()
                except DatabaseUnavailable as exc:
                    # the COMMIT may have reached the server: say so, the caller must check
                    raise DatabaseUnavailable(
                        f"{exc}; the COMMIT's outcome is unknown (it may have been applied)"
                    ) from exc
            else:
                with contextlib.suppress(Exception):
                    await conn.rollback()
        finally:
            if isinstance(conn, ScopedConnection):
                conn.scope_start = None

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
        except UnicodeEncodeError as exc:
            raise QueryError(f"a parameter holds text that is not valid Unicode: {exc}") from exc

    async def _try_fast_read(
        self, query: QueryText, params: Params, factory: AsyncRowFactory[R]
    ) -> AsyncCursor[R] | None:
        conn = self._conn
        assert isinstance(conn, ScopedConnection)
        try:
            return await self._fast_read_once(conn, query, params, factory)
        except psycopg.Error as exc:
            if _connection_lost(exc, conn) and self._reconnect is not None:
                # a read outside any transaction is safe to repeat: once, on a fresh connection
                conn = await self._reconnect()
                assert isinstance(conn, ScopedConnection)
                self._adopt(conn)
                return await self._fast_read_once(conn, query, params, factory)
            if exc.sqlstate not in RESETTABLE_STATES:
                raise
        # the session was left in a state no scope of ours creates: clean it and try again
        await conn.discard_session_state()
        try:
            return await self._fast_read_once(conn, query, params, factory)
        except psycopg.Error as exc:
            if exc.sqlstate in RESETTABLE_STATES:
                conn.discard = True
            raise

    async def _fast_read_once(
        self,
        conn: ScopedConnection,
        query: QueryText,
        params: Params,
        factory: AsyncRowFactory[R],
    ) -> AsyncCursor[R] | None:
        assert self._fast is not None
        cur = conn.cursor(row_factory=factory)
        try:
            first = self._fast.statement(conn, read_only=True)
            await conn.pipelined_read(cur, first, query, params)
        except (pgerr.ReadOnlySqlTransaction, pgerr.ActiveSqlTransaction):
            # it writes (or manages transactions): nothing happened, so run it in the scope
            conn.last_identity = self._fast.identity
            return None
        conn.last_identity = self._fast.identity
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
