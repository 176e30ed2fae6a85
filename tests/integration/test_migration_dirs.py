"""WEDSYNC_MIGRATION_DIRS reaches every entry point: migrate plan/apply/status/lint/new, `up`,
the readiness probe and /api/database/migrate; an explicit --dir still wins."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
from test_up import _stop as stop  # the `up` subprocess helpers of its own tests
from test_up import _wait_for as wait_for

from fixtures.environment import free_port
from fixtures.migration_support import (
    SERVICE_KEY,
    MigrationDir,
    applied_versions,
    start_wedsync_db,
)
from fixtures.migration_support import wedsync_db_in_process as wedsync_db

AUTH = {"Authorization": f"Bearer {SERVICE_KEY}"}


def test_configured_directories_reach_the_cli_up_and_the_api(fresh_db: str, tmp_path: Path) -> None:
    team = MigrationDir(tmp_path / "team")
    team.add(1, "guest_notes", "create table guest_notes (id int);\n")
    env = {"WEDSYNC_MIGRATION_DIRS": "team"}

    plan = wedsync_db(["migrate", "plan", "--json"], fresh_db, tmp_path, **env)
    assert plan.returncode == 0, plan.stderr
    assert [p["version"] for p in json.loads(plan.stdout)["pending"]] == [team.version(1)]
    lint = wedsync_db(["migrate", "lint", "--json"], fresh_db, tmp_path, **env)
    assert f"team/{team.version(1)}_guest_notes.sql" in lint.stdout, lint.stderr

    applied = wedsync_db(["migrate", "apply"], fresh_db, tmp_path, **env)
    assert applied.returncode == 0, applied.stderr
    assert team.version(1) in applied_versions(fresh_db)
    assert wedsync_db(["migrate", "status"], fresh_db, tmp_path, **env).returncode == 0

    port = free_port()
    proc = start_wedsync_db(["up", "--port", str(port)], fresh_db, tmp_path, **env)
    base = f"http://127.0.0.1:{port}/api/database"
    try:
        ready = wait_for(proc, f"{base}/health/ready", 200)
        assert ready.json() == {"status": "ready"}
        status = httpx.get(f"{base}/migrate", headers=AUTH, timeout=10)
        assert status.status_code == 200, status.text
        assert status.json()["status"]["current"] is True
        post = httpx.post(f"{base}/migrate", json={}, headers=AUTH, timeout=30)
        assert post.status_code == 200, post.text
        assert post.json()["applied"] == []
    finally:
        code, stderr = stop(proc)
    assert code == 0, stderr
    assert "no longer in" not in stderr
    assert "migrations: nothing to apply" in stderr

    # an explicit --dir replaces the setting: without the team directory the file is missing
    other = tmp_path / "other"
    other.mkdir()
    replaced = wedsync_db(["migrate", "status", "--dir", "other"], fresh_db, tmp_path, **env)
    assert replaced.returncode == 2 and "no longer in team" in replaced.stdout + replaced.stderr

    # an applied file that disappears is still reported
    os.remove(team.file(1, "guest_notes"))
    gone = wedsync_db(["migrate", "status", "--json"], fresh_db, tmp_path, **env)
    assert gone.returncode == 2
    assert [(d["kind"], d["version"]) for d in json.loads(gone.stdout)["drift"]] == [
        ("missing", team.version(1))
    ]


def test_new_writes_into_the_first_configured_directory(tmp_path: Path) -> None:
    first, second = MigrationDir(tmp_path / "a"), MigrationDir(tmp_path / "b")
    second.add(1, "taken", "select 1;\n")
    env = {"WEDSYNC_MIGRATION_DIRS": os.pathsep.join(["a", "b"])}
    made = wedsync_db(["migrate", "new", "seating"], "", tmp_path, **env)
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == f"a/{first.version(2)}_seating.sql"
    assert not (tmp_path / ".wedsync").exists()  # no development key written by `new`
