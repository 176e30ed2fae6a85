"""Shared set-up for benchmarks: a database to run against (embedded unless DATABASE_URL)."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from wedsync_db.db.session import Session
from wedsync_db.embedded import EmbeddedPostgres
from wedsync_db.migrate.runner import MigrationRunner, RunnerOptions


@contextmanager
def benchmark_database() -> Iterator[str]:
    """DATABASE_URL, or the embedded server in WEDSYNC_DATA_DIR (default ./.wedsync)."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    server = EmbeddedPostgres(Path(os.environ.get("WEDSYNC_DATA_DIR", ".wedsync")))
    status, started = server.ensure_running()
    try:
        yield status.dsn()
    finally:
        if started:
            server.stop()


async def migrate(dsn: str) -> None:
    """Bring the schema up to date before measuring."""
    await MigrationRunner(dsn, options=RunnerOptions(actor="benchmark")).apply()


def arguments(doc: str | None, smoke: str = "small size for CI") -> argparse.ArgumentParser:
    """A benchmark's argument parser, with the `--smoke` size CI runs."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0] if doc else None)
    parser.add_argument("--smoke", action="store_true", help=smoke)
    return parser


def sizes(
    doc: str | None, smoke: str = "small size for CI", **options: tuple[Any, ...]
) -> argparse.Namespace:
    """A benchmark's parsed command line: `--smoke`, and one `--NAME` per option given as
    ``(default, smoke value[, help])``, typed like its default. Under `--smoke` every option
    takes its smoke value."""
    parser = arguments(doc, smoke)
    for name, (default, _, *help_) in options.items():
        flag = "--" + name.replace("_", "-")
        parser.add_argument(
            flag, type=type(default), default=default, help=help_[0] if help_ else None
        )
    args = parser.parse_args()
    if args.smoke:
        for name, (_, small, *_help) in options.items():
            setattr(args, name, small)
    return args


def stop_process(proc: subprocess.Popen[Any], timeout: float = 15.0) -> None:
    """Terminate a process this benchmark started; kill it if it does not exit in time."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def wedding_with_partner(
    s: Session, title: str, days_ahead: int
) -> tuple[uuid.UUID, uuid.UUID]:
    """A new wedding `days_ahead` days from now and its partner (ids), written as the service.

    The wedding is planned with an enterprise-plan vendor, so that no plan limit (a wedding's
    guests follow its most generous vendor's plan) caps what the benchmark writes."""
    wedding, partner, vendor = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await s.execute(
        "insert into weddings (id, title, wedding_date) values (%s, %s, current_date + %s)",
        (wedding, title, days_ahead),
    )
    await s.execute("insert into wedding_members values (%s, %s, 'partner')", (wedding, partner))
    await s.execute(
        "insert into organizations (id, name, slug, tier) values (%s, 'Benchmark vendor', %s,"
        " 'enterprise')",
        (vendor, f"benchmark-{vendor.hex[:12]}"),
    )
    await s.execute(
        "insert into wedding_vendors (wedding_id, organization_id, status) values (%s, %s,"
        " 'accepted')",
        (wedding, vendor),
    )
    return wedding, partner


@contextmanager
def api_server(dsn: str, **env: str) -> Iterator[tuple[str, str]]:
    """The HTTP API (wired as `wedsync-db up` wires it) in a uvicorn process on an ephemeral
    127.0.0.1 port, with a random JWT secret and the given WEDSYNC_* settings; yields its base
    URL and the secret (to mint user tokens). Stopped, by PID, on exit."""
    secret = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory() as data_dir:
        variables = {
            **os.environ,
            "WEDSYNC_BENCH_DSN": dsn,
            "WEDSYNC_DATA_DIR": data_dir,
            "WEDSYNC_JWT_SECRET": secret,
            "WEDSYNC_SERVICE_KEY": secrets.token_urlsafe(32),
            **env,
        }
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve-api"],
            stdout=subprocess.PIPE,
            text=True,
            env=variables,
        )
        try:
            assert server.stdout is not None
            base = f"http://127.0.0.1:{int(server.stdout.readline())}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"{base}/api/database/health/live", timeout=2):
                        break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError("the API server did not come up") from None
                    time.sleep(0.2)
            yield base, secret
        finally:
            stop_process(server, timeout=20)


def _serve_api() -> None:
    import uvicorn

    from wedsync_db.api.app import create_app
    from wedsync_db.migrate.runner import MigrationRunner, RunnerOptions
    from wedsync_db.runtime import database_for
    from wedsync_db.settings import Settings

    dsn = os.environ["WEDSYNC_BENCH_DSN"]
    settings = Settings(_env_file=None)
    database = database_for(settings, dsn)
    runner = MigrationRunner(dsn, options=RunnerOptions(actor="benchmark"))
    app = create_app(settings, database=database, runner=runner)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # as uvicorn sets it when it binds the port itself (`wedsync-db up`); a socket handed over
    # without it waits for delayed ACKs (~40 ms) between a response's header and body writes
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))


if __name__ == "__main__" and sys.argv[1:] == ["--serve-api"]:
    _serve_api()
