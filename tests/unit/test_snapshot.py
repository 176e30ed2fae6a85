"""Pure arithmetic on snapshots: statement differences, counter deltas, units, merging."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from wedsync_db.monitor.collectors import merge_scrape
from wedsync_db.monitor.snapshot import (
    CollectorError,
    ConnectionGroup,
    ConnectionStats,
    DatabaseStats,
    LockStats,
    QueryBaseline,
    QueryCounters,
    QueryStats,
    Snapshot,
    counter_deltas,
    query_differences,
    setting_in_base_unit,
)

T0 = datetime(2026, 6, 13, 12, 0, tzinfo=UTC)


def counters(queryid: int, calls: int, total_ms: float) -> QueryCounters:
    return QueryCounters(queryid, calls, total_ms, calls, calls * 10, calls, 0)


def database(**changes: object) -> DatabaseStats:
    base = DatabaseStats(
        database="w", backends=1, xact_commit=1000, xact_rollback=10, blks_read=5, blks_hit=95,
        tup_returned=0, tup_fetched=0, tup_inserted=0, tup_updated=0, tup_deleted=0,
        conflicts=0, temp_files=0, temp_bytes=0, deadlocks=0, checksum_failures=None,
        checksum_last_failure=None, blk_read_time_ms=0.0, blk_write_time_ms=0.0, sessions=1,
        sessions_abandoned=0, sessions_fatal=0, sessions_killed=0, session_time_ms=0.0,
        active_time_ms=0.0, idle_in_transaction_time_ms=0.0, stats_reset=None,
        conflicts_by_reason=None, parallel_workers_to_launch=None,
        parallel_workers_launched=None, heap_blks_hit=9_000, heap_blks_read=1_000,
        idx_blks_hit=0, idx_blks_read=0,
    )  # fmt: skip
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_query_differences_subtract_per_entry_and_sum_per_queryid() -> None:
    baseline = QueryBaseline(
        T0, None, {"1:10:1": counters(1, 5, 50.0), "2:10:1": counters(2, 3, 3.0)}
    )
    now = {
        "1:10:1": counters(1, 12, 120.0),  # +7 calls
        "1:11:1": counters(1, 2, 4.0),  # same statement, another user, new since the baseline
        "2:10:1": counters(2, 3, 3.0),  # idle: left out
        "3:10:1": counters(3, 1, 500.0),  # new statement
    }
    diffs = query_differences(baseline, now, None)
    assert diffs is not None
    assert set(diffs) == {1, 3}
    assert diffs[1].calls == 9 and diffs[1].total_ms == pytest.approx(74.0)
    assert diffs[3].calls == 1


def test_an_entry_reset_on_its_own_counts_from_zero() -> None:
    baseline = QueryBaseline(T0, None, {"1:10:1": counters(1, 100, 1000.0)})
    diffs = query_differences(baseline, {"1:10:1": counters(1, 4, 8.0)}, None)
    assert diffs is not None and diffs[1].calls == 4


def test_a_reset_of_the_whole_view_counts_everything_from_zero() -> None:
    baseline = QueryBaseline(T0, T0 - timedelta(days=1), {"1:10:1": counters(1, 2, 2.0)})
    diffs = query_differences(baseline, {"1:10:1": counters(1, 5, 5.0)}, T0 + timedelta(minutes=1))
    assert diffs is not None and diffs[1].calls == 5


def test_no_baseline_no_differences() -> None:
    assert query_differences(None, {"1:10:1": counters(1, 1, 1.0)}, None) is None


def test_baseline_round_trips_through_json() -> None:
    stats = QueryStats(1, 5, 50.0, 5, None, 0, None, {"1:10:1": counters(1, 5, 50.0)})
    stored = stats.baseline(T0).to_json()
    back = {k: QueryCounters.from_list(v) for k, v in stored.items()}
    assert back == dict(stats.counters)
    assert "counters" not in Snapshot(T0, 0.0, queries=stats).to_dict()["queries"]


def test_counter_deltas_and_interval_ratios() -> None:
    before = database()
    after = database(
        xact_commit=1900, xact_rollback=110, heap_blks_hit=10_000, heap_blks_read=2_000, deadlocks=2
    )
    d = counter_deltas(before, T0, after, T0 + timedelta(seconds=60))
    assert d is not None
    assert (d.xact_commit, d.xact_rollback, d.deadlocks, d.seconds) == (900, 100, 2, 60.0)
    snap = Snapshot(T0, 0.0, database=after, deltas=d)
    # the interval saw 1000 hits and 1000 reads: 50 %, although the cumulative ratio is 83 %
    assert snap.cache_hit_ratio == pytest.approx(0.5)
    assert snap.rollback_ratio == pytest.approx(0.1)


def test_counter_deltas_refuse_a_statistics_reset() -> None:
    after = database(stats_reset=T0, xact_commit=3)
    assert counter_deltas(database(), T0, after, T0 + timedelta(seconds=60)) is None


def test_too_few_block_accesses_give_no_cache_ratio() -> None:
    snap = Snapshot(T0, 0.0, database=database(heap_blks_hit=5, heap_blks_read=5))
    assert snap.cache_hit_ratio is None


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        ("16384", "8kB", 16384 * 8192.0),
        ("4096", "kB", 4096 * 1024.0),
        ("1024", "MB", 2.0**30),
        ("300", "s", 300.0),
        ("1500", "ms", 1.5),
        ("5", "min", 300.0),
        ("-1", "ms", -1.0),
        ("1.1", None, 1.1),
        ("on", None, None),
    ],
)
def test_settings_are_converted_to_base_units(
    value: str, unit: str | None, expected: float | None
) -> None:
    assert setting_in_base_unit(value, unit) == (pytest.approx(expected) if expected else expected)


def test_a_scrape_refresh_keeps_the_heavy_parts_and_their_errors() -> None:
    full = Snapshot(
        T0, 50.0, indexes=(), security=(),
        errors=(CollectorError("storage", "timeout", "hint"), CollectorError("locks", "x", "y")),
    )  # fmt: skip
    group = ConnectionGroup("vendor", "active", 3, 0, 1.0, 1.0)
    fresh = Snapshot(T0 + timedelta(seconds=20), 3.0, connections=ConnectionStats((group,), (), ()))
    merged = merge_scrape(fresh, full)
    assert merged.captured_at == fresh.captured_at and merged.connections is fresh.connections
    assert merged.indexes == () and merged.full_captured_at == full.full_captured_at
    assert [e.collector for e in merged.errors] == ["storage"]
    assert merged.connections is not None and merged.connections.by_audience["vendor"] == 3


def test_waiting_sessions_and_waiting_lock_requests_have_their_own_names() -> None:
    group = ConnectionGroup("vendor", "active", 3, 1, 1.0, 1.0)
    snap = Snapshot(
        T0, 1.0, connections=ConnectionStats((group,), (), ()),
        locks=LockStats({}, {"RowExclusiveLock": 2, "AccessExclusiveLock": 1}, ()),
    )  # fmt: skip
    m = snap.metrics()
    assert m["connections_waiting"] == 1.0  # one session
    assert m["lock_requests_waiting"] == 3.0  # waiting for three locks
    assert "locks_waiting" not in m
