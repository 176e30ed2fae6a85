"""Application state shared by the routes: settings, the dual client, the migration runner."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from wedsync_db.db.client import Database
from wedsync_db.errors import WedsyncDBError
from wedsync_db.migrate.runner import MigrationRunner, MigrationStatus
from wedsync_db.monitor.state import MonitorState
from wedsync_db.settings import Settings

# readiness probes arrive from every replica's kubelet: answer them from a short cache
READY_CACHE_SECONDS = 1.0


@dataclass
class AppContext:
    """Everything a request handler may need; created in the app's lifespan, never at import."""

    settings: Settings
    database: Database
    runner: MigrationRunner
    service_key: str
    started_at: float = field(default_factory=time.time)
    # the sampler's latest snapshot and assessment (None until the lifespan starts it)
    monitor: MonitorState | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    _status_cache: tuple[float, MigrationStatus] | None = None
    _status_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _ready_cache: tuple[float, list[str]] | None = None
    _ready_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def migration_status(self, max_age: float = 5.0) -> MigrationStatus:
        """Migration status, cached briefly so probes do not hammer the database."""
        async with self._status_lock:
            cached = self._status_cache
            if cached is not None and time.monotonic() - cached[0] < max_age:
                return cached[1]
            status = await asyncio.wait_for(self.runner.status(), timeout=5.0)
            self._status_cache = (time.monotonic(), status)
            return status

    def invalidate_status(self) -> None:
        """Forget the cached migration status and readiness (after apply)."""
        self._status_cache = None
        self._ready_cache = None

    async def readiness(self) -> list[str]:
        """Reasons the service is not ready; empty when ready."""
        cached = self._ready_cache
        if cached is not None and time.monotonic() - cached[0] < READY_CACHE_SECONDS:
            return cached[1]
        async with self._ready_lock:
            cached = self._ready_cache
            if cached is not None and time.monotonic() - cached[0] < READY_CACHE_SECONDS:
                return cached[1]
            bound = self.database.probe_bound
            try:
                # one bound for the whole answer, whatever the server does meanwhile
                async with asyncio.timeout(bound):
                    problems = await self._check_ready()
            except TimeoutError:
                problems = [f"database unreachable: no answer within {bound:g}s"]
            self._ready_cache = (time.monotonic(), problems)
            return problems

    async def _check_ready(self) -> list[str]:
        problems: list[str] = []
        try:
            # not recorded in the heartbeat: probe traffic must not skew what /health reports
            await self.database.probe("service", record=False)
        except WedsyncDBError as exc:
            problems.append(f"database unreachable: {str(exc) or 'timed out'}")
            return problems
        try:
            status = await self.migration_status()
        except (WedsyncDBError, TimeoutError) as exc:
            problems.append(f"migration status unavailable: {str(exc) or 'timed out'}")
            return problems
        if status.pending:
            problems.append(f"{len(status.pending)} migration(s) pending")
        if status.drift:
            problems.append(f"migration drift: {len(status.drift)} file(s)")
        return problems


def context_of(request: Request) -> AppContext:
    """The app's context."""
    ctx: AppContext = request.app.state.ctx
    return ctx


async def get_context(request: Request) -> AppContext:
    """FastAPI dependency returning the app's context (async: FastAPI runs a plain function
    dependency in a worker thread, on every request)."""
    return context_of(request)
