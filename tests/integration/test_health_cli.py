"""`wedsync-db health`: the full document from one collection, and the exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wedsync_db.cli.main import app
from wedsync_db.embedded import free_port

pytestmark = pytest.mark.db


def run_health(dsn: str, tmp_path: Path, *args: str) -> tuple[int, str]:
    env = {
        "DATABASE_URL": dsn,
        "WEDSYNC_DATA_DIR": str(tmp_path / "data"),
        "WEDSYNC_ENV": "development",
    }
    result = CliRunner().invoke(app, ["health", *args], env=env)
    return result.exit_code, result.stdout


def test_health_json_on_a_migrated_database(fresh_db: str, tmp_path: Path) -> None:
    code, output = run_health(fresh_db, tmp_path, "--json")
    doc = json.loads(output)
    assert doc["status"] in ("pass", "warn"), doc.get("output")
    assert code == 0
    assert doc["checks"]["postgres:connections"][0]["observedUnit"] == "percent"
    assert doc["checks"]["postgres:heartbeat"][0]["status"] == "pass"
    readiness = doc["wedding_readiness"]
    assert readiness["weddings_today"] == 0
    assert set(readiness["freeze"]) == {"safe_migration", "blocking_migration"}
    assert isinstance(doc["recommendations"], list)


def test_health_table_and_exit_code(fresh_db: str, tmp_path: Path) -> None:
    code, output = run_health(fresh_db, tmp_path)
    assert code == 0
    assert "postgres:connections" in output
    assert "blocking migrations:" in output


def test_unreachable_database_fails_with_exit_2(tmp_path: Path) -> None:
    dsn = f"postgresql://postgres@127.0.0.1:{free_port()}/wedsync"
    code, output = run_health(dsn, tmp_path, "--json")
    doc = json.loads(output)
    assert code == 2
    assert doc["status"] == "fail"
    assert doc["wedding_readiness"]["weddings_today"] is None
    assert all(c["status"] == "fail" for c in doc["checks"]["postgres:heartbeat"])


def test_a_missing_database_is_named_and_migrations_are_not_called_allowed(
    pg_server: object, tmp_path: Path
) -> None:
    from conftest import Server

    assert isinstance(pg_server, Server)
    dsn = pg_server.dsn("wedsync_no_such_database")
    code, output = run_health(dsn, tmp_path, "--json")
    doc = json.loads(output)
    assert code == 2
    rows = {c["componentId"]: c for c in doc["checks"]["postgres:heartbeat"]}
    # the service pool (the migrating login) is tried first, and names the real problem
    assert 'database "wedsync_no_such_database" does not exist' in rows["service-pool"]["output"]
    assert "not tried" in rows["user-pool"]["output"]
    code, table = run_health(dsn, tmp_path)
    assert "safe migrations: unknown (the database is unreachable)" in table
    assert "allowed" not in table
