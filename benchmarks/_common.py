"""Shared set-up for benchmarks: a database to run against (embedded unless DATABASE_URL)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
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
