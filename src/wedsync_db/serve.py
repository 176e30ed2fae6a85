"""`wedsync-db up`: migrate, then serve the API until interrupted."""

from __future__ import annotations

import logging

import uvicorn

from wedsync_db.api.app import create_app
from wedsync_db.cli.common import err, out
from wedsync_db.errors import MigrationError
from wedsync_db.runtime import Target, database_for, runner_for
from wedsync_db.settings import Settings, redact_dsn

log = logging.getLogger(__name__)


async def serve(
    settings: Settings, target: Target, *, host: str, port: int, migrate_first: bool
) -> None:
    """Apply migrations (unless refused) and run uvicorn until SIGINT/SIGTERM."""
    runner = runner_for(settings, target)
    if migrate_first:
        from wedsync_db.migrate.service import apply_migrations

        try:
            result = await apply_migrations(settings, runner)
            names = ", ".join(a.path for a in result.applied) or "nothing to apply"
            err.print(f"migrations: {names}", highlight=False)
        except MigrationError as exc:
            # keep serving: /ready reports the pending migrations
            err.print(f"[yellow]migrations not applied:[/] {exc}", highlight=False)
    database = database_for(settings, target.dsn)
    app = create_app(settings, database=database, runner=runner)
    shown_host = f"[{host}]" if ":" in host else host
    base = f"http://{shown_host}:{port}"
    out.print(f"wedsync-db API      {base}", highlight=False)
    out.print(f"  docs              {base}/docs", highlight=False)
    out.print(f"  health            {base}/api/database/health", highlight=False)
    out.print(
        f"  live / ready      {base}/api/database/health/live  {base}/api/database/health/ready",
        highlight=False,
    )
    out.print(f"  metrics           {base}/metrics", highlight=False)
    out.print(f"database            {redact_dsn(target.dsn)}", highlight=False)
    if settings.env == "development" and settings.service_key is not None:
        out.print(f"service key file    {settings.data_dir / 'service_key'}", highlight=False)
    config = uvicorn.Config(
        app, host=host, port=port, log_level="info", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    await server.serve()
    if not server.started:
        raise SystemExit(1)
