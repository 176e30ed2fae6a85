"""`wedsync-db migrate …` as an operator runs it: DATABASE_URL, exit codes (0 ok, 1 error,
2 drift / lint refusal, 3 frozen, 4 lock not obtained) and --json output. The commands run in
this process with a clean environment (`wedsync_db`); `wedsync_db_process` runs the installed
console script where the process itself matters."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from fixtures.migration_support import (
    EVERY_WEEKDAY,
    MigrationDir,
    applied_versions,
    audit_events,
    builtin_top,
    execute,
    holding_migration_lock,
    pending_table,
    start_wedsync_db,
    table_exists,
    value,
)
from fixtures.migration_support import wedsync_db as wedsync_db_process
from fixtures.migration_support import wedsync_db_in_process as wedsync_db
from wedsync_db.migrate.files import discover

NO_DATABASE = "postgresql://127.0.0.1:1/unused"


def as_json(proc: Any) -> Any:
    assert proc.stdout, proc.stderr
    return json.loads(proc.stdout)


PRODUCTION = {"WEDSYNC_ENV": "production", "WEDSYNC_FREEZE_WEEKDAYS": EVERY_WEEKDAY}


# --------------------------------------------------------------------------------------------
# status


def test_status_exit_code_says_current_pending_or_drift(fresh_db: str, tmp_path: Path) -> None:
    current = wedsync_db(["migrate", "status", "--json"], fresh_db, tmp_path)
    assert current.returncode == 0, current.stderr
    body = as_json(current)
    assert body["current"] is True and body["pending"] == [] and body["drift"] == []
    # every built-in file, in order (numbers may have gaps)
    assert [a["version"] for a in body["applied"]] == [f.version for f in discover()]

    d = MigrationDir(tmp_path / "migrations")
    path = d.add(1, "status_probe", "create table status_probe (id int);\n")
    dirs = ["--dir", str(d.path)]
    pending = wedsync_db(["migrate", "status", "--json", *dirs], fresh_db, tmp_path)
    assert pending.returncode == 1
    assert [p["version"] for p in as_json(pending)["pending"]] == [d.version(1)]

    assert wedsync_db(["migrate", "apply", *dirs], fresh_db, tmp_path).returncode == 0
    path.write_text("create table status_probe (id bigint);\n", encoding="utf-8")
    drift = wedsync_db(["migrate", "status", "--json", *dirs], fresh_db, tmp_path)
    assert drift.returncode == 2
    assert [(x["kind"], x["version"]) for x in as_json(drift)["drift"]] == [
        ("changed", d.version(1))
    ]
    # the installed console script says the same, with the same exit code
    human = wedsync_db_process(["migrate", "status", *dirs], fresh_db, tmp_path)
    assert human.returncode == 2
    assert "drift: changed" in human.stdout and "migrate repair" in human.stderr


# --------------------------------------------------------------------------------------------
# new and lint (no database)


def test_new_creates_the_next_numbered_file(tmp_path: Path) -> None:
    d = tmp_path / "migrations"
    top = builtin_top()
    first = wedsync_db(["migrate", "new", "add_seating", "--dir", str(d)], NO_DATABASE, tmp_path)
    assert first.returncode == 0, first.stderr
    created = d / f"{top + 1:04d}_add_seating.sql"
    assert first.stdout.strip() == str(created)
    assert "wedsync:no-transaction" in created.read_text(encoding="utf-8")

    second = wedsync_db(["migrate", "new", "Seating Plan", "--dir", str(d)], NO_DATABASE, tmp_path)
    assert second.returncode == 0, second.stderr
    assert (d / f"{top + 2:04d}_seating_plan.sql").exists()

    bad = wedsync_db(["migrate", "new", "drop;table", "--dir", str(d)], NO_DATABASE, tmp_path)
    assert bad.returncode == 1
    assert "lower-case letters, digits and underscores" in bad.stderr
    assert sorted(p.name for p in d.iterdir()) == [created.name, f"{top + 2:04d}_seating_plan.sql"]


def test_lint_exits_2_on_unacknowledged_errors_and_0_otherwise(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sql"
    bad.write_text("create table bookings (organization_id uuid not null, id int);\n")
    good = tmp_path / "good.sql"
    good.write_text("create table notes (id int primary key, body text);\n")
    acknowledged = tmp_path / "acknowledged.sql"
    acknowledged.write_text(
        "-- wedsync:allow tenant-table-without-rls: reference data shared by every tenant\n"
        "create table rates (organization_id uuid not null, id int);\n"
    )

    failed = wedsync_db(["migrate", "lint", str(bad)], NO_DATABASE, tmp_path)
    assert failed.returncode == 2
    assert "tenant-table-without-rls" in failed.stdout
    assert "1 unacknowledged error" in failed.stdout

    assert wedsync_db(["migrate", "lint", str(good)], NO_DATABASE, tmp_path).returncode == 0
    ok = wedsync_db(["migrate", "lint", "--json", str(acknowledged)], NO_DATABASE, tmp_path)
    assert ok.returncode == 0
    assert as_json(ok)["errors"] == 0

    whole_dir = wedsync_db(["migrate", "lint", "--json", str(tmp_path)], NO_DATABASE, tmp_path)
    assert whole_dir.returncode == 2
    body = as_json(whole_dir)
    assert body["errors"] == 1 and len(body["files"]) == 3

    missing = wedsync_db(["migrate", "lint", str(tmp_path / "nope.sql")], NO_DATABASE, tmp_path)
    assert missing.returncode == 1


def test_lint_reports_every_file_of_a_directory(tmp_path: Path) -> None:
    d = tmp_path / "migrations"
    d.mkdir()
    (d / "0101_latin1.sql").write_bytes(b"-- caf\xe9 des mari\xe9s\nselect 1;\n")
    (d / "0102_typo.sql").write_text("select 1;\ncreat table notes (id int);\n")
    (d / "0103_fine.sql").write_text("create table notes (id int primary key, body text);\n")

    human = wedsync_db(["migrate", "lint", str(d)], NO_DATABASE, tmp_path)
    assert human.returncode == 2, human.stderr
    assert "Traceback" not in human.stderr
    assert f"{d}/0101_latin1.sql is not valid UTF-8 (byte 0xe9 at offset 6)" in human.stdout
    assert f"{d}/0102_typo.sql: line 2: syntax error" in human.stdout
    assert "✓ " + str(d / "0103_fine.sql") in human.stdout
    assert "3 file(s), 2 unacknowledged error(s)" in human.stdout

    body = as_json(wedsync_db(["migrate", "lint", "--json", str(d)], NO_DATABASE, tmp_path))
    assert [[f["rule"] for f in file["findings"]] for file in body["files"]] == [
        ["not-utf8"],
        ["unparseable-sql"],
        [],
    ]


def test_lint_name_rule_is_the_same_by_path_and_in_a_directory(tmp_path: Path) -> None:
    d = tmp_path / "migrations"
    d.mkdir()
    bad_name = d / "bad_name.sql"
    bad_name.write_text("create table notes (id int primary key, body text);\n")

    def findings(args: list[str]) -> tuple[int, list[str]]:
        proc = wedsync_db(["migrate", "lint", "--json", *args], NO_DATABASE, tmp_path)
        (file,) = [f for f in as_json(proc)["files"] if f["name"] == str(bad_name)]
        return proc.returncode, [f"{f['rule']}:{f['severity']}" for f in file["findings"]]

    expected = (0, ["migration-file-name:warning"])
    assert findings([str(bad_name)]) == expected
    assert findings([str(d)]) == expected
    assert findings(["--dir", str(d)]) == expected
    # apply still refuses such a directory; lint says why, for that file
    human = wedsync_db(["migrate", "lint", "--dir", str(d)], NO_DATABASE, tmp_path)
    assert "bad_name.sql is not named NNNN_name.sql" in human.stdout


def test_lint_of_the_builtin_files_is_quiet_by_default(tmp_path: Path) -> None:
    quiet = wedsync_db(["migrate", "lint"], NO_DATABASE, tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert "(acknowledged)" not in quiet.stdout
    # every finding on its own line (by default a rule repeated in a file is one line)
    loud = wedsync_db(
        ["migrate", "lint", "--show-acknowledged", "--verbose"], NO_DATABASE, tmp_path
    )
    acknowledged = loud.stdout.count("(acknowledged)")
    assert acknowledged > 0
    assert f"{acknowledged} acknowledged finding(s) not shown (--show-acknowledged)" in quiet.stdout

    # a rule repeated in one file is one line by default, every line with --verbose
    verbose = wedsync_db(["migrate", "lint", "--verbose"], NO_DATABASE, tmp_path)
    each = verbose.stdout.count("warning blocking-lock-on-existing-table")
    once = quiet.stdout.count("warning blocking-lock-on-existing-table")
    assert each > once == quiet.stdout.count("more at lines")


def test_lint_of_several_directories_reports_a_version_used_twice(tmp_path: Path) -> None:
    a, b = MigrationDir(tmp_path / "team_a"), MigrationDir(tmp_path / "team_b")
    first = a.add(1, "guests_note", "select 1;\n")
    second = b.add(1, "vendor_note", "select 2;\n")
    version = first.name.split("_")[0]
    done = wedsync_db(
        ["migrate", "lint", "--dir", str(a.path), "--dir", str(b.path)], NO_DATABASE, tmp_path
    )
    assert done.returncode == 2, done.stdout + done.stderr
    shown = " ".join(done.stdout.split())
    assert f"duplicate-version line ?: version {version} is used twice: {first} and {second}" in (
        shown
    )


def test_plan_keeps_acknowledged_findings_quiet_by_default(fresh_db: str, tmp_path: Path) -> None:
    d = pending_table(
        tmp_path,
        "plan_notes",
        "-- wedsync:allow tenant-table-without-rls: row-level security comes in the next file\n"
        "create table plan_notes (organization_id uuid not null, body text);\n",
    )
    args = ["migrate", "plan", "--dir", str(d.path)]
    quiet = wedsync_db(args, fresh_db, tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert "tenant-table-without-rls" not in quiet.stdout
    assert "1 acknowledged finding(s) not shown (--show-acknowledged)" in quiet.stdout
    loud = wedsync_db([*args, "--show-acknowledged"], fresh_db, tmp_path)
    assert loud.returncode == 0, loud.stderr
    assert "tenant-table-without-rls" in loud.stdout
    assert "(acknowledged: row-level security comes in the next file)" in loud.stdout
    assert "not shown" not in loud.stdout


# --------------------------------------------------------------------------------------------
# apply


def test_dry_run_changes_nothing_and_target_stops_at_a_version(
    fresh_db: str, tmp_path: Path
) -> None:
    d = pending_table(tmp_path, "target_one")
    d.add(2, "target_two", "create table target_two (id int);\n")
    dirs = ["--dir", str(d.path)]
    before = applied_versions(fresh_db)

    dry = wedsync_db(["migrate", "apply", "--dry-run", "--json", *dirs], fresh_db, tmp_path)
    assert dry.returncode == 0, dry.stderr
    body = as_json(dry)
    assert body["dry_run"] is True and body["applied"] == []
    assert [w["version"] for w in body["would_apply"]] == [d.version(1), d.version(2)]
    assert applied_versions(fresh_db) == before
    assert not table_exists(fresh_db, "target_one")
    assert audit_events(fresh_db, "migrate.apply")[-1]["outcome"] == "dry-run"
    human = wedsync_db(["migrate", "apply", "--dry-run", *dirs], fresh_db, tmp_path)
    assert f"dry run: would apply {d.file(1, 'target_one')}" in human.stdout

    unknown = wedsync_db(["migrate", "apply", "--target", d.version(9), *dirs], fresh_db, tmp_path)
    assert unknown.returncode == 1
    assert "no migration file has that version" in unknown.stderr

    partial = wedsync_db(
        ["migrate", "apply", "--json", "--target", d.version(1), *dirs], fresh_db, tmp_path
    )
    assert partial.returncode == 0, partial.stderr
    assert [a["version"] for a in as_json(partial)["applied"]] == [d.version(1)]
    assert table_exists(fresh_db, "target_one") and not table_exists(fresh_db, "target_two")
    assert wedsync_db(["migrate", "status", *dirs], fresh_db, tmp_path).returncode == 1

    rest = wedsync_db(["migrate", "apply", *dirs], fresh_db, tmp_path)
    assert rest.returncode == 0
    assert "applied 1 migration(s)" in rest.stdout
    again = wedsync_db(["migrate", "apply", *dirs], fresh_db, tmp_path)
    assert (again.returncode, again.stdout.strip()) == (0, "nothing to apply")


def test_drift_exits_2_and_repair_needs_a_reason(fresh_db: str, tmp_path: Path) -> None:
    d = MigrationDir(tmp_path / "migrations")
    path = d.add(1, "repair_me", "create table repair_me (id int);\n")
    dirs = ["--dir", str(d.path)]
    assert wedsync_db(["migrate", "apply", *dirs], fresh_db, tmp_path).returncode == 0
    path.write_text("-- reviewed\ncreate table repair_me (id int);\n", encoding="utf-8")

    refused = wedsync_db(["migrate", "apply", "--json", *dirs], fresh_db, tmp_path)
    assert refused.returncode == 2
    assert f"migrate repair {d.version(1)}" in refused.stderr

    no_reason = wedsync_db(["migrate", "repair", d.version(1), *dirs], fresh_db, tmp_path)
    assert no_reason.returncode == 64 and "--reason" in no_reason.stderr  # usage error
    blank = wedsync_db(
        ["migrate", "repair", d.version(1), "--reason", "  ", *dirs], fresh_db, tmp_path
    )
    assert blank.returncode == 1 and "needs --reason" in blank.stderr
    assert audit_events(fresh_db, "migrate.repair") == []

    repaired = wedsync_db(
        ["migrate", "repair", d.version(1), "--reason", "comment only", *dirs], fresh_db, tmp_path
    )
    assert repaired.returncode == 0, repaired.stderr
    assert f"repaired changed drift of {d.version(1)}_repair_me" in repaired.stdout
    assert audit_events(fresh_db, "migrate.repair")[-1]["reason"] == "comment only"
    assert wedsync_db(["migrate", "status", *dirs], fresh_db, tmp_path).returncode == 0


def test_lint_refusal_exits_2(fresh_db: str, tmp_path: Path) -> None:
    d = pending_table(
        tmp_path, "tenant_no_rls", "create table tenant_no_rls (organization_id uuid, id int);\n"
    )
    refused = wedsync_db(["migrate", "apply", "--dir", str(d.path)], fresh_db, tmp_path)
    assert refused.returncode == 2
    assert "tenant-table-without-rls" in refused.stderr
    assert not table_exists(fresh_db, "tenant_no_rls")
    assert audit_events(fresh_db, "migrate.apply")[-1]["outcome"] == "refused:lint"


def test_a_file_that_cannot_be_parsed_is_refused_with_exit_2_audited_and_in_json(
    fresh_db: str, tmp_path: Path
) -> None:
    d = pending_table(tmp_path, "broken", "create tabel broken (id int);\n")
    refused = wedsync_db(["migrate", "apply", "--json", "--dir", str(d.path)], fresh_db, tmp_path)
    assert refused.returncode == 2, refused.stderr
    error = json.loads(refused.stdout)["error"]
    assert error["type"] == "MigrationRefused" and error["exit"] == 2
    assert "cannot be parsed" in error["message"]
    assert audit_events(fresh_db, "migrate.apply")[-1]["outcome"] == "refused:syntax"


def test_a_killed_runner_releases_the_lock_while_its_statement_still_runs(
    fresh_db: str, tmp_path: Path
) -> None:
    import signal

    slow = MigrationDir(tmp_path / "slow")
    slow.add(1, "slow", "select pg_sleep(60);\n")
    proc = start_wedsync_db(["migrate", "apply", "--dir", str(slow.path)], fresh_db, tmp_path)
    try:
        deadline = time.monotonic() + 30
        while not _sleeping(fresh_db):
            assert time.monotonic() < deadline, "the runner never started its statement"
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        killed = time.monotonic()
        # the lock's session notices its dead client within about a second, not in 60
        while _lock_held(fresh_db):
            assert time.monotonic() - killed < 10, "the lock outlived its runner"
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def _sleeping(dsn: str) -> bool:
    return bool(
        value(
            dsn,
            "select count(*) from pg_stat_activity where query like 'select pg_sleep(60)%%'"
            " and datname = current_database()",
        )
    )


def _lock_held(dsn: str) -> bool:
    return bool(
        value(
            dsn,
            "select count(*) from pg_locks l join pg_database d on d.oid = l.database"
            " where l.locktype = 'advisory' and d.datname = current_database()",
        )
    )


def test_a_held_lock_exits_4(fresh_db: str, tmp_path: Path) -> None:
    d = pending_table(tmp_path, "lock_probe")
    with holding_migration_lock(fresh_db):
        started = time.monotonic()
        proc = wedsync_db(
            ["migrate", "apply", "--json", "--lock-wait", "1", "--dir", str(d.path)],
            fresh_db,
            tmp_path,
        )
        waited = time.monotonic() - started
    assert proc.returncode == 4, proc.stderr
    assert "another migration run holds the lock" in proc.stderr
    assert waited >= 1
    assert not table_exists(fresh_db, "lock_probe")
    assert audit_events(fresh_db, "migrate.apply")[-1]["outcome"] == "refused:lock-held"


# --------------------------------------------------------------------------------------------
# the freeze at apply


def test_production_freeze_exits_3_unless_overridden_with_a_reason(
    fresh_db: str, tmp_path: Path
) -> None:
    d = pending_table(tmp_path, "frozen_cli")
    apply = ["migrate", "apply", "--json", "--dir", str(d.path)]

    frozen = wedsync_db(apply, fresh_db, tmp_path, **PRODUCTION)
    assert frozen.returncode == 3, frozen.stderr
    assert "frozen" in frozen.stderr and "written reason" in frozen.stderr
    blank = wedsync_db([*apply, "--override-freeze", "  "], fresh_db, tmp_path, **PRODUCTION)
    assert blank.returncode == 3
    assert not table_exists(fresh_db, "frozen_cli")
    outcomes = [e["outcome"] for e in audit_events(fresh_db, "migrate.apply")[-2:]]
    assert outcomes == ["refused:frozen", "refused:frozen"]

    reason = "hotfix for the vendor invoice export"
    done = wedsync_db(
        [*apply, "--override-freeze", reason, "--actor", "alice"], fresh_db, tmp_path, **PRODUCTION
    )
    assert done.returncode == 0, done.stderr
    body = as_json(done)
    assert [a["version"] for a in body["applied"]] == [d.version(1)]
    assert body["freeze"]["overridden"] is True
    (event,) = audit_events(fresh_db, "migrate.freeze-override")
    assert (event["actor"], event["reason"]) == ("alice", reason)


def test_staging_applies_with_freeze_warnings(fresh_db: str, tmp_path: Path) -> None:
    d = pending_table(tmp_path, "staging_cli")
    proc = wedsync_db(
        ["migrate", "apply", "--json", "--dir", str(d.path)],
        fresh_db,
        tmp_path,
        WEDSYNC_ENV="staging",
        WEDSYNC_FREEZE_WEEKDAYS=EVERY_WEEKDAY,
    )
    assert proc.returncode == 0, proc.stderr
    body = as_json(proc)
    assert [a["version"] for a in body["applied"]] == [d.version(1)]
    assert body["freeze"]["mode"] == "warn" and body["freeze"]["active"] is True
    assert any("every migration is frozen" in w for w in body["warnings"])


# --------------------------------------------------------------------------------------------
# plan --at: the freeze decision for a chosen moment, with weddings read from the database

SATURDAY_IN_JUNE = "2027-06-12T10:00:00+01:00"
WEDNESDAY_IN_JUNE = "2027-06-09T10:00:00+01:00"
WEDNESDAY_IN_WINDOW = "2027-06-09T02:30:00+01:00"
WEDDING_DAY = "2027-06-09"
BLOCKING = "alter table guests add column seating_note text;\n"
SAFE = "create table seating_plans (id int primary key, layout jsonb);\n"


@pytest.mark.parametrize(
    ("env", "at", "sql", "weddings", "active", "allowed", "reasons"),
    [
        pytest.param(
            "production", SATURDAY_IN_JUNE, SAFE, 0, True, False, ["saturday"], id="saturday"
        ),
        pytest.param(
            "production",
            WEDNESDAY_IN_JUNE,
            BLOCKING,
            2,
            True,
            False,
            ["wedding-day", "peak-season-outside-window"],
            id="wednesday-weddings-blocking",
        ),
        pytest.param(
            "production", WEDNESDAY_IN_JUNE, SAFE, 2, False, True, [], id="wednesday-weddings-safe"
        ),
        pytest.param(
            "production",
            WEDNESDAY_IN_WINDOW,
            BLOCKING,
            2,
            True,
            False,
            ["wedding-day"],
            id="wednesday-weddings-in-maintenance-window",
        ),
        pytest.param(
            "production",
            WEDNESDAY_IN_WINDOW,
            BLOCKING,
            0,
            False,
            True,
            [],
            id="wednesday-no-weddings-in-maintenance-window",
        ),
        pytest.param(
            "staging", SATURDAY_IN_JUNE, SAFE, 0, True, True, ["saturday"], id="staging-saturday"
        ),
        pytest.param(
            "development", SATURDAY_IN_JUNE, BLOCKING, 3, False, True, [], id="development"
        ),
    ],
)
def test_plan_at_shows_the_freeze_decision(
    fresh_db: str,
    tmp_path: Path,
    env: str,
    at: str,
    sql: str,
    weddings: int,
    active: bool,
    allowed: bool,
    reasons: list[str],
) -> None:
    for i in range(weddings):
        execute(
            fresh_db,
            f"insert into weddings (title, wedding_date) values ('Wedding {i}', '{WEDDING_DAY}')",
        )
    # a cancelled wedding does not make a wedding day
    execute(
        fresh_db,
        "insert into weddings (title, wedding_date, status) "
        f"values ('Called off', '{WEDDING_DAY}', 'cancelled')",
    )
    d = MigrationDir(tmp_path / "migrations")
    d.add(1, "planned_change", sql)
    proc = wedsync_db(
        ["migrate", "plan", "--at", at, "--json", "--dir", str(d.path)],
        fresh_db,
        tmp_path,
        WEDSYNC_ENV=env,
        WEDSYNC_FREEZE_WEEKDAYS="sat",
        WEDSYNC_PEAK_MONTHS="5-10",
    )
    assert proc.returncode == 0, proc.stderr
    plan = as_json(proc)
    assert isinstance(plan["pending"], list)
    (pending,) = plan["pending"]
    assert pending["version"] == d.version(1)
    assert pending["blocking"] is (sql == BLOCKING)
    assert pending["mode"] == "transactional"
    freeze = plan["freeze"]
    assert (freeze["active"], freeze["allowed"], freeze["reasons"]) == (active, allowed, reasons)
    assert freeze["evaluated_at"] == at
    saturday = at == SATURDAY_IN_JUNE
    context = freeze["context"]
    assert context["weekday_name"] == ("saturday" if saturday else "wednesday")
    assert context["weddings_today"] == (0 if saturday else weddings)
    # --at only evaluates the policy: nothing was applied
    assert d.version(1) not in applied_versions(fresh_db)


def test_plan_at_needs_an_iso_time(fresh_db: str, tmp_path: Path) -> None:
    proc = wedsync_db(["migrate", "plan", "--at", "next saturday"], fresh_db, tmp_path)
    assert proc.returncode == 1
    assert "ISO-8601" in proc.stderr


def test_plan_and_lint_print_the_same_analysis(fresh_db: str, tmp_path: Path) -> None:
    d = MigrationDir(tmp_path / "migrations")
    path = d.add(
        1,
        "seating_note",
        "-- wedsync:allow data-change-on-existing-table: a handful of rows\n"
        "alter table guests add column seating_note text;\n"
        "update guests set seating_note = '' where false;\n",
    )
    plan = wedsync_db(["migrate", "plan", "--json", "--dir", str(d.path)], fresh_db, tmp_path)
    assert plan.returncode == 0, plan.stderr
    (planned,) = as_json(plan)["pending"]
    lint = wedsync_db(["migrate", "lint", "--json", str(path)], NO_DATABASE, tmp_path)
    (linted,) = as_json(lint)["files"]
    assert planned.pop("version") == d.version(1) and planned.pop("name") == "seating_note"
    assert planned.pop("checksum")
    assert planned.pop("path") == linted.pop("name") == str(path)
    assert planned == linted
    assert [f["rule"] for f in linted["findings"]] == [
        "blocking-lock-on-existing-table",
        "data-change-on-existing-table",
    ]
