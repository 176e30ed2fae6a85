"""`wedsync-db up`: migrate, then serve the API until interrupted."""

from __future__ import annotations

import errno
import logging
import socket
from datetime import timedelta

import uvicorn

from wedsync_db.api.app import create_app
from wedsync_db.backup.schedule import BackupScheduler
from wedsync_db.backup.service import archive_settings, setup
from wedsync_db.cli.common import err, out
from wedsync_db.errors import MigrationError, WedsyncDBError
from wedsync_db.runtime import Target, backup_context, database_for, runner_for
from wedsync_db.settings import Settings, redact_dsn

log = logging.getLogger(__name__)


class AddressUnavailable(WedsyncDBError):
    """The HTTP API cannot listen on the address it was given (exit 1)."""


def check_bindable(host: str, port: int) -> None:
    """Raise AddressUnavailable unless ``host:port`` can be bound now, as uvicorn binds it
    (SO_REUSEADDR, IPv6 for a host with a colon); port 0 (any free port) always can."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise AddressUnavailable(
                f"port {port} on {host} is already in use by another process: stop it, or "
                "choose another port with --port or WEDSYNC_HTTP_PORT"
            ) from None
        raise AddressUnavailable(
            f"the HTTP API cannot listen on {host} port {port}: {exc.strerror or exc}"
        ) from None


async def serve(
    settings: Settings, target: Target, *, host: str, port: int, migrate_first: bool
) -> None:
    """Apply migrations (unless refused) and run uvicorn until SIGINT/SIGTERM."""
    log_to_stderr()
    runner = runner_for(settings, target)
    if migrate_first:
        from wedsync_db.migrate.service import apply_migrations

        try:
            result = await apply_migrations(settings, runner)
            names = ", ".join(a.path for a in result.applied) or "nothing to apply"
            err.print(f"migrations: {names}")
        except MigrationError as exc:
            # keep serving: /ready reports the pending migrations
            err.print(f"[yellow]migrations not applied:[/] {exc}")
    scheduler = await _backup_scheduler(settings, target)
    database = database_for(settings, target.dsn)
    app = create_app(settings, database=database, runner=runner)
    # taken meanwhile? then fail before a URL is printed as if served
    check_bindable(host, port)
    shown_host = f"[{host}]" if ":" in host else host
    base = f"http://{shown_host}:{port}"
    out.print(f"wedsync-db API      {base}")
    out.print(f"  docs              {base}/docs")
    out.print(f"  health            {base}/api/database/health")
    out.print(
        f"  live / ready      {base}/api/database/health/live  {base}/api/database/health/ready",
    )
    out.print(f"  metrics           {base}/metrics")
    out.print(f"  data API          {base}/api/v1  (user access tokens)")
    out.print(f"database            {redact_dsn(target.dsn)}")
    if scheduler is not None:
        out.print(
            f"backups             {_every(scheduler.backup_every)}, verified "
            f"{_every(scheduler.verify_every)}, kept {scheduler.retention_days} d, in "
            f"{scheduler.ctx.repo.root}",
        )
    if settings.env == "development" and settings.service_key is not None:
        out.print(f"service key file    {settings.data_dir / 'service_key'}")
    if settings.env == "development" and (settings.data_dir / "jwt_secret").exists():
        out.print(f"JWT secret file     {settings.data_dir / 'jwt_secret'}  (wedsync-db token)")
    config = uvicorn.Config(
        app, host=host, port=port, log_level="info", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    if scheduler is not None:
        scheduler.start()
    try:
        await server.serve()
    finally:
        if scheduler is not None:
            await scheduler.stop()
    if not server.started:
        raise SystemExit(1)


async def _backup_scheduler(settings: Settings, target: Target) -> BackupScheduler | None:
    """The backup schedule of this profile, or None when it takes and verifies nothing.

    An embedded server gets WAL archiving set up first (a restart, before anything is
    served); a server that cannot be backed up is reported in the log and by health."""
    backup_every = settings.effective_backup_every_hours
    verify_every = settings.effective_backup_verify_every_hours
    if not backup_every and not verify_every:
        return None
    try:
        ctx = await backup_context(settings, target)
        facts = await archive_settings(ctx.dsn)
        if target.embedded is not None and not facts.archiving:
            for note in await setup(ctx):
                err.print(f"backups: {note}")
    except (WedsyncDBError, OSError) as exc:
        err.print(f"[yellow]backups not scheduled:[/] {exc}")
        return None
    return BackupScheduler(
        ctx,
        backup_every_hours=backup_every,
        verify_every_hours=verify_every,
        retention_days=settings.effective_backup_retention_days,
    )


def _every(interval: timedelta | None) -> str:
    if interval is None:
        return "never"
    hours = interval.total_seconds() / 3600
    return f"every {hours:g} h"


def log_to_stderr() -> None:
    """The package's own log lines (scheduled backups, sampler failures) on stderr, as
    uvicorn's are; never secrets: messages carry redacted DSNs only."""
    package = logging.getLogger("wedsync_db")
    if not package.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
        package.addHandler(handler)
        package.setLevel(logging.INFO)
