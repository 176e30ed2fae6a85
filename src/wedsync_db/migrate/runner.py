"""Applies migration files: advisory lock, drift check, one transaction per file, lock retries."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import hashlib
import json
import socket
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from wedsync_db.db import direct
from wedsync_db.db.queries import load_queries
from wedsync_db.db.session import Session, compose, ident
from wedsync_db.errors import (
    DriftDetected,
    LockTimeout,
    MigrationFailed,
    MigrationFileError,
    MigrationLockHeld,
    WedsyncDBError,
)
from wedsync_db.jsonable import JsonRecord, json_as, tenths
from wedsync_db.migrate.files import (
    AppliedMigration,
    Drift,
    MigrationFile,
    detect_drift,
    discover,
    pending,
)
from wedsync_db.migrate.lint import Statement, concurrent_index_target

Q = load_queries("wedsync_db.migrate", "sql/history.sql")

# A fixed 64-bit key derived from a name, so it cannot collide with application locks by accident.
LOCK_KEY = int.from_bytes(hashlib.sha256(b"wedsync-db:migrate").digest()[:8], "big", signed=True)


def default_actor() -> str:
    """user@host of the process running the migration."""
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


@dataclass(frozen=True)
class RunnerOptions:
    """Timeouts and identity of one runner."""

    lock_wait: float = 60.0
    lock_timeout: float = 2.0
    statement_timeout: float = 600.0
    retry_budget: float = 120.0
    actor: str = field(default_factory=default_actor)


def lock_retry_schedule(lock_timeout: float, budget: float) -> Iterator[tuple[float, float]]:
    """(lock_timeout, sleep before the next try) per attempt, growing, within ``budget`` seconds.

    Short lock timeouts first so a waiting ALTER never queues ordinary traffic behind it for
    long; the wait grows each attempt (GitLab's with_lock_retries follows the same idea).
    """
    spent = 0.0
    attempt = 0
    while True:
        timeout = min(lock_timeout * (1.5**attempt), lock_timeout * 10)
        sleep = min(0.2 * (2**attempt), 10.0)
        yield timeout, sleep
        spent += timeout + sleep
        attempt += 1
        if spent >= budget:
            return


@dataclass(frozen=True)
class MigrationStatus:
    """Files, history and drift as seen now."""

    files: list[MigrationFile]
    applied: list[AppliedMigration]
    pending: list[MigrationFile]
    drift: list[Drift]

    @property
    def current(self) -> bool:
        """No pending files and no drift."""
        return not self.pending and not self.drift

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "current": self.current,
            "applied": [a.to_dict() for a in self.applied],
            "pending": [
                {"version": f.version, "name": f.name, "path": f.path, "checksum": f.checksum}
                for f in self.pending
            ],
            "drift": [d.to_dict() for d in self.drift],
        }


@dataclass(frozen=True)
class AppliedFile(JsonRecord):
    """What happened to one file in a run."""

    version: str
    name: str
    path: str
    mode: str
    duration_ms: float = field(metadata=json_as(tenths))
    attempts: int
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class GuardReport:
    """What the pre-run checks (lint, freeze policy) concluded when they let a run proceed."""

    freeze: dict[str, Any] | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ApplyResult:
    """The outcome of `apply`."""

    applied: list[AppliedFile]
    would_apply: list[MigrationFile]
    dry_run: bool
    target: str | None
    lock_wait_ms: float
    guard: GuardReport = GuardReport()
    # hardening steps this login could not apply (the security lint reports what stays open)
    hardening_skipped: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "dry_run": self.dry_run,
            "target": self.target,
            "applied": [a.to_dict() for a in self.applied],
            "would_apply": [
                {"version": f.version, "name": f.name, "path": f.path} for f in self.would_apply
            ],
            "lock_wait_ms": round(self.lock_wait_ms, 1),
            "freeze": self.guard.freeze,
            "warnings": list(self.guard.warnings) + list(self.hardening_skipped),
        }


Guard = Callable[[Session, list[MigrationFile]], Awaitable[GuardReport]]
Progress = Callable[[str, MigrationFile, dict[str, Any]], None]


class MigrationRunner:
    """Runs the migrations of the package plus any extra directories against one database."""

    def __init__(
        self,
        dsn: str,
        extra_dirs: Sequence[Path] = (),
        options: RunnerOptions | None = None,
        *,
        include_builtin: bool = True,
    ) -> None:
        self.dsn = dsn
        self.extra_dirs = tuple(extra_dirs)
        self.options = options or RunnerOptions()
        self.include_builtin = include_builtin

    def files(self) -> list[MigrationFile]:
        """Discover and validate the migration files."""
        return discover(self.extra_dirs, include_builtin=self.include_builtin)

    # --- read-only -----------------------------------------------------------------------------
    async def status(self) -> MigrationStatus:
        """Applied, pending and drift; never writes to the database."""
        files = self.files()
        async with direct.connect(self.dsn) as s:
            applied = await self.applied(s)
        return MigrationStatus(
            files, applied, pending(files, applied), detect_drift(files, applied)
        )

    async def applied(self, s: Session) -> list[AppliedMigration]:
        if not await s.fetch_val(Q["history_exists"].sql):
            return []
        return await s.fetch_all(Q["applied"].sql, row=AppliedMigration)

    # --- audit ---------------------------------------------------------------------------------
    async def audit(
        self,
        s: Session,
        action: str,
        outcome: str,
        *,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Record an audit event in ops.audit_events (autocommit, survives later failures)."""
        await s.execute(Q["bootstrap"].sql)
        await s.execute(
            Q["record_audit"].sql,
            {
                "actor": self.options.actor,
                "action": action,
                "outcome": outcome,
                "reason": reason,
                "details": json.dumps(details or {}, default=str),
            },
        )

    # --- apply ---------------------------------------------------------------------------------
    async def apply(
        self,
        *,
        target: str | None = None,
        dry_run: bool = False,
        guard: Guard | None = None,
        progress: Progress | None = None,
        audit_details: dict[str, Any] | None = None,
    ) -> ApplyResult:
        """Apply pending files (up to ``target``) under the advisory lock."""
        details = dict(audit_details or {})
        try:
            files = self.files()
            if target is not None and not any(
                f.version == target or f.number == _num(target) for f in files
            ):
                raise MigrationFileError(f"--target {target}: no migration file has that version")
        except MigrationFileError as exc:
            # refused before anything ran, but every run is audited
            async with direct.connect(self.dsn) as s:
                await self.audit(
                    s, "migrate.apply", "refused:files", details={**details, "error": str(exc)}
                )
            raise
        async with direct.connect(self.dsn) as s:
            started = time.perf_counter()
            await self._acquire_lock(s, details)
            lock_wait_ms = (time.perf_counter() - started) * 1000
            try:
                await s.execute(Q["bootstrap"].sql)
                applied = await self.applied(s)
                drift = detect_drift(files, applied)
                if drift:
                    await self.audit(
                        s,
                        "migrate.apply",
                        "refused:drift",
                        details={**details, "drift": [d.to_dict() for d in drift]},
                    )
                    raise DriftDetected("\n".join(d.message for d in drift))
                todo = [
                    f for f in pending(files, applied) if target is None or f.number <= _num(target)
                ]
                report = await guard(s, todo) if guard is not None else GuardReport()
                if report.freeze and report.freeze.get("overridden"):
                    details["freeze_override"] = {
                        "reason": report.freeze.get("override_reason"),
                        "reasons": report.freeze.get("reasons"),
                    }
                if dry_run or not todo:
                    skipped = () if dry_run else await self.harden(s)
                    await self.audit(
                        s,
                        "migrate.apply",
                        "dry-run" if dry_run else "nothing-to-do",
                        details={**details, "pending": [f.path for f in todo]},
                    )
                    return ApplyResult([], todo, dry_run, target, lock_wait_ms, report, skipped)
                done: list[AppliedFile] = []
                for f in todo:
                    if progress:
                        progress("start", f, {})
                    try:
                        result = await self._apply_file(s, f, progress)
                    except WedsyncDBError as exc:
                        await self.audit(
                            s,
                            "migrate.apply",
                            "failed",
                            details={
                                **details,
                                "file": f.path,
                                "error": str(exc),
                                "applied": [d.path for d in done],
                            },
                        )
                        raise
                    done.append(result)
                    if progress:
                        progress("done", f, result.to_dict())
                skipped = await self.harden(s)
                await self.audit(
                    s,
                    "migrate.apply",
                    "applied",
                    details={**details, "applied": [d.to_dict() for d in done]},
                )
                return ApplyResult(done, [], False, target, lock_wait_ms, report, skipped)
            finally:
                await _release_lock(s)

    async def harden(self, s: Session) -> tuple[str, ...]:
        """Re-apply ops.harden_database() (once it exists); the steps this login had to skip."""
        if not await s.fetch_val(Q["hardening_exists"].sql):
            return ()
        rows = await s.fetch_tuples(Q["harden_database"].sql)
        return tuple(
            f"hardening {step}: {detail}" for step, outcome, detail in rows if outcome != "applied"
        )

    async def _acquire_lock(self, s: Session, details: dict[str, Any]) -> None:
        await s.execute(Q["watch_the_client"].sql)
        wait_ms = max(1, int(self.options.lock_wait * 1000))
        await s.execute(Q["set_lock_wait"].sql, (f"{wait_ms}ms",))
        try:
            await s.fetch_val(Q["advisory_lock"].sql, (LOCK_KEY,))
        except LockTimeout as exc:
            holder = await s.fetch_dicts(Q["lock_holder"].sql, {"key": LOCK_KEY})
            who = ""
            if holder:
                h = holder[0]
                who = f" (pid {h['pid']}, {h['application_name'] or 'no application_name'})"
            await s.execute(Q["reset_lock_wait"].sql)
            with contextlib.suppress(WedsyncDBError):
                await self.audit(
                    s, "migrate.apply", "refused:lock-held", details={**details, "holder": holder}
                )
            raise MigrationLockHeld(
                f"another migration run holds the lock{who}; waited {self.options.lock_wait:g}s "
                "(--lock-wait to wait longer)"
            ) from exc
        finally:
            if s.connection.info.transaction_status == 0:  # idle
                await s.execute(Q["reset_lock_wait"].sql)

    async def _apply_file(
        self, s: Session, f: MigrationFile, progress: Progress | None
    ) -> AppliedFile:
        directives = f.parsed.directives
        statements = f.parsed.statements_or_raise
        if directives.no_transaction and len(statements) != 1:
            raise MigrationFileError(
                f"{f.path}: a wedsync:no-transaction file must hold exactly one statement "
                f"(found {len(statements)})"
            )
        mode = "no-transaction" if directives.no_transaction else "transactional"
        notes: list[str] = []
        attempts = 0
        started = time.perf_counter()
        schedule = list(lock_retry_schedule(self.options.lock_timeout, self.options.retry_budget))
        for lock_timeout, sleep in schedule:
            attempts += 1
            try:
                if directives.no_transaction:
                    notes += await self._run_outside_transaction(s, f, statements[0], lock_timeout)
                else:
                    await self._run_in_transaction(s, f, statements, lock_timeout, attempts)
                break
            except LockTimeout as exc:
                last_error: WedsyncDBError = exc
                if attempts == len(schedule):
                    # out of budget: give up now rather than sleep before nothing
                    continue
                notes.append(
                    f"attempt {attempts}: lock not obtained within {lock_timeout:g}s; "
                    f"retrying in {sleep:g}s"
                )
                if progress:
                    progress(
                        "retry",
                        f,
                        {"attempt": attempts, "lock_timeout": lock_timeout, "sleep": sleep},
                    )
                await asyncio.sleep(sleep)
        else:
            raise MigrationFailed(
                f"{f.path}: could not obtain its locks after {attempts} attempts within the "
                f"{self.options.retry_budget:g}s retry budget; last error: {last_error}. "
                "Find the blocking session with `wedsync-db inspect locks`."
            ) from last_error
        duration_ms = (time.perf_counter() - started) * 1000
        if directives.no_transaction:
            await s.execute(
                Q["record_applied"].sql, self._history_row(f, mode, duration_ms, attempts)
            )
        return AppliedFile(f.version, f.name, f.path, mode, duration_ms, attempts, tuple(notes))

    def _history_row(
        self, f: MigrationFile, mode: str, duration_ms: float, attempts: int
    ) -> dict[str, Any]:
        return {
            "version": f.version,
            "name": f.name,
            "directory": f.directory,
            "checksum": f.checksum,
            "applied_by": self.options.actor,
            "duration_ms": duration_ms,
            "mode": mode,
            "attempts": attempts,
        }

    async def _run_in_transaction(
        self,
        s: Session,
        f: MigrationFile,
        statements: Sequence[Statement],
        lock_timeout: float,
        attempts: int,
    ) -> None:
        started = time.perf_counter()
        async with s.transaction():
            await s.execute(
                Q["set_timeouts"].sql,
                {
                    "lock": _ms(lock_timeout),
                    "statement": _ms(self.options.statement_timeout),
                    "local": True,
                },
            )
            for stmt in statements:
                await _execute_statement(s, f, stmt)
            duration_ms = (time.perf_counter() - started) * 1000
            await s.execute(
                Q["record_applied"].sql,
                self._history_row(f, "transactional", duration_ms, attempts),
            )

    async def _run_outside_transaction(
        self, s: Session, f: MigrationFile, stmt: Statement, lock_timeout: float
    ) -> list[str]:
        notes: list[str] = []
        index = concurrent_index_target(stmt)
        if index is not None:
            schema, name = index
            for row in await s.fetch_dicts(
                Q["invalid_index"].sql, {"name": name, "schema": schema}
            ):
                await s.execute(
                    compose(
                        "drop index concurrently if exists {idx}",
                        idx=ident(row["schema"], row["name"]),
                    )
                )
                notes.append(
                    f"dropped INVALID index {row['schema']}.{row['name']} "
                    "left by an earlier failed build"
                )
        await s.execute(
            Q["set_timeouts"].sql,
            {
                "lock": _ms(lock_timeout),
                "statement": _ms(self.options.statement_timeout),
                "local": False,
            },
        )
        try:
            await _execute_statement(s, f, stmt)
        finally:
            await s.execute(Q["reset_timeouts"].sql)
        return notes

    async def weddings_on(self, s: Session, day: date) -> int:
        """Weddings scheduled on a platform-local date (0 before the schema exists)."""
        if not await s.fetch_val(Q["weddings_table_exists"].sql):
            return 0
        return int(await s.fetch_val(Q["weddings_on"].sql, (day,)) or 0)

    async def server_version(self, s: Session) -> str:
        """The server's version as major.minor, for version-aware lint."""
        num = int(await s.fetch_val(Q["server_version_num"].sql))
        return f"{num // 10000}.{num % 10000 // 100 if num < 100000 else num % 100}"

    # --- repair --------------------------------------------------------------------------------
    async def repair(self, version: str, *, reason: str) -> Drift:
        """After review, accept an edited file's checksum or forget a deleted file; audited."""
        if not reason.strip():
            raise MigrationFileError("migrate repair needs --reason explaining the review")
        files = self.files()
        async with direct.connect(self.dsn) as s:
            await self._acquire_lock(s, {})
            try:
                applied = await self.applied(s)
                drift = [
                    d
                    for d in detect_drift(files, applied)
                    if d.version == version or _num(d.version) == _num(version)
                ]
                if not drift or drift[0].kind == "out-of-order":
                    raise MigrationFileError(f"version {version} has no checksum drift to repair")
                d = drift[0]
                async with s.transaction():
                    if d.kind == "changed":
                        f = next(f for f in files if f.number == _num(version))
                        await s.execute(
                            Q["repair_checksum"].sql, {"checksum": f.checksum, "version": d.version}
                        )
                    else:
                        await s.execute(Q["forget_missing"].sql, {"version": d.version})
                    await self.audit(
                        s, "migrate.repair", d.kind, reason=reason, details=d.to_dict()
                    )
                return d
            finally:
                await _release_lock(s)


async def _execute_statement(s: Session, f: MigrationFile, stmt: Statement) -> None:
    try:
        await s.execute(stmt.text)
    except LockTimeout:
        raise
    except WedsyncDBError as exc:
        raise MigrationFailed(f"{f.path} line {stmt.line}: {exc}") from exc


async def _release_lock(s: Session) -> None:
    if s.connection.closed:
        return
    try:
        if s.in_transaction:
            await s.connection.rollback()
        await s.fetch_val(Q["advisory_unlock"].sql, (LOCK_KEY,))
    except Exception:
        # closing the connection releases a session-level lock anyway
        pass


def _ms(seconds: float) -> str:
    return f"{max(1, int(seconds * 1000))}ms"


def _num(version: str) -> int:
    try:
        return int(version)
    except ValueError:
        raise MigrationFileError(
            f"{version!r} is not a migration version (digits, e.g. 0003)"
        ) from None
