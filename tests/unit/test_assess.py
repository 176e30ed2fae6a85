"""Health assessment and thresholds: pure, no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from monitor_facts import activity as activity_of
from monitor_facts import advice, blocking, facts, sequence, statement, table
from wedsync_db.calendar import CalendarContext, calendar_context
from wedsync_db.monitor.assess import Assessment, Status, assess, quote_ident
from wedsync_db.monitor.snapshot import CollectorError, SecurityFinding, Snapshot
from wedsync_db.monitor.thresholds import NORMAL, WEDDING_DAY, thresholds_for

PEAK = frozenset(range(5, 11))
LONDON = "Europe/London"
# 2026-02-10 is a Tuesday, 2026-07-15 a Wednesday, 2026-06-13 a Saturday (all at noon, London)
TUESDAY_FEBRUARY = datetime(2026, 2, 10, 12, tzinfo=UTC)
WEDNESDAY_JULY = datetime(2026, 7, 15, 11, tzinfo=UTC)
SATURDAY_JUNE = datetime(2026, 6, 13, 11, tzinfo=UTC)


def context_at(now: datetime, weddings: int = 0) -> CalendarContext:
    return calendar_context(now, LONDON, PEAK, weddings)


def run(
    inp: Snapshot, now: datetime = TUESDAY_FEBRUARY, weddings: int = 0, **limits: Any
) -> Assessment:
    ctx = context_at(now, weddings)
    thresholds = replace(thresholds_for(ctx.level), **limits)
    return assess(inp, ctx, thresholds, now=now)


def status_of(result: Assessment, key: str) -> Status | None:
    """Worst status among the entries under ``key`` (None when the check is absent)."""
    entries = [c.status for c in result.checks if c.key == key]
    if not entries:
        return None
    return "fail" if "fail" in entries else "warn" if "warn" in entries else "pass"


def activity(seconds: float, pid: int = 101, state: str = "active") -> Any:
    return activity_of(seconds, pid, state)


def chain(wait: float) -> Any:
    return blocking(201, 202, wait, "public.guests", "update guests …", "alter table …")


def dead(dead_rows: int, live_rows: int) -> Any:
    return table("public", "guests", dead_rows, live_rows, 7200.0)


def slow(mean_ms: float, queryid: int = 42) -> Any:
    return statement(queryid, "select * from guests where email = $1", 10, mean_ms * 10)


# Each row: check key, then (input, expected status) pairs on a normal Tuesday in February,
# walking the value across the warn and fail limits.
FLIPS: list[tuple[str, list[tuple[Snapshot, Status]]]] = [
    (
        "postgres:connections",
        [
            (facts(connections_total=79, connections_max_usable=100), "pass"),
            (facts(connections_total=80, connections_max_usable=100), "warn"),
            (facts(connections_total=94, connections_max_usable=100), "warn"),
            (facts(connections_total=95, connections_max_usable=100), "fail"),
        ],
    ),
    (
        "postgres:cacheHitRatio",
        [
            (facts(cache_hit_ratio=0.99), "pass"),
            (facts(cache_hit_ratio=0.989), "warn"),
            (facts(cache_hit_ratio=0.94), "warn"),
            (facts(cache_hit_ratio=0.939), "fail"),
            (facts(cache_hit_ratio=0.999, index_hit_ratio=0.95), "warn"),
        ],
    ),
    (
        "postgres:longRunningQueries",
        [
            (facts(long_running_queries=(activity(59.9),)), "pass"),
            (facts(long_running_queries=(activity(60),)), "warn"),
            (facts(long_running_queries=(activity(600),)), "fail"),
        ],
    ),
    (
        "postgres:idleInTransaction",
        [
            (facts(idle_in_transaction=(activity(59, state="idle in tx"),)), "pass"),
            (facts(idle_in_transaction=(activity(60, state="idle in tx"),)), "warn"),
            (facts(idle_in_transaction=(activity(600, state="idle in tx"),)), "fail"),
        ],
    ),
    (
        "postgres:transactionAge",
        [
            (facts(longest_transaction_seconds=299), "pass"),
            (facts(longest_transaction_seconds=300), "warn"),
        ],
    ),
    (
        "postgres:lockWaits",
        [
            (facts(waiting_on_locks=1, blocking_chains=(chain(119),)), "pass"),
            (facts(waiting_on_locks=1, blocking_chains=(chain(120),)), "warn"),
            (facts(waiting_on_locks=1, blocking_chains=(chain(600),)), "fail"),
        ],
    ),
    (
        "postgres:wraparound",
        [
            (facts(xid_remaining=1_500_000_000), "pass"),
            (facts(xid_remaining=1_499_999_999), "warn"),
            (facts(xid_remaining=499_999_999), "fail"),
        ],
    ),
    (
        "postgres:sequences",
        [
            (facts(sequences=(sequence("public.guests_seq", 0.90),)), "pass"),
            (facts(sequences=(sequence("public.guests_seq", 0.91),)), "warn"),
            (facts(sequences=(sequence("public.guests_seq", 0.99),)), "fail"),
        ],
    ),
    (
        "postgres:replicationLag",
        [
            (facts(replication_lag_seconds=4.9), "pass"),
            (facts(replication_lag_seconds=5.0), "warn"),
            (facts(replication_lag_seconds=60.0), "fail"),
        ],
    ),
    ("postgres:replicationSlots", [(facts(inactive_slots=("old_replica",)), "warn")]),
    (
        "postgres:deadTuples",
        [
            # 20 % dead but too small to matter
            (facts(dead_tuple_tables=(dead(9_999, 30_000),)), "pass"),
            (facts(dead_tuple_tables=(dead(10_000, 40_001),)), "pass"),
            (facts(dead_tuple_tables=(dead(10_000, 40_000),)), "warn"),
        ],
    ),
    (
        "postgres:deadlocks",
        [
            (facts(deadlocks_delta=0), "pass"),
            (facts(deadlocks_delta=1), "warn"),
        ],
    ),
    (
        "postgres:tempFiles",
        [
            (facts(temp_bytes_delta=(1 << 30) - 1), "pass"),
            (facts(temp_bytes_delta=1 << 30), "warn"),
        ],
    ),
    (
        "postgres:security",
        [
            (facts(), "pass"),
            (
                facts(
                    security_findings=(SecurityFinding("rls_disabled", "public.notes", "…", None),)
                ),
                "warn",
            ),
        ],
    ),
    (
        "postgres:indexes",
        [
            (
                facts(index_advice=(advice("unused", "public", "guests", "g_idx", "", None),)),
                "pass",
            ),
            (
                facts(index_advice=(advice("invalid", "public", "guests", "g_idx", "", None),)),
                "warn",
            ),
        ],
    ),
    (
        "postgres:slowQueries",
        [
            (facts(slow_queries=(slow(500.0),)), "pass"),
            (facts(slow_queries=(slow(500.1),)), "warn"),
        ],
    ),
    (
        "postgres:collectors",
        [
            (facts(), "pass"),
            (
                facts(collector_errors=(CollectorError("queries", "missing", "add"),)),
                "warn",
            ),
        ],
    ),
]


@pytest.mark.parametrize(
    ("key", "inp", "expected"),
    [(key, inp, expected) for key, cases in FLIPS for inp, expected in cases],
    ids=[f"{key}-{i}-{exp}" for key, cases in FLIPS for i, (_, exp) in enumerate(cases)],
)
def test_each_check_flips_at_its_threshold(key: str, inp: Snapshot, expected: Status) -> None:
    result = run(inp)
    assert status_of(result, key) == expected
    # the overall status is at least as bad as any single check
    if expected == "fail":
        assert result.status == "fail"
    entries = [c for c in result.checks if c.key == key]
    assert all(c.context == "normal" for c in entries)
    if expected != "pass":
        assert any(a.key == key for a in result.alerts)
        assert all(c.output for c in entries if c.status != "pass")


@pytest.mark.parametrize(
    ("collector", "keys"),
    [
        (
            "connections",
            (
                "postgres:longRunningQueries",
                "postgres:idleInTransaction",
                "postgres:transactionAge",
            ),
        ),
        ("queries", ("postgres:slowQueries",)),
    ],
)
def test_a_failed_collector_makes_its_checks_unavailable_not_passing(
    collector: str, keys: tuple[str, ...]
) -> None:
    error = CollectorError(collector, "canceling statement due to statement timeout", "retry")
    result = run(facts(collector_errors=(error,)))
    for key in keys:
        (check,) = [c for c in result.checks if c.key == key]
        assert check.status == "warn" and check.observed_value is None
        assert check.output.startswith(f"data unavailable: the {collector} collector failed")
        assert "statement timeout" in check.output
    assert result.status == "warn"


def test_database_size_against_the_disk_budget() -> None:
    budget = 100 * 2**30
    unbudgeted = run(facts(database_size_bytes=99 * 2**30))
    assert status_of(unbudgeted, "postgres:databaseSize") == "pass"
    for size, expected in ((79, "pass"), (80, "warn"), (95, "fail")):
        result = run(facts(database_size_bytes=size * 2**30), disk_budget_bytes=budget)
        assert status_of(result, "postgres:databaseSize") == expected


def test_same_utilization_passes_in_february_and_warns_on_a_june_saturday() -> None:
    inp = facts(connections_total=65, connections_max_usable=100)
    tuesday = run(inp, TUESDAY_FEBRUARY)
    saturday = run(inp, SATURDAY_JUNE)
    assert tuesday.context.level == "normal"
    assert saturday.context.level == "wedding-day"
    assert status_of(tuesday, "postgres:connections") == "pass"
    assert status_of(saturday, "postgres:connections") == "warn"
    (check,) = [c for c in saturday.checks if c.key == "postgres:connections"]
    assert check.context == "wedding-day"
    assert "wedding-day limits" in check.output
    assert check.to_dict()["limits"] == {"warn": 60.0, "fail": 85.0}


@pytest.mark.parametrize(
    ("inp", "key"),
    [
        (facts(connections_total=72, connections_max_usable=100), "postgres:connections"),
        (facts(long_running_queries=(activity(50),)), "postgres:longRunningQueries"),
        (facts(slow_queries=(slow(300.0),)), "postgres:slowQueries"),
    ],
)
def test_peak_season_sits_between_normal_and_wedding_day(inp: Snapshot, key: str) -> None:
    assert status_of(run(inp, TUESDAY_FEBRUARY), key) == "pass"
    assert run(inp, WEDNESDAY_JULY).context.level == "peak-season"
    assert status_of(run(inp, WEDNESDAY_JULY), key) == "warn"
    assert status_of(run(inp, SATURDAY_JUNE), key) == "warn"


def test_a_weekday_with_weddings_uses_wedding_day_limits() -> None:
    inp = facts(long_running_queries=(activity(40),))
    assert status_of(run(inp, TUESDAY_FEBRUARY), "postgres:longRunningQueries") == "pass"
    result = run(inp, TUESDAY_FEBRUARY, weddings=3)
    assert result.context.level == "wedding-day"
    assert result.thresholds.level == "wedding-day"
    assert status_of(result, "postgres:longRunningQueries") == "warn"


def test_thresholds_only_tighten_towards_wedding_day() -> None:
    normal, peak, wedding = (
        thresholds_for(lvl) for lvl in ("normal", "peak-season", "wedding-day")
    )
    for name in ("connection_warn_fraction", "connection_fail_fraction", "heartbeat_warn_ms"):
        assert getattr(normal, name) > getattr(peak, name) > getattr(wedding, name)
    for name in ("long_query_warn_s", "long_query_fail_s", "query_mean_warn_ms"):
        assert getattr(normal, name) > getattr(peak, name) > getattr(wedding, name)
    assert thresholds_for("wedding-day", disk_budget_bytes=10).disk_budget_bytes == 10
    assert thresholds_for("normal") == NORMAL


def test_empty_input_passes_and_skips_unknown_measurements() -> None:
    result = run(facts())
    assert result.status == "pass"
    assert result.alerts == ()
    assert result.recommendations == ()
    assert status_of(result, "postgres:connections") is None
    assert status_of(result, "postgres:wraparound") is None


def test_recommendation_keys_are_stable_and_carry_the_offending_objects() -> None:
    inp = facts(
        index_advice=(
            advice(
                "unused",
                "public",
                "guests",
                "guests_foo_idx",
                "0 scans, 12 MB",
                "DROP INDEX CONCURRENTLY public.guests_foo_idx;",
            ),
        ),
        sequences=(sequence("public.guests_id_seq", 0.95),),
        dead_tuple_tables=(table("public", "SeatingPlan", 50_000, 50_000, None),),
        security_findings=(
            SecurityFinding(
                "rls_disabled",
                "public.notes",
                "tenant table without row-level security",
                "ALTER TABLE public.notes ENABLE ROW LEVEL SECURITY;",
            ),
        ),
        inactive_slots=("old'replica",),
        idle_in_transaction=(activity(90, pid=4242, state="idle in transaction"),),
    )
    first = run(inp, TUESDAY_FEBRUARY)
    second = run(inp, SATURDAY_JUNE, weddings=2)
    keys = {r.key for r in first.recommendations}
    assert keys == {r.key for r in second.recommendations}
    assert {
        "index.unused:public.guests_foo_idx",
        "sequence.exhaustion:public.guests_id_seq",
        "maintenance.vacuum:public.SeatingPlan",
        "security.rls_disabled:public.notes",
        "replication.inactive_slot:old'replica",
        "activity.idle_in_transaction",
    } <= keys
    recs = {r.key: r for r in first.recommendations}
    unused = recs["index.unused:public.guests_foo_idx"]
    assert unused.objects == ("public.guests_foo_idx: 0 scans, 12 MB",)
    assert unused.remedy_sql == "DROP INDEX CONCURRENTLY public.guests_foo_idx;"
    assert unused.severity == "info"
    assert recs["sequence.exhaustion:public.guests_id_seq"].remedy_sql == (
        "ALTER SEQUENCE public.guests_id_seq AS bigint;"
    )
    assert recs["maintenance.vacuum:public.SeatingPlan"].remedy_sql == (
        'VACUUM (ANALYZE) public."SeatingPlan";'
    )
    assert recs["security.rls_disabled:public.notes"].severity == "critical"
    assert recs["replication.inactive_slot:old'replica"].remedy_sql == (
        "SELECT pg_drop_replication_slot('old''replica');"
    )
    idle = recs["activity.idle_in_transaction"]
    assert idle.objects[0].startswith("pid 4242 (wedsync-vendor, 90 s)")
    assert idle.remedy_sql == "SELECT pg_terminate_backend(4242);"
    # recommendations are ordered most severe first
    ranks = [{"critical": 0, "warning": 1, "info": 2}[r.severity] for r in first.recommendations]
    assert ranks == sorted(ranks)


def test_advice_on_one_object_is_merged_under_one_key() -> None:
    inp = facts(
        index_advice=(
            advice("unindexed_fk", "public", "guests", None, "(wedding_id)", "CREATE INDEX a;"),
            advice("unindexed_fk", "public", "guests", None, "(table_id)", "CREATE INDEX b;"),
        )
    )
    (rec,) = run(inp).recommendations
    assert rec.key == "index.unindexed_fk:public.guests"
    assert rec.objects == ("public.guests: (wedding_id)", "public.guests: (table_id)")
    assert rec.remedy_sql == "CREATE INDEX a;\nCREATE INDEX b;"


def test_slow_queries_over_the_wedding_day_limit_are_flagged_as_risks() -> None:
    limit = WEDDING_DAY.query_mean_warn_ms
    inp = facts(slow_queries=(slow(limit + 50, queryid=7), slow(limit - 1, queryid=8)))
    tuesday = run(inp, TUESDAY_FEBRUARY)
    # fine for a normal day, but already named as a wedding-day risk
    assert status_of(tuesday, "postgres:slowQueries") == "pass"
    (rec,) = tuesday.recommendations
    assert rec.key == "query.slow:7"
    assert "wedding-day risk" in rec.title
    assert rec.severity == "info"
    saturday = run(inp, SATURDAY_JUNE)
    assert status_of(saturday, "postgres:slowQueries") == "warn"
    assert [r.severity for r in saturday.recommendations] == ["warning"]
    assert NORMAL.query_mean_warn_ms > limit


def test_blocking_chains_name_the_blocker() -> None:
    inp = facts(
        waiting_on_locks=2,
        blocking_chains=(
            blocking(11, 10, 130, "public.guests", "update guests", "alter table guests"),
            blocking(12, 10, 125, "public.guests", "select guests", "alter table guests"),
        ),
    )
    result = run(inp)
    (rec,) = result.recommendations
    assert rec.key == "locks.blocking"
    assert rec.objects == (
        "pid 10 blocks 2 session(s) for up to 130 s on public.guests: alter table guests",
    )
    assert rec.remedy_sql == "SELECT pg_terminate_backend(10);"
    (check,) = [c for c in result.checks if c.key == "postgres:lockWaits"]
    # the value judged against the limits is the longest wait, in the limits' unit
    assert (check.observed_value, check.observed_unit) == (130, "s")
    assert check.details == {"waitingSessions": 2}


def test_top_risks_puts_the_most_severe_first_and_keeps_five() -> None:
    inp = facts(
        connections_total=96,
        connections_max_usable=100,
        cache_hit_ratio=0.98,
        deadlocks_delta=2,
        index_advice=tuple(
            advice("unused", "public", "guests", f"idx_{i}", "", None) for i in range(6)
        ),
        security_findings=(SecurityFinding("rls_disabled", "public.notes", "…", None),),
    )
    risks = run(inp).top_risks()
    assert len(risks) == 5
    assert risks[0] == {
        "kind": "alert",
        "key": "postgres:connections",
        "severity": "critical",
        "message": risks[0]["message"],
    }
    severities = [r["severity"] for r in risks]
    assert severities[:2] == ["critical", "critical"]
    assert "info" not in severities


def test_quote_ident() -> None:
    assert quote_ident("guests") == "guests"
    assert quote_ident("SeatingPlan") == '"SeatingPlan"'
    assert quote_ident('we"ird') == '"we""ird"'
    assert quote_ident("1st") == '"1st"'
