"""Operator actions against a real server: cancel / terminate a backend (audited, reason
required), EXPLAIN of a tracked statement (planned only, or run and rolled back), silences."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conftest import make_database
from fixtures.environment import isolate_settings, tracks_statements
from wedsync_db.api.app import create_app
from wedsync_db.cli.main import app
from wedsync_db.db.client import Database, user_dsn_for
from wedsync_db.errors import PermissionDenied
from wedsync_db.migrate.runner import MigrationRunner
from wedsync_db.ops import actions
from wedsync_db.ops.silences import InvalidSilence, Silence, apply_silences, parse_duration
from wedsync_db.settings import load_settings

pytestmark = pytest.mark.db

KEY = "ops-test-service-key-0123456789-abcdefgh"


async def _audit(dsn: str) -> list[dict[str, Any]]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        await cur.execute("select * from ops.operator_actions order by id")
        return await cur.fetchall()


async def _sleeping(dsn: str, app: str) -> tuple[psycopg.AsyncConnection[Any], asyncio.Task[Any]]:
    """A user-pool login running pg_sleep, visible as active in pg_stat_activity."""
    conn = await psycopg.AsyncConnection.connect(user_dsn_for(dsn), application_name=app)
    task = asyncio.create_task(conn.execute("select pg_sleep(60) /* stuck report */"))
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as watcher:
        for _ in range(100):
            cur = await watcher.execute(
                "select state from pg_stat_activity where pid = %s", (conn.info.backend_pid,)
            )
            row = await cur.fetchone()
            if row and row[0] == "active":
                break
            await asyncio.sleep(0.05)
    return conn, task


@pytest.fixture
def db(database: Database) -> Database:
    return database


async def test_cancel_stops_the_statement_and_is_audited(db: Database, fresh_db: str) -> None:
    conn, task = await _sleeping(fresh_db, "vendor-report")
    pid = conn.info.backend_pid
    try:
        done = await actions.signal_backend(
            db, pid, "cancel", reason="report blocks the wedding table", actor="alice"
        )
        with pytest.raises(psycopg.errors.QueryCanceled):
            await asyncio.wait_for(task, 10)
        # the session stays: only its statement ended
        await conn.rollback()
        assert (await (await conn.execute("select 1")).fetchone()) == (1,)
    finally:
        await conn.close()
    assert done.result == "cancel requested"
    rows = await _audit(fresh_db)
    assert len(rows) == 1
    row = rows[0]
    assert (row["actor"], row["action"], row["pid"]) == ("alice", "cancel", pid)
    assert row["reason"] == "report blocks the wedding table"
    assert row["backend_user"] == "wedsync_authenticator"
    assert row["application_name"] == "vendor-report"
    assert "pg_sleep" in row["query_excerpt"]


async def test_terminate_ends_the_session(db: Database, fresh_db: str) -> None:
    conn, task = await _sleeping(fresh_db, "runaway")
    pid = conn.info.backend_pid
    try:
        done = await actions.signal_backend(db, pid, "terminate", reason="runaway", actor="bob")
        with pytest.raises(psycopg.OperationalError):
            await asyncio.wait_for(task, 10)
    finally:
        await conn.close()
    assert done.result == "terminated"
    async with db.service("test") as s:
        assert (
            await s.fetch_val("select count(*) from pg_stat_activity where pid = %s", (pid,)) == 0
        )
    assert [r["action"] for r in await _audit(fresh_db)] == ["terminate"]


async def test_refusals_record_nothing(db: Database, fresh_db: str, pg_server: Any) -> None:
    with pytest.raises(InvalidSilence, match="reason is required"):
        await actions.signal_backend(db, 1, "cancel", reason="  ", actor="t")
    with pytest.raises(actions.BackendNotFound, match="no backend with pid 999999"):
        await actions.signal_backend(db, 999_999, "cancel", reason="gone", actor="t")
    # a backend of another database
    async with await psycopg.AsyncConnection.connect(pg_server.admin_dsn) as other:
        with pytest.raises(actions.ActionRefused, match="connected to database"):
            await actions.signal_backend(
                db, other.info.backend_pid, "cancel", reason="not ours", actor="t"
            )
    # a superuser's backend: pg_signal_backend does not reach it
    async with await psycopg.AsyncConnection.connect(fresh_db) as admin:
        is_super = await (
            await admin.execute("select rolsuper from pg_roles where rolname = current_user")
        ).fetchone()
        if is_super == (True,):
            # "SUPERUSER attribute" on 16+, "must be a superuser" on 15
            with pytest.raises(PermissionDenied, match=r"(?i)superuser"):
                await actions.signal_backend(
                    db, admin.info.backend_pid, "terminate", reason="admin", actor="t"
                )
    assert await _audit(fresh_db) == []


async def test_refused_signal_from_sql_maps_to_action_refused(db: Database) -> None:
    async with db.service("test") as s:
        pid = s.backend_pid
    # the pool hands the same warm connection back: it is the one running the action
    with pytest.raises(actions.ActionRefused):
        await actions.signal_backend(db, pid, "cancel", reason="self", actor="t")


# --- EXPLAIN ------------------------------------------------------------------------------------
async def _tracked_insert(dsn: str) -> int:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute("create table explain_probe (id integer, note text)")
        await conn.execute("grant all on explain_probe to service_role")
        await conn.execute("insert into explain_probe (id, note) values (%s, %s)", (1, "first"))
        cur = await conn.execute(
            "select queryid from pg_stat_statements "
            "where query like 'insert into explain_probe%%' and dbid = "
            "(select oid from pg_database where datname = current_database())"
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def _probe_rows(db: Database) -> int:
    async with db.service("test") as s:
        return int(await s.fetch_val("select count(*) from explain_probe"))


@pytest.fixture
def tracked(fresh_db: str) -> None:
    """Skip unless the server tracks statements and plans them generically (PostgreSQL 16+)."""
    if not tracks_statements(fresh_db):
        pytest.skip("pg_stat_statements is not in shared_preload_libraries on this server")
    with psycopg.connect(fresh_db) as conn:
        version = conn.info.server_version
    if version < 160000:
        pytest.skip("EXPLAIN (GENERIC_PLAN) needs PostgreSQL 16 (15 is covered by a unit test)")


@pytest.mark.usefixtures("tracked")
async def test_explain_plans_without_running(db: Database, fresh_db: str) -> None:
    queryid = await _tracked_insert(fresh_db)
    result = await actions.explain_statement(db, queryid)
    assert result.generic_plan and not result.analyze
    assert any("Insert on explain_probe" in line for line in result.plan)
    assert not any("actual" in line for line in result.plan)
    assert await _probe_rows(db) == 1
    with pytest.raises(actions.ExplainNeedsParameters, match="--analyze runs it"):
        await actions.explain_statement(db, queryid, analyze=True)


@pytest.mark.usefixtures("tracked")
async def test_explain_analyze_runs_and_rolls_back(db: Database, fresh_db: str) -> None:
    queryid = await _tracked_insert(fresh_db)
    result = await actions.explain_statement(
        db, queryid, analyze=True, params=["2", "second"], json_format=True
    )
    plan = result.plan[0]["Plan"]
    assert plan["Node Type"] == "ModifyTable" and plan["Actual Loops"] == 1
    assert result.rolled_back
    assert await _probe_rows(db) == 1


@pytest.mark.usefixtures("tracked")
async def test_explain_unknown_query(db: Database) -> None:
    with pytest.raises(actions.BackendNotFound, match="inspect queries"):
        await actions.explain_statement(db, 42)


def test_explain_on_postgresql_15_needs_parameter_values() -> None:
    query = "select * from guests where wedding_id = $1"
    with pytest.raises(actions.ExplainNeedsParameters, match="GENERIC_PLAN"):
        actions.explain_plan_options(
            query, server_major=15, analyze=False, params=None, json_format=False
        )
    options, generic = actions.explain_plan_options(
        query, server_major=15, analyze=False, params=["1"], json_format=False
    )
    assert options == ["format text"] and not generic
    with pytest.raises(actions.ActionRefused, match="VACUUM"):
        actions.explain_plan_options(
            "/* job */ vacuum guests",
            server_major=18,
            analyze=False,
            params=None,
            json_format=False,
        )


# --- silences -----------------------------------------------------------------------------------
def _doc() -> dict[str, Any]:
    return {
        "status": "warn",
        "checks": {
            "postgres:collectors": [{"status": "warn", "output": "pg_stat_statements missing"}],
            "postgres:heartbeat": [{"status": "pass"}],
        },
    }


def test_silence_turns_overall_back_to_pass_until_it_expires() -> None:
    now = datetime(2026, 6, 6, 12, tzinfo=UTC)
    silence = Silence("postgres:collectors", "stock PG 15", "carol", now, now + timedelta(hours=2))
    doc = apply_silences(_doc(), [silence], now)
    assert doc["status"] == "pass"
    entry = doc["checks"]["postgres:collectors"][0]
    assert entry["status"] == "warn"
    assert entry["silenced"]["reason"] == "stock PG 15"
    assert doc["silenced"] == ["postgres:collectors"]
    later = apply_silences(_doc(), [silence], now + timedelta(hours=2, seconds=1))
    assert later["status"] == "warn" and "silenced" not in later["checks"]["postgres:collectors"][0]
    summary = {"status": "warn", "checks": {"postgres:collectors": [{"status": "warn"}]}}
    assert apply_silences(summary, [silence], now)["checks"]["postgres:collectors"] == [
        {"status": "warn", "silenced": True}
    ]


def test_failing_output_leaves_silenced_checks_out() -> None:
    now = datetime(2026, 6, 6, 12, tzinfo=UTC)
    doc = {
        "status": "fail",
        "output": "failing: postgres:a, postgres:b",
        "checks": {"postgres:a": [{"status": "fail", "x": 1}], "postgres:b": [{"status": "fail"}]},
    }
    silence = Silence("postgres:a", "known", "c", now, now + timedelta(minutes=5))
    out = apply_silences(doc, [silence], now)
    assert (out["status"], out["output"]) == ("fail", "failing: postgres:b")


def test_durations() -> None:
    assert parse_duration("2h") == timedelta(hours=2)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    for bad in ("", "2x", "0m", "31d", "h2"):
        with pytest.raises(InvalidSilence):
            parse_duration(bad)


async def test_silences_are_stored_listed_lifted_and_audited(db: Database, fresh_db: str) -> None:
    with pytest.raises(InvalidSilence, match="never silenced"):
        await actions.silence_check(
            db, "postgres:heartbeat", timedelta(hours=1), reason="x", actor="t"
        )
    with pytest.raises(InvalidSilence, match="reason is required"):
        await actions.silence_check(
            db, "postgres:collectors", timedelta(hours=1), reason="", actor="t"
        )
    s = await actions.silence_check(
        db, "postgres:collectors", timedelta(hours=2), reason="no pg_stat_statements", actor="dan"
    )
    assert s.until - s.silenced_at == timedelta(hours=2)
    assert [x.check_id for x in await actions.active_silences(db)] == ["postgres:collectors"]
    doc = await actions.with_stored_silences(db, _doc())
    assert doc["status"] == "pass"
    assert await actions.unsilence_check(db, "postgres:collectors", actor="dan") is not None
    assert await actions.unsilence_check(db, "postgres:collectors", actor="dan") is None
    assert (await actions.with_stored_silences(db, _doc()))["status"] == "warn"
    # a silence that ran out is no longer active
    await actions.silence_check(db, "postgres:indexes", timedelta(hours=1), reason="r", actor="t")
    async with db.service("test") as sess:
        await sess.execute(
            "update ops.check_silences set silenced_at = now() - interval '2 hours', "
            "until = now() - interval '1 second'"
        )
    assert await actions.active_silences(db) == []
    audit = await _audit(fresh_db)
    assert [(r["action"], r["check_id"]) for r in audit] == [
        ("silence", "postgres:collectors"),
        ("unsilence", "postgres:collectors"),
        ("silence", "postgres:indexes"),
    ]


# --- HTTP API -----------------------------------------------------------------------------------
@pytest.fixture
def client(fresh_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    isolate_settings(monkeypatch, tmp_path)
    settings = load_settings(service_key=KEY)
    api = create_app(settings, database=make_database(fresh_db), runner=MigrationRunner(fresh_db))
    with TestClient(api) as c:
        yield c


AUTH = {"Authorization": f"Bearer {KEY}"}


def test_api_cancel_needs_the_key_and_a_reason(client: TestClient, fresh_db: str) -> None:
    url = "/api/database/backends/999999/cancel"
    assert client.post(url, json={"reason": "x"}).status_code == 401
    missing = client.post(url, json={}, headers=AUTH)
    assert missing.status_code == 422 and "reason" in missing.json()["detail"]
    assert client.post(url, json={"reason": ""}, headers=AUTH).status_code == 422
    gone = client.post(url, json={"reason": "stuck"}, headers=AUTH)
    assert gone.status_code == 404 and "999999" in gone.json()["detail"]
    assert client.get("/api/database/actions", headers=AUTH).json() == {"actions": []}


def test_api_terminate_a_real_backend(client: TestClient, fresh_db: str) -> None:
    with psycopg.connect(user_dsn_for(fresh_db), application_name="idle-app") as conn:
        pid = conn.info.backend_pid
        r = client.post(
            f"/api/database/backends/{pid}/terminate",
            json={"reason": "holds a lock", "actor": "erin"},
            headers=AUTH,
        )
        assert r.status_code == 200, r.text
        assert (r.json()["result"], r.json()["actor"]) == ("terminated", "erin")
        with pytest.raises(psycopg.OperationalError):
            conn.execute("select 1")
    audit = client.get("/api/database/actions", headers=AUTH).json()["actions"]
    assert [(a["action"], a["pid"], a["application_name"]) for a in audit] == [
        ("terminate", pid, "idle-app")
    ]


def test_api_silence_marks_the_check_in_health(client: TestClient) -> None:
    bad = client.put(
        "/api/database/silences/postgres:collectors",
        json={"for": "2x", "reason": "r"},
        headers=AUTH,
    )
    assert bad.status_code == 422
    r = client.put(
        "/api/database/silences/postgres:heartbeat", json={"for": "1h", "reason": "r"}, headers=AUTH
    )
    assert r.status_code == 422
    r = client.put(
        "/api/database/silences/postgres:heartbeat".replace("heartbeat", "responseTime"),
        json={"for": "1h", "reason": "slow disk, known"},
        headers=AUTH,
    )
    assert r.status_code == 200, r.text
    listed = client.get("/api/database/silences", headers=AUTH).json()["silences"]
    assert [s["check_id"] for s in listed] == ["postgres:responseTime"]
    deadline = time.monotonic() + 10
    while True:
        doc = client.get("/api/database/health", headers=AUTH).json()
        if "postgres:responseTime" in doc.get("silenced", []) or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    entries = doc["checks"]["postgres:responseTime"]
    assert all(e["silenced"]["reason"] == "slow disk, known" for e in entries)
    assert (
        client.delete("/api/database/silences/postgres:responseTime", headers=AUTH).status_code
        == 200
    )
    assert (
        client.delete("/api/database/silences/postgres:responseTime", headers=AUTH).status_code
        == 404
    )


# --- CLI ----------------------------------------------------------------------------------------
@pytest.fixture
def cli(fresh_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    isolate_settings(monkeypatch, tmp_path)
    monkeypatch.setenv("WEDSYNC_SERVICE_KEY", KEY)
    monkeypatch.setenv("DATABASE_URL", fresh_db)
    return CliRunner()


def test_cli_cancel_needs_a_reason_and_cancels(
    cli: CliRunner, fresh_db: str, pg_server: Any
) -> None:
    missing = cli.invoke(app, ["ops", "cancel", "12345"])
    assert missing.exit_code == 1 and "reason is required" in missing.stderr
    blank = cli.invoke(app, ["ops", "terminate", "12345", "--reason", " "])
    assert blank.exit_code == 1 and "reason is required" in blank.stderr
    with psycopg.connect(user_dsn_for(fresh_db)) as conn:
        pid = conn.info.backend_pid
        outcome: list[BaseException] = []

        def sleep() -> None:
            try:
                conn.execute("select pg_sleep(60)")
            except psycopg.Error as exc:
                outcome.append(exc)

        worker = threading.Thread(target=sleep)
        worker.start()
        time.sleep(0.3)
        result = cli.invoke(
            app, ["ops", "cancel", str(pid), "--reason", "stuck", "--actor", "frank", "--json"]
        )
        worker.join(10)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["action"] == "cancel"
        assert outcome and isinstance(outcome[0], psycopg.errors.QueryCanceled)
    with psycopg.connect(pg_server.admin_dsn) as other:
        refused = cli.invoke(
            app, ["ops", "cancel", str(other.info.backend_pid), "--reason", "not ours"]
        )
    assert refused.exit_code == 2 and "connected to database" in refused.stderr
    audit = json.loads(cli.invoke(app, ["ops", "actions", "--json"]).stdout)["actions"]
    assert [(a["actor"], a["action"], a["pid"]) for a in audit] == [("frank", "cancel", pid)]


def test_cli_silence_list_unsilence(cli: CliRunner, fresh_db: str) -> None:
    bad = cli.invoke(app, ["ops", "silence", "postgres:collectors", "--for", "2h"])
    assert bad.exit_code == 1 and "reason is required" in bad.stderr
    ok = cli.invoke(
        app,
        ["ops", "silence", "postgres:collectors", "--for", "2h", "--reason", "no pgss", "--json"],
    )
    assert ok.exit_code == 0, ok.output
    listed = json.loads(cli.invoke(app, ["ops", "silences", "--json"]).stdout)["silences"]
    assert [(s["check_id"], s["reason"]) for s in listed] == [("postgres:collectors", "no pgss")]
    assert "postgres:collectors" in cli.invoke(app, ["ops", "silences"]).stdout
    lifted = cli.invoke(app, ["ops", "unsilence", "postgres:collectors"])
    assert lifted.exit_code == 0 and "silence lifted" in lifted.stdout
    assert json.loads(cli.invoke(app, ["ops", "silences", "--json"]).stdout) == {"silences": []}
    unknown = cli.invoke(app, ["ops", "explain", "42"])
    if tracks_statements(fresh_db):
        assert unknown.exit_code == 1 and "inspect queries" in unknown.stderr
    else:  # refused with the hint on how to enable it
        assert unknown.exit_code == 2 and "shared_preload_libraries" in unknown.stderr


def test_cli_health_without_pg_stat_statements_passes_the_silenced_check(
    cli: CliRunner, fresh_db: str
) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("drop extension pg_stat_statements")
    before = json.loads(cli.invoke(app, ["health", "--json"]).stdout)
    assert before["checks"]["postgres:collectors"][0]["status"] == "warn"
    assert before["status"] in ("warn", "fail")
    silenced = cli.invoke(
        app, ["ops", "silence", "postgres:collectors", "--for", "1h", "--reason", "stock PG"]
    )
    assert silenced.exit_code == 0, silenced.output
    after = json.loads(cli.invoke(app, ["health", "--json"]).stdout)
    explain = cli.invoke(app, ["ops", "explain", "42"])
    assert explain.exit_code == 2 and "pg_stat_statements is not installed" in explain.stderr
    entry = after["checks"]["postgres:collectors"][0]
    assert entry["status"] == "warn" and entry["silenced"]["reason"] == "stock PG"
    others = [
        c["status"] for k, v in after["checks"].items() if k != "postgres:collectors" for c in v
    ]
    expected = "fail" if "fail" in others else "warn" if "warn" in others else "pass"
    assert after["status"] == expected
