"""The dual client against a real server: scopes, roles, round trips, pools, heartbeat, errors."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import re
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import errors as pgerr

from conftest import make_database
from fixtures.environment import unreachable_dsn
from fixtures.tenants import Tenants, build_tenants, couple, new_id, service_rows, vendor
from wedsync_db.db.client import Claims, Database
from wedsync_db.db.session import Session
from wedsync_db.errors import (
    Conflict,
    DatabaseUnavailable,
    InvalidClaims,
    LockTimeout,
    PermissionDenied,
    PoolExhausted,
    QueryError,
    StatementTimeout,
)
from wedsync_db.runtime import database_for
from wedsync_db.settings import Settings

SECRET = "s3cret"


@pytest.fixture
async def t(shared_database: Database) -> Tenants:
    return await build_tenants(shared_database)


@pytest.fixture
async def observer(shared_db: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A plain autocommit connection that watches the others from outside."""
    conn = await psycopg.AsyncConnection.connect(shared_db, autocommit=True)
    yield conn
    await conn.close()


async def application_name(observer: psycopg.AsyncConnection[Any], pid: int) -> str:
    cur = await observer.execute(
        "select application_name from pg_stat_activity where pid = %s", (pid,)
    )
    row = await cur.fetchone()
    assert row is not None
    return str(row[0])


# --- scopes: who the server thinks is connected ---------------------------------------------
async def test_application_name_shows_the_audience_while_a_scope_is_open(
    shared_database: Database, observer: psycopg.AsyncConnection[Any], t: Tenants
) -> None:
    for claims, expected in (
        (vendor(t.a_owner), "wedsync:vendor"),
        (couple(t.w1_partner), "wedsync:couple"),
    ):
        async with shared_database.as_user(claims) as s:
            # raw access opens the scoped transaction, which stays open until the scope ends
            await s.connection.execute("select 1")
            assert s.in_transaction
            assert await application_name(observer, s.backend_pid) == expected
            pid = s.backend_pid
        # back in the pool, the connection no longer claims to be anybody
        assert await application_name(observer, pid) == "wedsync:user-pool"

    async with shared_database.service(reason="test: application_name") as s:
        await s.execute("select 1")
        assert await application_name(observer, s.backend_pid) == "wedsync:service"


async def test_user_scopes_run_as_authenticated_with_the_claims(
    shared_database: Database, t: Tenants
) -> None:
    async with shared_database.as_user(vendor(t.a_owner)) as s:
        row = await s.fetch_tuples(
            "select current_user, wedsync.current_user_id(), wedsync.current_audience(),"
            " (wedsync.claims() ->> 'sub')::uuid"
        )
    assert row == [("authenticated", t.a_owner, "vendor", t.a_owner)]
    async with shared_database.service(reason="test: service role") as s:
        role, claims = (await s.fetch_tuples("select current_user, wedsync.claims()"))[0]
    assert role == "service_role"
    assert claims == {"role": "service_role", "reason": "test: service role"}


async def test_scope_settings_do_not_outlive_the_scope(shared_db: str, t: Tenants) -> None:
    # one connection, so the second scope certainly reuses the first one's connection
    db = make_database(shared_db, user_pool_size=1)
    await db.open()
    try:
        async with db.as_user(couple(t.w1_partner)) as s:
            await s.execute("select 1")
            first = s.backend_pid
        async with db.as_user(couple(t.w2_partner)) as s:
            assert s.backend_pid == first
            guests = {r[0] for r in await s.fetch_tuples("select id from guests")}
            sub = await s.fetch_val("select wedsync.current_user_id()")
        assert guests == set(t.guests[t.wedding_2])
        assert sub == t.w2_partner
        # outside any scope the pooled connection is the bare login: no role, no claims
        async with db._pools["user"].connection() as conn:
            cur = await conn.execute(
                "select current_user, current_setting('request.jwt.claims', true)"
            )
            assert await cur.fetchone() in (
                ("wedsync_authenticator", None),
                ("wedsync_authenticator", ""),
            )
            await conn.rollback()
    finally:
        await db.close()


@pytest.mark.parametrize(
    "statement",
    [
        "set role service_role",
        "set local role service_role",
        "select set_config('role', 'service_role', true)",
        "set session authorization postgres",
    ],
)
async def test_a_user_scope_cannot_become_service_role(
    shared_database: Database, t: Tenants, statement: str
) -> None:
    with pytest.raises(PermissionDenied):
        async with shared_database.as_user(vendor(t.a_owner)) as s:
            await s.execute(statement)
    # the same through the raw connection: converted when the scope ends, cause kept
    with pytest.raises(PermissionDenied) as info:
        async with shared_database.as_user(vendor(t.a_owner)) as s:
            await s.connection.execute(statement)
    assert isinstance(info.value.__cause__, pgerr.InsufficientPrivilege)


async def test_resetting_the_role_leaves_no_privileges(
    shared_database: Database, t: Tenants
) -> None:
    # the login role itself holds no table privileges, so escaping `authenticated` gains nothing
    with pytest.raises(PermissionDenied):
        async with shared_database.as_user(vendor(t.a_owner)) as s:
            await s.execute("reset role")
            await s.fetch_val("select count(*) from guests")


async def test_raw_connection_inside_a_user_scope_is_subject_to_rls(
    shared_database: Database, t: Tenants
) -> None:
    async with shared_database.as_user(couple(t.w1_partner)) as s:
        cur = await s.connection.execute("select id from guests")
        seen = {r[0] for r in await cur.fetchall()}
        cur = await s.connection.execute("select current_user")
        assert await cur.fetchone() == ("authenticated",)
    assert seen == set(t.guests[t.wedding_1])


async def test_service_requires_a_reason(shared_database: Database) -> None:
    with pytest.raises(ValueError, match="reason"):
        async with shared_database.service(reason="  "):
            pass


# --- claims ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("claims", "named"),
    [
        ({"aud": "vendor"}, "sub"),
        ({"sub": "not-a-uuid", "aud": "vendor"}, "sub"),
        ({"sub": "", "aud": "couple"}, "sub"),
        ({"sub": "6f1c5f5e-3c2a-4a53-9d0e-0f5b8d1e2a11"}, "aud"),
        ({"sub": "6f1c5f5e-3c2a-4a53-9d0e-0f5b8d1e2a11", "aud": "admin"}, "aud"),
        # claims cannot smuggle in an elevated role
        (
            {
                "sub": "6f1c5f5e-3c2a-4a53-9d0e-0f5b8d1e2a11",
                "aud": "vendor",
                "role": "service_role",
            },
            "role",
        ),
    ],
)
async def test_invalid_claims_are_refused_before_any_connection(
    claims: dict[str, str], named: str
) -> None:
    # a Database that was never opened and points nowhere: validation must come first
    db = make_database(unreachable_dsn(SECRET))
    with pytest.raises(InvalidClaims, match=repr(named)):
        async with db.as_user(claims):
            pass


def test_claims_accept_audience_as_an_alias() -> None:
    claims = Claims.coerce({"sub": "6f1c5f5e-3c2a-4a53-9d0e-0f5b8d1e2a11", "audience": "couple"})
    assert claims.aud == "couple"


# --- one round trip for reads, real transactions for writes -----------------------------------
@contextlib.contextmanager
def round_trips(s: Session, tmp: Path) -> Iterator[list[int]]:
    """Count client round trips (Sync or simple Query messages) with libpq's trace."""
    path = tmp / "trace.log"
    counter: list[int] = []
    with open(path, "w") as fh:
        pgconn = s.connection.pgconn
        pgconn.trace(fh.fileno())
        pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            yield counter
        finally:
            pgconn.untrace()
    for line in path.read_text().splitlines():
        fields = line.split("\t")
        if len(fields) > 2 and fields[0] == "F" and fields[2] in ("Sync", "Query"):
            counter.append(1)


async def test_a_scoped_read_costs_one_round_trip(shared_database: Database, t: Tenants) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(3):  # unprepared, then prepared statements: always one
            async with shared_database.as_user(couple(t.w1_partner)) as s:
                with round_trips(s, Path(tmp)) as trips:
                    count = await s.fetch_val(
                        "select count(*) from guests where wedding_id = %s", (t.wedding_1,)
                    )
                assert count == 3
                assert len(trips) == 1
                # nothing was left open: the read needs no COMMIT
                assert not s.in_transaction


async def test_a_write_after_reads_commits_with_the_scope(
    shared_database: Database, t: Tenants
) -> None:
    guest = new_id()
    async with shared_database.as_user(couple(t.w1_partner)) as s:
        assert await s.fetch_val("select count(*) from guests where id = %s", (guest,)) == 0
        await s.execute(
            "insert into guests (wedding_id, id, first_name) values (%s, %s, 'Late RSVP')",
            (t.wedding_1, guest),
        )
        assert s.in_transaction
        # later reads run in the scope's transaction and see the write
        assert await s.fetch_val("select count(*) from guests where id = %s", (guest,)) == 1
    assert await service_rows(
        shared_database, "select first_name from guests where id = %s", (guest,)
    ) == [("Late RSVP",)]


async def test_a_writing_statement_sent_as_a_read_falls_back_to_the_transaction(
    shared_database: Database, t: Tenants
) -> None:
    guest = new_id()
    async with shared_database.as_user(couple(t.w1_partner)) as s:
        returned = await s.fetch_val(
            "with g as (insert into guests (wedding_id, id, first_name) values (%s, %s, 'Cte')"
            " returning id) select id from g",
            (t.wedding_1, guest),
        )
        assert returned == guest
        assert s.in_transaction
    assert await service_rows(shared_database, "select id from guests where id = %s", (guest,)) == [
        (guest,)
    ]


async def test_an_error_later_in_the_scope_rolls_back_earlier_writes(
    shared_database: Database, t: Tenants
) -> None:
    first, second = new_id(), new_id()
    insert = "insert into guests (wedding_id, id, first_name, rsvp_status) values (%s, %s, %s, %s)"
    with pytest.raises(QueryError) as info:
        async with shared_database.as_user(couple(t.w1_partner)) as s:
            await s.fetch_val("select count(*) from guests")
            await s.execute(insert, (t.wedding_1, first, "Kept?", "accepted"))
            await s.fetch_val("select count(*) from guests")
            await s.execute(insert, (t.wedding_1, second, "Bad", "perhaps"))  # check violation
    assert info.value.sqlstate == "23514"
    assert isinstance(info.value.__cause__, pgerr.CheckViolation)

    with pytest.raises(RuntimeError):
        async with shared_database.as_user(couple(t.w1_partner)) as s:
            await s.execute(insert, (t.wedding_1, second, "Also rolled back", "pending"))
            raise RuntimeError("application error after the write")

    rows = await service_rows(
        shared_database, "select id from guests where id = any(%s)", ([first, second],)
    )
    assert rows == []


EXPLICIT_TRANSACTION_BUG = (
    "src/wedsync_db/db/session.py: psycopg's transaction() and pipeline() send a bare BEGIN "
    "(Transaction uses _get_tx_start_command; ScopedConnection._start_query defers to psycopg "
    "in a pipeline), so a scope whose first statement runs inside one of them gets no role, "
    "claims or application_name: the login role runs it"
)


def _explicit_block(s: Session, kind: str) -> contextlib.AbstractAsyncContextManager[Any]:
    if kind == "Session.transaction":
        return s.transaction()
    if kind == "connection.transaction":
        return s.connection.transaction()
    return s.connection.pipeline()


@pytest.mark.parametrize(
    "kind", ["Session.transaction", "connection.transaction", "connection.pipeline"]
)
async def test_an_explicit_transaction_opening_a_user_scope_keeps_the_claims(
    shared_database: Database, t: Tenants, kind: str
) -> None:
    guest = new_id()
    async with shared_database.as_user(couple(t.w1_partner)) as s, _explicit_block(s, kind):
        cur = await s.connection.execute(
            "select current_user, wedsync.current_user_id(), current_setting('application_name')"
        )
        row = await cur.fetchone()
        await s.connection.execute(
            "insert into guests (wedding_id, id, first_name) values (%s, %s, 'Tx')",
            (t.wedding_1, guest),
        )
    assert row == ("authenticated", t.w1_partner, "wedsync:couple")
    assert await service_rows(shared_database, "select id from guests where id = %s", (guest,)) == [
        (guest,)
    ]


async def test_an_explicit_transaction_opening_a_service_scope_runs_as_service_role(
    shared_database: Database,
) -> None:
    async with (
        shared_database.service(reason="test: explicit transaction") as s,
        s.transaction(),
    ):
        row = await s.fetch_tuples(
            "select current_user, current_setting('application_name'), wedsync.claims()"
        )
    assert row == [
        (
            "service_role",
            "wedsync:service",
            {"role": "service_role", "reason": "test: explicit transaction"},
        )
    ]


async def test_a_transaction_inside_an_open_scope_is_a_savepoint_with_the_claims(
    shared_database: Database, t: Tenants
) -> None:
    kept, undone = new_id(), new_id()
    insert = "insert into guests (wedding_id, id, first_name) values (%s, %s, %s)"
    async with shared_database.as_user(couple(t.w1_partner)) as s:
        await s.execute(insert, (t.wedding_1, kept, "Kept"))
        with pytest.raises(QueryError):
            async with s.transaction():
                await s.execute(insert, (t.wedding_1, undone, "Undone"))
                await s.execute("select 1 / 0")
        assert await s.fetch_val("select current_user") == "authenticated"
    rows = await service_rows(
        shared_database, "select id from guests where id = any(%s)", ([kept, undone],)
    )
    assert rows == [(kept,)]


# --- errors from the server, wrapped with the cause kept --------------------------------------
async def test_unique_violation_is_a_conflict_with_the_constraint_name(
    shared_database: Database, t: Tenants
) -> None:
    with pytest.raises(Conflict) as info:
        async with shared_database.service(reason="test: duplicate") as s:
            await s.execute(
                "insert into organization_members (organization_id, user_id) values (%s, %s)",
                (t.org_a, t.a_owner),
            )
    assert info.value.constraint == "organization_members_pkey"
    assert isinstance(info.value.__cause__, pgerr.UniqueViolation)


async def test_lock_timeout_and_statement_timeout(shared_database: Database, t: Tenants) -> None:
    db = shared_database
    lock_row = "select id from organizations where id = %s for update"
    async with db.service(reason="test: hold a lock") as holder:
        await holder.fetch_val(lock_row, (t.org_a,))
        with pytest.raises(LockTimeout) as lock_info:
            async with db.as_user(vendor(t.a_owner)) as s:
                await s.execute("set local lock_timeout = '100ms'")
                await s.fetch_val(lock_row, (t.org_a,))
    assert lock_info.value.sqlstate == "55P03"
    assert isinstance(lock_info.value.__cause__, pgerr.LockNotAvailable)

    with pytest.raises(StatementTimeout) as timeout_info:
        async with db.service(reason="test: slow query") as s:
            await s.execute("set local statement_timeout = '50ms'")
            await s.fetch_val("select pg_sleep(2)")
    assert timeout_info.value.sqlstate == "57014"
    assert isinstance(timeout_info.value.__cause__, pgerr.QueryCanceled)


# --- pools ----------------------------------------------------------------------------------
async def hold_scope(
    db: Database, claims: dict[str, str], held: asyncio.Event, release: asyncio.Event
) -> None:
    async with db.as_user(claims):
        held.set()
        await release.wait()


async def test_an_exhausted_pool_refuses_quickly_instead_of_hanging(shared_db: str) -> None:
    db = make_database(shared_db, user_pool_size=1, pool_timeout=0.5)
    await db.open()
    held, release = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(hold_scope(db, couple(new_id()), held, release))
    try:
        await asyncio.wait_for(held.wait(), 5)
        started = time.monotonic()
        with pytest.raises(PoolExhausted) as info:
            async with asyncio.timeout(5):
                async with db.as_user(couple(new_id())):
                    pass
        elapsed = time.monotonic() - started
        assert 0.4 <= elapsed < 1.5
        assert info.value.pool == "user"
        assert "retry" in str(info.value)
        # the service pool is separate and still serves
        async with db.service(reason="test: service still works") as s:
            assert await s.fetch_val("select 1") == 1
    finally:
        release.set()
        await holder
        await db.close()


async def test_a_full_waiting_queue_refuses_at_once(shared_db: str) -> None:
    db = make_database(shared_db, user_pool_size=1, pool_timeout=3.0, max_waiting=1)
    await db.open()
    held, release = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(hold_scope(db, couple(new_id()), held, release))
    waiter_done = asyncio.Event()

    async def waiter() -> None:
        async with db.as_user(couple(new_id())) as s:
            await s.fetch_val("select 1")
        waiter_done.set()

    try:
        await asyncio.wait_for(held.wait(), 5)
        queued = asyncio.create_task(waiter())
        await asyncio.sleep(0.1)  # let it join the queue
        started = time.monotonic()
        with pytest.raises(PoolExhausted, match="1 requests were already waiting") as full:
            async with asyncio.timeout(5):
                async with db.as_user(couple(new_id())):
                    pass
        assert time.monotonic() - started < 0.3
        assert "within" not in str(full.value)
        # the queued request is served as soon as the holder lets go
        release.set()
        await asyncio.wait_for(queued, 5)
        assert waiter_done.is_set()
    finally:
        release.set()
        await holder
        await db.close()


async def test_a_cancelled_scope_returns_a_clean_connection(shared_db: str) -> None:
    db = make_database(shared_db, user_pool_size=1, pool_timeout=2.0)
    await db.open()
    state = "select wedsync.current_user_id(), current_setting('statement_timeout')"
    try:
        async with db.as_user(couple(new_id())) as s:
            [(_, default_timeout)] = await s.fetch_tuples(state)
        for prelude in (None, "set local statement_timeout = '10s'"):  # fast read, transaction
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3), db.as_user(couple(new_id())) as s:
                    if prelude:
                        await s.execute(prelude)
                    await s.fetch_val("select pg_sleep(5)")
            # the only connection is usable at once, with none of the old scope's state
            user = new_id()
            async with asyncio.timeout(1), db.as_user(couple(user)) as s:
                row = await s.fetch_tuples(state)
            assert row == [(user, default_timeout)]
    finally:
        await db.close()


async def test_transaction_pooler_disables_prepared_statements(shared_db: str) -> None:
    for pooler, expect_prepared in ((True, False), (False, True)):
        db = make_database(shared_db, service_pool_size=1, transaction_pooler=pooler)
        await db.open()
        try:
            async with db.service(reason="test: prepared statements") as s:
                assert (s.connection.prepare_threshold is None) is pooler
                for i in range(8):
                    assert await s.fetch_val("select %s::int + 1", (i,)) == i + 1
                prepared = await s.fetch_val("select count(*) from pg_prepared_statements")
            assert (prepared > 0) is expect_prepared
        finally:
            await db.close()


async def test_settings_with_a_transaction_pooler_give_unprepared_connections(
    shared_db: str,
) -> None:
    settings = Settings(_env_file=None, pooler="transaction", database_url=shared_db)  # type: ignore[call-arg]
    db = database_for(settings, shared_db)
    await db.open()
    try:
        async with db.service(reason="test: pooler settings") as s:
            assert s.connection.prepare_threshold is None
    finally:
        await db.close()


# --- heartbeat ------------------------------------------------------------------------------
async def test_probe_records_latency_samples(shared_db: str) -> None:
    db = make_database(shared_db, heartbeat_window=5)
    await db.open()
    try:
        for _ in range(7):
            latency = await db.probe("user")
            assert latency > 0
        await db.probe_all()
        snaps = db.heartbeat_snapshots()
    finally:
        await db.close()
    user, service = snaps["user"], snaps["service"]
    assert user.samples == 5  # the window keeps the latest five
    assert user.total_probes == 8
    assert 0 < user.p50_ms <= user.p95_ms <= user.p99_ms
    assert user.consecutive_failures == 0 and user.healthy
    assert service.samples == 1 and service.healthy
    assert service.to_dict()["p99_ms"] is not None


async def test_probes_of_an_unreachable_server_count_failures_without_the_password() -> None:
    dsn = unreachable_dsn(SECRET)
    db = make_database(dsn, pool_timeout=0.2)
    await db.open(wait=False)
    try:
        await db.probe_all()
        await db.probe_all()
        with pytest.raises(DatabaseUnavailable) as info:
            await db.probe("service")
        snaps = db.heartbeat_snapshots()
    finally:
        await db.close()
    assert SECRET not in str(info.value)
    for name in ("user", "service"):
        snap = snaps[name]
        assert not snap.healthy
        assert snap.consecutive_failures == snap.total_failures == (2 if name == "user" else 3)
        assert snap.samples == 0
        assert snap.last_error
        assert SECRET not in snap.last_error
        assert SECRET not in repr(snap.to_dict())


async def test_a_successful_probe_ends_the_failure_streak(shared_db: str) -> None:
    db = make_database(shared_db)
    # record failures while the pools are closed, then open and probe again
    await db.probe_all()
    assert db.heartbeat_snapshots()["user"].consecutive_failures == 1
    await db.open()
    try:
        await db.probe_all()
    finally:
        await db.close()
    snap = db.heartbeat_snapshots()["user"]
    assert snap.healthy and snap.consecutive_failures == 0 and snap.total_failures == 1


async def test_open_on_an_unreachable_server_fails_fast_without_the_password() -> None:
    db = make_database(unreachable_dsn(SECRET))
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable) as info:
        async with asyncio.timeout(10):
            await db.open()
    assert time.monotonic() - started < 3
    assert SECRET not in str(info.value)
    assert info.value.__cause__ is not None
    assert SECRET not in str(info.value.__cause__)
    await db.close()


# --- psycopg hooks this package relies on (bounded by psycopg<3.4 in pyproject.toml) -----------
HOOKS_CHANGED = (
    "psycopg {version} changed a private hook that src/wedsync_db/db/session.py overrides or "
    "calls ({what}); re-check ScopedConnection against the new psycopg before moving the "
    "version bound in pyproject.toml"
)


def test_psycopg_is_the_minor_version_the_session_hooks_were_written_for() -> None:
    import psycopg_pool

    assert psycopg.__version__.startswith("3.3."), HOOKS_CHANGED.format(
        version=psycopg.__version__, what="any of them: untested version"
    )
    assert psycopg_pool.__version__.startswith("3.3."), psycopg_pool.__version__


async def test_the_private_psycopg_hooks_of_scoped_connections_are_still_there(
    shared_db: str,
) -> None:
    import inspect

    from psycopg._preparing import Prepare, PrepareManager

    from wedsync_db.db.session import ScopedConnection

    def hook(what: str) -> str:
        return HOOKS_CHANGED.format(version=psycopg.__version__, what=what)

    assert list(inspect.signature(PrepareManager.get).parameters) == ["self", "query", "prepare"], (
        hook("PrepareManager.get(query, prepare)")
    )
    assert Prepare.SHOULD, hook("Prepare.SHOULD")
    assert hasattr(pgerr, "_WaitTimeout"), hook("errors._WaitTimeout")
    for name in ("_start_query", "_exec_command", "_check_connection_ok"):
        assert callable(getattr(psycopg.AsyncConnection, name, None)), hook(name)
    assert callable(getattr(psycopg.AsyncPipeline, "_sync_gen", None)), hook("_sync_gen")

    starts: list[bool] = []

    class Counting(ScopedConnection):
        def _start_query(self) -> Any:
            starts.append(self.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE)
            return super()._start_query()

    conn = await Counting.connect(shared_db)
    try:
        assert isinstance(conn._prepared, PrepareManager), hook("connection._prepared")
        for attribute in ("prepare_threshold", "prepared_max"):
            assert hasattr(conn._prepared, attribute), hook(f"PrepareManager.{attribute}")
        for attribute in ("_autocommit", "_pipeline"):
            assert hasattr(conn, attribute), hook(f"connection.{attribute}")
        assert isinstance(conn.pgconn._encoding, str), hook("pgconn._encoding")
        await conn.execute("select 1")
        await conn.execute("select 2")
        await conn.rollback()
        async with conn.pipeline() as pipeline:
            assert isinstance(pipeline.command_queue, collections.deque), hook("command_queue")
            assert isinstance(pipeline.result_queue, collections.deque), hook("result_queue")
            await conn.execute("select 3")
        await conn.rollback()
    finally:
        await conn.close()
    # called before every statement; idle (a transaction to begin) before the first only
    assert starts[:2] == [True, False], hook("_start_query is no longer called per statement")
    assert True in starts[2:], hook("_start_query is no longer called in a pipeline")


async def test_scoped_connections_prepare_statements_under_unguessable_names(
    shared_db: str,
) -> None:
    from wedsync_db.db.session import ScopedConnection

    conn = await ScopedConnection.connect(shared_db, autocommit=True)
    try:
        for i in range(8):
            cur = await conn.execute("select %s::int + 1", (i,))
            assert await cur.fetchone() == (i + 1,)
        cur = await conn.execute("select name from pg_prepared_statements", prepare=False)
        names = [r[0] for r in await cur.fetchall()]
    finally:
        await conn.close()
    assert names, "psycopg no longer prepares through the connection's PrepareManager"
    assert all(re.fullmatch(r"_ws_[0-9a-f]{32}", n) for n in names), names


async def test_the_user_pool_hands_out_the_most_recently_returned_connection(
    shared_db: str, t: Tenants
) -> None:
    # LifoConnectionPool overrides psycopg_pool's _get_ready_connection (bounded <3.4)
    db = make_database(shared_db, user_pool_size=3)
    await db.open()
    try:
        async with db.as_user(couple(t.w1_partner)) as a, db.as_user(couple(t.w1_partner)) as b:
            await a.fetch_val("select 1")
            await b.fetch_val("select 1")
            first, second = a.backend_pid, b.backend_pid
        # b's scope ended first, a's last: every following scope gets a's connection, where a
        # first-in first-out pool would hand out b's (and then rotate)
        for _ in range(4):
            async with db.as_user(couple(t.w1_partner)) as s:
                await s.fetch_val("select 1")
                assert s.backend_pid == first != second
    finally:
        await db.close()


async def test_text_that_is_not_valid_unicode_is_a_query_error(
    shared_database: Database, t: Tenants
) -> None:
    for query in ("select %s::text", "insert into guests (wedding_id, first_name) values (%s, %s)"):
        params = ("\udcff",) if query.startswith("select") else (t.wedding_1, "\udcff")
        with pytest.raises(QueryError, match="not valid Unicode"):
            async with shared_database.as_user(couple(t.w1_partner)) as s:
                await s.execute(query, params)
