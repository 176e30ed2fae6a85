"""Backups on a schedule while `wedsync-db up` serves: take one when the newest good backup is
older than WEDSYNC_BACKUP_EVERY_HOURS, verify the newest when the newest verification is older
than WEDSYNC_BACKUP_VERIFY_EVERY_HOURS, prune by the profile's retention after each backup.

The schedule is read from the repository itself (finish times, verification results), so a
restart neither repeats a backup nor skips one. Physical backups are incremental against the
newest full one while that is younger than a week (and the server can), full otherwise; a
database this login cannot copy gets logical exports. A failure is logged and retried after
a back-off; it never stops the API.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from wedsync_db.background import BackgroundTask
from wedsync_db.backup import service
from wedsync_db.backup.repository import BackupMeta
from wedsync_db.errors import WedsyncDBError

log = logging.getLogger(__name__)

# a chain of incrementals is restarted from a new full backup this often
FULL_EVERY = timedelta(days=7)
# how often the schedule is looked at, and the longest wait after failures
TICK_SECONDS = 60.0
MAX_BACKOFF_SECONDS = 3600.0


@dataclass(frozen=True)
class Due:
    """What the schedule calls for now (pure decision)."""

    backup: str | None  # "full", "incremental", "logical" or None
    verify: BackupMeta | None


def due(
    backups: list[BackupMeta],
    now: datetime,
    *,
    backup_every: timedelta | None,
    verify_every: timedelta | None,
    logical: bool,
    incremental_possible: bool,
) -> Due:
    """Which backup to take and which to verify now, given the repository's backups."""
    kinds = ("logical",) if logical else ("full", "incremental")
    good = [b for b in backups if b.good and b.kind in kinds]
    newest = max(good, key=lambda b: b.finished_at or b.started_at, default=None)
    take: str | None = None
    if backup_every is not None and (
        newest is None or now - (newest.finished_at or newest.started_at) >= backup_every
    ):
        if logical:
            take = "logical"
        else:
            fulls = [b for b in good if b.kind == "full"]
            last_full = max(fulls, key=lambda b: b.finished_at or b.started_at, default=None)
            fresh_full = (
                last_full is not None
                and now - (last_full.finished_at or last_full.started_at) < FULL_EVERY
            )
            take = "incremental" if incremental_possible and fresh_full else "full"
    check: BackupMeta | None = None
    if verify_every is not None and newest is not None:
        # the newest backup, once per interval (again when nothing newer came: files rot)
        last = _last_verified(good)
        if last is None or now - last >= verify_every:
            check = newest
    return Due(take, check)


def _last_verified(backups: list[BackupMeta]) -> datetime | None:
    times = []
    for b in backups:
        v = b.details.get("last_verification")
        if v and v.get("at"):
            times.append(datetime.fromisoformat(v["at"]))
    return max(times, default=None)


class BackupScheduler:
    """The background task of `up` that keeps backups taken, verified and pruned."""

    def __init__(
        self,
        ctx: service.BackupContext,
        *,
        backup_every_hours: float,
        verify_every_hours: float,
        retention_days: int,
        tick_seconds: float = TICK_SECONDS,
    ) -> None:
        self.ctx = ctx
        self.backup_every = timedelta(hours=backup_every_hours) if backup_every_hours else None
        self.verify_every = timedelta(hours=verify_every_hours) if verify_every_hours else None
        self.retention_days = retention_days
        self.tick_seconds = tick_seconds
        self.failures = 0
        self.last_error: str | None = None
        self._task = BackgroundTask(self._loop, "wedsync-backup-schedule")

    @property
    def enabled(self) -> bool:
        return self.backup_every is not None or self.verify_every is not None

    def start(self) -> None:
        if self.enabled:
            self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
                self.failures, self.last_error = 0, None
                wait = self.tick_seconds
            except asyncio.CancelledError:
                raise
            except (WedsyncDBError, OSError, LookupError, ValueError) as exc:
                self.failures += 1
                self.last_error = str(exc)
                wait = min(MAX_BACKOFF_SECONDS, self.tick_seconds * 2 ** (self.failures - 1))
                log.error("scheduled backup work failed (retry in %.0f s): %s", wait, exc)
            await asyncio.sleep(wait)

    async def run_once(self, now: datetime | None = None) -> Due:
        """Do whatever is due now; returns what was due."""
        settings = await service.archive_settings(self.ctx.dsn)
        logical = not settings.can_replicate
        work = due(
            self.ctx.repo.all(),
            now or datetime.now(UTC),
            backup_every=self.backup_every,
            verify_every=self.verify_every,
            logical=logical,
            incremental_possible=settings.incremental_possible,
        )
        if work.backup is not None:
            meta = await service.create(
                self.ctx,
                incremental=work.backup == "incremental",
                logical=work.backup == "logical",
            )
            log.info("scheduled %s backup %s complete", meta.kind, meta.id)
            plan = await service.prune(self.ctx, retention_days=self.retention_days)
            if plan.remove:
                log.info("pruned %d backup(s) past %d days", len(plan.remove), self.retention_days)
            # verify the new backup on this tick if verification is due
            work = due(
                self.ctx.repo.all(),
                now or datetime.now(UTC),
                backup_every=None,
                verify_every=self.verify_every,
                logical=logical,
                incremental_possible=settings.incremental_possible,
            )
            work = Due(meta.kind, work.verify)
        if work.verify is not None:
            result = await service.verify(self.ctx, work.verify.id)
            if result.ok:
                log.info("scheduled verification of %s passed", work.verify.id)
            else:
                log.error(
                    "scheduled verification of %s FAILED: %s",
                    work.verify.id,
                    "; ".join(result.problems),
                )
        return work


__all__ = ["BackupScheduler", "Due", "due"]
