"""Shared set-up for benchmarks: a database to run against (embedded unless DATABASE_URL)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

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
