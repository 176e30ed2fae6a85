"""Typed records of everything the collectors gather, and the pure arithmetic on them.

A :class:`Snapshot` holds current values (gauges) and cumulative server counters side by side;
rates and per-interval figures are differences between two snapshots, never resets of the
server's statistics. Nothing here does I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from wedsync_db.jsonable import JSON_TEXT, NOT_JSON, to_json

# Who a connection serves, from the application_name set by wedsync-db's clients
# (ops.connection_audience); "pool" is an idle connection parked in one of our pools.
AUDIENCES = ("vendor", "couple", "service", "ops", "pool", "other")
# The states pg_stat_activity reports for client backends.
CONNECTION_STATES = (
    "active",
    "idle",
    "idle in transaction",
    "idle in transaction (aborted)",
    "fastpath function call",
    "disabled",
)
LOCK_MODES = (
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
)
# Settings exposed with the server facts (the pg_settings families worth a dashboard), with the
# base unit setting_in_base_unit converts them to ("" for a plain number).
SERVER_SETTINGS: Mapping[str, str] = {
    "shared_buffers": "bytes",
    "effective_cache_size": "bytes",
    "work_mem": "bytes",
    "maintenance_work_mem": "bytes",
    "wal_buffers": "bytes",
    "max_wal_size": "bytes",
    "min_wal_size": "bytes",
    "checkpoint_timeout": "seconds",
    "max_worker_processes": "",
    "max_parallel_workers": "",
    "max_wal_senders": "",
    "max_replication_slots": "",
    "max_locks_per_transaction": "",
    "autovacuum_max_workers": "",
    "autovacuum_vacuum_scale_factor": "",
    "autovacuum_freeze_max_age": "",
    "statement_timeout": "seconds",
    "lock_timeout": "seconds",
    "idle_in_transaction_session_timeout": "seconds",
    "random_page_cost": "",
}
# 2^31: transaction IDs a database can consume past its oldest unfrozen one before wraparound.
XID_WRAPAROUND_LIMIT = 2**31
# Fewer block accesses than this say nothing about the working set: over an interval the cache
# hit ratio then falls back to the cumulative counters, and with fewer in total it is unknown.
MIN_INTERVAL_BLOCKS = 1_000
# Likewise for the rollback ratio: a handful of transactions is no trend.
MIN_INTERVAL_TRANSACTIONS = 100


# --- collector outcome ----------------------------------------------------------------------
def _largest(values: Iterable[float | None]) -> float | None:
    """The largest of the known values (None when none is known)."""
    return max((v for v in values if v is not None), default=None)


@dataclass(frozen=True)
class CollectorError:
    """A collector that could not run, what the server said, and what to do about it."""

    collector: str
    message: str
    hint: str


# --- server ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ServerInfo:
    """Version, limits and selected settings (memory in bytes, durations in seconds)."""

    version_num: int
    version: str
    database: str
    started_at: datetime
    in_recovery: bool
    max_connections: int
    superuser_reserved_connections: int
    # PostgreSQL 16+: slots kept for roles with pg_use_reserved_connections (0 before)
    reserved_connections: int
    settings: Mapping[str, float] = field(default_factory=dict)

    @property
    def max_usable_connections(self) -> int:
        """Connections ordinary logins can open."""
        reserved = self.superuser_reserved_connections + self.reserved_connections
        return max(0, self.max_connections - reserved)


# --- connections ----------------------------------------------------------------------------
@dataclass(frozen=True)
class ConnectionGroup:
    """One row of ops.connection_stats(): client connections of one audience in one state."""

    audience: str
    state: str
    connections: int
    waiting_on_locks: int
    longest_transaction_seconds: float | None
    longest_query_seconds: float | None


@dataclass(frozen=True)
class SessionActivity:
    """A client backend worth naming: a long statement or an idle open transaction."""

    pid: int
    audience: str
    application_name: str
    username: str | None
    state: str
    wait_event_type: str | None
    wait_event: str | None
    # for an active backend the statement's age, otherwise the time spent in its state
    seconds: float
    transaction_seconds: float | None
    query: str


@dataclass(frozen=True)
class ConnectionStats:
    """Client connections of the whole server (max_connections is a server-wide limit)."""

    groups: tuple[ConnectionGroup, ...]
    idle_in_transaction: tuple[SessionActivity, ...]
    long_running: tuple[SessionActivity, ...]

    @property
    def total(self) -> int:
        """All client connections."""
        return sum(g.connections for g in self.groups)

    @property
    def by_state(self) -> dict[str, int]:
        """Connections per pg_stat_activity state."""
        out: dict[str, int] = {}
        for g in self.groups:
            out[g.state] = out.get(g.state, 0) + g.connections
        return out

    @property
    def by_audience(self) -> dict[str, int]:
        """Connections per audience (every known audience present, zero when unused)."""
        out = dict.fromkeys(AUDIENCES, 0)
        for g in self.groups:
            out[g.audience] = out.get(g.audience, 0) + g.connections
        return out

    @property
    def waiting_on_locks(self) -> int:
        """Sessions currently waiting for a heavyweight lock."""
        return sum(g.waiting_on_locks for g in self.groups)

    @property
    def longest_transaction_seconds(self) -> float | None:
        """Age of the oldest open transaction, if any."""
        return _largest(g.longest_transaction_seconds for g in self.groups)


# --- database counters ----------------------------------------------------------------------
@dataclass(frozen=True)
class DatabaseXid:
    """Transaction-ID and multixact age of one database."""

    database: str
    xid_age: int
    mxid_age: int

    @property
    def xid_remaining(self) -> int:
        """Transaction IDs left before wraparound."""
        return XID_WRAPAROUND_LIMIT - self.xid_age


@dataclass(frozen=True)
class DatabaseStats:
    """pg_stat_database of the current database (cumulative) and every database's xid age."""

    database: str
    backends: int
    xact_commit: int
    xact_rollback: int
    blks_read: int
    blks_hit: int
    tup_returned: int
    tup_fetched: int
    tup_inserted: int
    tup_updated: int
    tup_deleted: int
    conflicts: int
    temp_files: int
    temp_bytes: int
    deadlocks: int
    checksum_failures: int | None
    checksum_last_failure: datetime | None
    blk_read_time_ms: float
    blk_write_time_ms: float
    sessions: int
    sessions_abandoned: int
    sessions_fatal: int
    sessions_killed: int
    session_time_ms: float
    active_time_ms: float
    idle_in_transaction_time_ms: float
    stats_reset: datetime | None
    # recovery conflicts by reason (lock, snapshot, bufferpin, deadlock, tablespace…)
    conflicts_by_reason: Mapping[str, int] | None
    # PostgreSQL 18+
    parallel_workers_to_launch: int | None
    parallel_workers_launched: int | None
    # user tables and indexes only (pg_statio_user_*), the part an application controls
    heap_blks_hit: int
    heap_blks_read: int
    idx_blks_hit: int
    idx_blks_read: int
    xid_ages: tuple[DatabaseXid, ...] = ()

    @property
    def xid_remaining(self) -> int | None:
        """The smallest number of transaction IDs left in any database of the server."""
        return min((d.xid_remaining for d in self.xid_ages), default=None)


@dataclass(frozen=True)
class CounterDeltas:
    """Differences of the database counters between two snapshots of the same stats epoch."""

    seconds: float
    xact_commit: int
    xact_rollback: int
    heap_blks_hit: int
    heap_blks_read: int
    idx_blks_hit: int
    idx_blks_read: int
    deadlocks: int
    temp_files: int
    temp_bytes: int


def counter_deltas(
    previous: DatabaseStats | None,
    previous_at: datetime | None,
    current: DatabaseStats,
    current_at: datetime,
) -> CounterDeltas | None:
    """Counter differences, or None across a statistics reset or without a previous sample."""
    if previous is None or previous_at is None or previous.database != current.database:
        return None
    if previous.stats_reset != current.stats_reset:
        return None
    names = (
        "xact_commit",
        "xact_rollback",
        "heap_blks_hit",
        "heap_blks_read",
        "idx_blks_hit",
        "idx_blks_read",
        "deadlocks",
        "temp_files",
        "temp_bytes",
    )
    diffs = {n: int(getattr(current, n)) - int(getattr(previous, n)) for n in names}
    if any(v < 0 for v in diffs.values()):
        return None
    seconds = (current_at - previous_at).total_seconds()
    if seconds <= 0:
        return None
    return CounterDeltas(seconds=seconds, **diffs)


def _ratio(hit: int, read: int, minimum: int = 1) -> float | None:
    total = hit + read
    return hit / total if total >= max(minimum, 1) else None


# --- background writer, checkpointer, WAL, archiver -----------------------------------------
@dataclass(frozen=True)
class BackgroundStats:
    """Checkpoints and buffer writes (cumulative); fields a server version lacks are None."""

    checkpoints_timed: int
    checkpoints_requested: int
    checkpoint_write_time_ms: float
    checkpoint_sync_time_ms: float
    buffers_checkpoint: int
    buffers_clean: int
    maxwritten_clean: int
    buffers_alloc: int
    # moved to pg_stat_io in PostgreSQL 17
    buffers_backend: int | None
    buffers_backend_fsync: int | None
    wal_records: int | None
    wal_fpi: int | None
    wal_bytes: int | None
    wal_buffers_full: int | None
    archived_count: int
    failed_count: int
    last_archived_age_seconds: float | None


# --- query statistics -----------------------------------------------------------------------
@dataclass(frozen=True)
class QueryCounters:
    """Cumulative pg_stat_statements counters of one entry (queryid, user, top level)."""

    queryid: int
    calls: int
    total_ms: float
    rows: int
    shared_blks_hit: int
    shared_blks_read: int
    temp_blks_written: int

    def minus(self, other: QueryCounters) -> QueryCounters:
        """Field-wise difference (same entry, later minus earlier)."""
        return QueryCounters(
            queryid=self.queryid,
            calls=self.calls - other.calls,
            total_ms=self.total_ms - other.total_ms,
            rows=self.rows - other.rows,
            shared_blks_hit=self.shared_blks_hit - other.shared_blks_hit,
            shared_blks_read=self.shared_blks_read - other.shared_blks_read,
            temp_blks_written=self.temp_blks_written - other.temp_blks_written,
        )

    def to_list(self) -> list[float | int]:
        """Compact form stored in ops.query_stats_baseline."""
        return [
            self.queryid,
            self.calls,
            self.total_ms,
            self.rows,
            self.shared_blks_hit,
            self.shared_blks_read,
            self.temp_blks_written,
        ]

    @classmethod
    def from_list(cls, values: list[Any]) -> QueryCounters:
        """Inverse of :meth:`to_list`."""
        q, calls, total, rows, hit, read, temp = values
        return cls(int(q), int(calls), float(total), int(rows), int(hit), int(read), int(temp))


@dataclass(frozen=True)
class QueryBaseline:
    """The cumulative counters of an earlier capture, against which differences are taken."""

    captured_at: datetime
    stats_reset: datetime | None
    counters: Mapping[str, QueryCounters]

    def to_json(self) -> dict[str, list[float | int]]:
        """The counters as stored in ops.query_stats_baseline."""
        return {k: c.to_list() for k, c in self.counters.items()}


@dataclass(frozen=True)
class QueryStat:
    """One statement over the interval between two captures (all counters are differences)."""

    queryid: int = field(metadata=JSON_TEXT)
    query: str
    calls: int
    total_ms: float
    rows: int
    shared_blks_hit: int
    shared_blks_read: int
    temp_blks_written: int

    @property
    def mean_ms(self) -> float:
        """Mean execution time over the interval."""
        return self.total_ms / self.calls if self.calls else 0.0


@dataclass(frozen=True)
class QueryWindow:
    """Statement activity between the baseline and this capture."""

    since: datetime
    seconds: float
    calls: int
    total_ms: float
    rows: int
    top: tuple[QueryStat, ...]


@dataclass(frozen=True)
class QueryStats:
    """pg_stat_statements of the current database: cumulative totals, and the interval since
    the previous capture when there was one."""

    statements: int
    calls: int
    total_ms: float
    rows: int
    stats_reset: datetime | None
    deallocations: int | None
    window: QueryWindow | None
    # every entry's cumulative counters: the baseline of the next difference (not in JSON)
    counters: Mapping[str, QueryCounters] = field(default_factory=dict, metadata=NOT_JSON)

    def baseline(self, captured_at: datetime) -> QueryBaseline:
        """These counters as the baseline of a later capture."""
        return QueryBaseline(captured_at, self.stats_reset, self.counters)


def query_differences(
    baseline: QueryBaseline | None,
    counters: Mapping[str, QueryCounters],
    stats_reset: datetime | None,
) -> dict[int, QueryCounters] | None:
    """Per-queryid counter differences since ``baseline`` (None without one).

    An entry absent from the baseline was created since (or evicted and re-created), and one
    whose calls went down was reset on its own: both count from zero. After a reset of the
    whole view every entry counts from zero.
    """
    if baseline is None:
        return None
    whole_reset = stats_reset is not None and stats_reset != baseline.stats_reset
    out: dict[int, QueryCounters] = {}
    for key, cur in counters.items():
        prev = None if whole_reset else baseline.counters.get(key)
        diff = cur if prev is None or cur.calls < prev.calls else cur.minus(prev)
        if diff.calls <= 0 and diff.total_ms <= 0:
            continue
        seen = out.get(cur.queryid)
        if seen is None:
            out[cur.queryid] = diff
        else:
            out[cur.queryid] = QueryCounters(
                queryid=cur.queryid,
                calls=seen.calls + diff.calls,
                total_ms=seen.total_ms + diff.total_ms,
                rows=seen.rows + diff.rows,
                shared_blks_hit=seen.shared_blks_hit + diff.shared_blks_hit,
                shared_blks_read=seen.shared_blks_read + diff.shared_blks_read,
                temp_blks_written=seen.temp_blks_written + diff.temp_blks_written,
            )
    return out


# --- storage and maintenance ----------------------------------------------------------------
@dataclass(frozen=True)
class TableSize:
    """On-disk size of one table (heap, indexes, TOAST)."""

    schema_name: str
    table_name: str
    total_bytes: int
    table_bytes: int
    index_bytes: int
    toast_bytes: int
    estimated_rows: int


@dataclass(frozen=True)
class StorageStats:
    """Database size, the largest tables, and the totals over every user table."""

    database_bytes: int
    table_count: int
    tables_bytes: int
    indexes_bytes: int
    largest: tuple[TableSize, ...]


@dataclass(frozen=True)
class TableMaintenance:
    """One row of ops.table_maintenance_report()."""

    schema_name: str
    table_name: str
    live_tuples: int
    dead_tuples: int
    dead_fraction: float | None
    last_vacuum: datetime | None
    last_analyze: datetime | None
    vacuum_threshold: int
    autovacuum_due: bool
    analyze_due: bool
    autovacuum_enabled: bool
    xid_age: int | None
    total_bytes: int | None


@dataclass(frozen=True)
class SequenceUsage:
    """How much of its range a sequence has used (the column type's range when narrower)."""

    schema_name: str
    sequence_name: str
    data_type: str
    last_value: int
    max_value: int
    used_fraction: float
    owned_by: str | None


@dataclass(frozen=True)
class MaintenanceStats:
    """Vacuum state of the tables most in need of it, and sequences filling up."""

    table_count: int
    dead_tuples: int
    tables_due: int
    tables: tuple[TableMaintenance, ...]
    sequences: tuple[SequenceUsage, ...]


# --- locks and replication ------------------------------------------------------------------
@dataclass(frozen=True)
class BlockingPair:
    """One edge of a blocking chain: ``blocked_pid`` waits for a lock ``blocking_pid`` holds."""

    blocked_pid: int
    blocked_audience: str
    blocked_query: str
    wait_seconds: float
    lock_type: str | None
    mode: str | None
    relation: str | None
    blocking_pid: int
    blocking_audience: str
    blocking_state: str
    blocking_query: str
    blocking_transaction_seconds: float | None


@dataclass(frozen=True)
class LockStats:
    """Heavyweight locks of the server by mode, and who blocks whom."""

    granted: Mapping[str, int]
    waiting: Mapping[str, int]
    blocking: tuple[BlockingPair, ...]


@dataclass(frozen=True)
class Replica:
    """A standby streaming from this server (pg_stat_replication)."""

    application_name: str
    client_addr: str | None
    state: str | None
    sync_state: str | None
    write_lag_seconds: float | None
    flush_lag_seconds: float | None
    replay_lag_seconds: float | None
    lag_bytes: int | None


@dataclass(frozen=True)
class ReplicationSlot:
    """A replication slot and the WAL it keeps."""

    slot_name: str
    slot_type: str
    database: str | None
    active: bool
    wal_status: str | None
    retained_bytes: int | None


@dataclass(frozen=True)
class ReplicationStats:
    """Replication seen from this server: as a standby (replay lag) or as a primary."""

    in_recovery: bool
    replay_lag_seconds: float | None
    replicas: tuple[Replica, ...]
    slots: tuple[ReplicationSlot, ...]

    @property
    def lag_seconds(self) -> float | None:
        """This standby's replay lag, or the largest replay lag of this primary's standbys."""
        if self.in_recovery:
            return self.replay_lag_seconds
        return _largest(r.replay_lag_seconds for r in self.replicas)


# --- backups --------------------------------------------------------------------------------
@dataclass(frozen=True)
class BackupStats:
    """WAL archiving and what the backup commands recorded in ops.backup_events."""

    archiving: bool
    # the login could take a physical backup (REPLICATION or SUPERUSER)
    can_replicate: bool
    archived_count: int
    failed_count: int
    last_archived_time: datetime | None
    last_failed_time: datetime | None
    # whether ops.backup_events exists (migration 0006); the rest is None/0 without it
    events_recorded: bool
    last_backup_at: datetime | None = None
    last_backup_failed_at: datetime | None = None
    last_verified_at: datetime | None = None
    last_verify_failed_at: datetime | None = None
    last_verified_kind: str | None = None
    last_verified_rpo_seconds: float | None = None
    last_backup_bytes: int | None = None
    backups_ok: int = 0
    backups_failed: int = 0
    verifications_ok: int = 0
    verifications_failed: int = 0

    @property
    def provider_managed(self) -> bool:
        """Neither archiving nor a login that could copy the server: a managed database,
        whose physical backups and point-in-time recovery are its provider's."""
        return not self.archiving and not self.can_replicate

    @property
    def archive_failing(self) -> bool:
        """The archiver's newest attempt failed (WAL piles up and point-in-time recovery
        stops at the last archived segment)."""
        failed, ok = self.last_failed_time, self.last_archived_time
        return failed is not None and (ok is None or failed > ok)

    @property
    def in_use(self) -> bool:
        """Backups are set up or have been taken here."""
        return self.archiving or self.backups_ok + self.backups_failed > 0

    @property
    def latest_verification_failed(self) -> bool:
        """The newest verification failed (one newer than the last good one)."""
        failed, ok = self.last_verify_failed_at, self.last_verified_at
        return failed is not None and (ok is None or failed > ok)


# --- plan usage -----------------------------------------------------------------------------
@dataclass(frozen=True)
class PlanUsage:
    """Plan usage across all organizations (migration 0008): counted rows, and how many
    organizations are at (usage = maximum) or over (after a downgrade) each limit."""

    organizations: int
    clients: int
    members: int
    weddings: int
    guests: int
    at_clients_limit: int
    over_clients_limit: int
    at_members_limit: int
    over_members_limit: int
    at_weddings_limit: int
    over_weddings_limit: int

    LIMITS: ClassVar[tuple[str, ...]] = ("clients", "members", "weddings")


# --- change feed ----------------------------------------------------------------------------
@dataclass(frozen=True)
class FeedStats:
    """The change feed's outbox: its size, its time span, and what holds its readers back."""

    changes: int
    bytes: int
    streams: int
    oldest_change_at: datetime | None
    newest_change_at: datetime | None
    # transaction ids between the commit watermark (the oldest running) and the next one
    watermark_lag_xids: int
    # the oldest transaction that has written something and not yet ended (None: none)
    oldest_writer_seconds: float | None


# --- advice ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class IndexAdvice:
    """One row of ops.index_recommendations()."""

    kind: str
    schema_name: str
    table_name: str
    index_name: str | None
    detail: str
    remedy: str | None
    size_bytes: int | None


@dataclass(frozen=True)
class SecurityFinding:
    """A security lint: the rule, the offending object, why, and the SQL remedy if any."""

    rule: str
    object: str
    detail: str
    remedy: str | None


# --- the snapshot ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Snapshot:
    """Everything one collection run gathered; a part is None when its collector failed or
    did not run (``errors`` says why)."""

    captured_at: datetime
    duration_ms: float
    server: ServerInfo | None = None
    connections: ConnectionStats | None = None
    database: DatabaseStats | None = None
    deltas: CounterDeltas | None = None
    background: BackgroundStats | None = None
    queries: QueryStats | None = None
    storage: StorageStats | None = None
    maintenance: MaintenanceStats | None = None
    locks: LockStats | None = None
    replication: ReplicationStats | None = None
    indexes: tuple[IndexAdvice, ...] | None = None
    security: tuple[SecurityFinding, ...] | None = None
    weddings_today: int | None = None
    backups: BackupStats | None = None
    plan_usage: PlanUsage | None = None
    feed: FeedStats | None = None
    errors: tuple[CollectorError, ...] = ()
    # when the expensive collectors (sizes, maintenance, advice) last ran
    full_captured_at: datetime | None = None

    # --- derived values -----------------------------------------------------------------
    @property
    def cache_hit_ratio(self) -> float | None:
        """Buffer cache hits of user tables and indexes over the last interval (cumulative
        when the interval saw too few block accesses); None while there are too few to judge."""
        d = self.deltas
        if d is not None:
            hit = d.heap_blks_hit + d.idx_blks_hit
            read = d.heap_blks_read + d.idx_blks_read
            if hit + read >= MIN_INTERVAL_BLOCKS:
                return _ratio(hit, read)
        db = self.database
        if db is None:
            return None
        return _ratio(
            db.heap_blks_hit + db.idx_blks_hit,
            db.heap_blks_read + db.idx_blks_read,
            MIN_INTERVAL_BLOCKS,
        )

    @property
    def index_hit_ratio(self) -> float | None:
        """Buffer cache hits of user indexes alone (same interval rule)."""
        d = self.deltas
        if d is not None and d.idx_blks_hit + d.idx_blks_read >= MIN_INTERVAL_BLOCKS:
            return _ratio(d.idx_blks_hit, d.idx_blks_read)
        db = self.database
        return (
            None if db is None else _ratio(db.idx_blks_hit, db.idx_blks_read, MIN_INTERVAL_BLOCKS)
        )

    @property
    def rollback_ratio(self) -> float | None:
        """Share of transactions rolled back (interval when busy enough, else cumulative)."""
        d = self.deltas
        if d is not None and d.xact_commit + d.xact_rollback >= MIN_INTERVAL_TRANSACTIONS:
            return d.xact_rollback / (d.xact_commit + d.xact_rollback)
        db = self.database
        if db is None or db.xact_commit + db.xact_rollback < MIN_INTERVAL_TRANSACTIONS:
            return None
        return db.xact_rollback / (db.xact_commit + db.xact_rollback)

    @property
    def connection_utilization(self) -> float | None:
        """Client connections over the usable maximum (0–1)."""
        if self.connections is None or self.server is None:
            return None
        usable = self.server.max_usable_connections
        return self.connections.total / usable if usable else None

    def age_seconds(self, moment: datetime | None) -> float | None:
        """Seconds from ``moment`` to this capture (never negative), None without one."""
        return None if moment is None else max(0.0, (self.captured_at - moment).total_seconds())

    def metrics(self) -> dict[str, float]:
        """Flat numeric metrics: what the history table stores and series are drawn from."""
        m: dict[str, float | int | None] = {}
        if self.connections is not None:
            c = self.connections
            m["connections_total"] = c.total
            m["connections_waiting"] = c.waiting_on_locks
            m["connections_idle_in_transaction"] = c.by_state.get(
                "idle in transaction", 0
            ) + c.by_state.get("idle in transaction (aborted)", 0)
            m["connections_active"] = c.by_state.get("active", 0)
            for audience, n in c.by_audience.items():
                m[f"connections_{audience}"] = n
            m["longest_transaction_seconds"] = c.longest_transaction_seconds
        m["connection_utilization"] = self.connection_utilization
        if self.server is not None:
            m["max_connections"] = self.server.max_connections
        if self.database is not None:
            db = self.database
            m["transactions_committed_total"] = db.xact_commit
            m["transactions_rolled_back_total"] = db.xact_rollback
            m["deadlocks_total"] = db.deadlocks
            m["temp_bytes_total"] = db.temp_bytes
            m["xid_remaining"] = db.xid_remaining
        m["cache_hit_ratio"] = self.cache_hit_ratio
        m["index_hit_ratio"] = self.index_hit_ratio
        m["rollback_ratio"] = self.rollback_ratio
        if self.deltas is not None:
            secs = self.deltas.seconds
            m["transactions_per_second"] = (
                self.deltas.xact_commit + self.deltas.xact_rollback
            ) / secs
            m["deadlocks_delta"] = self.deltas.deadlocks
            m["temp_bytes_delta"] = self.deltas.temp_bytes
        if self.queries is not None and self.queries.window is not None:
            w = self.queries.window
            m["query_calls_delta"] = w.calls
            m["query_exec_ms_delta"] = w.total_ms
            m["query_mean_ms"] = w.total_ms / w.calls if w.calls else None
        if self.locks is not None:
            # lock requests not granted (one session can wait for several); the sessions
            # waiting are connections_waiting
            m["lock_requests_waiting"] = sum(self.locks.waiting.values())
            m["blocked_sessions"] = len({b.blocked_pid for b in self.locks.blocking})
        if self.replication is not None:
            m["replication_lag_seconds"] = self.replication.lag_seconds
        if self.storage is not None:
            m["database_size_bytes"] = self.storage.database_bytes
            m["tables_bytes"] = self.storage.tables_bytes
            m["indexes_bytes"] = self.storage.indexes_bytes
        if self.maintenance is not None:
            m["dead_tuples_total"] = self.maintenance.dead_tuples
            m["tables_due_for_vacuum"] = self.maintenance.tables_due
        if self.weddings_today is not None:
            m["weddings_today"] = self.weddings_today
        if self.backups is not None:
            bk = self.backups
            m["wal_archived_total"] = bk.archived_count
            m["wal_archive_failed_total"] = bk.failed_count
            m["backup_age_seconds"] = self.age_seconds(bk.last_backup_at)
            m["backup_verified_age_seconds"] = self.age_seconds(bk.last_verified_at)
            m["wal_archived_age_seconds"] = self.age_seconds(bk.last_archived_time)
        if self.plan_usage is not None:
            u = self.plan_usage
            for name in ("organizations", "clients", "members", "weddings", "guests"):
                m[f"plan_{name}_total"] = getattr(u, name)
            for limit in u.LIMITS:
                m[f"organizations_at_{limit}_limit"] = getattr(u, f"at_{limit}_limit")
                m[f"organizations_over_{limit}_limit"] = getattr(u, f"over_{limit}_limit")
        if self.feed is not None:
            fd = self.feed
            m["feed_changes"] = fd.changes
            m["feed_bytes"] = fd.bytes
            m["feed_oldest_change_age_seconds"] = self.age_seconds(fd.oldest_change_at)
            m["feed_watermark_lag_xids"] = fd.watermark_lag_xids
            m["feed_oldest_writer_seconds"] = fd.oldest_writer_seconds
        return {k: float(v) for k, v in m.items() if v is not None and math.isfinite(float(v))}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form of everything collected (no internal baselines)."""
        out: dict[str, Any] = to_json(self)
        out["derived"] = {
            "cache_hit_ratio": self.cache_hit_ratio,
            "index_hit_ratio": self.index_hit_ratio,
            "rollback_ratio": self.rollback_ratio,
            "connection_utilization": self.connection_utilization,
        }
        return out


# --- settings -------------------------------------------------------------------------------
_MEMORY_UNITS = {"B": 1, "kB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
_TIME_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


def setting_in_base_unit(value: str, unit: str | None) -> float | None:
    """A pg_settings value in bytes or seconds (``8kB`` blocks become bytes); None if not
    numeric. ``-1`` (disabled) stays -1."""
    try:
        number = float(value)
    except ValueError:
        return None
    if not unit or number < 0:
        return number
    digits = "".join(ch for ch in unit if ch.isdigit())
    base = unit[len(digits) :]
    multiplier = float(digits) if digits else 1.0
    if base in _MEMORY_UNITS:
        return number * multiplier * _MEMORY_UNITS[base]
    if base in _TIME_UNITS:
        return number * multiplier * _TIME_UNITS[base]
    return number
