"""Migration files on disk and their pure comparison with history (no database)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from wedsync_db.errors import MigrationFileError
from wedsync_db.migrate.files import (
    AppliedMigration,
    MigrationFile,
    checksum,
    detect_drift,
    discover,
    next_version,
    pending,
)
from wedsync_db.migrate.runner import lock_retry_schedule

APPLIED_AT = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)


def write(directory: Path, filename: str, sql: str = "select 1;\n") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / filename
    path.write_text(sql, encoding="utf-8")
    return path


def mfile(
    version: str, name: str, sql: str = "select 1;\n", directory: str = "db"
) -> MigrationFile:
    return MigrationFile(
        version, name, directory, f"{directory}/{version}_{name}.sql", sql, checksum(sql)
    )


def applied(f: MigrationFile, *, checksum_: str | None = None) -> AppliedMigration:
    return AppliedMigration(
        version=f.version,
        name=f.name,
        directory=f.directory,
        checksum=checksum_ or f.checksum,
        applied_at=APPLIED_AT,
        applied_by="ops@host",
        duration_ms=12.5,
        mode="transactional",
    )


# --------------------------------------------------------------------------------------------
# discovery


def test_discover_orders_by_number_across_directories(tmp_path: Path) -> None:
    write(tmp_path / "a", "0010_later.sql")
    write(tmp_path / "b", "0002_second.sql")
    write(tmp_path / "a", "0001_first.sql")
    write(tmp_path / "a", "README.md", "not a migration")
    files = discover([tmp_path / "a", tmp_path / "b"], include_builtin=False)
    assert [f.filename for f in files] == ["0001_first.sql", "0002_second.sql", "0010_later.sql"]
    assert [f.directory for f in files] == [str(tmp_path / d) for d in ("a", "b", "a")]
    assert files[0].path == f"{tmp_path / 'a'}/0001_first.sql"


def test_discover_puts_extra_directories_after_the_builtin_files(tmp_path: Path) -> None:
    builtin = discover()
    assert builtin, "the package ships migrations"
    assert {f.directory for f in builtin} == {"builtin"}
    assert [f.number for f in builtin] == sorted({f.number for f in builtin})
    top = max(f.number for f in builtin)
    write(tmp_path, f"{top + 1:04d}_extra.sql")
    files = discover([tmp_path])
    assert files[-1].filename == f"{top + 1:04d}_extra.sql"
    assert files[:-1] == builtin


@pytest.mark.parametrize(
    "filename",
    ["1_short.sql", "0003-dash.sql", "0003_Upper.sql", "0003_.sql", "add_table.sql", "0003.sql"],
)
def test_discover_refuses_badly_named_files(tmp_path: Path, filename: str) -> None:
    write(tmp_path, filename)
    with pytest.raises(MigrationFileError, match=r"NNNN_name\.sql") as info:
        discover([tmp_path], include_builtin=False)
    assert filename in str(info.value)


def test_discover_refuses_a_version_used_twice(tmp_path: Path) -> None:
    write(tmp_path / "a", "0007_one.sql")
    write(tmp_path / "b", "0007_two.sql")
    with pytest.raises(MigrationFileError, match="version 0007 is used twice") as info:
        discover([tmp_path / "a", tmp_path / "b"], include_builtin=False)
    assert "0007_one.sql" in str(info.value) and "0007_two.sql" in str(info.value)
    assert "migrate new" in str(info.value)


def test_discover_treats_leading_zeros_as_the_same_version(tmp_path: Path) -> None:
    write(tmp_path, "0007_one.sql")
    write(tmp_path, "00007_two.sql")
    with pytest.raises(MigrationFileError, match="used twice"):
        discover([tmp_path], include_builtin=False)


def test_discover_refuses_a_builtin_version_in_an_extra_directory(tmp_path: Path) -> None:
    first = discover()[0]
    write(tmp_path, f"{first.version}_clash.sql")
    with pytest.raises(MigrationFileError, match=f"version {first.version} is used twice"):
        discover([tmp_path])


def test_discover_refuses_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(MigrationFileError, match="does not exist"):
        discover([tmp_path / "nope"], include_builtin=False)


def test_discover_refuses_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "0001_latin1.sql").write_bytes("select 'café';".encode("latin-1"))
    with pytest.raises(MigrationFileError, match=r"0001_latin1\.sql is not valid UTF-8"):
        discover([tmp_path], include_builtin=False)


def test_discover_of_an_empty_directory_is_empty(tmp_path: Path) -> None:
    assert discover([tmp_path], include_builtin=False) == []


# --------------------------------------------------------------------------------------------
# checksum


def test_checksum_is_the_sha256_of_the_utf8_bytes(tmp_path: Path) -> None:
    sql = "create table café (id int);\n"
    assert checksum(sql) == hashlib.sha256(sql.encode("utf-8")).hexdigest()
    write(tmp_path, "0001_cafe.sql", sql)
    (f,) = discover([tmp_path], include_builtin=False)
    assert f.checksum == checksum(sql)
    assert len(f.checksum) == 64


@pytest.mark.parametrize(
    "edited",
    ["select 1; \n", "select 1;\r\n", "SELECT 1;\n", "select 1;\n\n", "-- note\nselect 1;\n"],
)
def test_checksum_changes_with_any_edit(edited: str) -> None:
    assert checksum(edited) != checksum("select 1;\n")


# --------------------------------------------------------------------------------------------
# drift


def test_no_drift_when_history_matches_the_files() -> None:
    a, b, c = mfile("0001", "a"), mfile("0002", "b"), mfile("0003", "c")
    assert detect_drift([a, b, c], [applied(a), applied(b)]) == []
    assert pending([a, b, c], [applied(a), applied(b)]) == [c]


def test_an_edited_applied_file_is_changed_drift_naming_the_fix() -> None:
    a = mfile("0001", "a")
    b = mfile("0002", "b", "alter table t add column x int;\n")
    old = checksum("alter table t add column y int;\n")
    (d,) = detect_drift([a, b], [applied(a), applied(b, checksum_=old)])
    assert (d.kind, d.version, d.name) == ("changed", "0002", "b")
    assert "db/0002_b.sql changed after it was applied" in d.message
    assert old[:12] in d.message and b.checksum[:12] in d.message
    assert "wedsync-db migrate repair 0002" in d.message
    assert d.to_dict() == {"kind": "changed", "version": "0002", "name": "b", "message": d.message}


def test_a_missing_applied_file_is_missing_drift() -> None:
    a, b = mfile("0001", "a"), mfile("0002", "b")
    (d,) = detect_drift([a], [applied(a), applied(b)])
    assert (d.kind, d.version) == ("missing", "0002")
    assert "0002_b.sql was applied on 2026-06-01 but is no longer in db" in d.message
    assert "restore the file" in d.message


def test_a_pending_file_older_than_the_newest_applied_is_out_of_order() -> None:
    a, b, c = mfile("0001", "a"), mfile("0002", "late"), mfile("0003", "c")
    (d,) = detect_drift([a, b, c], [applied(a), applied(c)])
    assert (d.kind, d.version, d.name) == ("out-of-order", "0002", "late")
    assert "db/0002_late.sql is pending but older than the newest applied migration (0003)" in (
        d.message
    )
    assert "renumber" in d.message
    # it is still pending: drift stops apply, it does not hide the file
    assert pending([a, b, c], [applied(a), applied(c)]) == [b]


def test_every_kind_of_drift_is_reported_at_once() -> None:
    a, b, c, d = (mfile(f"000{i}", n) for i, n in enumerate("abcd", start=1))
    history = [applied(a, checksum_="0" * 64), applied(b), applied(d)]
    found = detect_drift([a, c, d], history)
    assert [(x.kind, x.version) for x in found] == [
        ("changed", "0001"),
        ("missing", "0002"),
        ("out-of-order", "0003"),
    ]


def test_applied_to_dict_is_json_ready() -> None:
    row = applied(mfile("0001", "a")).to_dict()
    assert row["applied_at"] == "2026-06-01T09:30:00+00:00"
    assert row["duration_ms"] == 12.5 and row["mode"] == "transactional"


# --------------------------------------------------------------------------------------------
# next_version


@pytest.mark.parametrize(
    ("versions", "expected"),
    [([], "0001"), (["0001"], "0002"), (["0001", "0009"], "0010"), (["0999"], "1000")],
)
def test_next_version_follows_the_highest(versions: list[str], expected: str) -> None:
    assert next_version([mfile(v, f"m{v}") for v in versions]) == expected


def test_next_version_goes_past_five_digits() -> None:
    assert next_version([mfile("9999", "last")]) == "10000"


# --------------------------------------------------------------------------------------------
# lock_retry_schedule


@pytest.mark.parametrize(("lock_timeout", "budget"), [(2.0, 120.0), (0.2, 5.0), (0.5, 30.0)])
def test_lock_retry_schedule_grows_and_stays_within_its_budget(
    lock_timeout: float, budget: float
) -> None:
    steps = list(lock_retry_schedule(lock_timeout, budget))
    assert len(steps) >= 2
    timeouts = [t for t, _ in steps]
    sleeps = [s for _, s in steps]
    assert timeouts[0] == lock_timeout
    assert all(b >= a for a, b in pairwise(timeouts)), "lock timeouts never shrink"
    assert timeouts[1] > timeouts[0] and sleeps[1] > sleeps[0], "waits grow"
    assert max(timeouts) <= lock_timeout * 10 and max(sleeps) <= 10.0, "growth is capped"
    # the run stops once the budget is spent: all but the last attempt fit inside it
    spent_before_last = sum(t + s for t, s in steps[:-1])
    assert spent_before_last < budget
    assert spent_before_last + sum(steps[-1]) >= budget


def test_lock_retry_schedule_always_tries_once() -> None:
    assert list(lock_retry_schedule(2.0, 0.0)) == [(2.0, 0.2)]


def test_lock_retry_schedule_is_finite_with_a_large_budget() -> None:
    steps = list(lock_retry_schedule(2.0, 3600.0))
    assert sum(t + s for t, s in steps[:-1]) < 3600.0
    assert len(steps) < 500


def test_a_file_is_parsed_once_for_plan_and_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    from wedsync_db.migrate import plan
    from wedsync_db.migrate.lint import parsed as parsed_module

    calls: list[str] = []
    real = parsed_module.parse_sql

    def counting(sql: str) -> Any:
        calls.append(sql)
        return real(sql)

    monkeypatch.setattr(parsed_module, "parse_sql", counting)
    f = mfile("0001", "notes", "create table notes (id int);\ncreate index n on notes (id);\n")
    (first,) = plan.analyze_pending([f], pg_version=None)
    (again,) = plan.analyze_pending([f], pg_version=None)
    assert f.parsed.statements_or_raise[1].kind == "IndexStmt"  # what apply runs
    assert first.analysis == again.analysis
    assert len(calls) == 1
