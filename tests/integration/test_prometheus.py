"""GET /metrics (parsed with prometheus_client's parser) and GET /api/database/metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from pydantic import SecretStr

from wedsync_db.api.app import create_app
from wedsync_db.api.routes_metrics import MetricsDocument
from wedsync_db.db.client import Database
from wedsync_db.migrate.runner import MigrationRunner
from wedsync_db.monitor.prometheus import TABLE_SERIES
from wedsync_db.monitor.state import MonitorState
from wedsync_db.settings import Settings

pytestmark = pytest.mark.db

KEY = "prometheus-test-service-key-0123456789"
SERVICE = {"Authorization": f"Bearer {KEY}"}
# the families a dashboard of this database needs (parser names: counters without _total)
REQUIRED = {
    "wedsync_db_up",
    "wedsync_db_scrapes",
    "wedsync_db_scrape_errors",
    "wedsync_db_scrape_duration_seconds",
    "wedsync_db_connections",
    "wedsync_db_connections_by_audience",
    "wedsync_db_max_connections",
    "wedsync_db_connections_max_usable",
    "wedsync_db_database_size_bytes",
    "wedsync_db_cache_hit_ratio",
    "wedsync_db_transactions_committed",
    "wedsync_db_transactions_rolled_back",
    "wedsync_db_blocks_read",
    "wedsync_db_deadlocks",
    "wedsync_db_temp_bytes",
    "wedsync_db_conflicts",
    "wedsync_db_checkpoints",
    "wedsync_db_buffers_written",
    "wedsync_db_wal_bytes",
    "wedsync_db_locks",
    "wedsync_db_locks_waiting",
    "wedsync_db_longest_transaction_seconds",
    "wedsync_db_table_dead_tuples",
    "wedsync_db_table_size_bytes",
    "wedsync_db_xid_remaining",
    "wedsync_db_replication_lag_seconds",
    "wedsync_db_heartbeat_latency_seconds",
    "wedsync_db_pool_size_connections",
    "wedsync_db_pool_requests_wait_seconds",
    "wedsync_db_settings_shared_buffers_bytes",
    "wedsync_db_server_info",
    "wedsync_db_health_status",
}


@asynccontextmanager
async def running_app(
    database: Database, dsn: str, tmp_path: Path, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, MonitorState]]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        service_key=SecretStr(KEY),
        data_dir=tmp_path / "data",
        **overrides,
    )
    app = create_app(
        settings, database=database, runner=MigrationRunner(dsn), manage_database=False
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client,
    ):
        monitor = app.state.ctx.monitor
        assert isinstance(monitor, MonitorState)
        yield client, monitor


async def first_sample(monitor: MonitorState, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    # wait for the whole capture (history included): while it runs, scrapes skip refreshing
    while monitor.full is None or monitor.busy:
        if time.monotonic() > deadline:
            pytest.fail(f"no sample within {timeout}s: {monitor.last_error}")
        await asyncio.sleep(0.05)


def parse(text: str) -> dict[str, list[Sample]]:
    return {f.name: list(f.samples) for f in text_string_to_metric_families(text)}


def value(families: dict[str, list[Sample]], name: str, **labels: str) -> float:
    [sample] = [s for s in families[name] if all(s.labels.get(k) == v for k, v in labels.items())]
    return float(sample.value)


async def test_metrics_parse_with_our_names_and_no_queryid_label(
    database: Database, fresh_db: str, tmp_path: Path
) -> None:
    async with running_app(database, fresh_db, tmp_path, metrics_max_age=0.0) as (client, monitor):
        await first_sample(monitor)
        r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    families = parse(r.text)
    assert all(name.startswith("wedsync_db_") for name in families)
    labels = {k for samples in families.values() for s in samples for k in s.labels}
    assert "queryid" not in labels and "query" not in labels
    assert set(families) >= REQUIRED, REQUIRED - set(families)
    assert value(families, "wedsync_db_up") == 1.0
    assert value(families, "wedsync_db_connections_by_audience", audience="ops") >= 1
    assert value(families, "wedsync_db_database_size_bytes") > 0
    assert value(families, "wedsync_db_max_connections") >= 10
    assert {s.labels["state"] for s in families["wedsync_db_connections"]} >= {"active", "idle"}
    assert {s.labels["pool"] for s in families["wedsync_db_pool_size_connections"]} == {
        "user",
        "service",
    }
    assert len(families["wedsync_db_table_size_bytes"]) <= TABLE_SERIES
    quantiles = {s.labels["quantile"] for s in families["wedsync_db_heartbeat_latency_seconds"]}
    assert quantiles == {"0.5", "0.95", "0.99"}
    if "wedsync_db_query_calls" in families:  # pg_stat_statements loaded on this server
        assert value(families, "wedsync_db_query_calls") > 0


async def test_concurrent_scrapes_share_one_refresh(
    database: Database, fresh_db: str, tmp_path: Path
) -> None:
    async with running_app(database, fresh_db, tmp_path, metrics_max_age=0.0) as (client, monitor):
        await first_sample(monitor)
        before = monitor.refreshes
        responses = await asyncio.gather(*(client.get("/metrics") for _ in range(10)))
        assert all(r.status_code == 200 for r in responses)
        assert 1 <= monitor.refreshes - before < 10
        assert monitor.scrapes >= 10


async def test_a_fresh_snapshot_is_served_without_touching_the_database(
    database: Database, fresh_db: str, tmp_path: Path
) -> None:
    async with running_app(database, fresh_db, tmp_path, metrics_max_age=600.0) as (
        client,
        monitor,
    ):
        await first_sample(monitor)
        before = monitor.refreshes
        for _ in range(5):
            assert (await client.get("/metrics")).status_code == 200
        assert monitor.refreshes == before


async def test_scrape_token_is_required_when_configured(
    database: Database, fresh_db: str, tmp_path: Path
) -> None:
    token = "scrape-token-abcdefghijklmnop"
    async with running_app(database, fresh_db, tmp_path, metrics_token=SecretStr(token)) as (
        client,
        _,
    ):
        assert (await client.get("/metrics")).status_code == 401
        bad = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401
        assert bad.headers["content-type"].startswith("application/problem+json")
        ok = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200


async def test_an_unreachable_database_reports_up_0_quickly(
    database: Database, fresh_db: str, tmp_path: Path
) -> None:
    async with running_app(database, fresh_db, tmp_path, metrics_max_age=0.0) as (client, monitor):
        await first_sample(monitor)
        await database.close()
        started = time.monotonic()
        r = await client.get("/metrics")
        elapsed = time.monotonic() - started
    families = parse(r.text)
    assert r.status_code == 200 and elapsed < 3.0
    assert value(families, "wedsync_db_up") == 0.0
    assert value(families, "wedsync_db_scrape_errors", collector="connection") >= 1
    # the last values stay visible, marked stale by their age
    assert "wedsync_db_database_size_bytes" in families


async def test_metrics_json_has_the_snapshot_and_recommendations(
    database: Database, fresh_db: str, tmp_path: Path
) -> None:
    async with await psycopg.AsyncConnection.connect(fresh_db, autocommit=True) as conn:
        await conn.execute("create table leaky_notes (organization_id uuid, body text)")
    async with running_app(database, fresh_db, tmp_path) as (client, _):
        assert (await client.get("/api/database/metrics")).status_code == 401
        r = await client.get("/api/database/metrics", headers=SERVICE)
    assert r.status_code == 200
    body = r.json()
    snapshot = body["snapshot"]
    assert snapshot["connections"]["groups"] and snapshot["storage"]["database_bytes"] > 0
    assert "counters" not in (snapshot.get("queries") or {})
    assert body["metrics"]["connections_total"] >= 1
    assert body["assessment"]["status"] in ("pass", "warn", "fail")
    keys = [rec["key"] for rec in body["recommendations"]]
    assert "security.tenant_table_without_rls:public.leaky_notes" in keys
    [rec] = [x for x in body["recommendations"] if "leaky_notes" in x["key"]]
    assert rec["remedy_sql"] and "ROW LEVEL SECURITY" in rec["remedy_sql"]
    # the body is what the OpenAPI documents
    assert MetricsDocument.model_validate(body).model_dump() == body
