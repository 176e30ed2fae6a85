"""Snapshots for the pure monitoring tests, built from the handful of figures a test is about.

The assessment reads the collectors' records; these helpers fill only the records a test names
(everything else stays None, as when its collector did not run).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from wedsync_db.monitor import snapshot as rec

CAPTURED = datetime(2026, 2, 10, 12, tzinfo=UTC)
_BLOCKS = 1_000_000


def activity(
    seconds: float, pid: int = 101, state: str = "active", query: str = "select * from guests"
) -> rec.SessionActivity:
    return rec.SessionActivity(
        pid, "vendor", "wedsync-vendor", None, state, None, None, seconds, None, query
    )


def blocking(
    blocked: int, blocker: int, wait: float, relation: str | None, blocked_q: str, blocker_q: str
) -> rec.BlockingPair:
    return rec.BlockingPair(
        blocked, "vendor", blocked_q, wait, "relation", "AccessExclusiveLock", relation,
        blocker, "ops", "active", blocker_q, None,
    )  # fmt: skip


def sequence(name: str, used_fraction: float) -> rec.SequenceUsage:
    schema, _, seq = name.partition(".")
    return rec.SequenceUsage(schema, seq, "integer", 0, 2**31 - 1, used_fraction, None)


def table(
    schema: str, name: str, dead: int, live: int, vacuumed_seconds_ago: float | None
) -> rec.TableMaintenance:
    last = (
        None if vacuumed_seconds_ago is None else CAPTURED - timedelta(seconds=vacuumed_seconds_ago)
    )
    return rec.TableMaintenance(
        schema, name, live, dead, None, last, None, 0, False, False, True, None, None
    )


def advice(
    kind: str, schema: str, name: str, index: str | None, detail: str, remedy: str | None
) -> rec.IndexAdvice:
    return rec.IndexAdvice(kind, schema, name, index, detail, remedy, None)


def statement(queryid: int, query: str, calls: int, total_ms: float) -> rec.QueryStat:
    return rec.QueryStat(queryid, query, calls, total_ms, calls, 0, 0, 0)


def _database(xid_remaining: int) -> rec.DatabaseStats:
    zero = dict.fromkeys(
        (
            "backends", "xact_commit", "xact_rollback", "blks_read", "blks_hit", "tup_returned",
            "tup_fetched", "tup_inserted", "tup_updated", "tup_deleted", "conflicts",
            "temp_files", "temp_bytes", "deadlocks", "sessions", "sessions_abandoned",
            "sessions_fatal", "sessions_killed", "heap_blks_hit", "heap_blks_read",
            "idx_blks_hit", "idx_blks_read",
        ),
        0,
    )  # fmt: skip
    return rec.DatabaseStats(
        database="w", checksum_failures=None, checksum_last_failure=None,
        blk_read_time_ms=0.0, blk_write_time_ms=0.0, session_time_ms=0.0, active_time_ms=0.0,
        idle_in_transaction_time_ms=0.0, stats_reset=None, conflicts_by_reason=None,
        parallel_workers_to_launch=None, parallel_workers_launched=None,
        xid_ages=(rec.DatabaseXid("w", rec.XID_WRAPAROUND_LIMIT - xid_remaining, 0),),
        **zero,
    )  # fmt: skip


def _blocks(cache: float | None, index: float | None) -> dict[str, int]:
    """Block counters whose hit ratios are ``cache`` (tables and indexes) and ``index``."""
    if index is None:
        hit = round((cache or 0.0) * _BLOCKS)
        return {"heap_blks_hit": hit, "heap_blks_read": _BLOCKS - hit}
    idx_hit = round(index * _BLOCKS)
    out = {"idx_blks_hit": idx_hit, "idx_blks_read": _BLOCKS - idx_hit}
    if cache is not None:
        # heap blocks all hits, as many as lift the overall ratio to ``cache``
        out["heap_blks_hit"] = round((cache * _BLOCKS - idx_hit) / (1.0 - cache))
    return out


def facts(
    *,
    connections_total: int | None = None,
    connections_max_usable: int | None = None,
    connections_by_audience: Mapping[str, int] | None = None,
    idle_in_transaction: tuple[rec.SessionActivity, ...] = (),
    long_running_queries: tuple[rec.SessionActivity, ...] = (),
    waiting_on_locks: int = 0,
    longest_transaction_seconds: float | None = None,
    cache_hit_ratio: float | None = None,
    index_hit_ratio: float | None = None,
    deadlocks_delta: int | None = None,
    temp_bytes_delta: int | None = None,
    blocking_chains: tuple[rec.BlockingPair, ...] = (),
    xid_remaining: int | None = None,
    sequences: tuple[rec.SequenceUsage, ...] = (),
    replication_lag_seconds: float | None = None,
    inactive_slots: tuple[str, ...] = (),
    dead_tuple_tables: tuple[rec.TableMaintenance, ...] = (),
    index_advice: tuple[rec.IndexAdvice, ...] | None = None,
    security_findings: tuple[rec.SecurityFinding, ...] | None = (),
    slow_queries: tuple[rec.QueryStat, ...] = (),
    database_size_bytes: int | None = None,
    collector_errors: tuple[rec.CollectorError, ...] = (),
    backups: rec.BackupStats | None = None,
    captured_at: datetime = CAPTURED,
) -> rec.Snapshot:
    """A snapshot holding the named figures."""
    connections = None
    if (
        connections_total is not None
        or connections_by_audience
        or idle_in_transaction
        or long_running_queries
        or waiting_on_locks
        or longest_transaction_seconds is not None
    ):
        audiences = dict(connections_by_audience or {})
        rest = (connections_total or 0) - sum(audiences.values())
        groups = [rec.ConnectionGroup(a, "active", n, 0, None, None) for a, n in audiences.items()]
        groups.append(
            rec.ConnectionGroup(
                "other", "active", max(rest, 0), waiting_on_locks, longest_transaction_seconds, None
            )
        )
        connections = rec.ConnectionStats(tuple(groups), idle_in_transaction, long_running_queries)
    server = None
    if connections_max_usable is not None:
        server = rec.ServerInfo(170000, "17", "w", CAPTURED, False, connections_max_usable, 0, 0)
    deltas = None
    if any(
        v is not None for v in (cache_hit_ratio, index_hit_ratio, deadlocks_delta, temp_bytes_delta)
    ):
        blocks = {"heap_blks_hit": 0, "heap_blks_read": 0, "idx_blks_hit": 0, "idx_blks_read": 0}
        if cache_hit_ratio is not None or index_hit_ratio is not None:
            blocks.update(_blocks(cache_hit_ratio, index_hit_ratio))
        deltas = rec.CounterDeltas(
            seconds=60.0, xact_commit=0, xact_rollback=0, deadlocks=deadlocks_delta or 0,
            temp_files=0, temp_bytes=temp_bytes_delta or 0, **blocks,
        )  # fmt: skip
    replication = None
    if replication_lag_seconds is not None or inactive_slots:
        replication = rec.ReplicationStats(
            in_recovery=replication_lag_seconds is not None,
            replay_lag_seconds=replication_lag_seconds,
            replicas=(),
            slots=tuple(
                rec.ReplicationSlot(s, "physical", None, False, None, None) for s in inactive_slots
            ),
        )
    maintenance = None
    if sequences or dead_tuple_tables:
        maintenance = rec.MaintenanceStats(
            table_count=len(dead_tuple_tables),
            dead_tuples=sum(t.dead_tuples for t in dead_tuple_tables),
            tables_due=0,
            tables=dead_tuple_tables,
            sequences=sequences,
        )
    queries = None
    if slow_queries:
        window = rec.QueryWindow(CAPTURED - timedelta(minutes=1), 60.0, 0, 0.0, 0, slow_queries)
        queries = rec.QueryStats(0, 0, 0.0, 0, None, None, window)
    return rec.Snapshot(
        captured_at=captured_at,
        duration_ms=1.0,
        server=server,
        connections=connections,
        database=None if xid_remaining is None else _database(xid_remaining),
        deltas=deltas,
        queries=queries,
        storage=(
            None
            if database_size_bytes is None
            else rec.StorageStats(database_size_bytes, 0, 0, 0, ())
        ),
        maintenance=maintenance,
        locks=rec.LockStats({}, {}, blocking_chains) if blocking_chains else None,
        replication=replication,
        indexes=index_advice,
        security=security_findings,
        backups=backups,
        errors=collector_errors,
        full_captured_at=captured_at,
    )
