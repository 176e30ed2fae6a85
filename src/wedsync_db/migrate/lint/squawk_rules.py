"""squawk at the edge of the lint layer: which of its rules run, how its report becomes findings.

squawk runs as a subprocess (`wedsync_db.migrate.squawk`); async callers run the whole analysis
in a worker thread (`asyncio.to_thread`), never on the event loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from wedsync_db.migrate import squawk
from wedsync_db.migrate.lint.parsed import mask_comments
from wedsync_db.migrate.lint.records import Finding, Severity, StatementAnalysis
from wedsync_db.migrate.lint.registry import RULES, Hit

# The runner holds lock_timeout / statement_timeout and one transaction per file, so these
# squawk rules would only repeat what the runner guarantees or argue about style.
EXCLUDED_SQUAWK_RULES: Mapping[str, str] = MappingProxyType(
    {
        "prefer-robust-stmts": "each file runs in one transaction and rolls back as a whole; "
        "IF [NOT] EXISTS would hide drift instead",
        "require-lock-timeout": "the runner sets lock_timeout (and retries) for every file",
        "require-statement-timeout": "the runner sets statement_timeout for every file",
        "prefer-bigint-over-int": "column width is a design decision, not an outage",
        "prefer-bigint-over-smallint": "column width is a design decision, not an outage",
        "prefer-identity": "serial vs identity is style; the lock impact is classified here",
        "prefer-text-field": "widening a varchar is catalog-only; its lock is classified here",
    }
)
# Kept on purpose although often disabled elsewhere: `transaction-nesting` (a COMMIT inside a
# file would end the runner's transaction and leave the rest of the file un-rollbackable) and
# `prefer-timestamp-tz` (weddings happen in many time zones).

# squawk reports every rule as a warning. These ones take a lock that stops reads or writes on
# a live table, break running clients, or fail at run time, so they must be acknowledged with
# a written reason before they may run.
SQUAWK_ERROR_RULES = frozenset(
    {
        "adding-field-with-default",
        "adding-foreign-key-constraint",
        "adding-not-nullable-field",
        "adding-required-field",
        "adding-serial-primary-key-field",
        "ban-concurrent-index-creation-in-transaction",
        "ban-drop-column",
        "ban-drop-database",
        "ban-drop-table",
        "ban-truncate-cascade",
        "ban-uncommitted-transaction",
        "changing-column-type",
        "constraint-missing-not-valid",
        "disallowed-unique-constraint",
        "renaming-column",
        "renaming-table",
        "require-concurrent-index-creation",
        "require-concurrent-index-deletion",
        "require-concurrent-partition-detach",
        "require-concurrent-reindex",
        "transaction-nesting",
    }
)

# Where squawk and we report the same problem, keep ours (it covers every non-transactional
# statement, not only CREATE INDEX CONCURRENTLY).
SQUAWK_RULES_COVERED_BY_OURS: Mapping[str, str] = MappingProxyType(
    {"ban-concurrent-index-creation-in-transaction": "concurrently-in-transaction"}
)


def _severity(violation: squawk.SquawkViolation) -> Severity:
    if violation.rule == "syntax-error":
        return "warning"
    if violation.rule in SQUAWK_ERROR_RULES or violation.level.lower() == "error":
        return "error"
    return "warning" if violation.level.lower() == "warning" else "info"


def _statement_at(analyses: tuple[StatementAnalysis, ...], line: int) -> StatementAnalysis | None:
    for analysis in analyses:
        if analysis.line <= line <= analysis.end_line:
            return analysis
    return None


def squawk_findings(
    sql: str,
    analyses: tuple[StatementAnalysis, ...],
    *,
    transactional: bool,
    pg_version: str | None,
) -> tuple[list[Finding], bool]:
    """squawk's findings for one file, and whether squawk ran (else one info or warning)."""
    try:
        violations = squawk.run_squawk(
            # Only our own directives may silence a rule: squawk's comments are blanked out.
            mask_comments(sql),
            assume_in_transaction=transactional,
            exclude=EXCLUDED_SQUAWK_RULES,
            pg_version=pg_version,
        )
    except squawk.SquawkUnavailable as exc:
        return [RULES["squawk-unavailable"].finding(Hit(f"squawk lint skipped: {exc}"))], False
    except squawk.SquawkFailed as exc:
        return [RULES["squawk-failed"].finding(Hit(f"squawk lint skipped: {exc}"))], False
    findings = []
    for v in violations:
        stmt = _statement_at(analyses, v.line)
        message = v.message if v.help is None else f"{v.message} {v.help}"
        if v.rule == "syntax-error":
            message = (
                f"squawk could not parse this statement, its findings may be incomplete: {message}"
            )
        findings.append(
            Finding(
                rule=v.rule,
                severity=_severity(v),
                message=message,
                line=stmt.line if stmt is not None else v.line,
                statement=stmt.text if stmt is not None else None,
                source="squawk",
            )
        )
    return findings, True


def deduplicate(findings: list[Finding]) -> list[Finding]:
    """Drop repeats of (rule, line) and squawk findings one of ours already reports."""
    ours = {(f.rule, f.line) for f in findings if f.source == "wedsync"}
    seen: set[tuple[str, int | None]] = set()
    kept = []
    for f in findings:
        key = (f.rule, f.line)
        covered_by = SQUAWK_RULES_COVERED_BY_OURS.get(f.rule)
        if key in seen or (f.source == "squawk" and (covered_by, f.line) in ours):
            continue
        seen.add(key)
        kept.append(f)
    return kept
