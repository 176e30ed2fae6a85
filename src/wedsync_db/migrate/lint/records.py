"""Records of the lint layer: statements, the locks they take, findings and whole-file results.

Lock modes follow the PostgreSQL documentation: "Explicit Locking", table 13.2 "Conflicting
Lock Modes" (https://www.postgresql.org/docs/current/explicit-locking.html#LOCKING-TABLES).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, get_args

from wedsync_db.jsonable import JsonRecord

Severity = Literal["error", "warning", "info"]
Source = Literal["squawk", "wedsync"]
# Weakest first, as in table 13.2. Anything above SHARE UPDATE EXCLUSIVE conflicts with
# ROW EXCLUSIVE, i.e. stops INSERT/UPDATE/DELETE (and ACCESS EXCLUSIVE stops SELECT too).
LockMode = Literal[
    "ACCESS SHARE",
    "ROW SHARE",
    "ROW EXCLUSIVE",
    "SHARE UPDATE EXCLUSIVE",
    "SHARE",
    "SHARE ROW EXCLUSIVE",
    "EXCLUSIVE",
    "ACCESS EXCLUSIVE",
]

LOCK_MODES: tuple[LockMode, ...] = get_args(LockMode)
BLOCKING_ABOVE = LOCK_MODES.index("SHARE UPDATE EXCLUSIVE")

SEVERITY_ORDER: Mapping[str, int] = MappingProxyType({"error": 0, "warning": 1, "info": 2})


@dataclass(frozen=True)
class Finding(JsonRecord):
    """A lint result for one file, optionally tied to a line and statement."""

    rule: str
    severity: Severity
    message: str
    line: int | None
    statement: str | None
    source: Source
    acknowledged: bool = False
    acknowledgement: str | None = None


@dataclass(frozen=True)
class DirectiveProblem:
    """A header line that could not be read: the rule it breaks, its line and why."""

    rule: str
    line: int
    message: str


@dataclass(frozen=True)
class Directives:
    """The `-- wedsync:` header of a file, plus any problems found while reading it."""

    no_transaction: bool = False
    allows: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    allow_lines: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    problems: tuple[DirectiveProblem, ...] = ()


@dataclass(frozen=True)
class Statement:
    """One top-level statement: exact text, 1-based first and last line, parse-node type."""

    text: str
    line: int
    end_line: int
    kind: str
    node: Any = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class TableLock:
    """A lock a statement takes on one relation."""

    table: str
    mode: LockMode
    new_table: bool


@dataclass(frozen=True)
class StatementAnalysis(JsonRecord):
    """What a statement locks and whether other sessions will feel it."""

    text: str
    line: int
    kind: str
    table: str | None
    lock_level: LockMode | None
    rewrites_table: bool
    concurrently: bool
    new_table: bool
    blocking: bool
    requires_no_transaction: bool
    scans_table: bool = False
    changes_data: bool = False
    locks: tuple[TableLock, ...] = ()
    reason: str = ""
    end_line: int = 0


@dataclass(frozen=True)
class FileAnalysis:
    """Statements, locks and findings of one migration file."""

    name: str
    directives: Directives
    statements: tuple[StatementAnalysis, ...]
    findings: tuple[Finding, ...]

    @property
    def transactional(self) -> bool:
        """Whether the runner wraps the file in a transaction."""
        return not self.directives.no_transaction

    @property
    def blocking(self) -> bool:
        """Whether any statement blocks reads or writes on an existing table."""
        return any(s.blocking for s in self.statements)

    @property
    def strongest_lock(self) -> LockMode | None:
        """The strongest lock taken on a table that existed before the file ran."""
        held = [lock.mode for s in self.statements for lock in s.locks if not lock.new_table]
        # Schema- or database-wide statements lock tables they do not name.
        held += [s.lock_level for s in self.statements if s.lock_level and not s.locks]
        return max(held, key=LOCK_MODES.index, default=None)

    @property
    def unacknowledged_errors(self) -> tuple[Finding, ...]:
        """Error findings that no `wedsync:allow` waived; any of them refuses the file."""
        return tuple(f for f in self.findings if f.severity == "error" and not f.acknowledged)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, the same in `migrate lint` and `migrate plan`."""
        return {
            "name": self.name,
            "transactional": self.transactional,
            "mode": "transactional" if self.transactional else "no-transaction",
            "blocking": self.blocking,
            "strongest_lock": self.strongest_lock,
            "directives": {
                "no_transaction": self.directives.no_transaction,
                "allows": dict(self.directives.allows),
            },
            "statements": [s.to_dict() for s in self.statements],
            "findings": [f.to_dict() for f in self.findings],
            "unacknowledged_errors": len(self.unacknowledged_errors),
        }
