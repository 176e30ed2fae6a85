"""Migration use-cases shared by the CLI, `up` and the API: plan, and apply behind lint and the
wedding-aware freeze policy."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from wedsync_db.db import direct
from wedsync_db.db.admin import set_role_password
from wedsync_db.db.client import AUTHENTICATOR_ROLE
from wedsync_db.db.session import Session
from wedsync_db.errors import MigrationFileError, MigrationFrozen, MigrationRefused
from wedsync_db.migrate.files import MigrationFile, detect_drift, pending
from wedsync_db.migrate.freeze import FreezeConfig, apply_override
from wedsync_db.migrate.plan import MigrationPlan, analyze_pending, build_plan
from wedsync_db.migrate.runner import ApplyResult, GuardReport, MigrationRunner, Progress
from wedsync_db.settings import Settings


async def plan_migrations(
    settings: Settings, runner: MigrationRunner, *, at: datetime | None = None
) -> MigrationPlan:
    """Pending files with statements, locks and lint, and the freeze decision at ``at``."""
    at = at or datetime.now(UTC)
    if at.tzinfo is None:
        raise ValueError("--at needs a timezone offset (e.g. 2027-06-12T10:00:00+01:00)")
    config = FreezeConfig.from_settings(settings)
    files = runner.files()
    async with direct.connect(runner.dsn) as s:
        applied = await runner.applied(s)
        day = at.astimezone(config.zone).date()
        weddings = await runner.weddings_on(s, day)
        version = await runner.server_version(s)
    todo = pending(files, applied)
    # squawk is a subprocess: off the event loop
    analysed = await asyncio.to_thread(analyze_pending, todo, pg_version=version)
    return build_plan(
        analysed,
        detect_drift(files, applied),
        at=at,
        config=config,
        weddings_today=weddings,
    )


async def apply_migrations(
    settings: Settings,
    runner: MigrationRunner,
    *,
    target: str | None = None,
    dry_run: bool = False,
    override_freeze_reason: str | None = None,
    progress: Progress | None = None,
    audit_details: dict[str, Any] | None = None,
) -> ApplyResult:
    """Apply pending migrations after lint and the freeze policy allow it (real clock)."""
    config = FreezeConfig.from_settings(settings)
    actor = runner.options.actor
    details = dict(audit_details or {})

    async def guard(s: Session, todo: list[MigrationFile]) -> GuardReport:
        version = await runner.server_version(s)
        try:
            planned = await asyncio.to_thread(analyze_pending, todo, pg_version=version)
        except MigrationFileError as exc:
            # a file PostgreSQL's parser cannot split is refused like a lint error, and audited
            await runner.audit(
                s, "migrate.apply", "refused:syntax", details={**details, "error": str(exc)}
            )
            raise MigrationRefused(f"a migration file cannot be parsed: {exc}") from exc
        now = datetime.now(UTC)
        weddings = await runner.weddings_on(s, now.astimezone(config.zone).date())
        plan = build_plan(planned, (), at=now, config=config, weddings_today=weddings)
        if plan.lint_errors:
            await runner.audit(
                s, "migrate.apply", "refused:lint", details={**details, "errors": plan.lint_errors}
            )
            raise MigrationRefused(
                "lint refused the pending migrations:\n  "
                + "\n  ".join(plan.lint_errors)
                + "\nfix them, or acknowledge one with `-- wedsync:allow <rule>: <reason>`"
            )
        decision = plan.freeze
        try:
            decision = apply_override(decision, override_freeze_reason, actor)
        except MigrationFrozen:
            await runner.audit(
                s,
                "migrate.apply",
                "refused:frozen",
                details={**details, "freeze": decision.to_dict()},
            )
            raise
        if decision.overridden:
            await runner.audit(
                s,
                "migrate.freeze-override",
                "overridden",
                reason=decision.override_reason,
                details={**details, "freeze": decision.to_dict()},
            )
        warnings = tuple(decision.warnings)
        warnings += tuple(
            f"{p.file.path}:{f.line or '?'} {f.rule}: {f.message}"
            for p in planned
            for f in p.analysis.findings
            if f.severity == "warning" and not f.acknowledged
        )
        return GuardReport(freeze=decision.to_dict(), warnings=warnings)

    result = await runner.apply(
        target=target, dry_run=dry_run, guard=guard, progress=progress, audit_details=details
    )
    if settings.authenticator_password is not None and not dry_run:
        # the user pool's login needs a password on servers that do not trust local logins
        async with direct.connect(runner.dsn) as s:
            await set_role_password(
                s, AUTHENTICATOR_ROLE, settings.authenticator_password.get_secret_value()
            )
    return result
