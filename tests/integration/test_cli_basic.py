"""`wedsync-db` basics: config show / check, db status under DATABASE_URL, migrate status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fixtures.environment import isolate_settings
from wedsync_db.cli import common
from wedsync_db.cli.main import app
from wedsync_db.migrate.files import discover

KEY = "cli-test-service-key-0123456789-abcdef"


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    """A CLI runner with a clean environment, data in tmp_path and no .env around."""
    isolate_settings(monkeypatch, tmp_path)
    monkeypatch.setenv("WEDSYNC_SERVICE_KEY", KEY)
    return CliRunner()


def test_config_show_redacts_secrets(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:db-s3cret@127.0.0.1:5432/wedsync")
    monkeypatch.setenv("WEDSYNC_JWT_SECRET", "jwt-s3cret")
    result = runner.invoke(app, ["config", "show", "--json"])
    assert result.exit_code == 0, result.output
    assert "db-s3cret" not in result.output
    assert KEY not in result.output
    assert "jwt-s3cret" not in result.output
    shown = json.loads(result.stdout)
    variables = {v["variable"]: v for v in shown["variables"]}
    assert variables["DATABASE_URL"] == {
        "variable": "DATABASE_URL",
        "value": "postgresql://app:****@127.0.0.1:5432/wedsync",
        "source": "environment",
    }
    assert variables["WEDSYNC_SERVICE_KEY"]["value"] == "********"
    assert variables["WEDSYNC_ENV"] == {
        "variable": "WEDSYNC_ENV",
        "value": "development",
        "source": "default",
    }
    assert variables["WEDSYNC_CONNECTION_BUDGET"]["value"] == "10"
    assert variables["WEDSYNC_CONNECTION_BUDGET"]["source"] == "default (development profile)"
    assert variables["WEDSYNC_PEAK_MONTHS"]["value"] == "5-10"
    assert shown["pools"] == {"user": 8, "service": 2}

    # the table wraps to the console's width, which the environment decides (a terminal,
    # COLUMNS, a pytest worker's pipe): render it at the width of piped output
    monkeypatch.setattr(common.out, "width", common.PIPED_WIDTH)
    table = runner.invoke(app, ["config", "show"])
    assert table.exit_code == 0
    assert "db-s3cret" not in table.output and KEY not in table.output
    # variable names, values as written and sources; no Python field names or reprs
    assert "WEDSYNC_PEAK_MONTHS" in table.output and "5-10" in table.output
    assert "default (development profile)" in table.output
    assert "peak_months" not in table.output
    assert "None" not in table.output and "{'user'" not in table.output


def test_config_check_names_the_variable_at_fault(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@127.0.0.1/wedsync")
    monkeypatch.setenv("WEDSYNC_ENV", "production")
    monkeypatch.setenv("WEDSYNC_SERVICE_KEY", "too-short")
    result = runner.invoke(app, ["config", "check"])
    assert result.exit_code == 1
    assert "WEDSYNC_SERVICE_KEY" in result.output
    assert "too-short" not in result.output

    monkeypatch.setenv("WEDSYNC_SERVICE_KEY", KEY)
    ok = runner.invoke(app, ["config", "check"])
    assert ok.exit_code == 0, ok.output
    assert "production" in ok.output


def test_config_check_reports_every_bad_variable_and_misspelt_names(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WEDSYNC_FREEZE_WINDOWS", "garbage")
    monkeypatch.setenv("WEDSYNC_MAINTENANCE_WINDOW", "1am-5am")
    monkeypatch.setenv("WEDSYNC_MIGRATION_DIRS", "team")
    monkeypatch.setenv("WEDSYNC_FREEZE_WEEKDAY", "sat")
    result = runner.invoke(app, ["config", "check"])
    assert result.exit_code == 1
    for variable in ("WEDSYNC_FREEZE_WINDOWS", "WEDSYNC_MAINTENANCE_WINDOW"):
        assert f"error: {variable}:" in result.stderr
    assert "error: WEDSYNC_MIGRATION_DIRS: migration directory team does not exist" in (
        result.stderr
    )
    assert "WEDSYNC_FREEZE_WEEKDAY is not a setting" in result.stderr
    assert "did you mean WEDSYNC_FREEZE_WEEKDAYS?" in result.stderr
    assert "configuration OK" not in result.output

    as_json = runner.invoke(app, ["config", "check", "--json"])
    assert as_json.exit_code == 1
    body = json.loads(as_json.stdout)
    assert body["ok"] is False
    assert [e["variable"] for e in body["errors"]] == [
        "WEDSYNC_MAINTENANCE_WINDOW",
        "WEDSYNC_FREEZE_WINDOWS",
        "WEDSYNC_MIGRATION_DIRS",
    ]
    assert len(body["warnings"]) == 1

    # the command that used to fail later is now caught: with the fixes, all is well
    (tmp_path / "team").mkdir()
    monkeypatch.setenv("WEDSYNC_FREEZE_WINDOWS", "2026-12-24/2026-12-27 christmas")
    monkeypatch.setenv("WEDSYNC_MAINTENANCE_WINDOW", "01:00-05:00")
    monkeypatch.delenv("WEDSYNC_FREEZE_WEEKDAY")
    ok = runner.invoke(app, ["config", "check"])
    assert ok.exit_code == 0, ok.output
    assert "configuration OK (development)" in ok.output


def test_config_check_warns_about_tls_in_staging(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:pw-s3cret@db.example.com/wedsync")
    monkeypatch.setenv("WEDSYNC_ENV", "staging")
    result = runner.invoke(app, ["config", "check"])
    assert result.exit_code == 0
    assert "DATABASE_URL" in result.stderr and "TLS" in result.stderr
    assert "pw-s3cret" not in result.output


def test_db_commands_say_the_embedded_server_is_not_used(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, fresh_db: str, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATABASE_URL", fresh_db)
    for command in (["db", "status"], ["db", "start"], ["db", "stop"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 1, command
        assert "DATABASE_URL is set" in result.output
        assert "embedded server is not used" in result.output
    # and nothing was initialised in the data directory
    assert not (tmp_path / "data" / "pgdata").exists()


def test_db_url_prints_the_configured_url_redacted(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:db-s3cret@127.0.0.1:5432/wedsync")
    result = runner.invoke(app, ["db", "url"])
    assert result.exit_code == 0
    assert result.stdout.strip() == "postgresql://app:****@127.0.0.1:5432/wedsync"


def test_migrate_status_lists_the_applied_builtin_migrations(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, fresh_db: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", fresh_db)
    result = runner.invoke(app, ["migrate", "status", "--json"])
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert status["current"] is True
    assert status["pending"] == [] and status["drift"] == []
    applied = [a["version"] for a in status["applied"]]
    assert applied == [f.version for f in discover(())]
    assert {"0001", "0002", "0003"} <= set(applied)


def test_migrate_status_on_an_empty_database_exits_1_with_everything_pending(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, empty_db: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", empty_db)
    result = runner.invoke(app, ["migrate", "status", "--json"])
    assert result.exit_code == 1
    status = json.loads(result.stdout)
    assert status["applied"] == []
    assert [p["version"] for p in status["pending"]] == [f.version for f in discover(())]
