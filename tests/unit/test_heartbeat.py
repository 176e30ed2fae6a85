"""Heartbeat bookkeeping (pure): rolling window, percentiles, failure streaks."""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta

import pytest

from wedsync_db.db.backoff import Backoff
from wedsync_db.db.heartbeat import HeartbeatState, OutageLog, percentile

T0 = datetime(2027, 6, 12, 14, 0, tzinfo=UTC)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7.0
    assert percentile([1.0, 2.0], 0) == 1.0
    assert math.isnan(percentile([], 50))


def test_a_new_state_is_not_healthy_and_has_no_numbers() -> None:
    snap = HeartbeatState(pool="user").snapshot()
    assert not snap.healthy
    assert snap.samples == 0 and snap.total_probes == 0
    d = snap.to_dict()
    assert d["p50_ms"] is None and d["p99_ms"] is None and d["last_ms"] is None
    assert d["last_probe"] is None and d["healthy"] is False


def test_the_window_keeps_only_the_latest_samples() -> None:
    state = HeartbeatState(pool="user", window=3)
    for latency in (100.0, 1.0, 2.0, 3.0):
        state.record_success(latency, at=T0)
    snap = state.snapshot()
    assert snap.samples == 3
    assert snap.p99_ms == 3.0  # the 100 ms outlier has left the window
    assert snap.p50_ms == 2.0
    assert snap.last_ms == 3.0
    assert snap.total_probes == 4


def test_failures_count_and_a_success_ends_the_streak() -> None:
    state = HeartbeatState(pool="service")
    state.record_success(5.0, at=T0)
    state.record_failure("database unavailable: connection refused", at=T0)
    state.record_failure("database unavailable: connection refused", at=T0)
    snap = state.snapshot()
    assert not snap.healthy and not state.healthy
    assert snap.consecutive_failures == 2 and snap.total_failures == 2
    assert snap.last_error == "database unavailable: connection refused"
    assert snap.last_success == T0
    assert snap.samples == 1  # failures add no latency sample

    later = datetime(2027, 6, 12, 14, 1, tzinfo=UTC)
    state.record_success(4.0, at=later)
    snap = state.snapshot()
    assert snap.healthy
    assert snap.consecutive_failures == 0
    assert snap.total_failures == 2 and snap.total_probes == 4
    assert snap.last_success == snap.last_probe == later


def test_snapshots_are_independent_of_later_probes() -> None:
    state = HeartbeatState(pool="user")
    state.record_success(1.0, at=T0)
    snap = state.snapshot()
    state.record_failure("boom", at=T0)
    assert snap.healthy and snap.consecutive_failures == 0
    with pytest.raises(AttributeError):
        snap.samples = 9  # type: ignore[misc]


def test_to_dict_is_json_ready() -> None:
    state = HeartbeatState(pool="user")
    state.record_success(1.23456, at=T0)
    d = state.snapshot().to_dict()
    assert d["p50_ms"] == 1.235
    assert d["last_success"] == T0.isoformat()
    assert d["pool"] == "user" and d["healthy"] is True


def test_an_outage_is_logged_once_when_it_starts_and_once_with_a_summary_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outage = OutageLog("user", logging.getLogger("test.outage"))
    with caplog.at_level(logging.INFO, logger="test.outage"):
        outage.recovered(at=T0)  # no outage: nothing to say
        for second in range(27):
            outage.failed(
                'connection failed: role "wedsync_authenticator"\ndoes not exist',
                at=T0 + timedelta(seconds=second),
            )
        outage.recovered(at=T0 + timedelta(seconds=61))
        outage.recovered(at=T0 + timedelta(seconds=62))
        outage.failed("connection refused", at=T0 + timedelta(seconds=100))
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "database unreachable from the user pool since 2027-06-12 14:00:00 UTC: connection "
        'failed: role "wedsync_authenticator" does not exist (further failures are counted, '
        "not logged, until it connects again)",
        "database reachable again from the user pool after 61 s (27 failed attempts)",
        "database unreachable from the user pool since 2027-06-12 14:01:40 UTC: connection "
        "refused (further failures are counted, not logged, until it connects again)",
    ]
    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.INFO, logging.WARNING]


def test_backoff_is_steady_while_attempts_succeed_then_grows_to_its_cap() -> None:
    policy = Backoff(steady=30.0, first=5.0, cap=60.0)
    assert [policy.delay(n) for n in range(6)] == [30.0, 5.0, 10.0, 20.0, 40.0, 60.0]
    # the heartbeat's: every second while failing, so that recovery shows at once
    heartbeat = Backoff(steady=30.0, first=1.0, factor=1.0)
    assert [heartbeat.delay(n) for n in (0, 1, 50)] == [30.0, 1.0, 1.0]
