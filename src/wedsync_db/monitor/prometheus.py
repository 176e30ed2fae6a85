"""Prometheus exposition of the monitor's cached snapshot, heartbeats and pool statistics.

Every family is named ``wedsync_db_*`` with its unit in the name. Statement statistics are
aggregated (no queryid label: one series per statement would explode the cardinality), and
per-table series are limited to the largest tables. Rendering does no I/O; the route decides
whether the snapshot needs a refresh first.

Freshness: connections, database counters, checkpointer / WAL, locks and replication are
refreshed on a scrape that finds the snapshot older than WEDSYNC_METRICS_MAX_AGE; sizes,
statement counters, maintenance, advice and server settings change slowly or cost a walk over
every table or statement, so they come from the sampler (every WEDSYNC_SAMPLE_INTERVAL).
``wedsync_db_snapshot_age_seconds`` says how old the scraped values are.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import TypeVar

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from wedsync_db.db.heartbeat import HeartbeatSnapshot
from wedsync_db.monitor.snapshot import CONNECTION_STATES, LOCK_MODES, SERVER_SETTINGS, Snapshot
from wedsync_db.monitor.thresholds import wedding_day_query_mean_ms

PREFIX = "wedsync_db_"
CONTENT_TYPE = CONTENT_TYPE_LATEST
_STATUS_VALUE = {"pass": 0.0, "warn": 1.0, "fail": 2.0}
# Per-table series for the largest / most dead-rowed tables only: dashboards show the top
# offenders, and every extra series costs render time here and memory in Prometheus.
TABLE_SERIES = 20
# psycopg_pool statistics: key → family suffix, help (and for counters the scale to seconds)
_POOL_GAUGES = (
    ("pool_min", "pool_min_connections", "Minimum connections the pool keeps"),
    ("pool_max", "pool_max_connections", "Maximum connections of the pool"),
    ("pool_size", "pool_size_connections", "Connections the pool holds (in use or idle)"),
    ("pool_available", "pool_available_connections", "Idle connections ready in the pool"),
    ("requests_waiting", "pool_waiting_requests", "Requests queued for a connection now"),
)
_POOL_COUNTERS = (
    ("requests_num", "pool_requests", "Connection requests", 1.0),
    ("requests_queued", "pool_requests_queued", "Requests that had to wait", 1.0),
    ("requests_wait_ms", "pool_requests_wait_seconds", "Time requests waited", 1e-3),
    ("requests_errors", "pool_requests_errors", "Requests that failed (timeout, full)", 1.0),
    ("usage_ms", "pool_usage_seconds", "Time connections spent checked out", 1e-3),
    ("returns_bad", "pool_returns_bad", "Connections returned broken", 1.0),
    ("connections_num", "pool_connections_opened", "Connections opened", 1.0),
    ("connections_ms", "pool_connect_seconds", "Time spent opening connections", 1e-3),
    ("connections_errors", "pool_connection_errors", "Failed connection attempts", 1.0),
    ("connections_lost", "pool_connections_lost", "Connections found broken", 1.0),
    (
        "read_retries",
        "read_retries",
        "Reads retried once on a fresh connection after the connection failed",
        1.0,
    ),
)


_F = TypeVar("_F", GaugeMetricFamily, CounterMetricFamily)


def _g(name: str, doc: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, doc, labels=list(labels))


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    """A gauge without labels and its one value."""
    return _with(_g(name, doc), value)


def _c(name: str, doc: str, labels: Iterable[str] = ()) -> CounterMetricFamily:
    return CounterMetricFamily(PREFIX + name, doc, labels=list(labels))


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    """A counter without labels and its one value."""
    return _with(_c(name, doc), value)


def _counters(table: Iterable[tuple[str, str, float | None]]) -> Iterator[CounterMetricFamily]:
    """A counter without labels for each (name, doc, value) whose value is known."""
    for name, doc, value in table:
        if value is not None:
            yield _counter(name, doc, float(value))


def _with(family: _F, value: float) -> _F:
    family.add_metric([], value)
    return family


def _labelled(
    name: str, doc: str, label: str, values: Iterable[tuple[str, float]]
) -> CounterMetricFamily:
    """A counter family with one labelled sample per (label value, value)."""
    c = _c(name, doc, [label])
    for key, value in values:
        c.add_metric([key], float(value))
    return c


def _value(family: GaugeMetricFamily | CounterMetricFamily, value: float | None) -> None:
    if value is not None and math.isfinite(value):
        family.add_metric([], float(value))


def families(
    snap: Snapshot | None,
    *,
    up: bool,
    scrapes: int,
    scrape_errors: Mapping[str, int],
    query_totals: tuple[int, float, int] | None,
    heartbeats: Mapping[str, HeartbeatSnapshot],
    pool_stats: Mapping[str, Mapping[str, int]],
    health_status: str | None = None,
    now: datetime | None = None,
    heartbeat_stale_after: float | None = None,
) -> Iterator[Metric]:
    """Every metric family for one scrape (pure: all inputs are in memory)."""
    now = now or datetime.now(UTC)
    # up tells the same story as health: the collection reached the database and every pool's
    # heartbeat is passing and fresh
    reachable = all(
        hb.healthy
        and (heartbeat_stale_after is None or hb.stale(now, heartbeat_stale_after) is None)
        for hb in heartbeats.values()
    )
    yield _gauge(
        "up",
        "1 when the database answers: the latest collection and every heartbeat",
        1.0 if up and reachable else 0.0,
    )
    yield _counter("scrapes", "Prometheus scrapes served", float(scrapes))
    errors = _c("scrape_errors", "Collector failures since start", ["collector"])
    for collector, n in sorted(scrape_errors.items()):
        errors.add_metric([collector], float(n))
    yield errors
    if health_status is not None:
        yield _gauge(
            "health_status",
            "Latest assessment: 0 pass, 1 warn, 2 fail",
            _STATUS_VALUE.get(health_status, 2.0),
        )
    yield from _heartbeat(heartbeats, now)
    yield from _pools(pool_stats)
    if snap is None:
        return
    yield _gauge(
        "scrape_duration_seconds", "Time the latest collection took", snap.duration_ms / 1000.0
    )
    yield _gauge(
        "snapshot_age_seconds",
        "Age of the snapshot these values come from",
        max(0.0, (now - snap.captured_at).total_seconds()),
    )
    yield from _server(snap)
    yield from _connections(snap)
    yield from _database(snap)
    yield from _background(snap)
    yield from _queries(snap, query_totals)
    yield from _locks(snap)
    yield from _replication(snap)
    yield from _storage(snap)
    yield from _advice(snap)
    yield from _backups(snap, now)
    yield from _plan_usage(snap)
    yield from _feed(snap, now)
    if snap.weddings_today is not None:
        yield _gauge(
            "weddings_today", "Weddings scheduled today (platform time)", float(snap.weddings_today)
        )


def _heartbeat(heartbeats: Mapping[str, HeartbeatSnapshot], now: datetime) -> Iterator[Metric]:
    latency = _g(
        "heartbeat_latency_seconds",
        "Heartbeat round trip over the rolling window",
        ["pool", "quantile"],
    )
    failures = _c("heartbeat_failures", "Failed heartbeat probes", ["pool"])
    streak = _g("heartbeat_consecutive_failures", "Failed probes in a row", ["pool"])
    healthy = _g("heartbeat_up", "1 when the latest probe succeeded", ["pool"])
    age = _g("heartbeat_age_seconds", "Seconds since the latest successful probe", ["pool"])
    for name, hb in sorted(heartbeats.items()):
        seconds = hb.age(now)
        if seconds is not None:
            age.add_metric([name], seconds)
        for q, v in (("0.5", hb.p50_ms), ("0.95", hb.p95_ms), ("0.99", hb.p99_ms)):
            if not math.isnan(v):
                latency.add_metric([name, q], v / 1000.0)
        failures.add_metric([name], float(hb.total_failures))
        streak.add_metric([name], float(hb.consecutive_failures))
        healthy.add_metric([name], 1.0 if hb.healthy else 0.0)
    yield from (latency, failures, streak, healthy, age)


def _pools(pool_stats: Mapping[str, Mapping[str, int]]) -> Iterator[Metric]:
    for key, name, doc in _POOL_GAUGES:
        f = _g(name, doc, ["pool"])
        for pool, stats in sorted(pool_stats.items()):
            f.add_metric([pool], float(stats.get(key, 0)))
        yield f
    for key, name, doc, scale in _POOL_COUNTERS:
        c = _c(name, doc, ["pool"])
        for pool, stats in sorted(pool_stats.items()):
            c.add_metric([pool], float(stats.get(key, 0)) * scale)
        yield c


def _server(snap: Snapshot) -> Iterator[Metric]:
    s = snap.server
    if s is None:
        return
    f = _g("server_info", "Server version (value always 1)", ["version", "database"])
    f.add_metric([s.version, s.database], 1.0)
    yield f
    yield _gauge(
        "start_time_seconds", "When the server started (Unix time)", s.started_at.timestamp()
    )
    f = _g("in_recovery", "1 on a standby")
    # the replication collector runs on every scrape, the server facts only with the sampler
    standby = snap.replication.in_recovery if snap.replication else s.in_recovery
    f.add_metric([], 1.0 if standby else 0.0)
    yield f
    yield _gauge("max_connections", "max_connections setting", float(s.max_connections))
    f = _g("reserved_connections", "Connection slots reserved for privileged roles", ["kind"])
    f.add_metric(["superuser"], float(s.superuser_reserved_connections))
    f.add_metric(["reserved"], float(s.reserved_connections))
    yield f
    yield _gauge(
        "connections_max_usable",
        "Connections ordinary logins can open",
        float(s.max_usable_connections),
    )
    for name, value in sorted(s.settings.items()):
        yield _setting(name, value)


def _setting(name: str, value: float) -> GaugeMetricFamily:
    unit = SERVER_SETTINGS.get(name, "")
    suffix = f"_{unit}" if unit else ""
    f = _g(f"settings_{name}{suffix}", f"Server setting {name}")
    f.add_metric([], value)
    return f


def _connections(snap: Snapshot) -> Iterator[Metric]:
    c = snap.connections
    if c is None:
        return
    by_state = c.by_state
    f = _g("connections", "Client connections of the server by state", ["state"])
    for state in sorted(set(CONNECTION_STATES) | set(by_state)):
        f.add_metric([state], float(by_state.get(state, 0)))
    yield f
    f = _g("connections_by_audience", "Client connections by audience", ["audience"])
    for audience, n in c.by_audience.items():
        f.add_metric([audience], float(n))
    yield f
    yield _gauge("locks_waiting", "Sessions waiting for a lock", float(c.waiting_on_locks))
    yield _gauge(
        "longest_transaction_seconds",
        "Age of the oldest open transaction",
        c.longest_transaction_seconds or 0.0,
    )
    yield _gauge(
        "long_running_queries",
        "Statements running longer than the collection cutoff",
        float(len(c.long_running)),
    )
    utilization = snap.connection_utilization
    if utilization is not None:
        yield _gauge(
            "connection_utilization_ratio",
            "Client connections over the usable maximum",
            utilization,
        )


def _database(snap: Snapshot) -> Iterator[Metric]:
    d = snap.database
    if d is None:
        return
    yield _gauge("backends", "Backends connected to this database", float(d.backends))
    counters = (
        ("transactions_committed", "Transactions committed", d.xact_commit),
        ("transactions_rolled_back", "Transactions rolled back", d.xact_rollback),
        ("blocks_read", "Blocks read from disk (or the OS cache)", d.blks_read),
        ("blocks_hit", "Blocks found in shared buffers", d.blks_hit),
        ("temp_files", "Temporary files created", d.temp_files),
        ("temp_bytes", "Bytes written to temporary files", d.temp_bytes),
        ("deadlocks", "Deadlocks detected", d.deadlocks),
        ("checksum_failures", "Data page checksum failures", d.checksum_failures or 0),
        ("sessions", "Sessions established", d.sessions),
    )
    yield from _counters(counters)
    yield _labelled(
        "conflicts",
        "Queries cancelled by recovery conflicts",
        "reason",
        sorted((d.conflicts_by_reason or {"all": d.conflicts}).items()),
    )
    yield _labelled(
        "rows",
        "Rows processed by operation",
        "operation",
        [
            (op, getattr(d, f"tup_{op}"))
            for op in ("returned", "fetched", "inserted", "updated", "deleted")
        ],
    )
    yield _labelled(
        "sessions_ended",
        "Sessions that did not end normally",
        "reason",
        [(why, getattr(d, f"sessions_{why}")) for why in ("abandoned", "fatal", "killed")],
    )
    yield _labelled(
        "session_time_seconds",
        "Time spent by sessions",
        "state",
        [
            ("all", d.session_time_ms / 1000.0),
            ("active", d.active_time_ms / 1000.0),
            ("idle_in_transaction", d.idle_in_transaction_time_ms / 1000.0),
        ],
    )
    yield _labelled(
        "block_io_seconds",
        "Time spent reading and writing blocks",
        "direction",
        [("read", d.blk_read_time_ms / 1000.0), ("write", d.blk_write_time_ms / 1000.0)],
    )
    if d.parallel_workers_launched is not None:
        yield _labelled(
            "parallel_workers",
            "Parallel workers planned and launched",
            "outcome",
            [
                ("planned", d.parallel_workers_to_launch or 0),
                ("launched", d.parallel_workers_launched),
            ],
        )
    yield _gauge(
        "checksum_last_failure_timestamp_seconds",
        "Last checksum failure (0: never)",
        d.checksum_last_failure.timestamp() if d.checksum_last_failure else 0.0,
    )
    yield _gauge(
        "stats_reset_timestamp_seconds",
        "Last reset of the database statistics (0: never)",
        d.stats_reset.timestamp() if d.stats_reset else 0.0,
    )
    for name, doc, ratio in (
        ("cache_hit_ratio", "Buffer cache hits of user tables and indexes", snap.cache_hit_ratio),
        ("index_hit_ratio", "Buffer cache hits of user indexes", snap.index_hit_ratio),
        ("rollback_ratio", "Share of transactions rolled back", snap.rollback_ratio),
    ):
        f = _g(name, doc)
        _value(f, ratio)
        yield f
    f = _g("xid_remaining", "Transaction IDs left before wraparound (smallest of any database)")
    _value(f, d.xid_remaining)
    yield f
    ages = _g("xid_age", "Age of the oldest unfrozen transaction ID per database", ["database"])
    for x in d.xid_ages:
        ages.add_metric([x.database], float(x.xid_age))
    yield ages


def _background(snap: Snapshot) -> Iterator[Metric]:
    b = snap.background
    if b is None:
        return
    yield _labelled(
        "checkpoints",
        "Checkpoints performed",
        "kind",
        [("timed", b.checkpoints_timed), ("requested", b.checkpoints_requested)],
    )
    yield _labelled(
        "checkpoint_time_seconds",
        "Time spent in checkpoints",
        "phase",
        [
            ("write", b.checkpoint_write_time_ms / 1000.0),
            ("sync", b.checkpoint_sync_time_ms / 1000.0),
        ],
    )
    written = [("checkpointer", b.buffers_checkpoint), ("bgwriter", b.buffers_clean)]
    if b.buffers_backend is not None:
        written.append(("backend", b.buffers_backend))
    yield _labelled("buffers_written", "Buffers written", "by", written)
    simple = (
        (
            "bgwriter_maxwritten_clean",
            "Background writer stops for writing too many buffers",
            b.maxwritten_clean,
        ),
        ("buffers_allocated", "Buffers allocated", b.buffers_alloc),
        ("buffers_backend_fsync", "Backends that had to fsync themselves", b.buffers_backend_fsync),
        ("wal_records", "WAL records generated", b.wal_records),
        ("wal_fpi", "WAL full-page images generated", b.wal_fpi),
        ("wal_bytes", "WAL generated", b.wal_bytes),
        ("wal_buffers_full", "Times WAL buffers were full", b.wal_buffers_full),
        ("wal_archived", "WAL files archived", b.archived_count),
        ("wal_archive_failed", "Failed WAL archive attempts", b.failed_count),
    )
    yield from _counters(simple)
    f = _g("wal_last_archive_age_seconds", "Time since the last WAL file was archived (NaN: never)")
    age = b.last_archived_age_seconds
    f.add_metric([], age if age is not None else math.nan)
    yield f


def _queries(snap: Snapshot, totals: tuple[int, float, int] | None) -> Iterator[Metric]:
    q = snap.queries
    if q is None:
        return
    calls, exec_ms, rows = totals if totals is not None else (q.calls, q.total_ms, q.rows)
    yield _counter(
        "query_calls", "Statement executions (pg_stat_statements, all statements)", float(calls)
    )
    yield _counter(
        "query_exec_seconds", "Statement execution time (pg_stat_statements)", exec_ms / 1000.0
    )
    yield _counter("query_rows", "Rows returned or affected by statements", float(rows))
    yield _gauge(
        "query_statements",
        "Statements tracked by pg_stat_statements in this database",
        float(q.statements),
    )
    if q.deallocations is not None:
        yield _counter(
            "query_stats_deallocations",
            "pg_stat_statements entries evicted",
            float(q.deallocations),
        )
    if q.window is not None:
        limit = wedding_day_query_mean_ms()
        yield _gauge(
            "queries_over_wedding_day_latency",
            f"Statements whose mean time in the last interval exceeded {limit:g} ms",
            float(sum(1 for s in q.window.top if s.calls and s.mean_ms > limit)),
        )


def _locks(snap: Snapshot) -> Iterator[Metric]:
    lk = snap.locks
    if lk is None:
        return
    f = _g("locks", "Heavyweight locks of the server by mode (granted and waiting)", ["mode"])
    for mode in sorted(set(LOCK_MODES) | set(lk.granted) | set(lk.waiting)):
        f.add_metric([mode], float(lk.granted.get(mode, 0) + lk.waiting.get(mode, 0)))
    yield f
    yield _gauge(
        "blocked_sessions",
        "Sessions blocked by another session's lock",
        float(len({b.blocked_pid for b in lk.blocking})),
    )
    yield _gauge(
        "lock_wait_longest_seconds",
        "Longest current lock wait",
        max((b.wait_seconds for b in lk.blocking), default=0.0),
    )


def _replication(snap: Snapshot) -> Iterator[Metric]:
    r = snap.replication
    if r is None:
        return
    f = _g("replication_lag_seconds", "Replay lag of this standby, or the largest of its standbys")
    _value(f, r.lag_seconds)
    yield f
    yield _gauge("replicas", "Standbys streaming from this server", float(len(r.replicas)))
    # standbys often share the default application_name (walreceiver): the address tells them apart
    labels = ["application_name", "client_addr"]
    lag_bytes = _g("replica_lag_bytes", "WAL not yet replayed by a standby", labels)
    lag_s = _g("replica_replay_lag_seconds", "Replay lag of a standby", labels)
    for rep in r.replicas:
        key = [rep.application_name, rep.client_addr or "local"]
        if rep.lag_bytes is not None:
            lag_bytes.add_metric(key, float(rep.lag_bytes))
        if rep.replay_lag_seconds is not None:
            lag_s.add_metric(key, rep.replay_lag_seconds)
    yield from (lag_bytes, lag_s)
    active = _g(
        "replication_slot_active", "1 when the slot's consumer is connected", ["slot", "type"]
    )
    retained = _g("replication_slot_retained_bytes", "WAL kept for the slot", ["slot"])
    for slot in r.slots:
        active.add_metric([slot.slot_name, slot.slot_type], 1.0 if slot.active else 0.0)
        if slot.retained_bytes is not None:
            retained.add_metric([slot.slot_name], float(slot.retained_bytes))
    yield from (active, retained)


def _plan_usage(snap: Snapshot) -> Iterator[Metric]:
    u = snap.plan_usage
    if u is None:
        return
    rows = _g("plan_usage_rows", "Rows counted against plan limits, by kind", ["kind"])
    for kind in ("organizations", *u.LIMITS, "guests"):
        rows.add_metric([kind], float(getattr(u, kind)))
    yield rows
    at = _g(
        "plan_organizations_at_limit",
        "Organizations at (usage = maximum) or over (after a downgrade) a plan limit",
        ["limit", "state"],
    )
    for limit in u.LIMITS:
        at.add_metric([limit, "at"], float(getattr(u, f"at_{limit}_limit")))
        at.add_metric([limit, "over"], float(getattr(u, f"over_{limit}_limit")))
    yield at


def _feed(snap: Snapshot, now: datetime) -> Iterator[Metric]:
    fd = snap.feed
    if fd is None:
        return
    yield _gauge("feed_changes", "Changes kept in the change feed's outbox", float(fd.changes))
    yield _gauge("feed_bytes", "Size of the change feed's outbox with its indexes", float(fd.bytes))
    yield _gauge(
        "feed_streams", "Streams (weddings, organizations) with changes", float(fd.streams)
    )
    for name, doc, moment in (
        ("feed_oldest_change_age_seconds", "Age of the oldest change kept", fd.oldest_change_at),
        ("feed_newest_change_age_seconds", "Age of the newest change", fd.newest_change_at),
    ):
        if moment is not None:
            yield _gauge(name, doc, max(0.0, (now - moment).total_seconds()))
    yield _gauge(
        "feed_watermark_lag_transactions",
        "Transaction ids between the commit watermark (oldest running) and the next one",
        float(fd.watermark_lag_xids),
    )
    yield _gauge(
        "feed_oldest_writer_seconds",
        "Age of the oldest transaction that has written and not ended (0: none)",
        float(fd.oldest_writer_seconds or 0.0),
    )


def _backups(snap: Snapshot, now: datetime) -> Iterator[Metric]:
    bk = snap.backups
    if bk is None:
        return
    yield _gauge(
        "backup_archiving",
        "1 when the server archives WAL (point-in-time recovery)",
        1.0 if bk.archiving else 0.0,
    )
    yield _gauge(
        "backup_provider_managed",
        "1 when backups are the provider's (no archiving, no REPLICATION for this login)",
        1.0 if bk.provider_managed else 0.0,
    )
    yield _counter(
        "wal_archived_segments", "WAL segments the archiver has archived", float(bk.archived_count)
    )
    yield _counter(
        "wal_archive_failures", "Failed attempts to archive a WAL segment", float(bk.failed_count)
    )
    if bk.archiving and bk.last_archived_time is not None:
        yield _gauge(
            "backup_rpo_seconds",
            "Seconds since the newest WAL segment was archived: what losing the server now loses",
            max(0.0, (now - bk.last_archived_time).total_seconds()),
        )
    for name, doc, moment in (
        (
            "backup_last_success_timestamp_seconds",
            "When the newest good backup finished",
            bk.last_backup_at,
        ),
        (
            "backup_last_verified_timestamp_seconds",
            "When the newest successful verification finished",
            bk.last_verified_at,
        ),
    ):
        if moment is not None:
            f = _g(name, doc)
            f.add_metric([], moment.timestamp())
            yield f
    if bk.last_verified_at is not None:
        yield _gauge(
            "backup_last_verified_age_seconds",
            "Age of the newest verification that proved a backup restorable",
            max(0.0, (now - bk.last_verified_at).total_seconds()),
        )
    if bk.last_backup_bytes is not None:
        yield _gauge(
            "backup_last_size_bytes", "Size of the newest good backup", float(bk.last_backup_bytes)
        )
    c = _c("backups", "Backups taken, by result", ["result"])
    c.add_metric(["ok"], float(bk.backups_ok))
    c.add_metric(["failed"], float(bk.backups_failed))
    yield c
    c = _c("backup_verifications", "Backup verifications, by result", ["result"])
    c.add_metric(["ok"], float(bk.verifications_ok))
    c.add_metric(["failed"], float(bk.verifications_failed))
    yield c


def _storage(snap: Snapshot) -> Iterator[Metric]:
    st = snap.storage
    if st is not None:
        yield _gauge(
            "database_size_bytes",
            "Size of the database on disk (refreshed with each sample)",
            float(st.database_bytes),
        )
        yield _gauge("tables", "User tables", float(st.table_count))
        yield _gauge(
            "tables_size_bytes", "Heap and TOAST size of all user tables", float(st.tables_bytes)
        )
        yield _gauge(
            "indexes_size_bytes", "Size of all indexes of user tables", float(st.indexes_bytes)
        )
        f = _g("table_size_bytes", "Total size of the largest tables", ["schema", "table"])
        for t in st.largest[:TABLE_SERIES]:
            f.add_metric([t.schema_name, t.table_name], float(t.total_bytes))
        yield f
    m = snap.maintenance
    if m is not None:
        dead = _g("table_dead_tuples", "Dead rows awaiting vacuum", ["schema", "table"])
        for row in m.tables[:TABLE_SERIES]:
            dead.add_metric([row.schema_name, row.table_name], float(row.dead_tuples))
        yield dead
        yield _gauge("dead_tuples", "Dead rows in all user tables", float(m.dead_tuples))
        yield _gauge(
            "tables_due_for_vacuum", "Tables past their autovacuum threshold", float(m.tables_due)
        )
        f = _g("sequence_used_ratio", "Share of its range a sequence has used", ["sequence"])
        for s in m.sequences:
            f.add_metric([f"{s.schema_name}.{s.sequence_name}"], s.used_fraction)
        yield f


def _advice(snap: Snapshot) -> Iterator[Metric]:
    if snap.indexes is not None:
        f = _g("index_advice", "Index recommendations by kind", ["kind"])
        counts: dict[str, int] = {}
        for i in snap.indexes:
            counts[i.kind] = counts.get(i.kind, 0) + 1
        for kind in sorted({"invalid", "unused", "duplicate", "missing", "unindexed_fk", *counts}):
            f.add_metric([kind], float(counts.get(kind, 0)))
        yield f
    if snap.security is not None:
        f = _g("security_findings", "Security lint findings by rule", ["rule"])
        rules: dict[str, int] = {}
        for finding in snap.security:
            rules[finding.rule] = rules.get(finding.rule, 0) + 1
        for rule, n in sorted(rules.items()):
            f.add_metric([rule], float(n))
        yield f
