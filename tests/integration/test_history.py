"""Metric history: capture, retention purge, series and forecasts against known data."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from wedsync_db.api.app import create_app
from wedsync_db.cli.main import app as cli
from wedsync_db.db.client import Database
from wedsync_db.migrate.runner import MigrationRunner
from wedsync_db.monitor import history
from wedsync_db.monitor.snapshot import (
    ConnectionGroup,
    ConnectionStats,
    Snapshot,
    StorageStats,
)
from wedsync_db.monitor.state import MonitorState
from wedsync_db.settings import Settings

pytestmark = pytest.mark.db

GIB = 2**30
KEY = "history-test-service-key-0123456789"
NOW = datetime.now(UTC).replace(microsecond=0)
LONDON = ZoneInfo("Europe/London")


def settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        service_key=SecretStr(KEY),
        data_dir=tmp_path / "data",
        **overrides,  # type: ignore[arg-type]
    )


def known(at: datetime, size_bytes: float, connections: int = 5) -> Snapshot:
    """A snapshot carrying just a database size and a connection count."""
    group = ConnectionGroup("vendor", "active", connections, 0, None, None)
    return Snapshot(
        captured_at=at,
        duration_ms=1.0,
        connections=ConnectionStats((group,), (), ()),
        storage=StorageStats(int(size_bytes), 0, 0, 0, ()),
    )


async def stored_rows(dsn: str) -> list[tuple[datetime, str, dict[str, float]]]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(
            "select captured_at, source, metrics from ops.metric_snapshots order by captured_at"
        )
        return list(await cur.fetchall())


async def test_capture_stores_metrics_and_statement_baseline(
    database: Database, fresh_db: str, tmp_path: Path
) -> None:
    first = await MonitorState(settings(tmp_path), database).capture(source="capture")
    [(at, source, metrics)] = await stored_rows(fresh_db)
    assert source == "capture" and at == first.captured_at
    assert metrics["database_size_bytes"] > 0 and metrics["connections_total"] >= 1
    assert metrics == pytest.approx(first.metrics())
    # a new process (another CLI run) picks up the stored baseline: statement differences
    second = await MonitorState(settings(tmp_path), database).capture(source="capture")
    if first.queries is not None:  # pg_stat_statements loaded on this server
        assert second.queries is not None and second.queries.window is not None
        assert second.queries.window.since == first.captured_at
    assert len(await stored_rows(fresh_db)) == 2


async def test_purge_keeps_the_retention_period(database: Database, fresh_db: str) -> None:
    for days in (40, 10, 5):
        await history.record(database, known(NOW - timedelta(days=days), GIB), source="capture")
    # the sampler purges as it stores
    cutoff = history.retention_cutoff(7, NOW)
    await history.record(
        database, known(NOW - timedelta(days=1), GIB), source="capture", purge_before=cutoff
    )
    remaining = [r[0] for r in await stored_rows(fresh_db)]
    assert remaining == [NOW - timedelta(days=5), NOW - timedelta(days=1)]


async def test_the_sampler_purges_by_the_environment_retention(
    database: Database, fresh_db: str, tmp_path: Path
) -> None:
    await history.record(database, known(NOW - timedelta(days=8), GIB), source="sampler")
    await history.record(database, known(NOW - timedelta(days=6), GIB), source="sampler")
    s = settings(tmp_path)
    assert s.effective_history_retention_days == 7  # development profile
    await MonitorState(s, database).capture()
    times = [r[0] for r in await stored_rows(fresh_db)]
    assert NOW - timedelta(days=8) not in times and NOW - timedelta(days=6) in times
    production = Settings(_env_file=None, env="production")  # type: ignore[call-arg]
    assert production.effective_history_retention_days == 90


async def test_series_and_forecast_from_known_data(database: Database) -> None:
    start = NOW - timedelta(days=9)
    for day in range(10):  # 10 GiB growing 1 GiB a day
        await history.record(
            database, known(start + timedelta(days=day), (10 + day) * GIB), source="sampler"
        )
    points = await history.series(
        database, "database_size_bytes", start - timedelta(hours=1), NOW + timedelta(hours=1)
    )
    assert [p.value for p in points] == [(10 + d) * GIB for d in range(10)]
    assert all(p.samples == 1 for p in points)

    coarse = await history.series(
        database, "database_size_bytes", start, NOW + timedelta(seconds=1), max_points=5
    )
    assert sum(p.samples for p in coarse) == 10 and len(coarse) <= 6
    # the buckets fall where the clock puts them; 10 points in at most 6 share some bucket,
    # whose min and max are then two different days' sizes
    shared = [p for p in coarse if p.samples > 1]
    assert shared and all(p.min < p.max for p in shared)

    report = await history.series_report(
        database,
        "database_size_bytes",
        since=start - timedelta(hours=1),
        until=NOW + timedelta(hours=1),
        disk_budget_bytes=50 * GIB,
        now=NOW,
    )
    f = report["forecast"]
    assert f["rate_per_day"] == pytest.approx(GIB)
    assert f["projections"]["in_30_days"] == pytest.approx(49 * GIB)
    assert f["days_until_budget"] == pytest.approx(31.0)
    with pytest.raises(history.UnknownMetric) as exc:
        await history.series_report(database, "no_such_metric", since=start, now=NOW)
    assert "database_size_bytes" in exc.value.known


async def test_saturday_connection_peaks_are_forecast(database: Database) -> None:
    saturday = datetime(2026, 5, 2, tzinfo=LONDON)
    for week, peak in enumerate((40, 44, 48, 52)):
        day = saturday + timedelta(weeks=week)
        for hour, n in ((10, peak - 10), (15, peak), (21, peak - 20)):
            await history.record(database, known(day.replace(hour=hour), GIB, n), source="sampler")
        await history.record(
            database, known(day + timedelta(days=3, hours=12), GIB, 90), source="sampler"
        )
    report = await history.series_report(
        database,
        "connections_total",
        since=saturday,
        until=saturday + timedelta(weeks=4),
        max_points=2000,
        timezone="Europe/London",
        now=datetime(2026, 5, 27, 12, tzinfo=LONDON),
    )
    peak = report["saturday_peak"]
    assert [s["peak"] for s in peak["saturdays"]] == [40, 44, 48, 52]
    assert peak["next_saturday"] == "2026-05-30"
    assert peak["weekly_change"] == pytest.approx(4.0)
    assert peak["predicted_peak"] == pytest.approx(56.0)


async def test_history_api(database: Database, fresh_db: str, tmp_path: Path) -> None:
    start = NOW - timedelta(days=30)
    for day in range(5):
        await history.record(
            database, known(start + timedelta(days=day), (1 + day) * GIB), source="sampler"
        )
    app = create_app(
        settings(tmp_path),
        database=database,
        runner=MigrationRunner(fresh_db),
        manage_database=False,
    )
    query = {
        "metric": "database_size_bytes",
        "since": start.isoformat(),
        "until": (start + timedelta(days=10)).isoformat(),
    }
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as client,
    ):
        headers = {"apikey": KEY}
        assert (await client.get("/api/database/metrics/history", params=query)).status_code == 401
        r = await client.get("/api/database/metrics/history", params=query, headers=headers)
        assert r.status_code == 200
        body = r.json()
        assert [p["value"] for p in body["points"]] == [(1 + d) * GIB for d in range(5)]
        assert body["forecast"]["rate_per_day"] == pytest.approx(GIB)
        assert body["forecast"]["budget"] == pytest.approx(50 * GIB)  # WEDSYNC_DISK_BUDGET_GB
        unknown = await client.get(
            "/api/database/metrics/history", params={"metric": "nope"}, headers=headers
        )
        assert (
            unknown.status_code == 404 and "database_size_bytes" in unknown.json()["known_metrics"]
        )
        invalid = await client.get(
            "/api/database/metrics/history", params={"metric": "Bad-Name"}, headers=headers
        )
        assert invalid.status_code == 422
        # the relative forms of the CLI, and its default span (7 days back from now)
        relative = await client.get(
            "/api/database/metrics/history",
            params={"metric": "database_size_bytes", "since": "7d"},
            headers=headers,
        )
        default = await client.get(
            "/api/database/metrics/history",
            params={"metric": "database_size_bytes"},
            headers=headers,
        )
        assert relative.status_code == default.status_code == 200
        for report in (relative.json(), default.json()):
            since = datetime.fromisoformat(report["since"])
            assert abs(since - (datetime.now(UTC) - timedelta(days=7))) < timedelta(minutes=1)
        bad = await client.get(
            "/api/database/metrics/history",
            params={"metric": "database_size_bytes", "since": "yesterday"},
            headers=headers,
        )
        assert bad.status_code == 422 and "7d" in bad.json()["detail"]


def test_cli_capture_and_history(fresh_db: str, tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": fresh_db,
        "WEDSYNC_DATA_DIR": str(tmp_path / "data"),
        "WEDSYNC_ENV": "development",
    }
    runner = CliRunner()
    for _ in range(2):
        captured = runner.invoke(cli, ["metrics", "capture", "--json"], env=env)
        assert captured.exit_code == 0, captured.output
        assert json.loads(captured.stdout)["metrics"]["database_size_bytes"] > 0
    shown = runner.invoke(
        cli, ["metrics", "history", "database_size_bytes", "--since", "1h", "--json"], env=env
    )
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.stdout)
    assert sum(p["samples"] for p in report["points"]) == 2 and report["forecast"]["reason"]
    table = runner.invoke(cli, ["metrics", "history", "connections_total"], env=env)
    assert table.exit_code == 0 and "Saturday peaks" in table.stdout
    unknown = runner.invoke(cli, ["metrics", "history", "no_such_metric"], env=env)
    assert unknown.exit_code == 1
