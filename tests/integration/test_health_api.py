"""Health, readiness and liveness while the database is stopped and started again.

This test runs its own embedded server (even when WEDSYNC_TEST_DATABASE_URL is set), because it
has to stop it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from conftest import make_database
from wedsync_db.api.app import create_app
from wedsync_db.embedded import EmbeddedPostgres, free_port
from wedsync_db.migrate.runner import MigrationRunner, RunnerOptions
from wedsync_db.settings import Settings

pytestmark = pytest.mark.db

SERVICE_KEY = "health-test-service-key-0123456789abcdef"
HEALTH = "/api/database/health"


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[tuple[EmbeddedPostgres, str]]:
    server = EmbeddedPostgres(tmp_path / "pg", port=free_port(), fast=True)
    try:
        status, _ = server.ensure_running()
    except Exception as exc:
        pytest.skip(f"cannot start an embedded PostgreSQL here: {exc}")
    dsn = status.dsn()
    asyncio.run(MigrationRunner(dsn, options=RunnerOptions(actor="tests")).apply())
    try:
        yield server, dsn
    finally:
        server.stop()


def test_health_follows_the_database_down_and_up(
    own_server: tuple[EmbeddedPostgres, str], tmp_path: Path
) -> None:
    server, dsn = own_server
    settings = Settings(
        _env_file=None,
        service_key=SecretStr(SERVICE_KEY),
        data_dir=tmp_path / "data",
    )
    database = make_database(dsn, user_pool_size=2, pool_timeout=1.0, heartbeat_interval=0.2)
    app = create_app(
        settings,
        database=database,
        runner=MigrationRunner(dsn, options=RunnerOptions(actor="tests")),
    )
    full = {"Authorization": f"Bearer {SERVICE_KEY}"}

    def code(path: str) -> int:
        return int(client.get(path).status_code)

    with TestClient(app) as client:
        assert code(f"{HEALTH}/live") == 200
        assert code(f"{HEALTH}/ready") == 200
        response = client.get(HEALTH)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/health+json"
        summary = response.json()
        assert summary["status"] == "pass"
        assert "wedding_readiness" not in summary
        assert "observedValue" not in response.text
        report = client.get(HEALTH, headers=full).json()
        assert report["status"] in ("pass", "warn"), report.get("output")
        assert report["checks"]["postgres:heartbeat"][0]["observedValue"] == 0
        # the sampler's first assessment joins the heartbeat checks
        wait_for(
            lambda: "postgres:connections" in client.get(HEALTH, headers=full).json()["checks"],
            30,
            "the sampler's assessment in the full report",
        )
        report = client.get(HEALTH, headers=full).json()
        assert report["wedding_readiness"]["weddings_today"] == 0
        assert report["wedding_readiness"]["sampled_at"] is not None
        readiness = report["wedding_readiness"]
        assert readiness["context"] in ("normal", "peak-season", "wedding-day")
        assert set(readiness["freeze"]) == {"safe_migration", "blocking_migration"}

        server.stop()
        assert code(f"{HEALTH}/live") == 200
        assert code(f"{HEALTH}/ready") == 503
        wait_for(lambda: code(HEALTH) == 503, 15, "health to fail after the server stopped")
        down = client.get(HEALTH, headers=full).json()
        assert down["status"] == "fail"
        assert "postgres:heartbeat" in down["output"]
        assert code(f"{HEALTH}/live") == 200

        server.ensure_running()
        wait_for(lambda: code(f"{HEALTH}/ready") == 200, 60, "readiness after the restart")
        wait_for(lambda: code(HEALTH) == 200, 60, "health after the restart")
        # probes that waited for the pool to reconnect may still hold up the p95 (warn)
        assert client.get(HEALTH).json()["status"] in ("pass", "warn")
