"""wedsync's own lint rules, one declaration each.

Adding a rule: write its check here under `@rule(name, severity)` (the docstring's first line is
its summary) and add its corpus
case `tests/fixtures/lint/bad/<name>.sql`; the corpus test finds both through the registry.
"""

from __future__ import annotations

from collections.abc import Iterator

from pglast import ast, enums

from wedsync_db.migrate.lint.locks import qualified, relation_key
from wedsync_db.migrate.lint.records import BLOCKING_ABOVE, LOCK_MODES, StatementAnalysis
from wedsync_db.migrate.lint.registry import RULES, Check, FileContext, Hit, Rule, register, rule
from wedsync_db.migrate.lint.squawk_rules import SQUAWK_ERROR_RULES

# A table carrying one of these columns belongs to a tenant and must have RLS enabled and forced.
TENANT_KEYS = ("organization_id", "wedding_id")
# INSERT only adds rows nobody else can be waiting for; these lock rows others may be editing.
_ROW_CHANGING_KINDS = frozenset({"UpdateStmt", "DeleteStmt", "MergeStmt"})


def _excerpt(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _problems_of(name: str) -> Check:
    """The check of a rule reported while reading the header (see `parse_directives`)."""

    def check(ctx: FileContext) -> Iterator[Hit]:
        for p in ctx.directives.problems:
            if p.rule == name:
                yield Hit(p.message, line=p.line)

    return check


# ---- the header


register(
    Rule(
        "invalid-directive",
        "error",
        "a `-- wedsync:` line that cannot be read, or one below the first statement",
        _problems_of("invalid-directive"),
        acknowledgeable=False,
    )
)
register(
    Rule(
        "allow-without-reason",
        "error",
        "`-- wedsync:allow <rule>` without a written reason",
        _problems_of("allow-without-reason"),
        acknowledgeable=False,
    )
)


# ---- how the file runs


@rule("empty-migration", "warning")
def _empty(ctx: FileContext) -> Iterator[Hit]:
    """An applied empty file that is filled in later shows up as drift, not as a migration."""
    if not ctx.statements:
        yield Hit(
            "the file holds no statement; applying it records an empty migration, and "
            "filling it in afterwards is drift — write the SQL before applying"
        )


@rule("no-transaction-multiple-statements", "error", acknowledgeable=False)
def _no_transaction_multiple(ctx: FileContext) -> Iterator[Hit]:
    """A `wedsync:no-transaction` file holds more than one statement."""
    if ctx.directives.no_transaction and len(ctx.analyses) > 1:
        yield Hit(
            f"`wedsync:no-transaction` files must hold exactly one statement, this one has "
            f"{len(ctx.analyses)}; move the others to their own migration files",
            ctx.analyses[1],
        )


@rule("concurrently-in-transaction", "error", acknowledgeable=False)
def _concurrently_in_transaction(ctx: FileContext) -> Iterator[Hit]:
    """A statement that cannot run inside a transaction block, in a transactional file."""
    if ctx.directives.no_transaction:
        return
    for a in ctx.analyses:
        if a.requires_no_transaction:
            yield Hit(
                f"`{_excerpt(a.text)}` cannot run inside a transaction block; put it alone in a "
                "file that starts with `-- wedsync:no-transaction`",
                a,
            )


# ---- what the file does to live tables


@rule("data-change-on-existing-table", "warning")
def _data_change(ctx: FileContext) -> Iterator[Hit]:
    """UPDATE / DELETE / MERGE on a table that existed before the file."""
    for a in ctx.analyses:
        if a.kind in _ROW_CHANGING_KINDS:
            existing = [lock.table for lock in a.locks if not lock.new_table]
            if existing:
                yield Hit(
                    f"{a.kind.removesuffix('Stmt').upper()} on {existing[0]} keeps every changed "
                    "row locked until the migration commits; backfill large tables in batches "
                    "outside the migration",
                    a,
                )


@rule("tenant-table-without-rls", "error")
def _tenant_without_rls(ctx: FileContext) -> Iterator[Hit]:
    """A new table with a tenant key whose row level security is not enabled and forced."""
    enabled: set[str] = set()
    forced: set[str] = set()
    for stmt in ctx.statements:
        if stmt.kind == "AlterTableStmt":
            key = relation_key(qualified(stmt.node.relation))
            for cmd in stmt.node.cmds:
                if cmd.subtype == enums.AlterTableType.AT_EnableRowSecurity:
                    enabled.add(key)
                elif cmd.subtype == enums.AlterTableType.AT_ForceRowSecurity:
                    forced.add(key)
    for stmt, analysis in zip(ctx.statements, ctx.analyses, strict=True):
        if stmt.kind != "CreateStmt":
            continue
        columns = {e.colname for e in stmt.node.tableElts or () if isinstance(e, ast.ColumnDef)}
        tenant_keys = [k for k in TENANT_KEYS if k in columns]
        name = qualified(stmt.node.relation)
        key = relation_key(name)
        missing = [
            w for w, done in (("ENABLE", key in enabled), ("FORCE", key in forced)) if not done
        ]
        if tenant_keys and missing:
            yield Hit(
                f"{name} carries the tenant key {tenant_keys[0]} but this file does not "
                + " and ".join(f"{w} ROW LEVEL SECURITY" for w in missing)
                + f" on it; add `ALTER TABLE {name} ENABLE ROW LEVEL SECURITY, "
                "FORCE ROW LEVEL SECURITY;` and its policies",
                analysis,
            )


# ---- after squawk: rules that read the other findings

# squawk rules that already explain a blocking lock (see `lint.squawk_rules`)
_LOCK_EXPLAINING = frozenset({"concurrently-in-transaction"})


@rule("blocking-lock-on-existing-table", "warning", phase="final")
def _blocking(ctx: FileContext) -> Iterator[Hit]:
    """A lock that stops reads or writes on a table that existed before the file."""
    explained = {
        f.line
        for f in ctx.findings
        if f.line is not None and (f.rule in SQUAWK_ERROR_RULES or f.rule in _LOCK_EXPLAINING)
    }
    by_target: dict[str, list[StatementAnalysis]] = {}
    for a in ctx.analyses:
        if a.blocking and not any(a.line <= line <= a.end_line for line in explained):
            held = [
                f"{lock.table} ({lock.mode})"
                for lock in a.locks
                if not lock.new_table and LOCK_MODES.index(lock.mode) > BLOCKING_ABOVE
            ] or [f"tables it does not name ({a.lock_level})"]
            by_target.setdefault(", ".join(held), []).append(a)
    for target, group in by_target.items():
        extra = len(group) - 1
        more = f" (and {extra} more statement{'s' * (extra > 1)} in this file)" if extra else ""
        yield Hit(f"blocks other sessions on {target}{more}: {group[0].reason}", group[0])


@rule("unknown-allow-rule", "warning", phase="final")
def _unknown_allows(ctx: FileContext) -> Iterator[Hit]:
    """A `wedsync:allow` that waives nothing."""
    reported = {f.rule for f in ctx.findings} | ctx.reported_alone
    for name, line in ctx.directives.allow_lines.items():
        declared = RULES.get(name)
        if declared is not None and not declared.acknowledgeable:
            hint = f"{name} cannot be waived; the file cannot run as written"
        # Without squawk's report we cannot tell whether a squawk rule would have fired.
        elif name in reported or (not ctx.squawk_ran and declared is None):
            continue
        else:
            hint = f"no finding of {name} in this file; remove the allow or check the rule name"
        yield Hit(f"`wedsync:allow {name}`: {hint}", line=line)


# ---- reported by the lint machinery, not by a check

register(
    Rule(
        "squawk-unavailable",
        "info",
        "squawk is not installed; only wedsync's rules ran",
        corpus=False,
    )
)
register(Rule("squawk-failed", "warning", "squawk ran but gave no report", corpus=False))
register(
    Rule(
        "not-utf8",
        "error",
        "the file is not valid UTF-8 (the finding names the byte offset)",
        acknowledgeable=False,
    )
)
register(
    Rule(
        "unparseable-sql",
        "error",
        "PostgreSQL's parser cannot read the file",
        acknowledgeable=False,
    )
)
register(
    Rule(
        "duplicate-version",
        "error",
        "another file linted with this one has the same version number (a case needs two files)",
        acknowledgeable=False,
        corpus=False,
    )
)
register(
    Rule(
        "migration-file-name",
        "warning",
        "the file is not named NNNN_name.sql, so `migrate apply` refuses its directory",
        corpus=False,
    )
)
