"""Backup decisions that need no database: the health rules by environment, the schedule, the
Prometheus families, the environment a tool inherits."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from wedsync_db.backup.repository import BackupMeta, Repository, RepositoryBusy
from wedsync_db.backup.schedule import FULL_EVERY, Due, due
from wedsync_db.backup.service import renice_server_process
from wedsync_db.backup.tools import Toolbox
from wedsync_db.calendar import calendar_context
from wedsync_db.monitor.assess import Assessment, assess
from wedsync_db.monitor.prometheus import families
from wedsync_db.monitor.snapshot import BackupStats, Snapshot
from wedsync_db.monitor.thresholds import thresholds_for
from wedsync_db.settings import Environment

NOW = datetime(2026, 2, 10, 12, tzinfo=UTC)
HOUR = 3600.0


def item(
    *,
    provider_managed: bool = False,
    in_use: bool = True,
    archive_failing: bool = False,
    verified_age_s: float | None = 1 * HOUR,
    latest_verification_failed: bool = False,
) -> BackupStats:
    """Backup records as a collection at NOW would read them."""
    verified = None if verified_age_s is None else NOW - timedelta(seconds=verified_age_s)
    return BackupStats(
        archiving=not provider_managed and in_use,
        can_replicate=not provider_managed,
        archived_count=1,
        failed_count=1 if archive_failing else 0,
        last_archived_time=NOW - timedelta(minutes=10),
        last_failed_time=NOW - timedelta(minutes=1) if archive_failing else None,
        events_recorded=True,
        last_backup_at=NOW - timedelta(hours=1),
        last_verified_at=verified,
        last_verify_failed_at=NOW - timedelta(minutes=1) if latest_verification_failed else None,
        last_verified_kind="full",
        backups_ok=1 if in_use else 0,
    )


def judged(env: Environment, bk: BackupStats | None) -> Assessment:
    ctx = calendar_context(NOW, "Europe/London", frozenset(range(5, 11)), 0)
    snap = Snapshot(captured_at=NOW, duration_ms=1.0, backups=bk)
    return assess(snap, ctx, thresholds_for(ctx.level, environment=env), now=NOW)


def check(result: Assessment, key: str = "backup:lastVerifiedAge") -> tuple[str, str] | None:
    found = [c for c in result.checks if c.key == key]
    return (found[0].status, found[0].output) if found else None


# --- health ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("env", "age_h", "expected"),
    [
        ("production", 1, "pass"),
        ("production", 27, "warn"),
        ("production", 51, "fail"),
        ("staging", 27, "pass"),
        ("staging", 51, "warn"),
        ("staging", 24 * 9, "fail"),
        ("development", 24 * 9, "warn"),
        ("development", 24 * 90, "warn"),  # development never fails
    ],
)
def test_the_verified_age_is_judged_by_the_environment(
    env: Environment, age_h: float, expected: str
) -> None:
    got = check(judged(env, item(verified_age_s=age_h * HOUR)))
    assert got is not None and got[0] == expected
    result = judged(env, item(verified_age_s=age_h * HOUR))
    entry = next(c for c in result.checks if c.key == "backup:lastVerifiedAge")
    assert entry.context == env


def test_never_verified_fails_where_backups_are_required() -> None:
    for env, expected in (("production", "fail"), ("staging", "fail"), ("development", "warn")):
        got = check(judged(env, item(verified_age_s=None)))
        assert got is not None and got[0] == expected
        assert "no backup has been verified" in got[1]


def test_development_without_backups_has_no_backup_checks() -> None:
    result = judged("development", item(in_use=False, verified_age_s=None))
    assert check(result) is None and check(result, "backup:walArchiving") is None
    assert check(judged("development", None)) is None


def test_a_provider_managed_database_is_never_reported_as_pass() -> None:
    got = check(judged("production", item(provider_managed=True, in_use=False)))
    assert got is not None and got[0] == "warn"
    assert got[1].startswith("provider-managed")
    # and an old export still fails
    old = check(judged("production", item(provider_managed=True, verified_age_s=60 * HOUR)))
    assert old is not None and old[0] == "fail"
    entry = next(
        c
        for c in judged("production", item(provider_managed=True)).checks
        if c.key == "backup:lastVerifiedAge"
    )
    assert entry.component_id == "provider-managed"


def test_a_failed_latest_verification_is_not_a_pass() -> None:
    got = check(judged("production", item(latest_verification_failed=True)))
    assert got is not None and got[0] == "warn" and "FAILED" in got[1]


def test_failing_archiving_fails_point_in_time_recovery() -> None:
    assert check(judged("production", item()), "backup:walArchiving") == ("pass", "")
    got = check(judged("production", item(archive_failing=True)), "backup:walArchiving")
    assert got is not None and got[0] == "fail" and "archiver" in got[1]


def test_the_snapshot_turns_recorded_events_into_ages() -> None:
    stats = BackupStats(
        archiving=True,
        can_replicate=True,
        archived_count=10,
        failed_count=1,
        last_archived_time=NOW - timedelta(minutes=1),
        last_failed_time=NOW - timedelta(minutes=5),
        events_recorded=True,
        last_backup_at=NOW - timedelta(hours=3),
        last_verified_at=NOW - timedelta(hours=2),
        last_verify_failed_at=NOW - timedelta(hours=1),
        last_verified_kind="incremental",
        backups_ok=3,
        verifications_ok=2,
        verifications_failed=1,
    )
    snap = Snapshot(captured_at=NOW, duration_ms=1.0, backups=stats)
    assert snap.age_seconds(stats.last_verified_at) == pytest.approx(2 * HOUR)
    assert stats.latest_verification_failed  # a failure after the last good one
    assert not stats.archive_failing  # archived again after the failure
    assert snap.metrics()["backup_verified_age_seconds"] == pytest.approx(2 * HOUR)

    names = {
        s.name: s.value
        for f in families(
            snap,
            up=True,
            scrapes=1,
            scrape_errors={},
            query_totals=None,
            heartbeats={},
            pool_stats={},
            now=NOW,
        )
        for s in f.samples
    }
    assert names["wedsync_db_backup_last_verified_age_seconds"] == pytest.approx(2 * HOUR)
    assert names["wedsync_db_backup_rpo_seconds"] == pytest.approx(60.0)
    assert names["wedsync_db_wal_archive_failures_total"] == 1.0
    assert names["wedsync_db_backup_provider_managed"] == 0.0
    assert (
        names["wedsync_db_backup_last_verified_timestamp_seconds"]
        == (NOW - timedelta(hours=2)).timestamp()
    )


# --- schedule ---------------------------------------------------------------------------------
def meta(i: int, hours_ago: float, kind: str = "full", **kw: object) -> BackupMeta:
    at = NOW - timedelta(hours=hours_ago)
    values: dict[str, object] = {
        "id": f"b{i}",
        "kind": kind,
        "status": "complete",
        "started_at": at,
        "finished_at": at,
        "database": "wedsync",
        "server_version": 180000,
    }
    values.update(kw)
    return BackupMeta(**values)  # type: ignore[arg-type]


def verified(m: BackupMeta, hours_ago: float) -> BackupMeta:
    at = (NOW - timedelta(hours=hours_ago)).isoformat()
    return BackupMeta(**{**m.__dict__, "details": {"last_verification": {"at": at, "ok": True}}})


DAY = timedelta(hours=24)


def planned(
    backups: list[BackupMeta],
    *,
    backup_every: timedelta | None = DAY,
    verify_every: timedelta | None = DAY,
    logical: bool = False,
    incremental_possible: bool = True,
) -> Due:
    """What the schedule does at NOW (a physical repository, incrementals possible, daily)."""
    return due(
        backups,
        NOW,
        backup_every=backup_every,
        verify_every=verify_every,
        logical=logical,
        incremental_possible=incremental_possible,
    )


def test_the_schedule_takes_a_full_backup_first_then_incrementals() -> None:
    first = planned([])
    assert (first.backup, first.verify) == ("full", None)
    recent = [verified(meta(1, 25), 24)]
    nxt = planned(recent)
    assert nxt.backup == "incremental"
    # a week after the newest full one, a new chain starts
    old = [meta(1, FULL_EVERY.total_seconds() / 3600 + 1), meta(2, 25, "incremental", parent="b1")]
    assert planned(old, verify_every=None).backup == "full"
    assert planned(recent, verify_every=None, incremental_possible=False).backup == "full"


def test_the_schedule_waits_for_its_interval_and_ignores_bad_backups() -> None:
    fresh = [verified(meta(1, 2), 1)]
    got = planned(fresh)
    assert (got.backup, got.verify) == (None, None)
    broken = [meta(1, 2, status="interrupted"), meta(2, 3, status="failed")]
    assert planned(broken).backup == "full"


def test_the_schedule_verifies_the_newest_backup_once_per_interval() -> None:
    backups = [verified(meta(1, 50), 49), meta(2, 2, "incremental", parent="b1")]
    got = planned(backups, backup_every=None)
    assert got.verify is not None and got.verify.id == "b2"
    # verified an hour ago (an older one): not again until the interval has passed
    backups = [verified(meta(1, 50), 1), meta(2, 2, "incremental", parent="b1")]
    assert planned(backups, backup_every=None).verify is None
    # nothing new for days: the newest is verified again (files rot)
    stale = [verified(meta(1, 100), 30)]
    again = planned(stale, backup_every=None)
    assert again.verify is not None and again.verify.id == "b1"


def test_a_managed_database_gets_logical_exports_on_the_schedule() -> None:
    physical = [verified(meta(1, 2), 1)]
    got = planned(physical, logical=True)
    assert got.backup == "logical"  # a physical backup does not count for a managed database


# --- repository lock and the tools' environment -------------------------------------------------
def test_a_prune_waits_for_nobody_and_says_who_holds_the_repository(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repo")

    def take(exclusive: bool) -> None:
        with repo.lock(exclusive=exclusive, wait=0.3):
            pass

    busy = pytest.raises(RepositoryBusy, match="in use by any other backup command")
    with repo.lock(exclusive=False), repo.lock(exclusive=False), busy:  # backups share it
        take(True)
    with repo.lock(exclusive=True), pytest.raises(RepositoryBusy, match="in use by a prune"):
        take(False)
    take(True)  # released


def test_tools_inherit_no_secrets_or_pg_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tool = tmp_path / "pg_env"
    tool.write_text("#!/bin/sh\nenv\n")
    tool.chmod(0o755)
    monkeypatch.setenv("WEDSYNC_SERVICE_KEY", "s3cret-service-key-value")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:hunter2@db/x")
    monkeypatch.setenv("PGHOST", "elsewhere.example")
    output = Toolbox(tmp_path).run("pg_env", [], env={"PGPASSWORD": "given"}).stdout
    assert "s3cret" not in output and "hunter2" not in output and "elsewhere" not in output
    assert "PGPASSWORD=given" in output and f"PATH={os.environ['PATH']}" in output


def test_row_hash_marks_each_columns_null_apart_and_chains_the_not_null_ones() -> None:
    from wedsync_db.backup import service

    cols = [
        service.ColumnHash(1, "id", True, ("pg_catalog", "hashint4extended")),
        service.ColumnHash(2, "note", False, ("pg_catalog", "hashtextextended")),
        service.ColumnHash(3, "at", True, ("pg_catalog", "h8"), ("pg_catalog", "ts_send")),
        service.ColumnHash(4, "doc", False),
    ]
    bytea = ("pg_catalog", "hashbyteaextended")
    text = service.row_hash_sql(cols, bytea).as_string(None)
    # the nullable columns seed the chain; the chain ends with the last NOT NULL column
    assert text.startswith('"pg_catalog"."hashbyteaextended"("pg_catalog"."ts_send"(t."at"), ')
    assert 'hashtextextended((t."doc")::text collate pg_catalog."C", 4)' in text
    assert text.count("coalesce(") == 2
    assert str(service._null_mark(2)) in text and str(service._null_mark(4)) in text
    marks = {service._null_mark(n) for n in range(1, 1601)}
    assert len(marks) == 1600 and all(-(2**63) <= m < 2**63 for m in marks)
    # only nullable columns: the XOR hashed once more; no columns at all: a constant
    only_nullable = service.row_hash_sql([cols[1]], bytea).as_string(None)
    assert only_nullable.startswith('"pg_catalog"."hashbyteaextended"(pg_catalog.int8send(')
    assert service.row_hash_sql([], bytea).as_string(None) == "0::int8"


def test_without_a_callable_bytea_hash_8_byte_values_go_by_their_text() -> None:
    from wedsync_db.backup import service

    at = service.ColumnHash(1, "at", True, ("pg_catalog", "h8"), ("pg_catalog", "ts_send"))
    note = service.ColumnHash(2, "note", False, ("pg_catalog", "hashtextextended"))
    chained = service.row_hash_sql([at], None).as_string(None)
    assert chained == 'pg_catalog.hashtextextended((t."at")::text collate pg_catalog."C", 0)'
    assert (
        service.row_hash_sql([note], None)
        .as_string(None)
        .startswith("pg_catalog.hashtextextended(((")
    )


def test_only_a_process_of_the_named_data_directory_is_reniced(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    proc = subprocess.Popen(["sleep", "30"], cwd=tmp_path / "data")
    try:
        # another directory: not that server's process, left alone
        assert renice_server_process(proc.pid, str(tmp_path)) is False
        assert os.getpriority(os.PRIO_PROCESS, proc.pid) == os.getpriority(os.PRIO_PROCESS, 0)
        assert renice_server_process(proc.pid, str(tmp_path / "data")) is True
        assert os.getpriority(os.PRIO_PROCESS, proc.pid) == 19
    finally:
        proc.kill()
        proc.wait(timeout=10)
    # a process that is gone
    assert renice_server_process(proc.pid, str(tmp_path / "data")) is False
