"""The one exit-code table: every row has a command that exits with it, and `--help` and the
README print the same table; `--version`; boolean flags show no placeholder in `--help`."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from fixtures.environment import isolate_settings, unreachable_dsn
from fixtures.migration_support import EVERY_WEEKDAY, MigrationDir, holding_migration_lock
from wedsync_db.cli.common import EXIT_MEANINGS, ExitCode
from wedsync_db.cli.main import app

KEY = "cli-test-service-key-0123456789-abcdef"
README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    isolate_settings(monkeypatch, tmp_path)
    monkeypatch.setenv("WEDSYNC_SERVICE_KEY", KEY)
    monkeypatch.setenv("WEDSYNC_FREEZE_WEEKDAYS", "")
    monkeypatch.setenv("WEDSYNC_PEAK_MONTHS", "")
    monkeypatch.setenv("COLUMNS", "80")
    return CliRunner()


Case = Callable[[CliRunner, pytest.MonkeyPatch, Path, str], None]


def _ok(cli: CliRunner, mp: pytest.MonkeyPatch, tmp: Path, dsn: str) -> None:
    mp.setenv("DATABASE_URL", dsn)
    _expect(cli, ["migrate", "status"], ExitCode.OK)
    _expect(cli, ["--version"], ExitCode.OK)


def _error(cli: CliRunner, mp: pytest.MonkeyPatch, tmp: Path, dsn: str) -> None:
    mp.setenv("DATABASE_URL", unreachable_dsn("pw"))
    _expect(cli, ["migrate", "status"], ExitCode.ERROR)
    mp.setenv("DATABASE_URL", dsn)
    _expect(cli, ["db", "status"], ExitCode.ERROR)  # the embedded server is not used


def _refused(cli: CliRunner, mp: pytest.MonkeyPatch, tmp: Path, dsn: str) -> None:
    bad = tmp / "0001_no_rls.sql"
    bad.write_text("create table no_rls (organization_id uuid, id int);\n", encoding="utf-8")
    _expect(cli, ["migrate", "lint", str(bad)], ExitCode.REFUSED)
    mp.setenv("DATABASE_URL", dsn)
    mp.setenv("WEDSYNC_ENV", "production")
    _expect(cli, ["demo", "seed", "--organizations", "1"], ExitCode.REFUSED)


def _frozen(cli: CliRunner, mp: pytest.MonkeyPatch, tmp: Path, dsn: str) -> None:
    d = MigrationDir(tmp / "migrations")
    d.add(1, "frozen_exit", "create table frozen_exit (id int);\n")
    mp.setenv("DATABASE_URL", dsn)
    mp.setenv("WEDSYNC_ENV", "production")
    mp.setenv("WEDSYNC_FREEZE_WEEKDAYS", EVERY_WEEKDAY)
    _expect(cli, ["migrate", "apply", "--dir", str(d.path)], ExitCode.FROZEN)


def _lock_held(cli: CliRunner, mp: pytest.MonkeyPatch, tmp: Path, dsn: str) -> None:
    d = MigrationDir(tmp / "migrations")
    d.add(1, "lock_exit", "create table lock_exit (id int);\n")
    mp.setenv("DATABASE_URL", dsn)
    with holding_migration_lock(dsn):
        args = ["migrate", "apply", "--lock-wait", "1", "--dir", str(d.path)]
        _expect(cli, args, ExitCode.LOCK_HELD)


def _usage(cli: CliRunner, mp: pytest.MonkeyPatch, tmp: Path, dsn: str) -> None:
    for args in (
        [],
        ["no-such-command"],
        ["inspect", "queries", "--no-such-option"],
        ["inspect", "queries", "--top", "0"],
        ["metrics", "history", "database_size_bytes", "--since", "whenever"],
        ["migrate", "repair", "0001"],  # --reason missing
    ):
        _expect(cli, args, ExitCode.USAGE)


CASES: dict[ExitCode, Case] = {
    ExitCode.OK: _ok,
    ExitCode.ERROR: _error,
    ExitCode.REFUSED: _refused,
    ExitCode.FROZEN: _frozen,
    ExitCode.LOCK_HELD: _lock_held,
    ExitCode.USAGE: _usage,
}


def _expect(cli: CliRunner, args: list[str], code: ExitCode) -> None:
    result = cli.invoke(app, args)
    assert result.exit_code == code, (args, result.exit_code, result.output)


def test_every_row_of_the_table_has_a_case() -> None:
    assert set(CASES) == set(ExitCode) == set(EXIT_MEANINGS)
    assert len({int(c) for c in ExitCode}) == len(ExitCode)


@pytest.mark.parametrize("code", list(ExitCode), ids=lambda c: c.name.lower())
def test_exit_code(
    code: ExitCode, cli: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fresh_db: str
) -> None:
    CASES[code](cli, monkeypatch, tmp_path, fresh_db)


def test_help_and_readme_print_the_table(cli: CliRunner) -> None:
    shown = cli.invoke(app, ["--help"])
    assert shown.exit_code == 0
    readme = README.read_text(encoding="utf-8")
    for code, meaning in EXIT_MEANINGS.items():
        assert re.search(rf"^\s*{int(code)}\s+{re.escape(meaning)}\s*$", shown.output, re.M), code
        assert f"| {int(code)} | {meaning} |" in readme, code


def test_version_is_the_package_version(cli: CliRunner) -> None:
    result = cli.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"wedsync-db {version('wedsync-db')}"


def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    # through the group's own listing: the root loads its sub-commands when asked for them
    found = [path]
    if hasattr(command, "list_commands"):
        ctx = typer.Context(command)
        for name in command.list_commands(ctx):
            found += _commands(command.get_command(ctx, name), (*path, name))
    return found


def test_no_help_page_shows_a_bool_placeholder(cli: CliRunner) -> None:
    paths = _commands(get_command(app))
    assert ("inspect", "queries") in paths and ("demo", "seed") in paths
    for path in paths:
        result = cli.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, path
        assert "--help" in result.output, path
        assert "<bool>" not in result.output, path
    seed = cli.invoke(app, ["demo", "seed", "--help"]).output
    assert "<int>" in seed  # valued options keep theirs


def test_a_command_imports_only_what_it_runs() -> None:
    """The command line loads a sub-command's module when that one runs: a backup starts
    without the SQL parser, the token library, the metrics client or the web server."""
    probe = (
        "import sys\n"
        "from typer.main import get_command\n"
        "from wedsync_db.cli.main import app\n"
        "root = get_command(app)\n"
        "group = root.get_command(None, 'backup')\n"
        "assert group is not None and 'create' in group.commands\n"
        "heavy = ('pglast', 'jwt', 'prometheus_client', 'fastapi', 'uvicorn')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
