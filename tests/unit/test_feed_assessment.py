"""The change feed in the assessment: an outbox older than twice its retention warns (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from wedsync_db.calendar import calendar_context
from wedsync_db.monitor.assess import assess
from wedsync_db.monitor.snapshot import FeedStats, Snapshot
from wedsync_db.monitor.thresholds import thresholds_for

NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)  # a Tuesday out of season


def feed_check(oldest_hours: float | None, retention_hours: float) -> tuple[str, str]:
    oldest = None if oldest_hours is None else NOW - timedelta(hours=oldest_hours)
    snap = Snapshot(
        captured_at=NOW,
        duration_ms=1.0,
        feed=FeedStats(
            changes=10,
            bytes=8192,
            streams=2,
            oldest_change_at=oldest,
            newest_change_at=oldest,
            watermark_lag_xids=0,
            oldest_writer_seconds=None,
        ),
    )
    context = calendar_context(NOW, "Europe/London", frozenset(range(5, 11)), 0)
    thresholds = thresholds_for(context.level, feed_retention_hours=retention_hours)
    result = assess(snap, context, thresholds, now=NOW)
    check = next(c for c in result.checks if c.key == "feed:oldestChangeAge")
    return check.status, check.output


def test_changes_within_twice_the_retention_pass() -> None:
    assert feed_check(30.0, 24.0)[0] == "pass"
    assert feed_check(None, 24.0)[0] == "pass"


def test_changes_beyond_twice_the_retention_warn_that_pruning_stopped() -> None:
    status, output = feed_check(50.0, 24.0)
    assert status == "warn" and "pruning" in output


def test_no_feed_statistics_no_check() -> None:
    context = calendar_context(NOW, "Europe/London", frozenset(range(5, 11)), 0)
    result = assess(
        Snapshot(captured_at=NOW, duration_ms=1.0), context, thresholds_for("normal"), now=NOW
    )
    assert not any(c.key.startswith("feed:") for c in result.checks)
