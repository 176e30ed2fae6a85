"""Wiring from validated settings to a DSN (embedded or configured) and a Database."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from wedsync_db.backup.repository import Repository
from wedsync_db.embedded import DEFAULT_DATABASE, EmbeddedPostgres
from wedsync_db.settings import Settings

if TYPE_CHECKING:
    from wedsync_db.backup.service import BackupContext
    from wedsync_db.db.client import Database
    from wedsync_db.migrate.runner import MigrationRunner


@dataclass
class Target:
    """Where the database is: its admin DSN and, when embedded, the server handle."""

    dsn: str
    embedded: EmbeddedPostgres | None = None
    started_embedded: bool = False


def embedded_server(settings: Settings) -> EmbeddedPostgres:
    """The embedded server for the configured data directory."""
    return EmbeddedPostgres(settings.data_dir)


def resolve_target(settings: Settings, *, start: bool = True) -> Target:
    """DATABASE_URL when set; otherwise the embedded server (started when ``start``)."""
    if settings.database_url is not None:
        return Target(settings.database_url.get_secret_value())
    server = embedded_server(settings)
    if start:
        status, started = server.ensure_running()
    else:
        status, started = server.status(), False
    return Target(status.dsn(DEFAULT_DATABASE), server, started)


def migration_dsn(settings: Settings, target: Target) -> str:
    """DIRECT_DATABASE_URL when a transaction pooler sits in front, else the target DSN."""
    if settings.direct_database_url is not None:
        return settings.direct_database_url.get_secret_value()
    return target.dsn


def migration_dirs(
    settings: Settings, explicit: Sequence[str | Path] | None = None
) -> tuple[Path, ...]:
    """The team migration directories: ``explicit`` ones (``--dir``) when given, else
    WEDSYNC_MIGRATION_DIRS."""
    if explicit:
        return tuple(Path(d) for d in explicit)
    return settings.migration_dirs


def runner_for(
    settings: Settings,
    target: Target,
    extra_dirs: Sequence[str | Path] | None = None,
    **overrides: float | None,
) -> MigrationRunner:
    """A migration runner configured from settings; ``extra_dirs`` (``--dir``) replace
    WEDSYNC_MIGRATION_DIRS."""
    # imported here: a command that migrates nothing starts without the SQL parser
    from wedsync_db.migrate.runner import MigrationRunner, RunnerOptions

    opts: dict[str, float] = {
        "lock_wait": settings.migration_lock_wait,
        "lock_timeout": settings.migration_lock_timeout,
        "statement_timeout": settings.migration_statement_timeout,
        "retry_budget": settings.migration_retry_budget,
    }
    for key, value in overrides.items():
        if value is not None:
            opts[key] = value
    return MigrationRunner(
        migration_dsn(settings, target),
        migration_dirs(settings, extra_dirs),
        RunnerOptions(
            lock_wait=opts["lock_wait"],
            lock_timeout=opts["lock_timeout"],
            statement_timeout=opts["statement_timeout"],
            retry_budget=opts["retry_budget"],
        ),
    )


def backup_repository(settings: Settings, target: Target | None = None) -> Repository:
    """The backup repository; its WAL archive is owned by the embedded server's account when
    root runs the embedded server."""
    owner = None
    if target is not None and target.embedded is not None and os.geteuid() == 0:
        import pwd

        from wedsync_db.embedded import ROOT_RUN_AS

        entry = pwd.getpwnam(ROOT_RUN_AS)
        owner = (entry.pw_uid, entry.pw_gid)
    return Repository(settings.effective_backup_dir, owner=owner)


async def backup_context(settings: Settings, target: Target) -> BackupContext:
    """What the backup commands need: the database (the migrating login: backups need
    REPLICATION), the repository and the server's own tools."""
    from wedsync_db.backup import service

    dsn = migration_dsn(settings, target)
    facts = await service.archive_settings(dsn)
    return service.BackupContext(
        dsn=dsn,
        repo=backup_repository(settings, target),
        tools=service.toolbox_for(facts.server_version, settings.pg_bin_dir),
        actor=service.default_actor(),
        embedded=target.embedded,
    )


def database_for(settings: Settings, dsn: str) -> Database:
    """The dual client for a DSN, sized from the connection budget."""
    from wedsync_db.db.client import Database, user_dsn_for

    user_size, service_size = settings.pool_sizes
    if settings.user_database_url is not None:
        user_dsn = settings.user_database_url.get_secret_value()
    else:
        password = (
            settings.authenticator_password.get_secret_value()
            if settings.authenticator_password
            else None
        )
        user_dsn = user_dsn_for(dsn, password)
    return Database(
        user_dsn=user_dsn,
        service_dsn=dsn,
        user_pool_size=user_size,
        service_pool_size=service_size,
        pool_timeout=settings.pool_timeout,
        max_waiting=settings.pool_max_waiting,
        max_lifetime=settings.pool_max_lifetime,
        check_after=settings.pool_check_after,
        transaction_pooler=settings.pooler == "transaction",
        heartbeat_interval=settings.heartbeat_interval,
        heartbeat_window=settings.heartbeat_window,
        query_timeout=settings.query_timeout,
        listen_dsn=(
            settings.direct_database_url.get_secret_value()
            if settings.direct_database_url is not None
            else None
        ),
        feed_poll_interval=settings.feed_poll_interval,
    )


__all__ = [
    "Target",
    "backup_context",
    "backup_repository",
    "database_for",
    "embedded_server",
    "migration_dirs",
    "migration_dsn",
    "resolve_target",
    "runner_for",
]
