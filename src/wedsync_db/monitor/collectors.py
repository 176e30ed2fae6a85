"""Collectors: the named queries of ``monitor/sql`` run against the database (the I/O shell).

One collection is one ``db.ops()`` transaction, so every part sees the same moment. Each
collector runs inside its own savepoint under a statement and lock timeout: a collector that
fails (a missing extension or privilege, a timeout) is rolled back alone and reported as a
:class:`CollectorError` with a hint, and the others still run.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from wedsync_db.db.client import Database
from wedsync_db.db.queries import NamedQuery, load_queries
from wedsync_db.db.session import Session, compose, ident
from wedsync_db.errors import (
    DatabaseUnavailable,
    LockTimeout,
    PermissionDenied,
    QueryError,
    StatementTimeout,
    WedsyncDBError,
)
from wedsync_db.monitor.snapshot import (
    SERVER_SETTINGS,
    BackgroundStats,
    BackupStats,
    BlockingPair,
    CollectorError,
    ConnectionGroup,
    ConnectionStats,
    DatabaseStats,
    DatabaseXid,
    FeedStats,
    IndexAdvice,
    LockStats,
    MaintenanceStats,
    PlanUsage,
    QueryBaseline,
    QueryCounters,
    QueryStat,
    QueryStats,
    QueryWindow,
    Replica,
    ReplicationSlot,
    ReplicationStats,
    SecurityFinding,
    SequenceUsage,
    ServerInfo,
    SessionActivity,
    Snapshot,
    StorageStats,
    TableMaintenance,
    TableSize,
    counter_deltas,
    query_differences,
    setting_in_base_unit,
)
from wedsync_db.monitor.thresholds import wedding_day_query_mean_ms

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T")
R = TypeVar("R", bound="DataclassInstance")

PG_STAT_STATEMENTS_HINT = (
    "pg_stat_statements is not installed: add it to shared_preload_libraries and run "
    "CREATE EXTENSION pg_stat_statements"
)
PG_STAT_STATEMENTS_PRELOAD_HINT = (
    "pg_stat_statements is not loaded: add it to shared_preload_libraries and restart the "
    "server (CREATE EXTENSION alone is not enough)"
)
OPS_FUNCTIONS_HINT = (
    "the ops monitoring functions are missing: run `wedsync-db migrate apply` "
    "(migration 0004_ops_monitoring)"
)
FEED_HINT = (
    "the change feed's outbox is missing: run `wedsync-db migrate apply` (migration "
    "0011_change_feed)"
)
PRIVILEGE_HINT = (
    "the monitoring login lacks a privilege: GRANT pg_monitor TO the login of DATABASE_URL, "
    "and apply the migrations with that login so it owns the ops functions"
)


@dataclass(frozen=True)
class CollectOptions:
    """Limits of one collection run."""

    # Every catalog or statistics query answers in milliseconds on a healthy server; one that
    # takes longer is a symptom to report, not a reason to add load.
    statement_timeout_ms: int = 2_000
    # Sizes, maintenance and index advice visit every table: allow for large catalogs.
    heavy_statement_timeout_ms: int = 10_000
    # Size functions take ACCESS SHARE locks; never queue behind a migration's ACCESS EXCLUSIVE
    # (and make everything after us queue behind the monitor).
    lock_timeout_ms: int = 500
    # Shorter statements and idle transactions are ordinary traffic; the assessment applies the
    # calendar context's thresholds to what is collected.
    activity_min_seconds: float = 5.0
    activity_limit: int = 50
    blocking_limit: int = 100
    top_queries: int = 20
    # tables kept per report (and labelled in Prometheus): a bounded cardinality
    table_limit: int = 50
    query_chars: int = 500
    # sequences below half their range are far from any threshold
    sequence_min_fraction: float = 0.5
    # a table is judged for a missing index from this many rows and this many sequential scans
    # since the statistics were reset: right after a bulk load (`demo seed`) the few scans of
    # the load itself say nothing about the queries the table will serve
    missing_index_min_rows: int = 10_000
    missing_index_min_seq_scans: int = 100
    unused_index_min_bytes: int = 1 << 20


# Prometheus scrapes refresh only the cheap parts, and must answer quickly even when the
# server is struggling: a shorter timeout, and the cached values otherwise.
SCRAPE_OPTIONS = CollectOptions(statement_timeout_ms=500, lock_timeout_ms=100)


def _queries(filename: str) -> dict[str, NamedQuery]:
    return load_queries("wedsync_db.monitor", f"sql/{filename}")


def _sql(filename: str, name: str) -> str:
    return _queries(filename)[name].sql


# --- error hints ------------------------------------------------------------------------------
def hint_for(collector: str, exc: WedsyncDBError, timeout_ms: int) -> str:
    """What to do about a collector's failure (pure)."""
    message = str(exc).lower()
    sqlstate = exc.sqlstate if isinstance(exc, QueryError) else None
    if "pg_stat_statements" in message:
        if "shared_preload_libraries" in message:
            return PG_STAT_STATEMENTS_PRELOAD_HINT
        return PG_STAT_STATEMENTS_HINT
    if isinstance(exc, StatementTimeout):
        return (
            f"the {collector} collector ran past its {timeout_ms} ms statement_timeout: the "
            "server is busy or its catalog is large; it runs again with the next sample"
        )
    if isinstance(exc, LockTimeout):
        return (
            f"the {collector} collector waited too long for a lock another session holds "
            "(a migration?); see `wedsync-db inspect locks`"
        )
    if isinstance(exc, PermissionDenied):
        return PRIVILEGE_HINT
    if sqlstate in ("42883", "42P01", "3F000") and re.search(r'\bops\b|"ops"', message):
        return OPS_FUNCTIONS_HINT
    if sqlstate in ("42P01", "3F000") and collector == "feed":
        return FEED_HINT
    if sqlstate == "42P01" and collector == "calendar":
        return "the weddings table is missing: run `wedsync-db migrate apply`"
    if sqlstate == "42704" and "service_role" in message:
        return "the service_role role is missing: run `wedsync-db migrate apply`"
    return "see the server log for details; the collector runs again with the next sample"


# --- one collection run -----------------------------------------------------------------------
class _Run:
    """Runs collectors one after another in savepoints of one transaction."""

    def __init__(self, session: Session, options: CollectOptions) -> None:
        self.s = session
        self.options = options
        self.errors: list[CollectorError] = []
        self._timeouts: tuple[int, int] | None = None

    async def _set_timeouts(self, statement_ms: int, lock_ms: int) -> None:
        # set at transaction level (outside the savepoint) so a rolled-back collector does not
        # undo it; only when it changes, to spare round trips
        if self._timeouts == (statement_ms, lock_ms):
            return
        await self.s.execute(
            _sql("database.sql", "set_timeouts"), (str(statement_ms), str(lock_ms))
        )
        self._timeouts = (statement_ms, lock_ms)

    async def guarded(
        self, name: str, fn: Callable[[], Awaitable[T]], *, heavy: bool = False
    ) -> T | None:
        """Run one collector; its failure becomes a CollectorError, except a lost server."""
        o = self.options
        timeout = o.heavy_statement_timeout_ms if heavy else o.statement_timeout_ms
        await self._set_timeouts(timeout, o.lock_timeout_ms)
        try:
            async with self.s.savepoint():
                return await fn()
        except DatabaseUnavailable:
            raise
        except WedsyncDBError as exc:
            self.errors.append(CollectorError(name, str(exc).strip(), hint_for(name, exc, timeout)))
            return None


# --- the collectors ---------------------------------------------------------------------------
async def collect_server(s: Session) -> ServerInfo:
    """Version, connection limits and selected settings."""
    info = await s.fetch_one(_sql("database.sql", "server_info"), row=ServerInfo)
    if info is None:  # pragma: no cover - a SELECT without FROM always returns a row
        raise QueryError("server_info returned no row")
    rows = await s.fetch_tuples(_sql("database.sql", "settings"), {"names": list(SERVER_SETTINGS)})
    values: dict[str, float] = {}
    for name, setting, unit in rows:
        value = setting_in_base_unit(setting, unit)
        if value is not None:
            values[name] = value
    return dataclasses.replace(info, settings=values)


async def collect_connections(s: Session, o: CollectOptions) -> ConnectionStats:
    """Connections by audience and state, plus the long statements and idle transactions."""
    groups = await s.fetch_all(_sql("connections.sql", "connection_stats"), row=ConnectionGroup)
    activity = await s.fetch_all(
        _sql("connections.sql", "activity"),
        {
            "query_chars": o.query_chars,
            "min_seconds": o.activity_min_seconds,
            "limit": o.activity_limit,
        },
        row=SessionActivity,
    )
    return ConnectionStats(
        groups=tuple(groups),
        idle_in_transaction=tuple(a for a in activity if a.state != "active"),
        long_running=tuple(a for a in activity if a.state == "active"),
    )


async def collect_database(s: Session) -> DatabaseStats:
    """Cumulative counters and size of the current database, and every database's xid age."""
    stats = await s.fetch_one(_sql("database.sql", "database_stats"), row=DatabaseStats)
    if stats is None:
        raise QueryError("pg_stat_database has no row for the current database")
    ages = await s.fetch_all(_sql("database.sql", "xid_ages"), row=DatabaseXid)
    return dataclasses.replace(stats, xid_ages=tuple(ages))


async def collect_background(s: Session, version_num: int) -> BackgroundStats:
    """Checkpointer, background writer, WAL and archiver counters."""
    name = "checkpoints_17" if version_num >= 170000 else "checkpoints_15"
    checkpoints = await s.fetch_dicts(_sql("database.sql", name))
    wal = await s.fetch_dicts(_sql("database.sql", "wal_and_archiver"))
    if not checkpoints or not wal:  # pragma: no cover - one-row views
        raise QueryError("background statistics returned no row")
    return BackgroundStats(**checkpoints[0], **wal[0])


def _record(cls: type[R], source: object, **given: Any) -> R:
    """A ``cls`` whose fields not ``given`` are read from ``source``: a query row carrying more
    columns than the record, or another record with the same fields."""
    taken = {f.name: getattr(source, f.name) for f in fields(cls) if f.name not in given}
    return cls(**taken, **given)


@dataclass(frozen=True)
class _CounterRow(QueryCounters):
    # the entry's other keys: a statement is counted per user and per nesting level
    userid: int
    toplevel: bool


@dataclass(frozen=True)
class _ExtensionRow:
    schema_name: str
    extversion: str


async def collect_queries(
    s: Session,
    o: CollectOptions,
    baseline: QueryBaseline | None,
    now: datetime,
) -> QueryStats:
    """pg_stat_statements totals, and per-statement differences since ``baseline``."""
    rows = await s.fetch_all(_sql("queries.sql", "query_counters"), row=_CounterRow)
    counters = {
        f"{r.queryid}:{r.userid}:{int(r.toplevel)}": _record(QueryCounters, r) for r in rows
    }
    stats_reset: datetime | None = None
    deallocations: int | None = None
    ext = await s.fetch_one(_sql("queries.sql", "statements_extension"), row=_ExtensionRow)
    if ext is not None:
        info = await s.fetch_tuples(
            compose(_sql("queries.sql", "statements_info"), schema=ident(ext.schema_name))
        )
        if info:
            deallocations, stats_reset = int(info[0][0]), info[0][1]
    window = None
    diffs = query_differences(baseline, counters, stats_reset)
    if baseline is not None and diffs is not None:
        top = sorted(diffs.values(), key=lambda c: (-c.total_ms, c.queryid))[: o.top_queries]
        texts: dict[int, str] = {}
        if top:
            # only the top statements' texts: reading them loads the whole texts file
            for queryid, text in await s.fetch_tuples(
                _sql("queries.sql", "query_texts"),
                {"queryids": [c.queryid for c in top], "query_chars": o.query_chars},
            ):
                texts[int(queryid)] = text or ""
        window = QueryWindow(
            since=baseline.captured_at,
            seconds=max((now - baseline.captured_at).total_seconds(), 0.0),
            calls=sum(c.calls for c in diffs.values()),
            total_ms=sum(c.total_ms for c in diffs.values()),
            rows=sum(c.rows for c in diffs.values()),
            top=tuple(_record(QueryStat, c, query=texts.get(c.queryid, "")) for c in top),
        )
    return QueryStats(
        statements=len(counters),
        calls=sum(c.calls for c in counters.values()),
        total_ms=sum(c.total_ms for c in counters.values()),
        rows=sum(c.rows for c in counters.values()),
        stats_reset=stats_reset,
        deallocations=deallocations,
        window=window,
        counters=counters,
    )


@dataclass(frozen=True)
class _TableSizeRow(TableSize):
    # the totals over all user tables, repeated on every row
    table_count: int
    tables_bytes: int
    indexes_bytes: int


async def collect_storage(s: Session, o: CollectOptions) -> StorageStats:
    """Database size, the largest tables and the totals over all user tables."""
    database_bytes = int(await s.fetch_val(_sql("storage.sql", "database_size")) or 0)
    rows = await s.fetch_all(
        _sql("storage.sql", "table_sizes"), {"limit": o.table_limit}, row=_TableSizeRow
    )
    first = rows[0] if rows else None
    return StorageStats(
        database_bytes=database_bytes,
        table_count=first.table_count if first else 0,
        tables_bytes=first.tables_bytes if first else 0,
        indexes_bytes=first.indexes_bytes if first else 0,
        largest=tuple(_record(TableSize, r) for r in rows),
    )


async def collect_maintenance(s: Session, o: CollectOptions) -> MaintenanceStats:
    """Dead rows and autovacuum state per table, and sequences filling up."""
    tables = await s.fetch_all(_sql("maintenance.sql", "table_maintenance"), row=TableMaintenance)
    sequences = await s.fetch_all(
        _sql("maintenance.sql", "sequences"),
        {"min_fraction": o.sequence_min_fraction},
        row=SequenceUsage,
    )
    # the report is ordered by dead rows; tables due for autovacuum are always kept
    kept = [t for i, t in enumerate(tables) if i < o.table_limit or t.autovacuum_due]
    return MaintenanceStats(
        table_count=len(tables),
        dead_tuples=sum(t.dead_tuples for t in tables),
        tables_due=sum(1 for t in tables if t.autovacuum_due),
        tables=tuple(kept),
        sequences=tuple(sequences),
    )


@dataclass(frozen=True)
class _LockModeRow:
    mode: str
    granted: int
    waiting: int


async def collect_locks(s: Session, o: CollectOptions) -> LockStats:
    """Locks per mode and the blocking pairs."""
    modes = await s.fetch_all(_sql("locks.sql", "lock_modes"), row=_LockModeRow)
    blocking = await s.fetch_all(
        _sql("locks.sql", "blocking"),
        {"query_chars": o.query_chars, "limit": o.blocking_limit},
        row=BlockingPair,
    )
    return LockStats(
        granted={m.mode: m.granted for m in modes},
        waiting={m.mode: m.waiting for m in modes},
        blocking=tuple(blocking),
    )


@dataclass(frozen=True)
class _ReplicationRow:
    in_recovery: bool
    replay_lag_seconds: float | None
    wal_position: str | None


async def collect_replication(s: Session) -> ReplicationStats:
    """Standby replay lag, or this primary's standbys, and the replication slots."""
    status = await s.fetch_one(_sql("replication.sql", "replication_status"), row=_ReplicationRow)
    # both measured from one reading of this server's WAL position
    position = {"wal_position": status.wal_position if status else None}
    replicas = await s.fetch_all(_sql("replication.sql", "replicas"), position, row=Replica)
    slots = await s.fetch_all(_sql("replication.sql", "slots"), position, row=ReplicationSlot)
    return ReplicationStats(
        in_recovery=bool(status and status.in_recovery),
        replay_lag_seconds=status.replay_lag_seconds if status else None,
        replicas=tuple(replicas),
        slots=tuple(slots),
    )


async def collect_indexes(s: Session, o: CollectOptions) -> tuple[IndexAdvice, ...]:
    """ops.index_recommendations(): invalid, unused, duplicate, missing, unindexed FKs."""
    rows = await s.fetch_all(
        _sql("indexes.sql", "index_recommendations"),
        {
            "min_table_rows": o.missing_index_min_rows,
            "min_unused_bytes": o.unused_index_min_bytes,
            "min_seq_scans": o.missing_index_min_seq_scans,
        },
        row=IndexAdvice,
    )
    return tuple(rows)


async def collect_security(s: Session) -> tuple[SecurityFinding, ...]:
    """Row level security, SECURITY DEFINER, privilege and claims-signing lints."""
    found = await s.fetch_all(_sql("security.sql", "security_lints"), row=SecurityFinding)
    if await s.fetch_val(_sql("security.sql", "claims_key_table")) and not await s.fetch_val(
        _sql("security.sql", "claims_key_present")
    ):
        found.append(CLAIMS_UNSIGNED)
    return tuple(sorted(found, key=lambda f: (f.rule, f.object)))


CLAIMS_UNSIGNED = SecurityFinding(
    rule="claims_unsigned",
    object="wedsync.claims_signing_key",
    detail=(
        "the database has no claims signing key, so request.jwt.claims are accepted unsigned: "
        "SQL running in a user scope can set another user's claims and act as them"
    ),
    remedy="SELECT wedsync.rotate_claims_signing_key();  -- then restart the clients",
)


async def collect_plan_usage(s: Session) -> PlanUsage:
    """Usage counters of every organization against its plan (totals, never per row)."""
    row = (await s.fetch_dicts(_sql("plan_usage.sql", "plan_usage")))[0]
    return PlanUsage(**{k: int(v) for k, v in row.items()})


async def collect_backups(s: Session) -> BackupStats:
    """The WAL archiver's progress and the newest backups and verifications recorded."""
    row = (await s.fetch_dicts(_sql("backups.sql", "archiving")))[0]
    if row["events_recorded"]:
        row.update((await s.fetch_dicts(_sql("backups.sql", "events")))[0])
    return BackupStats(**row)


async def collect_weddings_today(s: Session, today: date) -> int:
    """Weddings on ``today`` (platform-local), read as service_role so RLS cannot hide any."""
    await s.execute(_sql("database.sql", "become_service_role"))
    count = await s.fetch_val(_sql("database.sql", "weddings_today"), (today,))
    await s.execute(_sql("database.sql", "reset_role"))
    return int(count or 0)


async def collect_feed(s: Session) -> FeedStats:
    """The change feed's outbox size, span and watermark."""
    stats = await s.fetch_one(_sql("feed.sql", "feed_stats"), row=FeedStats)
    if stats is None:  # pragma: no cover - one row per existing table
        raise QueryError("feed_stats returned no row")
    return stats


async def performance_report(
    db: Database, *, latency_ms: float | None = None, top_n: int = 20
) -> list[dict[str, Any]]:
    """ops.performance_report(): top statements since the last reset, with the wedding-day
    risk flag (the same answer psql users get)."""
    limit = wedding_day_query_mean_ms() if latency_ms is None else latency_ms
    async with db.ops(reason="monitor") as s:
        return await s.fetch_dicts(
            _sql("queries.sql", "performance_report"), {"latency_ms": limit, "top_n": top_n}
        )


# --- the declarations -------------------------------------------------------------------------
@dataclass
class _Context:
    """What one collection run hands its collectors."""

    session: Session
    options: CollectOptions
    query_baseline: QueryBaseline | None
    captured_at: datetime
    today: date | None
    got: dict[str, Any] = field(default_factory=dict)

    async def version_num(self) -> int:
        server: ServerInfo | None = self.got.get("server")
        return server.version_num if server else await _version(self.session)


# how a collector takes part in a Prometheus scrape:
#   "refresh": cheap enough to run on every scrape; the fresh value replaces the sampled one
#   "if_missing": run by a scrape only while no full sample has it; a fresh value wins
#   "keep": run with the full sample only; a scrape keeps the sampled value (and its error)
ScrapeMode = Literal["refresh", "if_missing", "keep"]


@dataclass(frozen=True)
class CollectorSpec:
    """One collector: its name, SQL file, the Snapshot field (and record type) it fills,
    whether it runs at scrapes, and the function that runs it."""

    name: str
    sql: str
    field: str
    # the record class the field holds (one of them, or a tuple of them)
    record: type
    run: Callable[[_Context], Awaitable[Any]]
    scrape: ScrapeMode = "keep"
    # runs only when the caller gives the platform-local date
    needs_today: bool = False
    # the longer statement timeout (visits every table)
    heavy: bool = False
    # the collector is part of the expensive sample whose time Snapshot.full_captured_at keeps
    expensive: bool = False


async def _run_calendar(c: _Context) -> int:
    assert c.today is not None  # needs_today
    return await collect_weddings_today(c.session, c.today)


async def _run_background(c: _Context) -> BackgroundStats:
    return await collect_background(c.session, await c.version_num())


# In running order (one transaction, so every part sees the same moment). Adding a collector is
# one entry here, its SQL file, and its Snapshot field.
COLLECTORS: tuple[CollectorSpec, ...] = (
    CollectorSpec(
        "server", "database.sql", "server", ServerInfo,
        lambda c: collect_server(c.session), scrape="if_missing",
    ),
    CollectorSpec(
        "connections", "connections.sql", "connections", ConnectionStats,
        lambda c: collect_connections(c.session, c.options), scrape="refresh",
    ),
    CollectorSpec(
        "database", "database.sql", "database", DatabaseStats,
        lambda c: collect_database(c.session), scrape="refresh",
    ),
    CollectorSpec(
        "background", "database.sql", "background", BackgroundStats,
        _run_background, scrape="refresh",
    ),
    CollectorSpec(
        "locks", "locks.sql", "locks", LockStats,
        lambda c: collect_locks(c.session, c.options), scrape="refresh",
    ),
    CollectorSpec(
        "replication", "replication.sql", "replication", ReplicationStats,
        lambda c: collect_replication(c.session), scrape="refresh",
    ),
    CollectorSpec(
        "queries", "queries.sql", "queries", QueryStats,
        lambda c: collect_queries(c.session, c.options, c.query_baseline, c.captured_at),
    ),
    CollectorSpec(
        "storage", "storage.sql", "storage", StorageStats,
        lambda c: collect_storage(c.session, c.options), heavy=True, expensive=True,
    ),
    CollectorSpec(
        "maintenance", "maintenance.sql", "maintenance", MaintenanceStats,
        lambda c: collect_maintenance(c.session, c.options), heavy=True, expensive=True,
    ),
    CollectorSpec(
        "indexes", "indexes.sql", "indexes", IndexAdvice,
        lambda c: collect_indexes(c.session, c.options), heavy=True, expensive=True,
    ),
    CollectorSpec(
        "security", "security.sql", "security", SecurityFinding,
        lambda c: collect_security(c.session), expensive=True,
    ),
    CollectorSpec(
        "calendar", "database.sql", "weddings_today", int, _run_calendar, needs_today=True
    ),
    CollectorSpec(
        "backups", "backups.sql", "backups", BackupStats, lambda c: collect_backups(c.session)
    ),
    CollectorSpec(
        "plan_usage", "plan_usage.sql", "plan_usage", PlanUsage,
        lambda c: collect_plan_usage(c.session), expensive=True,
    ),
    CollectorSpec(
        "feed", "feed.sql", "feed", FeedStats, lambda c: collect_feed(c.session),
        scrape="refresh",
    ),
)  # fmt: skip
FULL_PARTS = tuple(spec.name for spec in COLLECTORS)
# Collectors cheap enough to run on every Prometheus scrape; the rest run with the sampler
# (server facts rarely change; reading every pg_stat_statements entry costs more than all of
# these together, so statement counters advance once per sample).
CHEAP_PARTS = tuple(spec.name for spec in COLLECTORS if spec.scrape == "refresh")


def scrape_parts(full: Snapshot | None) -> tuple[str, ...]:
    """The collectors a scrape refresh runs on top of ``full`` (the latest full sample)."""
    return tuple(
        spec.name
        for spec in COLLECTORS
        if spec.scrape == "refresh"
        or (spec.scrape == "if_missing" and (full is None or getattr(full, spec.field) is None))
    )


def merge_scrape(fresh: Snapshot, full: Snapshot | None) -> Snapshot:
    """A scrape-time refresh of the cheap parts on top of the latest full snapshot."""
    if full is None:
        return fresh
    refreshed = {spec.name for spec in COLLECTORS if spec.scrape == "refresh"}
    kept_errors = tuple(e for e in full.errors if e.collector not in refreshed)
    values: dict[str, Any] = {}
    for spec in COLLECTORS:
        if spec.scrape == "refresh":
            values[spec.field] = getattr(fresh, spec.field)
        elif spec.scrape == "if_missing":
            values[spec.field] = getattr(fresh, spec.field) or getattr(full, spec.field)
    return dataclasses.replace(
        full,
        captured_at=fresh.captured_at,
        duration_ms=fresh.duration_ms,
        errors=fresh.errors + kept_errors,
        **values,
    )


# --- orchestration ----------------------------------------------------------------------------
async def collect(
    db: Database,
    *,
    parts: Collection[str] = FULL_PARTS,
    options: CollectOptions | None = None,
    previous: Snapshot | None = None,
    query_baseline: QueryBaseline | None = None,
    today: date | None = None,
) -> Snapshot:
    """Run the collectors named in ``parts`` in one transaction and assemble a Snapshot.

    ``previous`` (the last full snapshot) gives counter differences; ``query_baseline`` gives
    statement differences; ``today`` (platform-local) enables the wedding count.
    """
    o = options or CollectOptions()
    unknown = set(parts) - set(FULL_PARTS)
    if unknown:
        raise ValueError(f"unknown collector(s): {', '.join(sorted(unknown))}")
    started = time.perf_counter()
    captured_at = datetime.now(UTC)
    async with db.ops(reason="monitor") as s:
        run = _Run(s, o)
        ctx = _Context(s, o, query_baseline, captured_at, today)
        for spec in COLLECTORS:
            if spec.name not in parts or (spec.needs_today and today is None):
                continue
            ctx.got[spec.field] = await run.guarded(
                spec.name, functools.partial(spec.run, ctx), heavy=spec.heavy
            )
        errors = tuple(run.errors)
    got = ctx.got
    database: DatabaseStats | None = got.get("database")
    expensive = any(spec.expensive for spec in COLLECTORS if spec.name in parts)
    return Snapshot(
        captured_at=captured_at,
        duration_ms=(time.perf_counter() - started) * 1000.0,
        deltas=(
            counter_deltas(previous.database, previous.captured_at, database, captured_at)
            if database is not None and previous is not None
            else None
        ),
        errors=errors,
        full_captured_at=captured_at if expensive else None,
        **got,
    )


async def _version(s: Session) -> int:
    return int(await s.fetch_val("select current_setting('server_version_num')::int"))
