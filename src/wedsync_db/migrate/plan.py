"""The migration plan: pending files with their statements, locks, lint and the freeze decision."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from wedsync_db.migrate.files import Drift, MigrationFile
from wedsync_db.migrate.freeze import FreezeConfig, FreezeDecision, freeze_decision
from wedsync_db.migrate.lint import FileAnalysis, analyze_parsed, created_relations


@dataclass(frozen=True)
class PlannedFile:
    """One pending file and what running it would do."""

    file: MigrationFile
    analysis: FileAnalysis

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the file, then the analysis exactly as `migrate lint` prints it."""
        analysis = self.analysis.to_dict()
        del analysis["name"]  # the path below
        return {
            "version": self.file.version,
            "name": self.file.name,
            "path": self.file.path,
            "checksum": self.file.checksum,
            **analysis,
        }


@dataclass(frozen=True)
class MigrationPlan:
    """Everything `migrate plan` shows and `migrate apply` checks before running."""

    pending: tuple[PlannedFile, ...]
    drift: tuple[Drift, ...]
    freeze: FreezeDecision

    @property
    def blocking(self) -> bool:
        """Any pending file takes a blocking lock on an existing table."""
        return any(p.analysis.blocking for p in self.pending)

    @property
    def lint_errors(self) -> list[str]:
        """Unacknowledged lint errors as `path:line rule: message`."""
        return [
            f"{p.file.path}:{f.line or '?'} {f.rule}: {f.message}"
            for p in self.pending
            for f in p.analysis.unacknowledged_errors
        ]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: at least `pending` and `freeze` {active, reasons}."""
        return {
            "pending": [p.to_dict() for p in self.pending],
            "blocking": self.blocking,
            "lint_errors": self.lint_errors,
            "drift": [d.to_dict() for d in self.drift],
            "freeze": self.freeze.to_dict(),
        }


def analyze_pending(
    files: Sequence[MigrationFile], *, pg_version: str | None = None
) -> tuple[PlannedFile, ...]:
    """Analyse each pending file (statements, locks, lint), in order: a table created by an
    earlier pending file is new to the later ones, so locking it blocks nobody.

    Runs squawk (a subprocess): async callers run this in a worker thread."""
    planned: list[PlannedFile] = []
    created: set[str] = set()
    for f in files:
        a = analyze_parsed(f.parsed, pg_version=pg_version, created_earlier=created)
        planned.append(PlannedFile(f, a))
        for stmt in f.parsed.statements:
            created.update(created_relations(stmt))
    return tuple(planned)


def build_plan(
    pending: tuple[PlannedFile, ...],
    drift: Sequence[Drift],
    *,
    at: datetime,
    config: FreezeConfig,
    weddings_today: int,
) -> MigrationPlan:
    """Combine analysed files with the freeze decision at ``at`` (pure)."""
    blocking = any(p.analysis.blocking for p in pending)
    decision = freeze_decision(
        at, config, weddings_today=weddings_today, blocking=blocking, has_pending=bool(pending)
    )
    return MigrationPlan(pending=pending, drift=tuple(drift), freeze=decision)
