"""The HTTP API skeleton: probes, health+json, problem+json errors, OpenAPI, service key."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from conftest import make_database
from fixtures.environment import isolate_settings, unreachable_dsn
from wedsync_db.api.app import create_app
from wedsync_db.api.auth import ServiceKey
from wedsync_db.errors import PermissionDenied, PoolExhausted
from wedsync_db.migrate.runner import MigrationRunner
from wedsync_db.settings import Settings, load_settings

KEY = "test-service-key-0123456789-abcdefghij"
SECRET = "s3cret"
PROBLEM = "application/problem+json"
HEALTH = "application/health+json"


def clean_settings(mp: pytest.MonkeyPatch, directory: Path) -> Settings:
    """Settings with a known service key and nothing leaking in from the environment."""
    isolate_settings(mp, directory)
    return load_settings(service_key=KEY)


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    return clean_settings(monkeypatch, tmp_path)


def build(settings: Settings, dsn: str, **db_kwargs: object) -> FastAPI:
    app = create_app(
        settings, database=make_database(dsn, **db_kwargs), runner=MigrationRunner(dsn)
    )
    app.include_router(extra_routes())
    return app


def extra_routes() -> APIRouter:
    """Routes that exist only in these tests: a protected one and some that fail."""
    router = APIRouter(prefix="/test")

    @router.get("/secret", dependencies=[ServiceKey])
    async def secret() -> dict[str, str]:
        return {"ok": "yes"}

    @router.get("/exhausted")
    async def exhausted() -> None:
        raise PoolExhausted("user", 0.5)

    @router.get("/denied")
    async def denied() -> None:
        raise PermissionDenied("new row violates row-level security policy")

    @router.get("/number")
    async def number(n: int) -> dict[str, int]:
        return {"n": n}

    return router


@pytest.fixture(scope="module")
def client(shared_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One app over the shared migrated database for the tests that only read."""
    with pytest.MonkeyPatch.context() as mp:
        settings = clean_settings(mp, tmp_path_factory.mktemp("api"))
        with TestClient(build(settings, shared_db)) as c:
            yield c


@pytest.fixture
def unreachable_client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(build(settings, unreachable_dsn(SECRET), pool_timeout=0.3)) as c:
        yield c


# --- probes ---------------------------------------------------------------------------------
def test_live_ready_and_health_on_a_fresh_migrated_database(
    settings: Settings, fresh_db: str
) -> None:
    with TestClient(build(settings, fresh_db)) as client:
        live = client.get("/api/database/health/live")
        ready = client.get("/api/database/health/ready")
        health = client.get("/api/database/health")
    assert live.status_code == 200 and live.json() == {"status": "pass"}
    assert ready.status_code == 200, ready.text
    assert health.status_code == 200
    assert health.headers["content-type"].startswith(HEALTH)
    assert health.headers["cache-control"] == "no-store"
    body = health.json()
    assert body["status"] in ("pass", "warn")
    assert [c["status"] for c in body["checks"]["postgres:heartbeat"]] == ["pass", "pass"]


def test_ready_is_503_while_migrations_are_pending(settings: Settings, empty_db: str) -> None:
    with TestClient(build(settings, empty_db)) as c:
        ready = c.get("/api/database/health/ready")
        assert c.get("/api/database/health/live").status_code == 200
    assert ready.status_code == 503
    assert ready.headers["content-type"].startswith(PROBLEM)
    assert ready.headers["retry-after"]
    body = ready.json()
    assert body["status"] == 503
    assert any("pending" in reason for reason in body["reasons"])


def test_an_unreachable_database_fails_ready_and_health_but_not_live(
    unreachable_client: TestClient,
) -> None:
    live = unreachable_client.get("/api/database/health/live")
    assert live.status_code == 200 and live.json() == {"status": "pass"}

    ready = unreachable_client.get("/api/database/health/ready")
    assert ready.status_code == 503
    assert ready.headers["content-type"].startswith(PROBLEM)
    assert "unreachable" in ready.json()["detail"]

    health = unreachable_client.get("/api/database/health", headers={"apikey": KEY})
    assert health.status_code == 503
    assert health.headers["content-type"].startswith(HEALTH)
    assert health.json()["status"] == "fail"
    for response in (ready, health):
        assert SECRET not in response.text


def test_the_full_health_report_needs_the_service_key(client: TestClient) -> None:
    summary = client.get("/api/database/health").json()
    full = client.get("/api/database/health", headers={"Authorization": f"Bearer {KEY}"}).json()
    beat = "postgres:heartbeat"
    # the public summary gives statuses only; the full report says what was observed
    assert not any("observedValue" in c for checks in summary["checks"].values() for c in checks)
    assert {c["componentId"] for c in full["checks"][beat]} == {"user-pool", "service-pool"}
    assert all("observedValue" in c for c in full["checks"][beat])
    assert "postgres:responseTime" in full["checks"]
    # a wrong key is refused, not silently answered with the summary
    wrong = client.get("/api/database/health", headers={"apikey": "nope"})
    assert wrong.status_code == 401
    assert wrong.headers["content-type"].startswith(PROBLEM)
    assert wrong.json()["status"] == 401 and "checks" not in wrong.json()
    assert "nope" not in wrong.text and KEY not in wrong.text
    # the version is the installed package's
    assert summary["version"] == full["version"] == importlib.metadata.version("wedsync-db")


# --- errors ---------------------------------------------------------------------------------
def test_errors_are_problem_json(client: TestClient) -> None:
    missing = client.get("/api/database/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith(PROBLEM)
    assert missing.json()["status"] == 404

    wrong_method = client.post("/api/database/health/live")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["content-type"].startswith(PROBLEM)

    invalid = client.get("/test/number", params={"n": "twelve"})
    assert invalid.status_code == 422
    assert invalid.headers["content-type"].startswith(PROBLEM)
    assert invalid.json()["errors"][0]["loc"] == ["query", "n"]

    exhausted = client.get("/test/exhausted")
    assert exhausted.status_code == 503
    assert exhausted.headers["content-type"].startswith(PROBLEM)
    assert exhausted.headers["retry-after"] == "1"
    assert exhausted.json()["title"] == "Connection pool exhausted"

    denied = client.get("/test/denied")
    assert denied.status_code == 403
    assert denied.headers["content-type"].startswith(PROBLEM)


def test_openapi_is_served(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200 and "text/html" in docs.headers["content-type"]
    spec = client.get("/openapi.json").json()
    for path in ("/api/database/health", "/api/database/health/live", "/api/database/health/ready"):
        assert path in spec["paths"]


def test_the_index_links_the_docs_and_the_routes(client: TestClient) -> None:
    body = client.get("/").json()
    assert body["name"] == "wedsync-db" and body["version"]
    links = {link["href"]: link for link in body["links"]}
    for href in ("/docs", "/openapi.json", "/api/database/health", "/metrics"):
        assert href in links, href
    assert links["/api/database/migrate"]["auth"] == "service key"
    assert links["/api/database/health/live"]["auth"] is None
    assert links["/api/v1/weddings"]["auth"] == "user token"
    # routes that need a parameter are not linked; every link answers
    assert "/api/database/metrics/history" not in links
    for href in links:
        answer = client.get(href, headers={"apikey": KEY})
        assert answer.status_code not in (404, 422), href

    page = client.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<a href="/docs">' in page.text and '<a href="/api/database/health">' in page.text


def test_the_docs_need_no_cdn(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assert "/docs/assets/" in html, page
        assert "cdn" not in html.lower() and "https://" not in html, page
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        response = client.get(f"/docs/assets/{asset}")
        assert response.status_code == 200 and len(response.content) > 10_000, asset


def test_the_openapi_declares_the_service_key(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["serviceKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "The service key as `Authorization: Bearer <key>`",
    }
    assert schemes["serviceKeyHeader"]["type"] == "apiKey"
    assert (schemes["serviceKeyHeader"]["in"], schemes["serviceKeyHeader"]["name"]) == (
        "header",
        "apikey",
    )
    either = [{"serviceKey": []}, {"serviceKeyHeader": []}]
    for path, method in (
        ("/api/database/migrate", "get"),
        ("/api/database/migrate", "post"),
        ("/api/database/metrics", "get"),
    ):
        assert spec["paths"][path][method]["security"] == either, (path, method)
    assert "security" not in spec["paths"]["/api/database/health/live"]["get"]


# --- service key ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-key"},
        {"apikey": "wrong-key"},
        {"Authorization": f"Basic {KEY}"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Bearer {KEY}x"},
        {"apikey": KEY[:-1]},
    ],
)
def test_protected_routes_refuse_a_missing_or_wrong_key(
    client: TestClient, headers: dict[str, str]
) -> None:
    response = client.get("/test/secret", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert KEY not in response.text


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {KEY}"},
        {"Authorization": f"bearer {KEY}"},
        {"apikey": KEY},
    ],
)
def test_protected_routes_accept_the_key(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get("/test/secret", headers=headers)
    assert response.status_code == 200
    assert response.json() == {"ok": "yes"}
