"""Outages against a server this module starts (and stops) itself: frozen (SIGSTOP), killed
(kill -9 of the postmaster), its backends terminated, its port closed. Every client call returns
or raises within its bound, an outage is told as DatabaseUnavailable (never PoolExhausted), a
lost connection costs a read one retry, and health and /metrics notice and recover.

Signals go only to the processes of this module's own embedded server, by PID.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from conftest import make_database
from fixtures.migration_support import SERVICE_KEY, settings_for
from fixtures.own_server import OwnServer
from fixtures.tenants import add_guests, add_wedding, couple, new_id
from wedsync_db.api.app import create_app
from wedsync_db.db.client import Database
from wedsync_db.errors import DatabaseUnavailable, PoolExhausted
from wedsync_db.migrate.runner import MigrationRunner, RunnerOptions

POOL_TIMEOUT = 1.5
QUERY_TIMEOUT = 2.0
# any call: a checkout gives up after the pool timeout (plus one liveness check), a statement
# after the query timeout; the slack covers a loaded test machine
BOUND = max(POOL_TIMEOUT + 1.0, QUERY_TIMEOUT) + 1.5


@pytest.fixture(scope="module")
def own_server() -> Iterator[OwnServer]:
    try:
        server = OwnServer()
    except Exception as exc:  # pragma: no cover - the environment, not the code
        pytest.fail(f"could not start an embedded server for the outage tests: {exc}")
    try:
        asyncio.run(MigrationRunner(server.dsn, options=RunnerOptions(actor="tests")).apply())
        yield server
    finally:
        server.close()


def outage_database(dsn: str, **kwargs: Any) -> Database:
    params: dict[str, Any] = {
        "user_pool_size": 2,
        "pool_timeout": POOL_TIMEOUT,
        "query_timeout": QUERY_TIMEOUT,
        "heartbeat_interval": 1.0,
    }
    return make_database(dsn, **{**params, **kwargs})


@pytest.fixture
async def db(own_server: OwnServer) -> AsyncIterator[Database]:
    database = outage_database(own_server.dsn)
    await database.open()
    yield database
    await database.close()


@pytest.fixture
async def wedding(db: Database) -> tuple[Any, Any]:
    partner = new_id()
    async with db.service(reason="test: outage wedding") as s:
        wedding_id = await add_wedding(s, {partner: "partner"})
        await add_guests(s, wedding_id, 3)
    return wedding_id, partner


async def timed(coro: Any) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        await coro
    except BaseException as exc:
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


async def read_guests(db: Database, partner: Any) -> int:
    async with db.as_user(couple(partner)) as s:
        return int(await s.fetch_val("select count(*) from guests"))


async def reads_again(db: Database, partner: Any, *, within: float, after: str) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            assert await read_guests(db, partner) == 3
            return
        except DatabaseUnavailable:
            assert time.monotonic() < deadline, f"no recovery after {after}"
            await asyncio.sleep(0.2)


async def write_guest(db: Database, wedding_id: Any, partner: Any) -> None:
    async with db.as_user(couple(partner)) as s:
        await s.execute(
            "insert into guests (wedding_id, first_name) values (%s, 'During')", (wedding_id,)
        )


# --- a frozen server --------------------------------------------------------------------------
async def test_every_call_is_bounded_while_the_server_is_frozen(
    own_server: OwnServer, db: Database, wedding: tuple[Any, Any]
) -> None:
    wedding_id, partner = wedding
    assert await read_guests(db, partner) == 3
    with own_server.frozen():
        # a connection used a moment ago (no liveness check), then after the recent-use window
        # (the checkout checks it, within its own deadline)
        for pause in (0.0, 1.2):
            await asyncio.sleep(pause)
            for call in (read_guests(db, partner), write_guest(db, wedding_id, partner)):
                elapsed, error = await timed(call)
                assert elapsed <= BOUND, f"a call took {elapsed:.1f}s"
                assert isinstance(error, DatabaseUnavailable), error
                assert not isinstance(error, PoolExhausted), error
    # thawed: the next calls work again, on fresh connections where the old ones were closed
    await reads_again(db, partner, within=10, after="the freeze")


async def test_a_probe_round_trip_gives_up_at_its_deadline_on_a_frozen_server(
    own_server: OwnServer,
) -> None:
    from wedsync_db.db.client import _timed_round_trip

    conn = await psycopg.AsyncConnection.connect(own_server.dsn, autocommit=True)
    try:
        assert await asyncio.to_thread(_timed_round_trip, conn, 2.0) > 0
        with own_server.frozen():
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                await asyncio.to_thread(_timed_round_trip, conn, 0.5)
            assert 0.4 <= time.monotonic() - started <= 1.5
    finally:
        await conn.close()


async def test_a_scope_exit_is_bounded_while_the_server_is_frozen(
    own_server: OwnServer, db: Database, wedding: tuple[Any, Any]
) -> None:
    wedding_id, partner = wedding
    error: BaseException | None = None
    started = 0.0
    try:
        async with db.as_user(couple(partner)) as s:
            await s.execute(
                "insert into guests (wedding_id, first_name) values (%s, 'Late')", (wedding_id,)
            )
            own_server.signal_all(signal.SIGSTOP, pids := own_server.processes())
            started = time.monotonic()
    except BaseException as exc:  # the COMMIT at the scope's exit
        error = exc
    finally:
        own_server.signal_all(signal.SIGCONT, own_server.processes() if not started else pids)
    assert time.monotonic() - started <= BOUND
    assert isinstance(error, DatabaseUnavailable), error
    # the COMMIT sat in the frozen server's socket: it may still be applied once the server
    # runs again, and the caller is told exactly that
    assert "outcome is unknown" in str(error)


# --- a killed postmaster, a closed port, terminated backends ---------------------------------
async def test_a_killed_server_is_an_outage_not_a_full_pool(
    own_server: OwnServer, db: Database, wedding: tuple[Any, Any]
) -> None:
    _, partner = wedding
    pids = own_server.kill_postmaster()
    try:
        await asyncio.sleep(1.2)  # connections are checked again on checkout
        for _ in range(3):
            elapsed, error = await timed(read_guests(db, partner))
            assert elapsed <= BOUND, f"a call took {elapsed:.1f}s"
            assert isinstance(error, DatabaseUnavailable), error
            assert not isinstance(error, PoolExhausted), error
    finally:
        own_server.restart_after_kill(pids)
    await reads_again(db, partner, within=15, after="the restart")


async def test_a_closed_port_is_an_outage_not_a_full_pool(own_server: OwnServer) -> None:
    database = outage_database(own_server.dsn)
    await database.open()
    try:
        own_server.server.stop()
        await asyncio.sleep(1.2)
        elapsed, error = await timed(read_guests(database, new_id()))
        assert elapsed <= BOUND
        assert isinstance(error, DatabaseUnavailable) and not isinstance(error, PoolExhausted)
    finally:
        own_server.server.ensure_running()
        await database.close()


async def test_an_outage_logs_its_start_and_its_end_once_per_pool_not_every_failure(
    own_server: OwnServer, caplog: pytest.LogCaptureFixture
) -> None:
    database = outage_database(own_server.dsn)
    await database.open()
    database.start_heartbeat()
    try:
        with caplog.at_level(logging.INFO):
            own_server.server.stop()
            # a few seconds of failing probes and reconnection attempts in both pools
            deadline = time.monotonic() + 6
            while time.monotonic() < deadline or any(
                o.failures < 3 for o in database.outages.values()
            ):
                assert time.monotonic() < deadline + 20, "the outage was not noticed"
                await asyncio.sleep(0.2)
            own_server.server.ensure_running()
            deadline = time.monotonic() + 15
            while any(o.since is not None for o in database.outages.values()):
                assert time.monotonic() < deadline, "the recovery was not noticed"
                await asyncio.sleep(0.2)
    finally:
        own_server.server.ensure_running()
        await database.close()
    lines = [r.getMessage() for r in caplog.records]
    for pool in ("user", "service"):
        marks = [
            line
            for line in lines
            if f"unreachable from the {pool} pool since" in line
            or f"reachable again from the {pool} pool after" in line
        ]
        # down, up, down, up …: each episode is logged as exactly two lines
        assert len(marks) % 2 == 0, lines
        episodes = list(zip(marks[::2], marks[1::2], strict=True))
        assert all("unreachable" in d and "reachable again" in u for d, u in episodes), lines
        # a connection broken by the shutdown itself can be one failed attempt that a fresh
        # connection ends at once, just before the server stops taking them: an episode of
        # its own; the outage is the one episode of many failed attempts
        outage = [(d, u) for d, u in episodes if "after 0 s (1 failed attempts)" not in u]
        assert len(outage) == 1 and len(episodes) <= 2, lines
        assert "failed attempts)" in outage[0][1]
    assert not [line for line in lines if line.startswith("error connecting in")], lines


async def test_a_read_survives_terminated_backends_with_one_retry_writes_do_not(
    own_server: OwnServer, db: Database, wedding: tuple[Any, Any]
) -> None:
    wedding_id, partner = wedding
    assert await read_guests(db, partner) == 3

    def terminate_user_pool() -> int:
        with psycopg.connect(own_server.dsn, autocommit=True) as admin:
            return len(
                admin.execute(
                    "select pg_terminate_backend(pid) from pg_stat_activity"
                    " where usename = 'wedsync_authenticator' and pid <> pg_backend_pid()"
                ).fetchall()
            )

    assert terminate_user_pool() >= 1
    assert await read_guests(db, partner) == 3
    assert db.pool_stats()["user"]["read_retries"] == 1
    assert terminate_user_pool() >= 1
    with pytest.raises(DatabaseUnavailable):
        await write_guest(db, wedding_id, partner)
    assert db.pool_stats()["user"]["read_retries"] == 1


# --- health and /metrics ----------------------------------------------------------------------
def _status(client: TestClient) -> tuple[str, float]:
    started = time.monotonic()
    response = client.get("/api/database/health", headers={"apikey": SERVICE_KEY})
    return response.json()["status"], time.monotonic() - started


def _metric(client: TestClient, name: str) -> float | None:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_health_fails_while_frozen_and_recovers_and_metrics_agree(own_server: OwnServer) -> None:
    settings = settings_for(
        "development",
        own_server.dsn,
        heartbeat_interval=1.0,
        pool_timeout=POOL_TIMEOUT,
        query_timeout=QUERY_TIMEOUT,
        sample_interval=3600.0,
    )
    database = outage_database(own_server.dsn)
    runner = MigrationRunner(own_server.dsn, options=RunnerOptions(actor="tests"))
    with TestClient(create_app(settings, database=database, runner=runner)) as client:
        deadline = time.monotonic() + 10
        while _status(client)[0] == "fail":
            assert time.monotonic() < deadline, "health never passed"
            time.sleep(0.2)
        assert _metric(client, "wedsync_db_heartbeat_up") == 1.0
        limit = database.heartbeat_interval + database.pool_timeout
        with own_server.frozen():
            frozen_at = time.monotonic()
            while True:
                status, took = _status(client)
                assert took < 1.0, f"health took {took:.2f}s to answer"
                if status == "fail":
                    break
                assert time.monotonic() - frozen_at <= limit + 1.5, "health never failed"
                time.sleep(0.2)
            # /metrics tells the same story
            assert _metric(client, "wedsync_db_up") == 0.0
            assert _metric(client, "wedsync_db_health_status") == 2.0
            # and readiness answers 503 within its own bound
            started = time.monotonic()
            assert client.get("/api/database/health/ready").status_code == 503
            assert time.monotonic() - started <= database.probe_bound + 1.0
        thawed_at = time.monotonic()
        while _status(client)[0] == "fail":
            assert time.monotonic() - thawed_at <= database.heartbeat_interval + 3.0, (
                "health stayed failing after the server came back"
            )
            time.sleep(0.2)
        age = _metric(client, 'wedsync_db_heartbeat_age_seconds{pool="user"}')
        assert age is not None and age < database.heartbeat_interval + 1.0
