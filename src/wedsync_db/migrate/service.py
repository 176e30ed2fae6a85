"""Migration use-cases shared by the CLI, `up` and the API: apply with the freeze/lint guard."""

from __future__ import annotations

from wedsync_db.migrate.runner import ApplyResult, MigrationRunner, Progress
from wedsync_db.settings import Settings


async def apply_migrations(
    settings: Settings,
    runner: MigrationRunner,
    *,
    target: str | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ApplyResult:
    """Apply pending migrations."""
    return await runner.apply(target=target, dry_run=dry_run, progress=progress)
