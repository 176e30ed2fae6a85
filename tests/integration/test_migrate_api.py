"""`/api/database/migrate` through the real app (lifespan, pools, service key) and database:
status codes 200 / 401 / 409 / 422 / 423, readiness after apply, and an audit row per run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fixtures.migration_support import (
    EVERY_WEEKDAY,
    SERVICE_KEY,
    MigrationDir,
    applied_versions,
    audit_events,
    holding_migration_lock,
    migrate_app,
    pending_table,
    settings_for,
    table_exists,
)
from wedsync_db.migrate import squawk
from wedsync_db.settings import Settings

URL = "/api/database/migrate"
AUTH = {"Authorization": f"Bearer {SERVICE_KEY}"}
PROBLEM_JSON = "application/problem+json"


def client_for(settings: Settings, dsn: str, d: MigrationDir) -> TestClient:
    return TestClient(migrate_app(settings, dsn, d, actor="api-tests"))


@pytest.fixture
def migrations(tmp_path: Path) -> MigrationDir:
    return pending_table(tmp_path, "api_table")


@pytest.fixture
def client(fresh_db: str, migrations: MigrationDir) -> Iterator[TestClient]:
    with client_for(settings_for("development", fresh_db), fresh_db, migrations) as c:
        yield c


def api_runs(dsn: str) -> list[dict[str, Any]]:
    """Audit rows of migration runs requested through the API."""
    return [e for e in audit_events(dsn, "migrate.apply") if e["details"].get("via") == "api"]


def assert_problem(response: Any, status: int, title: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert (body["status"], body["title"]) == (status, title)
    return body


def test_the_service_key_is_required(client: TestClient, fresh_db: str) -> None:
    assert_problem(client.get(URL), 401, "Unauthorized")
    assert_problem(client.get(URL, headers={"Authorization": "Bearer wrong"}), 401, "Unauthorized")
    assert_problem(client.post(URL, json={}), 401, "Unauthorized")
    assert_problem(client.post(URL, json={}, headers={"apikey": "nope"}), 401, "Unauthorized")
    assert not table_exists(fresh_db, "api_table")
    assert api_runs(fresh_db) == [], "an unauthenticated request is not a run"


def test_get_shows_status_plan_and_freeze(
    client: TestClient, fresh_db: str, migrations: MigrationDir
) -> None:
    response = client.get(URL, headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"]["current"] is False
    assert [p["version"] for p in body["status"]["pending"]] == [migrations.version(1)]
    assert [p["version"] for p in body["plan"]["pending"]] == [migrations.version(1)]
    assert body["plan"]["pending"][0]["statements"][0]["kind"] == "CreateStmt"
    assert body["freeze"]["active"] is False and body["freeze"]["reasons"] == []
    # the apikey header works too, and GET never applies anything
    assert client.get(URL, headers={"apikey": SERVICE_KEY}).status_code == 200
    assert not table_exists(fresh_db, "api_table")


def test_get_runs_squawk_off_the_event_loop(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_loop: list[bool] = []

    def recording(sql: str, **kw: Any) -> tuple[squawk.SquawkViolation, ...]:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            on_loop.append(False)
        else:
            on_loop.append(True)
        return ()

    monkeypatch.setattr(squawk, "run_squawk", recording)
    assert client.get(URL, headers=AUTH).status_code == 200
    assert on_loop == [False]


def test_post_dry_run_then_apply_makes_the_service_ready(
    client: TestClient, fresh_db: str, migrations: MigrationDir
) -> None:
    not_ready = client.get("/api/database/health/ready")
    assert not_ready.status_code == 503
    assert "1 migration(s) pending" in not_ready.json()["detail"]

    dry = client.post(URL, json={"dry_run": True}, headers=AUTH)
    assert dry.status_code == 200, dry.text
    assert dry.json()["applied"] == []
    assert [w["version"] for w in dry.json()["would_apply"]] == [migrations.version(1)]
    assert not table_exists(fresh_db, "api_table")

    applied = client.post(URL, json={}, headers=AUTH)
    assert applied.status_code == 200, applied.text
    assert [a["version"] for a in applied.json()["applied"]] == [migrations.version(1)]
    assert table_exists(fresh_db, "api_table")
    assert client.get("/api/database/health/ready").status_code == 200

    nothing = client.post(URL, json={"dry_run": False, "target": None}, headers=AUTH)
    assert nothing.status_code == 200 and nothing.json()["applied"] == []
    assert [e["outcome"] for e in api_runs(fresh_db)] == ["dry-run", "applied", "nothing-to-do"]
    assert all(e["actor"].startswith("api:service-key@") for e in api_runs(fresh_db))


def test_post_while_another_run_holds_the_lock_is_409_within_5_seconds(
    client: TestClient, fresh_db: str
) -> None:
    with holding_migration_lock(fresh_db):
        started = time.monotonic()
        response = client.post(URL, json={}, headers=AUTH)
        waited = time.monotonic() - started
    body = assert_problem(response, 409, "Another migration run holds the lock")
    assert "another migration run holds the lock" in body["detail"]
    assert response.headers["retry-after"] == "30"
    # the runner's own wait is 60 s; an HTTP caller waits at most 5 s
    assert 4.5 <= waited < 8
    assert not table_exists(fresh_db, "api_table")
    assert [e["outcome"] for e in api_runs(fresh_db)] == ["refused:lock-held"]


def test_post_with_drift_or_lint_errors_is_422(
    client: TestClient, fresh_db: str, migrations: MigrationDir
) -> None:
    assert client.post(URL, json={}, headers=AUTH).status_code == 200
    migrations.file(1, "api_table").write_text("create table api_table (id bigint);\n")
    drift = assert_problem(client.post(URL, json={}, headers=AUTH), 422, "Migration drift")
    assert "migrate repair" in drift["detail"]

    migrations.file(1, "api_table").write_text("create table api_table (id int);\n")
    migrations.add(2, "tenant_no_rls", "create table api_tenant (organization_id uuid);\n")
    lint = assert_problem(client.post(URL, json={}, headers=AUTH), 422, "Migration refused by lint")
    assert "tenant-table-without-rls" in lint["detail"]
    assert not table_exists(fresh_db, "api_tenant")

    invalid = client.post(URL, json={"target": "latest"}, headers=AUTH)
    assert_problem(invalid, 422, "Invalid request")
    assert [e["outcome"] for e in api_runs(fresh_db)] == [
        "applied",
        "refused:drift",
        "refused:lint",
    ]


def test_post_when_frozen_is_423_unless_overridden_with_a_reason(
    fresh_db: str, migrations: MigrationDir
) -> None:
    settings = settings_for("production", fresh_db, freeze_weekdays=EVERY_WEEKDAY)
    with client_for(settings, fresh_db, migrations) as client:
        status = client.get(URL, headers=AUTH).json()
        assert status["freeze"]["active"] is True and status["freeze"]["allowed"] is False

        frozen = assert_problem(
            client.post(URL, json={}, headers=AUTH), 423, "Migrations are frozen"
        )
        assert "written reason" in frozen["detail"]
        blank = client.post(URL, json={"override_freeze_reason": "   "}, headers=AUTH)
        assert_problem(blank, 423, "Migrations are frozen")
        assert not table_exists(fresh_db, "api_table")

        reason = "restore the RSVP deadline column before tonight's reminder emails"
        done = client.post(URL, json={"override_freeze_reason": reason}, headers=AUTH)
        assert done.status_code == 200, done.text
        assert done.json()["freeze"]["overridden"] is True
    assert migrations.version(1) in applied_versions(fresh_db)
    (override,) = audit_events(fresh_db, "migrate.freeze-override")
    assert override["reason"] == reason
    assert override["actor"].startswith("api:service-key@")
    assert [e["outcome"] for e in api_runs(fresh_db)] == [
        "refused:frozen",
        "refused:frozen",
        "applied",
    ]


def test_a_refused_unknown_target_is_audited_too(
    client: TestClient, fresh_db: str, migrations: MigrationDir
) -> None:
    response = client.post(URL, json={"target": migrations.version(9)}, headers=AUTH)
    assert_problem(response, 422, "Invalid migration files")
    assert [e["outcome"] for e in api_runs(fresh_db)] != []
