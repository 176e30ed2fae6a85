"""FastAPI application factory. Nothing is created at import time."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from wedsync_db import __version__
from wedsync_db.api import problems, routes_health, routes_metrics, routes_migrate, routes_ops
from wedsync_db.api.context import AppContext
from wedsync_db.api.limits import BodySizeLimit
from wedsync_db.db.client import Database
from wedsync_db.migrate.runner import MigrationRunner
from wedsync_db.monitor.state import MonitorState
from wedsync_db.settings import Settings

log = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    *,
    database: Database,
    runner: MigrationRunner,
    manage_database: bool = True,
) -> FastAPI:
    """Build the app; the lifespan opens the pools, starts the heartbeat and the sampler."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = AppContext(
            settings=settings,
            database=database,
            runner=runner,
            service_key=settings.resolved_service_key(),
        )
        app.state.ctx = ctx
        if manage_database:
            # do not wait: the API must come up (and report 503) even when the database is down
            await database.open(wait=False)
        await database.probe_all()
        database.start_heartbeat()
        ctx.monitor = MonitorState(settings, database)
        ctx.monitor.health_status = lambda: routes_health.health_report(ctx, False)["status"]
        ctx.monitor.start_sampler()
        try:
            yield
        finally:
            await ctx.monitor.stop_sampler()
            await database.stop_heartbeat()
            if manage_database:
                await database.close()

    app = FastAPI(
        title="wedsync-db",
        version=__version__,
        description="WedSync core database: health, metrics and migrations.",
        lifespan=lifespan,
    )
    problems.install(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.include_router(routes_health.router)
    app.include_router(routes_migrate.router)
    app.include_router(routes_metrics.router)
    app.include_router(routes_ops.router)
    return app
