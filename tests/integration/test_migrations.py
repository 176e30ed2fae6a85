"""The migration engine against a real PostgreSQL: the schema snapshot, history, drift, the run
lock with concurrent processes, one transaction per file, lock-timeout retries, non-transactional
files, lint refusal and the freeze guard."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from fixtures.migration_support import (
    HOLDER_APPLICATION,
    MigrationDir,
    applied_versions,
    audit_events,
    column_exists,
    execute,
    freeze_window_around_now,
    history,
    holding_migration_lock,
    last_audit_id,
    pending_table,
    rows,
    settings_for,
    start_wedsync_db,
    table_exists,
    value,
)
from fixtures.schema_snapshot import (
    UPDATE_ENV,
    load_snapshot,
    render_schema,
    save_snapshot,
    snapshot_diff,
    update_requested,
)
from wedsync_db.calendar import WEEKDAY_NAMES
from wedsync_db.errors import (
    DriftDetected,
    MigrationFailed,
    MigrationFileError,
    MigrationFrozen,
    MigrationLockHeld,
    MigrationRefused,
)
from wedsync_db.migrate import squawk
from wedsync_db.migrate.files import checksum
from wedsync_db.migrate.runner import (
    LOCK_KEY,
    MigrationRunner,
    RunnerOptions,
    lock_retry_schedule,
)
from wedsync_db.migrate.service import apply_migrations
from wedsync_db.settings import WEEKDAYS

needs_squawk = pytest.mark.skipif(
    squawk.find_squawk() is None, reason="squawk binary not installed (pip install squawk-cli)"
)


def runner_for_test(
    dsn: str, d: MigrationDir | None = None, actor: str = "migration-tests", **options: Any
) -> MigrationRunner:
    return MigrationRunner(dsn, [d.path] if d else [], RunnerOptions(actor=actor, **options))


def pending_over(
    dsn: str, tmp_path: Path, setup: Sequence[str], name: str, sql: str, **options: Any
) -> tuple[MigrationDir, Path, MigrationRunner]:
    """Run ``setup`` on ``dsn``, then one pending file ``name`` and a runner for it."""
    execute(dsn, *setup)
    d = MigrationDir(tmp_path / "migrations")
    path = d.add(1, name, sql)
    return d, path, runner_for_test(dsn, d, **options)


# --------------------------------------------------------------------------------------------
# the migration test: every built-in file on an empty database, compared with the snapshot


async def test_builtin_migrations_build_the_snapshot_schema_once(empty_db: str) -> None:
    runner = runner_for_test(empty_db, actor="snapshot-test")
    files = runner.files()
    started = datetime.now(UTC)
    first = await runner.apply()
    finished = datetime.now(UTC)
    assert [a.version for a in first.applied] == [f.version for f in files]
    assert all(a.mode == "transactional" and a.attempts == 1 for a in first.applied)

    schema = render_schema(empty_db)
    if update_requested():
        save_snapshot(schema)
    expected = load_snapshot()
    assert expected is not None, f"no stored snapshot; create it with {UPDATE_ENV}=1"
    assert schema == expected, snapshot_diff(expected, schema)

    second = await runner.apply()
    assert second.applied == [] and second.would_apply == []
    assert render_schema(empty_db) == schema, "a second run changed the schema"

    recorded = history(empty_db)
    assert [r["version"] for r in recorded] == [f.version for f in files]
    for row, f in zip(recorded, files, strict=True):
        assert (row["name"], row["directory"], row["checksum"]) == (f.name, "builtin", f.checksum)
        assert re.fullmatch(r"[0-9a-f]{64}", row["checksum"])
        assert row["applied_by"] == "snapshot-test"
        # the server's clock and ours agree to well within a few seconds on one machine
        slack = timedelta(seconds=5)
        assert started - slack <= row["applied_at"] <= finished + slack
        assert row["duration_ms"] > 0
        assert (row["mode"], row["attempts"]) == ("transactional", 1)
    outcomes = [e["outcome"] for e in audit_events(empty_db, "migrate.apply")]
    assert outcomes == ["applied", "nothing-to-do"]


async def test_status_reads_without_writing(empty_db: str) -> None:
    runner = runner_for_test(empty_db)
    status = await runner.status()
    assert status.applied == [] and status.drift == []
    assert [f.version for f in status.pending] == [f.version for f in runner.files()]
    assert not status.current
    assert not table_exists(empty_db, "ops.schema_migrations"), "status created the history"


# --------------------------------------------------------------------------------------------
# drift


async def test_an_edited_applied_file_refuses_apply_until_repaired(
    fresh_db: str, tmp_path: Path
) -> None:
    d = MigrationDir(tmp_path / "migrations")
    edited = d.add(1, "drift_notes", "create table drift_notes (id int);\n")
    runner = runner_for_test(fresh_db, d, actor="drift-test")
    await runner.apply()
    applied_checksum = history(fresh_db)[-1]["checksum"]
    edited.write_text("create table drift_notes (id int, body text);\n", encoding="utf-8")
    d.add(2, "drift_next", "create table drift_next (id int);\n")

    with pytest.raises(DriftDetected) as info:
        await runner.apply()
    message = str(info.value)
    assert f"{edited} changed after it was applied" in message
    assert f"wedsync-db migrate repair {d.version(1)}" in message
    assert not table_exists(fresh_db, "drift_next"), "nothing runs while there is drift"
    refused = audit_events(fresh_db, "migrate.apply")[-1]
    assert refused["outcome"] == "refused:drift"
    assert [(x["kind"], x["version"]) for x in refused["details"]["drift"]] == [
        ("changed", d.version(1))
    ]
    status = await runner.status()
    assert [(x.kind, x.version) for x in status.drift] == [("changed", d.version(1))]

    for blank in ("", "   "):
        with pytest.raises(MigrationFileError, match="needs --reason"):
            await runner.repair(d.version(1), reason=blank)
    assert history(fresh_db)[-1]["checksum"] == applied_checksum

    repaired = await runner.repair(d.version(1), reason="reviewed: the column came in 0099")
    assert (repaired.kind, repaired.version) == ("changed", d.version(1))
    assert history(fresh_db)[-1]["checksum"] == checksum(edited.read_text(encoding="utf-8"))
    assert not column_exists(fresh_db, "drift_notes", "body"), "repair must not run the file"
    (event,) = audit_events(fresh_db, "migrate.repair")
    assert (event["outcome"], event["actor"]) == ("changed", "drift-test")
    assert event["reason"] == "reviewed: the column came in 0099"
    assert event["details"]["version"] == d.version(1)

    result = await runner.apply()
    assert [a.version for a in result.applied] == [d.version(2)]
    assert (await runner.status()).current


async def test_a_missing_applied_file_refuses_apply(fresh_db: str, tmp_path: Path) -> None:
    d = MigrationDir(tmp_path / "migrations")
    gone = d.add(1, "short_lived", "create table short_lived (id int);\n")
    runner = runner_for_test(fresh_db, d)
    await runner.apply()
    gone.unlink()
    d.add(2, "after_missing", "create table after_missing (id int);\n")

    with pytest.raises(DriftDetected) as info:
        await runner.apply()
    message = str(info.value)
    assert f"{d.version(1)}_short_lived.sql was applied on" in message
    assert f"no longer in {d.path}" in message and "restore the file" in message
    assert not table_exists(fresh_db, "after_missing")
    assert audit_events(fresh_db, "migrate.apply")[-1]["outcome"] == "refused:drift"

    # after review, repair forgets the deleted file's history row; then apply proceeds
    gone_drift = await runner.repair(d.version(1), reason="folded into the next file")
    assert gone_drift.kind == "missing"
    assert d.version(1) not in applied_versions(fresh_db)
    assert audit_events(fresh_db, "migrate.repair")[-1]["outcome"] == "missing"
    result = await runner.apply()
    assert [a.version for a in result.applied] == [d.version(2)]


async def test_a_pending_file_older_than_the_newest_applied_refuses_apply(
    fresh_db: str, tmp_path: Path
) -> None:
    d = MigrationDir(tmp_path / "migrations")
    d.add(2, "newer", "create table ooo_newer (id int);\n")
    runner = runner_for_test(fresh_db, d)
    await runner.apply()
    late = d.add(1, "older", "create table ooo_older (id int);\n")

    with pytest.raises(DriftDetected) as info:
        await runner.apply()
    message = str(info.value)
    assert f"{late} is pending but older than the newest applied migration" in message
    assert "renumber" in message
    assert not table_exists(fresh_db, "ooo_older")
    assert audit_events(fresh_db, "migrate.apply")[-1]["outcome"] == "refused:drift"
    # repair is for reviewed checksums, not for ordering
    with pytest.raises(MigrationFileError, match="no checksum drift to repair"):
        await runner.repair(d.version(1), reason="please")


# --------------------------------------------------------------------------------------------
# the run lock

WAITING_FOR_LOCK = """
select count(*) from pg_locks l join pg_database d on d.oid = l.database
where l.locktype = 'advisory' and not l.granted and d.datname = current_database()
  and l.classid = (%(key)s::bigint >> 32)::oid and l.objid = (%(key)s::bigint & 4294967295)::oid
"""


def test_five_runner_processes_apply_each_file_exactly_once(fresh_db: str, tmp_path: Path) -> None:
    d = MigrationDir(tmp_path / "migrations")
    d.add(
        1,
        "slow_create",
        "create table concurrent_probe (id int primary key, note text);\nselect pg_sleep(0.5);\n",
    )
    d.add(
        2,
        "slow_insert",
        "insert into concurrent_probe values (1, 'once');\nselect pg_sleep(0.5);\n",
    )
    args = ["migrate", "apply", "--json", "--dir", str(d.path)]
    before = last_audit_id(fresh_db)
    # Hold the lock until all five are queued on it, so that they really do start together.
    with holding_migration_lock(fresh_db):
        procs = [
            start_wedsync_db([*args, "--actor", f"runner-{i}"], fresh_db, tmp_path)
            for i in range(5)
        ]
        try:
            deadline = time.monotonic() + 30
            while value(fresh_db, WAITING_FOR_LOCK, {"key": LOCK_KEY}) < 5:
                assert all(p.poll() is None for p in procs), "a runner exited early"
                assert time.monotonic() < deadline, "the runners never queued on the lock"
                time.sleep(0.05)
        except BaseException:
            for p in procs:
                p.kill()
            raise
    outputs = [p.communicate(timeout=60) for p in procs]
    for p, (_, stderr) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, stderr
        assert "error" not in stderr.lower(), stderr
    results = [json.loads(stdout) for stdout, _ in outputs]
    winners = [r for r in results if r["applied"]]
    assert len(winners) == 1
    assert [a["version"] for a in winners[0]["applied"]] == [d.version(1), d.version(2)]
    for r in results:
        if r is not winners[0]:
            assert r["applied"] == [] and r["would_apply"] == []  # nothing to apply
            assert r["lock_wait_ms"] > 0

    counts = rows(
        fresh_db,
        "select version, count(*) from ops.schema_migrations where version = any(%s) "
        "group by version order by version",
        ([d.version(1), d.version(2)],),
    )
    assert counts == [{"version": d.version(1), "count": 1}, {"version": d.version(2), "count": 1}]
    assert value(fresh_db, "select count(*) from concurrent_probe") == 1
    runs = audit_events(fresh_db, "migrate.apply", before)
    assert sorted(e["outcome"] for e in runs) == ["applied"] + ["nothing-to-do"] * 4
    assert {e["actor"] for e in runs} == {f"runner-{i}" for i in range(5)}
    (winner,) = (e["actor"] for e in runs if e["outcome"] == "applied")
    assert {r["applied_by"] for r in history(fresh_db)[-2:]} == {winner}


async def test_a_second_runner_gives_up_when_the_lock_stays_held(
    fresh_db: str, tmp_path: Path
) -> None:
    d = MigrationDir(tmp_path / "migrations")
    d.add(1, "locked_out", "create table locked_out (id int);\n")
    runner = runner_for_test(fresh_db, d, lock_wait=0.5)
    with holding_migration_lock(fresh_db) as holder:
        started = time.monotonic()
        with pytest.raises(MigrationLockHeld) as info:
            await runner.apply()
        waited = time.monotonic() - started
        holder_pid = holder.info.backend_pid
    assert 0.45 <= waited < 5
    message = str(info.value)
    assert "another migration run holds the lock" in message
    assert f"pid {holder_pid}, {HOLDER_APPLICATION}" in message
    assert not table_exists(fresh_db, "locked_out")
    refused = audit_events(fresh_db, "migrate.apply")[-1]
    assert refused["outcome"] == "refused:lock-held"
    assert refused["details"]["holder"][0]["pid"] == holder_pid


async def test_the_lock_holder_named_is_the_one_in_this_database(
    fresh_db: str, empty_db: str, tmp_path: Path
) -> None:
    d = MigrationDir(tmp_path / "migrations")
    d.add(1, "holder_probe", "create table holder_probe (id int);\n")
    runner = runner_for_test(fresh_db, d, lock_wait=0.2)
    # another database on the same server (say staging next to production) mid-migration
    with holding_migration_lock(empty_db), holding_migration_lock(fresh_db) as here:
        with pytest.raises(MigrationLockHeld) as info:
            await runner.apply()
        assert f"pid {here.info.backend_pid}," in str(info.value)


async def test_a_second_runner_waits_for_the_lock_then_runs(fresh_db: str, tmp_path: Path) -> None:
    d = MigrationDir(tmp_path / "migrations")
    d.add(1, "after_wait", "create table after_wait (id int);\n")
    runner = runner_for_test(fresh_db, d, lock_wait=10)
    with holding_migration_lock(fresh_db):
        task = asyncio.create_task(runner.apply())
        await asyncio.sleep(0.6)
        assert not task.done()
    result = await asyncio.wait_for(task, 10)
    assert [a.version for a in result.applied] == [d.version(1)]
    assert result.lock_wait_ms >= 500


# --------------------------------------------------------------------------------------------
# one transaction per file


async def test_a_failing_file_leaves_nothing_behind(fresh_db: str, tmp_path: Path) -> None:
    d = MigrationDir(tmp_path / "migrations")
    d.add(1, "good_first", "create table fail_ok (id int);\n")
    bad = d.add(
        2,
        "half_bad",
        "-- creates a table, fills it, then fails\n"
        "create table fail_half (id int);\n"
        "insert into fail_half values (1);\n"
        "select 1 / 0;\n",
    )
    d.add(3, "never_run", "create table fail_never (id int);\n")
    runner = runner_for_test(fresh_db, d)
    with pytest.raises(MigrationFailed) as info:
        await apply_migrations(settings_for("development", fresh_db), runner)
    message = str(info.value)
    assert f"{bad} line 4" in message and "division by zero" in message
    assert table_exists(fresh_db, "fail_ok"), "the earlier file committed on its own"
    assert not table_exists(fresh_db, "fail_half"), "the failed file was rolled back"
    assert not table_exists(fresh_db, "fail_never"), "the run stops at the failure"
    assert applied_versions(fresh_db)[-1] == d.version(1)
    failed = audit_events(fresh_db, "migrate.apply")[-1]
    assert failed["outcome"] == "failed"
    assert failed["details"]["file"] == str(bad)
    assert failed["details"]["applied"] == [str(d.file(1, "good_first"))]
    assert "division by zero" in failed["details"]["error"]


# --------------------------------------------------------------------------------------------
# lock-timeout retries


async def _commit_after(conn: psycopg.AsyncConnection[Any], seconds: float) -> None:
    await asyncio.sleep(seconds)
    await conn.commit()


async def test_a_lock_timeout_is_retried_until_the_lock_is_free(
    fresh_db: str, tmp_path: Path
) -> None:
    _, _, runner = pending_over(
        fresh_db,
        tmp_path,
        ["create table retry_target (id int)"],
        "alter_busy",
        "alter table retry_target add column note text;\n",
        lock_timeout=0.2,
        retry_budget=30,
    )
    async with await psycopg.AsyncConnection.connect(fresh_db) as holder:
        await holder.execute("lock table retry_target in access exclusive mode")
        release = asyncio.create_task(_commit_after(holder, 1.5))
        started = time.monotonic()
        result = await runner.apply()
        elapsed = time.monotonic() - started
        await release
    (done,) = result.applied
    assert done.attempts > 1
    assert elapsed >= 1.4, "it cannot have succeeded while the lock was held"
    assert len(done.notes) == done.attempts - 1
    assert all("lock not obtained within" in n for n in done.notes)
    assert column_exists(fresh_db, "retry_target", "note")
    assert history(fresh_db)[-1]["attempts"] == done.attempts


async def test_lock_retries_stop_at_the_retry_budget(fresh_db: str, tmp_path: Path) -> None:
    d, path, runner = pending_over(
        fresh_db,
        tmp_path,
        ["create table budget_target (id int)"],
        "alter_blocked",
        "alter table budget_target add column note text;\n",
        lock_timeout=0.2,
        retry_budget=0.5,
    )
    attempts = len(list(lock_retry_schedule(0.2, 0.5)))
    async with await psycopg.AsyncConnection.connect(fresh_db) as holder:
        await holder.execute("lock table budget_target in access exclusive mode")
        with pytest.raises(MigrationFailed) as info:
            await runner.apply()
        await holder.rollback()
    message = str(info.value)
    assert f"{path}: could not obtain its locks after {attempts} attempts" in message
    assert "0.5s retry budget" in message
    assert not column_exists(fresh_db, "budget_target", "note")
    assert d.version(1) not in applied_versions(fresh_db)
    assert audit_events(fresh_db, "migrate.apply")[-1]["outcome"] == "failed"


async def test_giving_up_does_not_sleep_after_the_last_attempt(
    fresh_db: str, tmp_path: Path
) -> None:
    _, _, runner = pending_over(
        fresh_db,
        tmp_path,
        ["create table last_sleep_target (id int)"],
        "alter_blocked",
        "alter table last_sleep_target add column note text;\n",
        lock_timeout=0.1,
        retry_budget=1.5,
    )
    steps = list(lock_retry_schedule(0.1, 1.5))
    useful = sum(t + s for t, s in steps[:-1]) + steps[-1][0]
    assert steps[-1][1] >= 0.8, "the final pause is long enough to measure"
    async with await psycopg.AsyncConnection.connect(fresh_db) as holder:
        await holder.execute("lock table last_sleep_target in access exclusive mode")
        started = time.monotonic()
        with pytest.raises(MigrationFailed):
            await runner.apply()
        elapsed = time.monotonic() - started
        await holder.rollback()
    assert elapsed < useful + 0.5


# --------------------------------------------------------------------------------------------
# non-transactional files

INDEX_STATE = """
select i.indisvalid, i.indisunique from pg_index i where i.indexrelid = to_regclass(%s)
"""


async def test_a_no_transaction_file_builds_an_index_concurrently(
    fresh_db: str, tmp_path: Path
) -> None:
    _, _, runner = pending_over(
        fresh_db,
        tmp_path,
        [
            "create table conc_items (id int primary key, code text)",
            "insert into conc_items select g, 'c' || g from generate_series(1, 500) g",
        ],
        "conc_items_code",
        "-- wedsync:no-transaction\n"
        "create index concurrently conc_items_code_idx on conc_items (code);\n",
    )
    result = await apply_migrations(settings_for("development", fresh_db), runner)
    (done,) = result.applied
    assert done.mode == "no-transaction"
    assert history(fresh_db)[-1]["mode"] == "no-transaction"
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute(INDEX_STATE, ("conc_items_code_idx",)).fetchone() == (True, False)


async def test_a_no_transaction_file_with_two_statements_is_refused_before_running(
    fresh_db: str, tmp_path: Path
) -> None:
    d = MigrationDir(tmp_path / "migrations")
    d.add(
        1,
        "two_statements",
        "-- wedsync:no-transaction\n"
        "create table nt_first (id int);\n"
        "create index concurrently nt_first_idx on nt_first (id);\n",
    )
    runner = runner_for_test(fresh_db, d)
    with pytest.raises(MigrationRefused, match="no-transaction-multiple-statements"):
        await apply_migrations(settings_for("development", fresh_db), runner)
    assert not table_exists(fresh_db, "nt_first")
    assert audit_events(fresh_db, "migrate.apply")[-1]["outcome"] == "refused:lint"
    # without the lint guard the runner itself refuses the file before running any of it
    with pytest.raises(MigrationFileError, match="exactly one statement"):
        await runner.apply()
    assert not table_exists(fresh_db, "nt_first")
    assert d.version(1) not in applied_versions(fresh_db)


async def fail_a_concurrent_unique_build(dsn: str, tmp_path: Path) -> MigrationRunner:
    """A CREATE UNIQUE INDEX CONCURRENTLY over duplicates: it fails and leaves an INVALID index."""
    d, path, runner = pending_over(
        dsn,
        tmp_path,
        [
            "create table dup_items (id int primary key, code text)",
            "insert into dup_items values (1, 'a'), (2, 'a'), (3, 'b')",
        ],
        "dup_items_code",
        "-- wedsync:no-transaction\n"
        "create unique index concurrently dup_items_code_key on dup_items (code);\n",
    )
    with pytest.raises(MigrationFailed) as info:
        await apply_migrations(settings_for("development", dsn), runner)
    message = str(info.value)
    assert f"{path} line 2" in message and "dup_items_code_key" in message
    assert "is duplicated" in message
    assert value(dsn, INDEX_STATE, ("dup_items_code_key",)) is False, "left INVALID"
    assert d.version(1) not in applied_versions(dsn)
    assert audit_events(dsn, "migrate.apply")[-1]["outcome"] == "failed"
    return runner


async def test_a_failed_concurrent_build_is_reported(fresh_db: str, tmp_path: Path) -> None:
    await fail_a_concurrent_unique_build(fresh_db, tmp_path)


async def test_the_invalid_index_is_dropped_before_the_next_attempt(
    fresh_db: str, tmp_path: Path
) -> None:
    runner = await fail_a_concurrent_unique_build(fresh_db, tmp_path)
    execute(fresh_db, "delete from dup_items where id = 2")
    result = await apply_migrations(settings_for("development", fresh_db), runner)
    (done,) = result.applied
    assert done.notes == (
        "dropped INVALID index public.dup_items_code_key left by an earlier failed build",
    )
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute(INDEX_STATE, ("dup_items_code_key",)).fetchone() == (True, True)
        count = conn.execute(
            "select count(*) from pg_class where relname = 'dup_items_code_key'"
        ).fetchone()
        assert count == (1,)
    assert audit_events(fresh_db, "migrate.apply")[-1]["outcome"] == "applied"


# --------------------------------------------------------------------------------------------
# lint at apply


@needs_squawk
async def test_apply_refuses_unacknowledged_lint_errors(fresh_db: str, tmp_path: Path) -> None:
    statement = "create index lint_items_code_idx on lint_items (code);\n"
    d, path, runner = pending_over(
        fresh_db,
        tmp_path,
        [
            "create table lint_items (id int primary key, code text)",
            "insert into lint_items select g, 'c' || g from generate_series(1, 100) g",
        ],
        "lint_items_code",
        statement,
    )
    settings = settings_for("development", fresh_db)
    with pytest.raises(MigrationRefused) as info:
        await apply_migrations(settings, runner)
    message = str(info.value)
    assert f"{path}:1 require-concurrent-index-creation" in message
    assert "wedsync:allow" in message
    assert not table_exists(fresh_db, "lint_items_code_idx")
    refused = audit_events(fresh_db, "migrate.apply")[-1]
    assert refused["outcome"] == "refused:lint"
    assert any("require-concurrent-index-creation" in e for e in refused["details"]["errors"])

    # a reasoned acknowledgement lets the same statement run
    path.write_text(
        "-- wedsync:allow require-concurrent-index-creation: table is small\n" + statement,
        encoding="utf-8",
    )
    result = await apply_migrations(settings, runner)
    assert [a.version for a in result.applied] == [d.version(1)]
    assert table_exists(fresh_db, "lint_items_code_idx")


# --------------------------------------------------------------------------------------------
# the freeze guard at apply (real clock, so the policy is configured to freeze now)

OVERRIDE_REASON = "hotfix: couples cannot submit RSVPs (INC-4821)"


def today_and_tomorrow() -> tuple[int, int]:
    """Weekday numbers of today and tomorrow in the platform timezone (safe across midnight)."""
    today = datetime.now(ZoneInfo("Europe/London")).weekday()
    return today, (today + 1) % 7


def frozen_today() -> str:
    """A WEDSYNC_FREEZE_WEEKDAYS value that freezes now."""
    return ",".join(WEEKDAYS[d] for d in today_and_tomorrow())


async def test_production_freeze_refuses_and_audits(fresh_db: str, tmp_path: Path) -> None:
    d = pending_table(tmp_path, "frozen_table")
    runner = runner_for_test(fresh_db, d, actor="ops@test")
    settings = settings_for("production", fresh_db, freeze_weekdays=frozen_today())
    with pytest.raises(MigrationFrozen) as info:
        await apply_migrations(settings, runner)
    assert "every migration is frozen" in str(info.value)
    assert "written reason" in str(info.value)
    assert not table_exists(fresh_db, "frozen_table")
    refused = audit_events(fresh_db, "migrate.apply")[-1]
    assert refused["outcome"] == "refused:frozen"
    assert refused["actor"] == "ops@test"
    reasons = refused["details"]["freeze"]["reasons"]
    assert len(reasons) == 1 and reasons[0] in {WEEKDAY_NAMES[d] for d in today_and_tomorrow()}


@pytest.mark.parametrize("blank", ["", "   \t"])
async def test_a_blank_override_reason_is_refused(
    fresh_db: str, tmp_path: Path, blank: str
) -> None:
    d = pending_table(tmp_path, "blank_override")
    runner = runner_for_test(fresh_db, d)
    settings = settings_for(
        "production", fresh_db, freeze_windows=freeze_window_around_now("release-freeze")
    )
    with pytest.raises(MigrationFrozen, match="needs a written reason"):
        await apply_migrations(settings, runner, override_freeze_reason=blank)
    assert not table_exists(fresh_db, "blank_override")
    refused = audit_events(fresh_db, "migrate.apply")[-1]
    assert refused["outcome"] == "refused:frozen"
    assert refused["details"]["freeze"]["reasons"] == ["window:release-freeze"]
    assert audit_events(fresh_db, "migrate.freeze-override") == []


async def test_an_override_with_a_reason_applies_and_is_audited(
    fresh_db: str, tmp_path: Path
) -> None:
    d = pending_table(tmp_path, "overridden_table")
    runner = runner_for_test(fresh_db, d, actor="alice@ops")
    settings = settings_for(
        "production", fresh_db, freeze_windows=freeze_window_around_now("launch")
    )
    result = await apply_migrations(settings, runner, override_freeze_reason=OVERRIDE_REASON)
    assert [a.version for a in result.applied] == [d.version(1)]
    assert table_exists(fresh_db, "overridden_table")
    freeze = result.to_dict()["freeze"]
    assert freeze["overridden"] is True
    assert (freeze["override_reason"], freeze["override_actor"]) == (OVERRIDE_REASON, "alice@ops")
    (event,) = audit_events(fresh_db, "migrate.freeze-override")
    assert (event["actor"], event["reason"], event["outcome"]) == (
        "alice@ops",
        OVERRIDE_REASON,
        "overridden",
    )
    assert event["details"]["freeze"]["reasons"] == ["window:launch"]
    run = audit_events(fresh_db, "migrate.apply")[-1]
    assert run["outcome"] == "applied"
    assert run["details"]["freeze_override"]["reason"] == OVERRIDE_REASON


async def test_weddings_today_freeze_blocking_files_only(fresh_db: str, tmp_path: Path) -> None:
    today = datetime.now(ZoneInfo("Europe/London")).date()
    for day in (today, today + timedelta(days=1)):  # safe across midnight
        execute(
            fresh_db,
            f"insert into weddings (title, wedding_date) values ('Today', '{day.isoformat()}')",
        )
    d = MigrationDir(tmp_path / "migrations")
    path = d.add(1, "guest_change", "alter table guests add column apply_note text;\n")
    runner = runner_for_test(fresh_db, d)
    settings = settings_for("production", fresh_db)
    with pytest.raises(MigrationFrozen, match="1 wedding is scheduled"):
        await apply_migrations(settings, runner)
    assert not column_exists(fresh_db, "guests", "apply_note")
    refused = audit_events(fresh_db, "migrate.apply")[-1]
    assert refused["outcome"] == "refused:frozen"
    assert refused["details"]["freeze"]["reasons"] == ["wedding-day"]
    assert refused["details"]["freeze"]["blocking"] is True

    # a file that blocks nobody may run on a wedding day
    path.write_text("create table wedding_day_notes (id int);\n", encoding="utf-8")
    result = await apply_migrations(settings, runner)
    assert [a.version for a in result.applied] == [d.version(1)]
    assert result.guard.freeze is not None
    assert result.guard.freeze["context"]["weddings_today"] == 1


async def test_a_freeze_does_not_stop_an_empty_run(fresh_db: str) -> None:
    runner = runner_for_test(fresh_db)
    settings = settings_for("production", fresh_db, freeze_weekdays=frozen_today())
    result = await apply_migrations(settings, runner)
    assert result.applied == []
    assert result.guard.freeze is not None and result.guard.freeze["active"] is True
    assert audit_events(fresh_db, "migrate.apply")[-1]["outcome"] == "nothing-to-do"


async def _apply_one_while_frozen(
    environment: str, fresh_db: str, tmp_path: Path, window: str
) -> dict[str, Any]:
    """Apply one pending table on a frozen weekday inside a freeze window; it must go in."""
    d = pending_table(tmp_path, f"{environment}_table")
    runner = runner_for_test(fresh_db, d)
    settings = settings_for(
        environment,
        fresh_db,
        freeze_weekdays=frozen_today(),
        freeze_windows=freeze_window_around_now(window),
    )
    result = await apply_migrations(settings, runner)
    assert [a.version for a in result.applied] == [d.version(1)]
    return result.to_dict()


async def test_staging_only_warns_about_a_freeze(fresh_db: str, tmp_path: Path) -> None:
    out = await _apply_one_while_frozen("staging", fresh_db, tmp_path, "staging-window")
    assert out["freeze"]["mode"] == "warn"
    assert out["freeze"]["active"] is True and out["freeze"]["allowed"] is True
    assert any("staging-window" in w for w in out["warnings"])
    assert any("every migration is frozen" in w for w in out["warnings"])
    assert audit_events(fresh_db, "migrate.freeze-override") == []


async def test_development_never_freezes(fresh_db: str, tmp_path: Path) -> None:
    out = await _apply_one_while_frozen("development", fresh_db, tmp_path, "dev-window")
    assert out["freeze"]["mode"] == "off"
    assert out["freeze"]["active"] is False and out["freeze"]["reasons"] == []
    assert out["warnings"] == []
