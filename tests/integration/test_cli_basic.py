"""`wedsync-db` basics: config show / check, db status under DATABASE_URL, migrate status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fixtures.environment import isolate_settings
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
    assert shown["database_url"] == "postgresql://app:****@127.0.0.1:5432/wedsync"
    assert shown["service_key"] == "********"
    assert shown["env"] == "development"
    assert shown["effective_connection_budget"] == 10

    table = runner.invoke(app, ["config", "show"])
    assert table.exit_code == 0
    assert "db-s3cret" not in table.output and KEY not in table.output


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
