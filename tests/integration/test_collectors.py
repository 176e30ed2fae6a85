"""Each collector against a database where its condition is real: a blocked lock, an idle open
transaction, a long statement, an unindexed foreign key, a table without RLS, a SECURITY
DEFINER function without search_path, dead rows, a sequence running out, and the
pg_stat_statements differences between two snapshots."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.resources
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import psycopg
import pytest
from psycopg import errors as pgerr

from conftest import make_database
from monitor_facts import facts, statement
from wedsync_db.db.client import Database
from wedsync_db.monitor.assess import Assessment, assess_sample
from wedsync_db.monitor.collectors import (
    COLLECTORS,
    FULL_PARTS,
    OPS_FUNCTIONS_HINT,
    PG_STAT_STATEMENTS_HINT,
    PG_STAT_STATEMENTS_PRELOAD_HINT,
    CollectOptions,
    collect,
)
from wedsync_db.monitor.prometheus import families
from wedsync_db.monitor.snapshot import XID_WRAPAROUND_LIMIT, Snapshot
from wedsync_db.settings import Settings

pytestmark = pytest.mark.db

NOW = CollectOptions(activity_min_seconds=0.2)


def judge(snap: Snapshot) -> Assessment:
    """The assessment of a collected snapshot (default settings)."""
    return assess_sample(snap, Settings(_env_file=None))


@asynccontextmanager
async def session(
    dsn: str, application_name: str = "wedsync-tests", *, autocommit: bool = True
) -> AsyncIterator[psycopg.AsyncConnection]:
    conn = await psycopg.AsyncConnection.connect(
        dsn, application_name=application_name, autocommit=autocommit
    )
    try:
        yield conn
    finally:
        await conn.close()


async def run_sql(dsn: str, *statements: str) -> None:
    """Run statements in one autocommit session, then make its statistics visible at once."""
    async with session(dsn) as conn:
        for statement in statements:
            await conn.execute(statement)  # type: ignore[arg-type]
        # backends flush table statistics lazily; the next ReadyForQuery flushes them now
        await conn.execute("select pg_stat_force_next_flush()")


async def wait_until(
    check: Callable[[], Awaitable[bool]], what: str, timeout: float = 10.0
) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def backend_state(dsn: str, pid: int) -> tuple[str | None, str | None, float]:
    async with session(dsn) as conn:
        cur = await conn.execute(
            "select state, wait_event_type, "
            "extract(epoch from clock_timestamp() - coalesce(query_start, now()))::float8 "
            "from pg_stat_activity where pid = %s",
            (pid,),
        )
        row = await cur.fetchone()
    return (row[0], row[1], row[2]) if row else (None, None, 0.0)


# --- connections --------------------------------------------------------------------------------
async def test_idle_in_transaction_session_is_named_with_its_audience(
    database: Database, fresh_db: str
) -> None:
    async with session(fresh_db, "wedsync:vendor", autocommit=False) as idle:
        await idle.execute("select count(*) from pg_class")
        pid = idle.info.backend_pid
        await asyncio.sleep(0.3)
        snap = await collect(database, parts=("connections",), options=NOW)
        quiet = await collect(
            database, parts=("connections",), options=CollectOptions(activity_min_seconds=60)
        )
    c = snap.connections
    assert c is not None and snap.errors == ()
    [item] = [a for a in c.idle_in_transaction if a.pid == pid]
    assert item.state == "idle in transaction"
    assert item.audience == "vendor" and item.application_name == "wedsync:vendor"
    assert item.seconds >= 0.2 and "pg_class" in item.query
    assert c.by_audience["vendor"] >= 1 and c.by_state["idle in transaction"] >= 1
    assert c.by_audience["ops"] >= 1  # the collector's own connection
    assert quiet.connections is not None
    assert pid not in {a.pid for a in quiet.connections.idle_in_transaction}
    assert any(a.pid == pid for a in snap.connections.idle_in_transaction)
    # no server facts in this partial collection: utilization is not judged
    assert "postgres:connections" not in {c.key for c in judge(snap).checks}


async def test_long_running_statement_is_listed_until_cancelled(
    database: Database, fresh_db: str
) -> None:
    async with session(fresh_db, "wedsync:couple") as runner, session(fresh_db) as admin:
        pid = runner.info.backend_pid
        sleeping = asyncio.create_task(runner.execute("select pg_sleep(30)"))

        async def running() -> bool:
            state, _, seconds = await backend_state(fresh_db, pid)
            return state == "active" and seconds >= 0.3

        await wait_until(running, "pg_sleep to run for 0.3 s")
        snap = await collect(database, parts=("connections",), options=NOW)
        await admin.execute("select pg_cancel_backend(%s)", (pid,))
        with pytest.raises(pgerr.QueryCanceled):
            await sleeping
    assert snap.connections is not None
    [item] = [a for a in snap.connections.long_running if a.pid == pid]
    assert item.audience == "couple" and "pg_sleep" in item.query and item.seconds >= 0.3
    assert snap.connections.longest_transaction_seconds is not None
    assert any(a.pid == pid for a in snap.connections.long_running)


# --- locks --------------------------------------------------------------------------------------
async def test_blocked_lock_names_the_holder(database: Database, fresh_db: str) -> None:
    await run_sql(
        fresh_db,
        "create table booking (id int primary key, n int)",
        "insert into booking values (1, 0)",
    )
    async with (
        session(fresh_db, "wedsync:service", autocommit=False) as holder,
        session(fresh_db, "wedsync:vendor") as waiter,
    ):
        await holder.execute("lock table booking in share mode")
        holder_pid, waiter_pid = holder.info.backend_pid, waiter.info.backend_pid
        blocked = asyncio.create_task(waiter.execute("update booking set n = n + 1 where id = 1"))

        async def waiting() -> bool:
            _, wait_type, _ = await backend_state(fresh_db, waiter_pid)
            return wait_type == "Lock"

        await wait_until(waiting, "the update to wait for the lock")
        snap = await collect(database, parts=("connections", "locks"), options=NOW)
        await holder.rollback()
        await blocked
    assert snap.locks is not None and snap.connections is not None and snap.errors == ()
    [pair] = [b for b in snap.locks.blocking if b.blocked_pid == waiter_pid]
    assert pair.blocking_pid == holder_pid
    assert pair.blocked_audience == "vendor" and pair.blocking_audience == "service"
    assert pair.blocking_state == "idle in transaction"
    assert pair.relation == "booking" and pair.mode == "RowExclusiveLock"
    assert "update booking" in pair.blocked_query and "lock table" in pair.blocking_query
    assert snap.connections.waiting_on_locks >= 1
    assert snap.locks.waiting.get("RowExclusiveLock", 0) >= 1
    chains = snap.locks.blocking
    assert any(c.blocked_pid == waiter_pid and c.blocking_pid == holder_pid for c in chains)


async def test_a_collector_gives_up_behind_a_migration_lock_and_says_why(
    database: Database, fresh_db: str
) -> None:
    async with session(fresh_db, "wedsync:ops", autocommit=False) as migration:
        await migration.execute("lock table public.guests in access exclusive mode")
        started = time.monotonic()
        snap = await collect(
            database, parts=("storage", "database"), options=CollectOptions(lock_timeout_ms=100)
        )
        elapsed = time.monotonic() - started
        await migration.rollback()
    [error] = snap.errors
    assert error.collector == "storage" and "lock" in error.hint
    assert snap.storage is None and snap.database is not None  # the others still ran
    assert elapsed < 5


# --- indexes ------------------------------------------------------------------------------------
INDEX_SETUP = (
    "create table parent (id bigint primary key)",
    "create table child (id bigint primary key, parent_id bigint references parent, note text)",
    "insert into parent select generate_series(1, 10)",
    "insert into child select g, 1 + g % 10, 'x' from generate_series(1, 300) g",
    "create table readings (id bigint, v int, note text)",
    "insert into readings select g, g % 7, 'r' from generate_series(1, 300) g",
    "create index readings_v_idx on readings (v)",
    "create index readings_v_id_idx on readings (v, id)",
    "create index readings_id_idx on readings (id)",
    # what a failed CREATE INDEX CONCURRENTLY leaves behind
    "update pg_index set indisvalid = false where indexrelid = 'readings_id_idx'::regclass",
    "analyze parent, child, readings",
    "select count(*) from child where parent_id = 3",
    "select count(*) from child where parent_id = 4",
    "select count(*) from readings where note = 'x'",
    "select count(*) from readings where note = 'y'",
)
SMALL = CollectOptions(
    missing_index_min_rows=100, unused_index_min_bytes=0, missing_index_min_seq_scans=2
)


async def test_index_advice_finds_each_kind_with_its_remedy(
    database: Database, fresh_db: str
) -> None:
    await run_sql(fresh_db, *INDEX_SETUP)
    snap = await collect(database, parts=("indexes",), options=SMALL)
    assert snap.errors == () and snap.indexes is not None
    advice = {(a.kind, a.table_name, a.index_name): a for a in snap.indexes}
    fk = advice[("unindexed_fk", "child", None)]
    assert fk.remedy == "CREATE INDEX CONCURRENTLY ON public.child (parent_id);"
    assert "parent" in fk.detail and "sequential scans" in fk.detail
    assert ("missing", "readings", None) in advice
    assert advice[("duplicate", "readings", "readings_v_idx")].remedy == (
        "DROP INDEX CONCURRENTLY public.readings_v_idx;"
    )
    assert "readings_v_id_idx" in advice[("duplicate", "readings", "readings_v_idx")].detail
    assert ("invalid", "readings", "readings_id_idx") in advice
    assert ("unused", "readings", "readings_v_id_idx") in advice
    assert ("duplicate", "readings", "readings_v_id_idx") not in advice
    kinds = {r.key.split(":")[0].removeprefix("index.") for r in judge(snap).recommendations}
    assert kinds == {"unindexed_fk", "missing", "duplicate", "invalid", "unused"}

    # psql users get the same answer from the administrative function
    async with session(fresh_db) as conn:
        cur = await conn.execute(
            "select kind, table_name, index_name from ops.index_recommendations(100, 0)"
        )
        assert set(await cur.fetchall()) == set(advice)

    await run_sql(fresh_db, "create index on child (parent_id)")
    after = await collect(database, parts=("indexes",), options=SMALL)
    assert after.indexes is not None
    assert ("unindexed_fk", "child") not in {(a.kind, a.table_name) for a in after.indexes}


async def test_a_table_with_few_sequential_scans_is_not_judged_for_a_missing_index(
    database: Database, fresh_db: str
) -> None:
    # readings: 300 rows, read sequentially by its setup (index builds, two counts)
    await run_sql(fresh_db, *INDEX_SETUP)
    options = CollectOptions(missing_index_min_rows=100, missing_index_min_seq_scans=50)

    async def missing() -> set[str]:
        snap = await collect(database, parts=("indexes",), options=options)
        assert snap.errors == () and snap.indexes is not None
        return {a.table_name for a in snap.indexes if a.kind == "missing"}

    assert "readings" not in await missing()
    await run_sql(fresh_db, *["select count(*) from readings where note = 'z'"] * 50)
    assert "readings" in await missing()
    # the default asks for a hundred scans before judging
    assert CollectOptions().missing_index_min_seq_scans == 100


# --- security -----------------------------------------------------------------------------------
async def test_the_migrated_schema_has_no_security_findings(database: Database) -> None:
    snap = await collect(database, parts=("security",))
    assert snap.errors == () and snap.security == ()


async def test_security_lints_name_the_offending_objects(database: Database, fresh_db: str) -> None:
    await run_sql(
        fresh_db,
        "create table leaky_notes (organization_id uuid not null, body text)",
        "create table half_locked (wedding_id uuid not null, body text)",
        "alter table half_locked enable row level security",
        "create table policy_only (id int)",
        "create policy everyone on policy_only using (true)",
        "create table shared_lookup (code text)",
        "grant select on shared_lookup to authenticated",
        "create function public.unsafe_definer() returns int language sql security definer "
        "as 'select 1'",
        "create table per_row (organization_id uuid, owner uuid)",
        "alter table per_row enable row level security",
        "alter table per_row force row level security",
        "create policy per_row_owner on per_row using (owner = wedsync.current_user_id())",
    )
    snap = await collect(database, parts=("security",))
    assert snap.errors == () and snap.security is not None
    found = {(f.rule, f.object): f for f in snap.security}
    assert set(found) == {
        ("tenant_table_without_rls", "public.leaky_notes"),
        ("tenant_table_rls_not_forced", "public.half_locked"),
        ("policy_exists_rls_disabled", "public.policy_only"),
        ("rls_disabled_in_api", "public.shared_lookup"),
        ("security_definer_search_path_mutable", "public.unsafe_definer()"),
        # the test server's login is a superuser, and so the function's owner
        ("security_definer_owned_by_superuser", "public.unsafe_definer()"),
        ("policy_claim_call_per_row", "per_row_owner on public.per_row"),
    }
    leak = found[("tenant_table_without_rls", "public.leaky_notes")]
    assert "organization_id" in leak.detail
    assert leak.remedy is not None and "ENABLE ROW LEVEL SECURITY" in leak.remedy
    definer = found[("security_definer_search_path_mutable", "public.unsafe_definer()")]
    assert definer.remedy is not None and "SET search_path = pg_catalog, pg_temp" in definer.remedy
    rules = {f.rule for f in snap.security or ()}
    assert "tenant_table_without_rls" in rules


# --- maintenance --------------------------------------------------------------------------------
async def test_dead_rows_and_sequences_running_out(database: Database, fresh_db: str) -> None:
    await run_sql(
        fresh_db,
        "create table vacuum_me (id int primary key, v text) with (autovacuum_enabled = false)",
        "insert into vacuum_me select g, 'x' from generate_series(1, 1000) g",
        "delete from vacuum_me where id <= 600",
        "create table seq_int (id serial primary key)",
        "select setval('seq_int_id_seq', 2000000000)",
        # a bigint sequence feeding an int column runs out at the column's limit
        "create table narrow (id integer)",
        "create sequence wide_seq as bigint owned by narrow.id",
        "select setval('wide_seq', 2100000000)",
    )
    snap = await collect(database, parts=("maintenance", "database"))
    assert snap.errors == ()
    m, db = snap.maintenance, snap.database
    assert m is not None and db is not None
    [table] = [t for t in m.tables if t.table_name == "vacuum_me"]
    assert table.dead_tuples >= 600 and table.live_tuples <= 400
    assert table.autovacuum_due and not table.autovacuum_enabled
    assert table.dead_fraction is not None and table.dead_fraction >= 0.5
    assert m.tables_due >= 1 and m.dead_tuples >= 600
    seqs = {s.sequence_name: s for s in m.sequences}
    assert seqs["seq_int_id_seq"].used_fraction == pytest.approx(2e9 / (2**31 - 1), rel=1e-6)
    assert seqs["seq_int_id_seq"].owned_by == "public.seq_int.id"
    assert seqs["wide_seq"].max_value == 2**31 - 1
    assert seqs["wide_seq"].used_fraction > 0.97
    assert 0 < (db.xid_remaining or 0) < XID_WRAPAROUND_LIMIT
    assert snap.maintenance is not None
    names = {f"{s.schema_name}.{s.sequence_name}" for s in snap.maintenance.sequences}
    assert {"public.seq_int_id_seq", "public.wide_seq"} <= names


async def queries_since(database: Database, earlier: Snapshot, options: CollectOptions) -> Snapshot:
    """The queries part again, its window measured from ``earlier``."""
    assert earlier.queries is not None
    return await collect(
        database,
        parts=("queries",),
        options=options,
        query_baseline=earlier.queries.baseline(earlier.captured_at),
    )


# --- statement statistics -----------------------------------------------------------------------
async def test_statement_statistics_are_differences_between_snapshots(
    database: Database, fresh_db: str
) -> None:
    options = CollectOptions(top_queries=500)
    first = await collect(database, parts=("queries",), options=options)
    if first.queries is None:
        # a server without pg_stat_statements in shared_preload_libraries (the PostgreSQL 15
        # test server): the collector degrades with the way to enable it
        [error] = first.errors
        assert error.collector == "queries"
        assert error.hint in (PG_STAT_STATEMENTS_PRELOAD_HINT, PG_STAT_STATEMENTS_HINT)
        return
    assert first.queries.window is None  # no baseline: totals only
    reset_before = first.queries.stats_reset
    await run_sql(fresh_db, "create table wedding_marker (id int)")
    async with session(fresh_db) as conn:
        for _ in range(7):
            await conn.execute("select count(*) from wedding_marker")
    second = await queries_since(database, first, options)
    assert second.queries is not None and second.queries.window is not None
    [marker] = [q for q in second.queries.window.top if "from wedding_marker" in q.query]
    assert marker.calls == 7
    assert second.queries.window.calls >= 7
    assert second.queries.calls > first.queries.calls  # cumulative totals only grow
    third = await queries_since(database, second, options)
    assert third.queries is not None and third.queries.window is not None
    assert all("from wedding_marker" not in q.query for q in third.queries.window.top)
    # the view is never reset
    assert third.queries.stats_reset == reset_before
    assert any(q.calls == 7 for q in second.queries.window.top)


async def test_missing_pg_stat_statements_degrades_with_a_hint(
    database: Database, fresh_db: str
) -> None:
    await run_sql(fresh_db, "drop extension if exists pg_stat_statements")
    snap = await collect(database, parts=("queries", "database"))
    [error] = snap.errors
    assert error.collector == "queries" and error.hint == PG_STAT_STATEMENTS_HINT
    assert snap.database is not None


async def test_missing_ops_functions_degrade_with_a_hint(empty_db: str, template_db: str) -> None:
    # (the migrated template made the server's roles: the user pool logs in as one of them,
    # whichever test ran first on this worker)
    db = make_database(empty_db)
    await db.open()
    try:
        snap = await collect(db, parts=("connections", "indexes", "database"))
    finally:
        await db.close()
    assert {e.collector: e.hint for e in snap.errors} == {
        "connections": OPS_FUNCTIONS_HINT,
        "indexes": OPS_FUNCTIONS_HINT,
    }
    assert snap.database is not None


# --- replication --------------------------------------------------------------------------------
async def test_an_inactive_replication_slot_is_reported(database: Database, fresh_db: str) -> None:
    name = f"wedsync_test_{uuid.uuid4().hex[:8]}"
    async with session(fresh_db) as conn:
        # slots are server-wide: always dropped again
        await conn.execute("select pg_create_physical_replication_slot(%s, true)", (name,))
        try:
            snap = await collect(database, parts=("replication",))
        finally:
            await conn.execute("select pg_drop_replication_slot(%s)", (name,))
    assert snap.replication is not None and snap.errors == ()
    [slot] = [s for s in snap.replication.slots if s.slot_name == name]
    assert not slot.active and slot.slot_type == "physical"
    assert slot.retained_bytes is not None and slot.retained_bytes >= 0
    assert f"replication.inactive_slot:{name}" in {r.key for r in judge(snap).recommendations}


# --- server, counters, calendar -----------------------------------------------------------------
async def test_full_collection_on_a_fresh_database(database: Database) -> None:
    snap = await collect(database, parts=FULL_PARTS, today=date(2026, 6, 13))
    # pg_stat_statements may be absent (PostgreSQL 15 test server); nothing else may fail
    assert {e.collector for e in snap.errors} <= {"queries"}
    server, background, replication = snap.server, snap.background, snap.replication
    assert server is not None and background is not None and replication is not None
    assert server.version_num >= 150000
    reserved = server.superuser_reserved_connections + server.reserved_connections
    assert server.max_usable_connections == server.max_connections - reserved
    assert server.settings["shared_buffers"] >= 128 * 1024
    assert (background.buffers_backend is None) == (server.version_num >= 170000)
    assert not replication.in_recovery and replication.lag_seconds is None
    assert snap.storage is not None and snap.storage.database_bytes > 0
    assert snap.storage.table_count >= 7
    assert snap.weddings_today == 0 and snap.full_captured_at == snap.captured_at
    # no backups here: recorded as none, and nothing for development to judge
    assert snap.backups is not None and snap.backups.events_recorded
    assert snap.backups.backups_ok == 0 and snap.backups.last_verified_at is None
    checks = {c.key: c for c in judge(snap).checks}
    assert "postgres:connections" in checks
    assert checks["postgres:databaseSize"].observed_value == snap.storage.database_bytes


async def test_weddings_today_are_counted_through_rls(database: Database) -> None:
    async with database.service(reason="test wedding") as s:
        await s.execute(
            "insert into weddings (title, wedding_date, status) values "
            "('A & B', '2026-06-13', 'confirmed'), ('C & D', '2026-06-13', 'cancelled'), "
            "('E & F', '2026-06-20', 'planning')"
        )
    snap = await collect(database, parts=("calendar", "connections"), today=date(2026, 6, 13))
    assert snap.errors == () and snap.weddings_today == 1


async def test_ops_functions_are_refused_to_authenticated_and_run_for_service_role(
    fresh_db: str,
) -> None:
    functions = (
        "ops.connection_stats()",
        "ops.table_maintenance_report()",
        "ops.index_recommendations()",
        "ops.performance_report()",
        "ops.query_stats()",
    )
    async with session(fresh_db) as conn:
        for fn in functions:
            for role in ("authenticated", "anon"):
                with pytest.raises(pgerr.InsufficientPrivilege):
                    async with conn.transaction():
                        await conn.execute(f"set local role {role}")  # type: ignore[arg-type]
                        await conn.execute(f"select * from {fn}")  # type: ignore[arg-type]
            try:
                async with conn.transaction():
                    await conn.execute("set local role service_role")
                    cur = await conn.execute(f"select * from {fn}")  # type: ignore[arg-type]
                    await cur.fetchall()
            except pgerr.ObjectNotInPrerequisiteState:
                # allowed to run it; pg_stat_statements is not loaded on this server
                assert "performance_report" in fn or "query_stats" in fn
        cur = await conn.execute(
            "select count(*) from ops.connection_stats() where audience = 'other'"
        )
        assert (await cur.fetchone()) is not None


# --- every declared collector reaches the assessment, Prometheus and the metrics document -------
# Collectors whose records feed dashboards only (no health rule judges them), and why.
NOT_ASSESSED = {
    "background": "checkpointer, bgwriter and WAL counters are dashboard series",
    "plan_usage": "an organization at its plan's limit is the business's state, not the database's",
}


async def test_every_declared_collector_is_rendered(database: Database) -> None:
    snap = await collect(database, parts=FULL_PARTS, today=date(2026, 6, 13))
    # a fresh database gives some collectors nothing to judge: give those a record that matters
    shown = facts(
        inactive_slots=("gone_replica",),
        slow_queries=(statement(7, "select pg_sleep($1)", 3, 3_000.0),),
    )
    snap = dataclasses.replace(
        snap, replication=shown.replication, queries=shown.queries, weddings_today=2
    )
    production = Settings(_env_file=None, env="production", service_key="k")
    fields = {f.name: f for f in dataclasses.fields(Snapshot)}
    sql = importlib.resources.files("wedsync_db.monitor") / "sql"

    def prometheus(s: Snapshot) -> list[Any]:
        rendered = families(
            s, up=True, scrapes=1, scrape_errors={}, query_totals=None, heartbeats={},
            pool_stats={}, now=s.captured_at,
        )  # fmt: skip
        return [(m.name, m.samples) for m in rendered]

    def judged(s: Snapshot) -> Any:
        a = assess_sample(s, production)
        return a.context.level, [c.to_dict() for c in a.checks]

    assert [spec.name for spec in COLLECTORS] == list(FULL_PARTS)
    for spec in COLLECTORS:
        assert spec.field in fields, spec.name
        assert spec.record.__name__ in str(fields[spec.field].type), spec.name
        assert (sql / spec.sql).is_file(), spec.name
        assert getattr(snap, spec.field) is not None, f"{spec.name} collected nothing"
        without = dataclasses.replace(snap, **{spec.field: None})
        assert snap.to_dict()[spec.field] != without.to_dict()[spec.field], spec.name
        assert prometheus(snap) != prometheus(without), f"{spec.name} is not in Prometheus"
        if spec.name not in NOT_ASSESSED:
            assert judged(snap) != judged(without), f"{spec.name} is not assessed"
