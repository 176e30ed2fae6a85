"""FastAPI application factory. Nothing is created at import time."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from html import escape
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi_offline import FastAPIOffline

from wedsync_db import __version__
from wedsync_db.api import problems, routes_health, routes_metrics, routes_migrate, routes_ops
from wedsync_db.api.context import AppContext
from wedsync_db.api.limits import BodySizeLimit, RouteLimit
from wedsync_db.api.v1 import router as data_api_router
from wedsync_db.api.v1.imports import IMPORT_UPLOADS
from wedsync_db.db.client import Database
from wedsync_db.migrate.runner import MigrationRunner
from wedsync_db.monitor.state import MonitorState
from wedsync_db.settings import Settings

log = logging.getLogger(__name__)
DOCS_ASSETS = "/docs/assets"


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

    # /docs and /redoc with their assets served from the installed package, not from a CDN
    app = FastAPIOffline(
        title="wedsync-db",
        version=__version__,
        description="WedSync core database: the data API (/api/v1, user access tokens) and the "
        "operator API (health, metrics, migrations, operations; service key).",
        lifespan=lifespan,
        static_url=DOCS_ASSETS,
    )
    app.add_api_route("/", index, methods=["GET"], include_in_schema=False, response_model=None)
    problems.install(app)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        routes=(RouteLimit(IMPORT_UPLOADS, settings.import_max_bytes, "WEDSYNC_IMPORT_MAX_BYTES"),),
    )
    app.include_router(routes_health.router)
    app.include_router(routes_migrate.router)
    app.include_router(routes_metrics.router)
    app.include_router(routes_ops.router)
    app.include_router(data_api_router())
    return app


def index_links(app: FastAPI, root: str = "") -> list[dict[str, Any]]:
    """The documentation and every GET route that needs no parameter, from the OpenAPI
    document (so that a new route is listed without another edit)."""
    links: list[dict[str, Any]] = [
        {"href": f"{root}/docs", "title": "API documentation (Swagger UI)", "auth": None},
        {"href": f"{root}/redoc", "title": "API documentation (ReDoc)", "auth": None},
        {"href": f"{root}{app.openapi_url}", "title": "OpenAPI document", "auth": None},
    ]
    for path, operations in app.openapi()["paths"].items():
        get = operations.get("get")
        if get is None or any(p.get("required") for p in get.get("parameters", ())):
            continue
        links.append(
            {
                "href": f"{root}{path}",
                "title": get.get("summary", path),
                "auth": _auth_of(get.get("security", ())),
            }
        )
    return links


def _auth_of(security: Any) -> str | None:
    """What a route takes: "user token" (the data API), "service key", or None."""
    schemes = {name for requirement in security for name in requirement}
    if "userToken" in schemes:
        return "user token"
    return "service key" if schemes else None


async def index(request: Request) -> HTMLResponse | JSONResponse:
    """``GET /``: links to the documentation and the routes, as HTML for a browser and as JSON
    otherwise."""
    app = request.app
    links = index_links(app, request.scope.get("root_path", ""))
    if "text/html" not in request.headers.get("accept", ""):
        return JSONResponse({"name": app.title, "version": app.version, "links": links})
    items = "\n".join(
        f'<li><a href="{escape(link["href"])}">{escape(link["href"])}</a> '
        f"{escape(link['title'])}{' (' + link['auth'] + ')' if link['auth'] else ''}</li>"
        for link in links
    )
    return HTMLResponse(
        f'<!doctype html><html><head><meta charset="utf-8"><title>{escape(app.title)}</title>'
        f"</head><body><h1>{escape(app.title)} {escape(app.version)}</h1>"
        f"<ul>\n{items}\n</ul></body></html>"
    )
