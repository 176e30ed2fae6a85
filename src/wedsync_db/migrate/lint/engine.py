"""Whole files: classify a parsed file's statements, run the rules and squawk, acknowledge."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from wedsync_db.errors import ConfigError, MigrationFileError
from wedsync_db.migrate.lint import rules as _rules  # noqa: F401  (registers the rules)
from wedsync_db.migrate.lint.locks import classify, created_relations
from wedsync_db.migrate.lint.parsed import FILE_PATTERN, ParsedFile, decode, parse_file
from wedsync_db.migrate.lint.records import (
    SEVERITY_ORDER,
    Directives,
    FileAnalysis,
    Finding,
    Statement,
    StatementAnalysis,
)
from wedsync_db.migrate.lint.registry import RULES, FileContext, Hit, Phase, rules_in
from wedsync_db.migrate.lint.squawk_rules import deduplicate, squawk_findings


def check_pg_version(pg_version: str | None) -> None:
    """Refuse a version string that is not like "15" or "16.4" (squawk's --pg-version)."""
    if pg_version is not None and not pg_version.strip().split(".")[0].isdigit():
        raise ConfigError(
            "pg_version", f"{pg_version!r} is not a PostgreSQL version such as 15 or 16.4"
        )


def _acknowledge(findings: list[Finding], directives: Directives) -> list[Finding]:
    result = []
    for f in findings:
        reason = directives.allows.get(f.rule)
        declared = RULES.get(f.rule)
        if reason is not None and (declared is None or declared.acknowledgeable):
            f = replace(f, acknowledged=True, acknowledgement=reason)
        result.append(f)
    return result


def _run(earlier: list[Finding], ctx: FileContext, phase: Phase) -> list[Finding]:
    """Run the rules of ``phase`` in registration order; each sees the findings before it."""
    findings = list(earlier)
    for rule in rules_in(phase):
        if rule.check is not None:
            current = replace(ctx, findings=tuple(findings))
            findings += [rule.finding(hit) for hit in rule.check(current)]
    return findings


def _classified(
    statements: Iterable[Statement], created_earlier: frozenset[str]
) -> tuple[StatementAnalysis, ...]:
    created: set[str] = set(created_earlier)
    analyses: list[StatementAnalysis] = []
    for stmt in statements:
        analyses.append(classify(stmt, created))
        created.update(created_relations(stmt))
    return tuple(analyses)


def analyze_parsed(
    parsed: ParsedFile,
    *,
    pg_version: str | None = None,
    run_squawk: bool = True,
    created_earlier: Iterable[str] = (),
) -> FileAnalysis:
    """Classify and lint a parsed file; raises the file's parse error if it has one.

    ``created_earlier`` names relations created by earlier files of the same run: locking
    them blocks nobody, since no other session can be using them yet.
    """
    check_pg_version(pg_version)
    statements = parsed.statements_or_raise
    earlier = frozenset(created_earlier)
    ctx = FileContext(parsed, _classified(statements, earlier))
    findings = _run([], ctx, "statements")
    alone: frozenset[str] = frozenset()
    if earlier:
        judged = FileContext(parsed, _classified(statements, frozenset()))
        alone = frozenset(f.rule for f in _run(_run([], judged, "statements"), judged, "final"))
    squawk_ran = False
    if run_squawk and statements:
        from_squawk, squawk_ran = squawk_findings(
            parsed.sql,
            ctx.analyses,
            transactional=not parsed.directives.no_transaction,
            pg_version=pg_version,
        )
        findings += from_squawk
    final = replace(ctx, squawk_ran=squawk_ran, reported_alone=alone)
    findings = _run(deduplicate(findings), final, "final")
    findings = _acknowledge(findings, parsed.directives)
    findings.sort(key=lambda f: (f.line or 0, SEVERITY_ORDER[f.severity], f.rule))
    return FileAnalysis(
        name=parsed.name,
        directives=parsed.directives,
        statements=ctx.analyses,
        findings=tuple(findings),
    )


def analyze_sql(
    sql: str,
    *,
    name: str = "<sql>",
    pg_version: str | None = None,
    run_squawk: bool = True,
    created_earlier: Iterable[str] = (),
) -> FileAnalysis:
    """Split, classify and lint one migration file's SQL; a syntax error raises."""
    return analyze_parsed(
        parse_file(sql, name=name),
        pg_version=pg_version,
        run_squawk=run_squawk,
        created_earlier=created_earlier,
    )


def lint_source(
    data: bytes, *, name: str, pg_version: str | None = None, run_squawk: bool = True
) -> FileAnalysis:
    """Lint one file's bytes as `migrate lint` does: a file that is not UTF-8 or cannot be
    parsed, and a file named other than NNNN_name.sql, are findings of that file, not errors."""
    check_pg_version(pg_version)
    extra: list[Finding] = []
    basename = _basename(name)
    if not FILE_PATTERN.match(basename):
        extra.append(
            RULES["migration-file-name"].finding(
                Hit(
                    f"{basename} is not named NNNN_name.sql (digits, underscore, lower-case "
                    "name); `migrate apply` refuses a directory holding it"
                )
            )
        )
    try:
        sql = decode(data, name=name)
    except MigrationFileError as exc:
        bad = exc.__cause__.start if isinstance(exc.__cause__, UnicodeDecodeError) else 0
        finding = RULES["not-utf8"].finding(Hit(str(exc), line=data.count(b"\n", 0, bad) + 1))
        return FileAnalysis(name, Directives(), (), (finding, *extra))
    parsed = parse_file(sql, name=name)
    if parsed.error is not None:
        message = str(parsed.error)
        finding = RULES["unparseable-sql"].finding(Hit(message, line=_line_of(message)))
        return FileAnalysis(name, parsed.directives, (), (finding, *extra))
    result = analyze_parsed(parsed, pg_version=pg_version, run_squawk=run_squawk)
    if not extra:
        return result
    return replace(result, findings=(*extra, *result.findings))


def lint_sources(
    targets: Iterable[tuple[str, bytes]],
    *,
    pg_version: str | None = None,
    run_squawk: bool = True,
) -> list[FileAnalysis]:
    """Lint several files as one set, as `migrate lint` does: each alone (see
    :func:`lint_source`), and a version number used by two files (across directories, as
    `migrate apply` would refuse them) is a finding of the later file."""
    results: list[FileAnalysis] = []
    first_of: dict[int, str] = {}
    for name, data in targets:
        result = lint_source(data, name=name, pg_version=pg_version, run_squawk=run_squawk)
        match = FILE_PATTERN.match(_basename(name))
        if match is not None:
            number = int(match.group(1))
            other = first_of.setdefault(number, name)
            if other != name:
                hit = Hit(
                    f"version {match.group(1)} is used twice: {other} and {name}; renumber one "
                    "of them (`wedsync-db migrate new` picks the next free number)"
                )
                result = replace(
                    result, findings=(RULES["duplicate-version"].finding(hit), *result.findings)
                )
        results.append(result)
    return results


def _basename(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1]


def _line_of(message: str) -> int | None:
    """The line number in a parse error `name: line N: ...`."""
    _, _, rest = message.partition(": line ")
    head = rest.split(":", 1)[0]
    return int(head) if head.isdigit() else None
