"""The lint rule registry: each rule's name, severity, whether it can be waived, and its check.

A rule is one declaration in `wedsync_db.migrate.lint.rules`: its check function under
`@rule(name, severity)` (its docstring is the summary), or `register(Rule(...))` for a rule
without a check. Its corpus case is the file `tests/fixtures/lint/bad/<name>.sql`; the corpus
test reads this registry to know which files must exist and what each must report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from wedsync_db.migrate.lint.parsed import ParsedFile
from wedsync_db.migrate.lint.records import (
    Directives,
    Finding,
    Severity,
    Statement,
    StatementAnalysis,
)


@dataclass(frozen=True)
class FileContext:
    """What a rule's check reads: the parsed file, its classified statements, earlier findings."""

    parsed: ParsedFile
    analyses: tuple[StatementAnalysis, ...]
    findings: tuple[Finding, ...] = ()
    squawk_ran: bool = False
    # rules the file trips when judged alone, the tables of earlier files of its run already
    # existing (as on a database those files were applied to before): its allows for them
    # are needed there
    reported_alone: frozenset[str] = frozenset()

    @property
    def directives(self) -> Directives:
        return self.parsed.directives

    @property
    def statements(self) -> tuple[Statement, ...]:
        return self.parsed.statements


@dataclass(frozen=True)
class Hit:
    """One place a rule fires: its message and the statement (or line) it points at."""

    message: str
    statement: StatementAnalysis | None = None
    line: int | None = None


Check = Callable[[FileContext], Iterable[Hit]]
# "statements": runs on the file alone; "final": after squawk, sees every earlier finding.
Phase = Literal["statements", "final"]


@dataclass(frozen=True)
class Rule:
    """One wedsync lint rule.

    ``check`` is None for rules reported by the lint machinery itself (squawk could not run,
    the file is not UTF-8 or cannot be parsed). ``corpus`` says whether
    `tests/fixtures/lint/bad/<name>.sql` must exist and trip the rule.
    """

    name: str
    severity: Severity
    summary: str
    check: Check | None = None
    phase: Phase = "statements"
    acknowledgeable: bool = True
    corpus: bool = True

    def finding(self, hit: Hit) -> Finding:
        """A finding of this rule at ``hit``."""
        stmt = hit.statement
        return Finding(
            rule=self.name,
            severity=self.severity,
            message=hit.message,
            line=stmt.line if stmt is not None else hit.line,
            statement=stmt.text if stmt is not None else None,
            source="wedsync",
        )


_RULES: dict[str, Rule] = {}
RULES: Mapping[str, Rule] = MappingProxyType(_RULES)


def register(rule: Rule) -> Rule:
    """Add ``rule`` to the registry; a name may be registered once."""
    if rule.name in _RULES:
        raise ValueError(f"lint rule {rule.name!r} is registered twice")
    _RULES[rule.name] = rule
    return rule


def rule(
    name: str, severity: Severity, *, phase: Phase = "statements", acknowledgeable: bool = True
) -> Callable[[Check], Check]:
    """Declare and register a rule whose check is the decorated function; the first line of
    its docstring is the rule's summary."""

    def decorate(check: Check) -> Check:
        summary = (check.__doc__ or "").strip().split("\n")[0]
        register(Rule(name, severity, summary, check, phase, acknowledgeable))
        return check

    return decorate


def rules_in(phase: Phase) -> tuple[Rule, ...]:
    """Rules with a check in ``phase``, in registration order."""
    return tuple(r for r in _RULES.values() if r.check is not None and r.phase == phase)
