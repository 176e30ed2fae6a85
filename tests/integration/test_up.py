"""`wedsync-db up` end to end: migrate, serve, answer the probes, stop cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fixtures.environment import free_port, scratch_dir
from fixtures.migration_support import start_wedsync_db, wedsync_db, wedsync_db_in_process
from wedsync_db.embedded import EmbeddedPostgres


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A directory for an embedded server of the test's own: not under pytest's ``tmp_path``,
    whose parent a concurrent pytest run resets to mode 0700 (locking the server account out
    when the suite runs as root); whatever a failed test left running is stopped."""
    path = scratch_dir("wedsync-up-test-")
    yield path
    for pid_file in path.rglob("postmaster.pid"):
        EmbeddedPostgres(pid_file.parent.parent).stop()
    shutil.rmtree(path, ignore_errors=True)


def _wait_for(
    proc: subprocess.Popen[str], url: str, status: int, timeout: float = 45.0
) -> httpx.Response:
    deadline = time.monotonic() + timeout
    last: httpx.Response | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _, stderr = proc.communicate()
            pytest.fail(f"wedsync-db up exited {proc.returncode}: {stderr}")
        try:
            last = httpx.get(url, timeout=2.0)
            if last.status_code == status:
                return last
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} did not answer {status} within {timeout}s (last: {last})")


def _wait_for_metric(
    proc: subprocess.Popen[str],
    url: str,
    name: str,
    labels: dict[str, str],
    at_least: float,
    timeout: float = 45.0,
) -> None:
    """Until the Prometheus sample ``name`` with ``labels`` reaches ``at_least``."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        families = text_string_to_metric_families(_wait_for(proc, url, 200).text)
        found = [
            sample.value
            for family in families
            for sample in family.samples
            if sample.name == name and sample.labels == labels
        ]
        value = found[0] if found else None
        if value is not None and value >= at_least:
            return
        time.sleep(0.2)
    pytest.fail(f"{name}{labels} did not reach {at_least} within {timeout}s (last: {value})")


def _stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        _, stderr = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, stderr = proc.communicate()
        pytest.fail("wedsync-db up did not stop within 30 s of SIGTERM")
    return proc.returncode, stderr


def test_up_migrates_serves_and_stops_on_sigterm(empty_db: str, tmp_path: Path) -> None:
    port = free_port()
    proc = start_wedsync_db(["up", "--port", str(port)], empty_db, tmp_path)
    base = f"http://127.0.0.1:{port}/api/database/health"
    try:
        assert _wait_for(proc, f"{base}/live", 200).json() == {"status": "pass"}
        # migrated before serving, so ready at once
        assert _wait_for(proc, f"{base}/ready", 200).json() == {"status": "ready"}
        health = _wait_for(proc, base, 200)
        assert health.headers["content-type"].startswith("application/health+json")
        assert health.json()["status"] in ("pass", "warn")
    finally:
        code, stderr = _stop(proc)
    assert code == 0, stderr
    status = wedsync_db_in_process(["migrate", "status", "--json"], empty_db, tmp_path)
    assert status.returncode == 0, status.stderr  # nothing pending after `up`


def test_up_starts_and_stops_its_embedded_server(workdir: Path) -> None:
    port = free_port()
    # no DATABASE_URL: up starts an embedded server in WEDSYNC_DATA_DIR and stops it on exit
    proc = start_wedsync_db(["up", "--port", str(port)], "", workdir, DATABASE_URL="")
    try:
        _wait_for(proc, f"http://127.0.0.1:{port}/api/database/health/ready", 200, timeout=90)
    finally:
        code, stderr = _stop(proc)
    assert code == 0, stderr
    assert "stopping the embedded PostgreSQL server" in stderr
    status = wedsync_db_in_process(["db", "status", "--json"], "", workdir, DATABASE_URL="")
    assert status.returncode == 1  # stopped


def test_up_on_a_busy_port_names_it_exits_1_and_leaves_nothing_running(workdir: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = wedsync_db(["up", "--port", str(port)], "", workdir, DATABASE_URL="")
    assert result.returncode == 1, result.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "wedsync-db API" not in result.stdout  # no URL printed as if served
    status = wedsync_db_in_process(["db", "status", "--json"], "", workdir, DATABASE_URL="")
    assert status.returncode == 1 and not json.loads(status.stdout)["running"]


def test_up_after_a_crash_adopts_the_orphaned_embedded_server_and_stops_it(
    workdir: Path,
) -> None:
    port = free_port()
    ready = f"http://127.0.0.1:{port}/api/database/health/ready"
    try:
        first = start_wedsync_db(["up", "--port", str(port)], "", workdir, DATABASE_URL="")
        try:
            _wait_for(first, ready, 200, timeout=90)
        finally:
            os.kill(first.pid, signal.SIGKILL)  # the crash: only the process started here
            first.communicate(timeout=30)
        status = wedsync_db_in_process(["db", "status"], "", workdir, DATABASE_URL="")
        assert status.returncode == 0, status.stdout  # the server outlived its `up`
        assert f"left behind by `wedsync-db up` pid {first.pid}" in status.stdout

        second = start_wedsync_db(["up", "--port", str(port)], "", workdir, DATABASE_URL="")
        try:
            _wait_for(second, ready, 200, timeout=90)
        finally:
            code, stderr = _stop(second)
        assert code == 0, stderr
        assert (
            stderr.count(f"left running by a `wedsync-db up` (pid {first.pid}) that is gone") == 1
        )
        assert "adopts it and stops it on exit" in stderr
        assert "stopping the embedded PostgreSQL server" in stderr
        status = wedsync_db_in_process(["db", "status", "--json"], "", workdir, DATABASE_URL="")
        assert status.returncode == 1 and not json.loads(status.stdout)["running"]
    finally:
        EmbeddedPostgres(workdir / ".wedsync").stop()


def test_db_start_keeps_an_orphan_running_and_forgets_its_owner(workdir: Path) -> None:
    server = EmbeddedPostgres(workdir / "data", port=free_port(), fast=True)
    try:
        server.ensure_running()
        gone = subprocess.Popen(["true"])
        gone.wait(timeout=10)
        server.owner_file.write_text(f"{gone.pid} {server.status().pid}\n")
        assert server.orphan() is not None
        result = wedsync_db(
            ["db", "start"], "", workdir, DATABASE_URL="", WEDSYNC_DATA_DIR=str(workdir / "data")
        )
        assert result.returncode == 0, result.stderr
        assert f"left running by a `wedsync-db up` (pid {gone.pid})" in result.stderr
        assert "already running" in result.stdout
        assert server.orphan() is None and not server.owner_file.exists()
    finally:
        server.stop()


def test_up_without_migrations_tells_the_missing_role_once(workdir: Path) -> None:
    # a fresh embedded cluster: roles are cluster-wide, the shared test server has them all
    port = free_port()
    proc = start_wedsync_db(
        ["up", "--no-migrate", "--port", str(port)],
        "",
        workdir,
        DATABASE_URL="",
        WEDSYNC_HEARTBEAT_INTERVAL="0.2",
        WEDSYNC_POOL_TIMEOUT="1",
    )
    try:
        _wait_for(proc, f"http://127.0.0.1:{port}/api/database/health/live", 200, timeout=90)
        # the user pool's login keeps failing: wait until its heartbeat has failed twice more
        _wait_for_metric(
            proc,
            f"http://127.0.0.1:{port}/metrics",
            "wedsync_db_heartbeat_failures_total",
            {"pool": "user"},
            3,
        )
    finally:
        code, stderr = _stop(proc)
    assert code == 0, stderr
    missing = [line for line in stderr.splitlines() if "does not exist" in line and "role" in line]
    assert len(missing) == 1, stderr
    assert "database unreachable from the user pool since" in missing[0]
    assert "(wedsync-db migrate apply creates it)" in missing[0]
