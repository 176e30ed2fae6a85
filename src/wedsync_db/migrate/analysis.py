"""Static analysis of migration SQL: statements, the table locks they take, and lint findings.

Everything here is pure except `analyze_sql` / `analyze_file`, which also run squawk through
`wedsync_db.migrate.squawk`.

Lock modes follow the PostgreSQL documentation: "Explicit Locking", table 13.2 "Conflicting
Lock Modes" (https://www.postgresql.org/docs/current/explicit-locking.html#LOCKING-TABLES),
and the lock notes on each command's reference page (ALTER TABLE, CREATE INDEX, REINDEX...).
Behaviour is that of PostgreSQL 15 and later, the oldest server we support.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from pglast import ast, enums
from pglast.parser import ParseError, parse_sql, scan, split

from wedsync_db.errors import ConfigError, MigrationFileError
from wedsync_db.migrate import squawk

Severity = Literal["error", "warning", "info"]
Source = Literal["squawk", "wedsync"]
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

# Weakest first, as in table 13.2. Anything above SHARE UPDATE EXCLUSIVE conflicts with
# ROW EXCLUSIVE, i.e. stops INSERT/UPDATE/DELETE (and ACCESS EXCLUSIVE stops SELECT too).
LOCK_MODES: tuple[LockMode, ...] = (
    "ACCESS SHARE",
    "ROW SHARE",
    "ROW EXCLUSIVE",
    "SHARE UPDATE EXCLUSIVE",
    "SHARE",
    "SHARE ROW EXCLUSIVE",
    "EXCLUSIVE",
    "ACCESS EXCLUSIVE",
)
_BLOCKING_ABOVE = LOCK_MODES.index("SHARE UPDATE EXCLUSIVE")

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

# Our own rules and their severities.
WEDSYNC_RULES: Mapping[str, Severity] = MappingProxyType(
    {
        "no-transaction-multiple-statements": "error",
        "concurrently-in-transaction": "error",
        "tenant-table-without-rls": "error",
        "blocking-lock-on-existing-table": "warning",
        "data-change-on-existing-table": "warning",
        "allow-without-reason": "error",
        "invalid-directive": "error",
        "unknown-allow-rule": "warning",
        "squawk-unavailable": "info",
        "squawk-failed": "warning",
        # an applied empty file that is filled in later shows up as drift, not as a migration
        "empty-migration": "warning",
    }
)
# The file cannot run as written (or the allow itself is broken): no allow can waive these.
UNACKNOWLEDGEABLE_RULES = frozenset(
    {
        "no-transaction-multiple-statements",
        "concurrently-in-transaction",
        "allow-without-reason",
        "invalid-directive",
    }
)
# Where squawk and we report the same problem, keep ours (it covers every non-transactional
# statement, not only CREATE INDEX CONCURRENTLY).
SQUAWK_RULES_COVERED_BY_OURS: Mapping[str, str] = MappingProxyType(
    {"ban-concurrent-index-creation-in-transaction": "concurrently-in-transaction"}
)

# A table carrying one of these columns belongs to a tenant and must have RLS enabled and forced.
TENANT_KEYS = ("organization_id", "wedding_id")

# Functions known not to be volatile. An ADD COLUMN default that calls anything else may be
# volatile (CREATE FUNCTION defaults to VOLATILE), which makes PostgreSQL rewrite the table.
NON_VOLATILE_FUNCTIONS = frozenset(
    {
        "abs",
        "btrim",
        "concat",
        "current_setting",
        "date_trunc",
        "greatest",
        "json_build_array",
        "json_build_object",
        "jsonb_build_array",
        "jsonb_build_object",
        "least",
        "length",
        "lower",
        "make_date",
        "make_interval",
        "now",
        "round",
        "statement_timestamp",
        "timezone",
        "to_jsonb",
        "transaction_timestamp",
        "trim",
        "upper",
    }
)
SERIAL_TYPES = frozenset({"serial", "serial2", "serial4", "serial8", "smallserial", "bigserial"})
# ALTER COLUMN TYPE to one of these without USING is usually varchar widening or varchar→text,
# which PostgreSQL does without a rewrite (still under ACCESS EXCLUSIVE).
WIDENING_TARGET_TYPES = frozenset({"text", "varchar"})

_SEVERITY_ORDER: Mapping[str, int] = MappingProxyType({"error": 0, "warning": 1, "info": 2})


# --------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class Finding:
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
class Directives:
    """The `-- wedsync:` header of a file, plus any problems found while reading it."""

    no_transaction: bool = False
    allows: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    allow_lines: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    problems: tuple[Finding, ...] = ()


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
class StatementAnalysis:
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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = asdict(self)
        data["locks"] = [asdict(lock) for lock in self.locks]
        return data


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
        """JSON-ready form."""
        return {
            "name": self.name,
            "transactional": self.transactional,
            "blocking": self.blocking,
            "strongest_lock": self.strongest_lock,
            "directives": {
                "no_transaction": self.directives.no_transaction,
                "allows": dict(self.directives.allows),
            },
            "statements": [s.to_dict() for s in self.statements],
            "findings": [asdict(f) for f in self.findings],
            "unacknowledged_errors": len(self.unacknowledged_errors),
        }


# --------------------------------------------------------------------------------------------
# Header directives

_DIRECTIVE = re.compile(r"^--\s*wedsync:(?P<name>\S*)\s*(?P<rest>.*?)\s*$")
_ALLOW = re.compile(r"^(?P<rule>[a-z0-9][a-z0-9-]*)\s*(?::(?P<reason>.*))?$")
_DIRECTIVE_SYNTAX = "`-- wedsync:no-transaction` or `-- wedsync:allow <rule-name>: <reason>`"


def _directive_problem(rule: str, line: int, message: str) -> Finding:
    return Finding(rule, WEDSYNC_RULES[rule], message, line, None, "wedsync")


def parse_directives(sql: str) -> Directives:
    """Read `-- wedsync:` directives from the comment lines at the top of a file."""
    no_transaction = False
    allows: dict[str, str] = {}
    allow_lines: dict[str, int] = {}
    problems: list[Finding] = []
    in_header = True
    for number, raw in enumerate(sql.removeprefix("\ufeff").splitlines(), start=1):
        line = raw.strip()
        if in_header and line and not line.startswith("--"):
            in_header = False
        match = _DIRECTIVE.match(line)
        if match is None:
            continue
        name, rest = match["name"], match["rest"]
        if not in_header:
            problems.append(
                _directive_problem(
                    "invalid-directive",
                    number,
                    f"`wedsync:{name}` is ignored after the first statement; move it into the "
                    "comment lines at the top of the file",
                )
            )
        elif name == "no-transaction" and not rest:
            no_transaction = True
        elif name == "allow" and (allow := _ALLOW.match(rest)) is not None:
            rule, reason = allow["rule"], (allow["reason"] or "").strip()
            if not reason:
                problems.append(
                    _directive_problem(
                        "allow-without-reason",
                        number,
                        f"`wedsync:allow {rule}` has no reason; write why it is safe after a "
                        f"colon: `-- wedsync:allow {rule}: <reason>`",
                    )
                )
            else:
                allows[rule] = f"{allows[rule]}; {reason}" if rule in allows else reason
                allow_lines.setdefault(rule, number)
        else:
            problems.append(
                _directive_problem(
                    "invalid-directive",
                    number,
                    f"cannot read `{line}`; the header accepts {_DIRECTIVE_SYNTAX}",
                )
            )
    return Directives(
        no_transaction=no_transaction,
        allows=MappingProxyType(allows),
        allow_lines=MappingProxyType(allow_lines),
        problems=tuple(problems),
    )


# --------------------------------------------------------------------------------------------
# Splitting


def _line_at(sql: str, offset: int) -> int:
    return sql.count("\n", 0, offset) + 1


def split_statements(sql: str) -> tuple[Statement, ...]:
    """Split SQL into top-level statements with the PostgreSQL parser."""
    try:
        raw_statements = parse_sql(sql)
        slices = split(sql, only_slices=True)
    except ParseError as exc:
        message = exc.args[0] if exc.args else str(exc)
        offset = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else None
        # "at end of input" has no position: point at the last non-blank line.
        line = _line_at(sql, offset if offset is not None else len(sql.rstrip()))
        raise MigrationFileError(f"line {line}: {message}") from exc
    statements = []
    for raw, where in zip(raw_statements, slices, strict=True):
        text = sql[where]
        start = _line_at(sql, where.start)
        statements.append(
            Statement(
                text=text,
                line=start,
                end_line=start + text.count("\n"),
                kind=type(raw.stmt).__name__,
                node=raw.stmt,
            )
        )
    return tuple(statements)


def mask_comments(sql: str) -> str:
    """The SQL with every comment blanked out, keeping offsets and line numbers."""
    chars = list(sql)
    for token in scan(sql):
        if token.name in ("SQL_COMMENT", "C_COMMENT"):
            for i in range(token.start, token.end + 1):
                if chars[i] != "\n":
                    chars[i] = " "
    return "".join(chars)


# --------------------------------------------------------------------------------------------
# Lock classification


def _dotted(names: Any) -> str:
    return ".".join(n.sval for n in names)


def _qualified(rangevar: Any) -> str:
    return f"{rangevar.schemaname}.{rangevar.relname}" if rangevar.schemaname else rangevar.relname


def relation_key(name: str) -> str:
    """Compare relation names ignoring an explicit `public.` (the default search_path)."""
    return name.removeprefix("public.")


def _walk(node: Any) -> Iterator[Any]:
    """Every parse node under `node`, itself included."""
    if isinstance(node, ast.Node):
        yield node
        for attr in getattr(type(node), "__slots__", ()):
            yield from _walk(getattr(node, attr, None))
    elif isinstance(node, (tuple, list)):
        for item in node:
            yield from _walk(item)


def _possibly_volatile_call(expr: Any) -> str | None:
    """The first function in an expression not known to be non-volatile, if any."""
    for node in _walk(expr):
        if isinstance(node, ast.FuncCall) and node.funcname:
            name = str(node.funcname[-1].sval).lower()
            if name not in NON_VOLATILE_FUNCTIONS:
                return f"{name}()"
    return None


def _option_enabled(option: Any) -> bool:
    arg = option.arg
    if arg is None:
        return True
    value = getattr(arg, "boolval", getattr(arg, "sval", getattr(arg, "ival", True)))
    return str(value).lower() not in ("false", "off", "0")


def _has_option(options: Any, name: str) -> bool:
    return any(o.defname == name and _option_enabled(o) for o in options or ())


@dataclass
class _Effect:
    """What one statement (or ALTER TABLE subcommand) does, before new-table resolution."""

    reason: str
    locks: list[tuple[str, LockMode]] = field(default_factory=list)
    creates: bool = False
    rewrites: bool = False
    scans: bool = False
    concurrently: bool = False
    no_transaction: bool = False
    changes_data: bool = False
    # A lock on tables the statement does not name (a whole schema or database).
    unnamed_lock: LockMode | None = None

    def lock(self, target: Any, mode: LockMode) -> None:
        name = target if isinstance(target, str) else _qualified(target)
        self.locks.append((name, mode))


def _foreign_key_targets(elements: Any) -> list[Any]:
    targets = []
    for element in elements or ():
        constraints = element.constraints if isinstance(element, ast.ColumnDef) else (element,)
        for con in constraints or ():
            if isinstance(con, ast.Constraint) and con.contype == enums.ConstrType.CONSTR_FOREIGN:
                targets.append(con.pktable)
    return targets


def _create_table(node: Any, pg_major: int | None) -> _Effect:
    effect = _Effect(
        "CREATE TABLE: the new table is ACCESS EXCLUSIVE to its creator until commit; "
        "no other session can see it yet",
        creates=True,
    )
    effect.lock(node.relation, "ACCESS EXCLUSIVE")
    for parent in node.inhRelations or ():
        # PARTITION OF locks the parent ACCESS EXCLUSIVE, INHERITS only SHARE UPDATE EXCLUSIVE.
        effect.lock(parent, "ACCESS EXCLUSIVE" if node.partbound else "SHARE UPDATE EXCLUSIVE")
    if node.partbound:
        effect.reason += (
            "; PARTITION OF takes ACCESS EXCLUSIVE on the parent (ATTACH PARTITION is lighter)"
        )
    targets = _foreign_key_targets(node.tableElts)
    for target in targets:
        effect.lock(target, "SHARE ROW EXCLUSIVE")
    if targets:
        effect.reason += (
            "; each referenced table gets SHARE ROW EXCLUSIVE (blocks its writes) "
            "until the file commits, for the foreign-key triggers"
        )
    return effect


def _create_table_as(node: Any, pg_major: int | None) -> _Effect:
    effect = _Effect(
        f"{node.objtype.name.removeprefix('OBJECT_')} AS: creates a new relation", creates=True
    )
    effect.lock(node.into.rel, "ACCESS EXCLUSIVE")
    return effect


def _create_index(node: Any, pg_major: int | None) -> _Effect:
    if node.concurrent:
        effect = _Effect(
            "CREATE INDEX CONCURRENTLY takes SHARE UPDATE EXCLUSIVE: reads and writes continue "
            "during the build; it cannot run inside a transaction block",
            concurrently=True,
            no_transaction=True,
            scans=True,
        )
        effect.lock(node.relation, "SHARE UPDATE EXCLUSIVE")
    else:
        effect = _Effect(
            "CREATE INDEX takes SHARE: reads continue, writes wait for the whole build",
            scans=True,
        )
        effect.lock(node.relation, "SHARE")
    return effect


_RELATION_OBJECTS = frozenset(
    {
        enums.ObjectType.OBJECT_TABLE,
        enums.ObjectType.OBJECT_VIEW,
        enums.ObjectType.OBJECT_MATVIEW,
        enums.ObjectType.OBJECT_SEQUENCE,
        enums.ObjectType.OBJECT_FOREIGN_TABLE,
    }
)
_TABLE_CHILD_OBJECTS = frozenset(
    {enums.ObjectType.OBJECT_TRIGGER, enums.ObjectType.OBJECT_POLICY, enums.ObjectType.OBJECT_RULE}
)


def _object_word(object_type: Any) -> str:
    return str(object_type.name).removeprefix("OBJECT_").replace("_", " ")


def _drop(node: Any, pg_major: int | None) -> _Effect:
    kind = node.removeType
    word = _object_word(kind)
    if kind == enums.ObjectType.OBJECT_INDEX:
        if node.concurrent:
            effect = _Effect(
                "DROP INDEX CONCURRENTLY takes SHARE UPDATE EXCLUSIVE and waits for queries "
                "using the index; it cannot run inside a transaction block",
                concurrently=True,
                no_transaction=True,
            )
            mode: LockMode = "SHARE UPDATE EXCLUSIVE"
        else:
            effect = _Effect("DROP INDEX takes ACCESS EXCLUSIVE on the index's table")
            mode = "ACCESS EXCLUSIVE"
        for names in node.objects:
            effect.lock(_dotted(names), mode)
        return effect
    if kind in _RELATION_OBJECTS:
        effect = _Effect(f"DROP {word} takes ACCESS EXCLUSIVE")
        for names in node.objects:
            effect.lock(_dotted(names), "ACCESS EXCLUSIVE")
        return effect
    if kind in _TABLE_CHILD_OBJECTS:
        effect = _Effect(f"DROP {word} takes ACCESS EXCLUSIVE on its table")
        for names in node.objects:
            effect.lock(_dotted(names[:-1]), "ACCESS EXCLUSIVE")
        return effect
    return _Effect(f"DROP {word}: no table lock")


_SHARE_UPDATE_EXCLUSIVE_SUBCOMMANDS = frozenset(
    {
        enums.AlterTableType.AT_SetStatistics,
        enums.AlterTableType.AT_SetOptions,
        enums.AlterTableType.AT_ResetOptions,
        enums.AlterTableType.AT_ClusterOn,
        enums.AlterTableType.AT_DropCluster,
        enums.AlterTableType.AT_SetRelOptions,
        enums.AlterTableType.AT_ResetRelOptions,
    }
)
_TRIGGER_SUBCOMMANDS = frozenset(
    {
        enums.AlterTableType.AT_EnableTrig,
        enums.AlterTableType.AT_EnableAlwaysTrig,
        enums.AlterTableType.AT_EnableReplicaTrig,
        enums.AlterTableType.AT_DisableTrig,
        enums.AlterTableType.AT_EnableTrigAll,
        enums.AlterTableType.AT_DisableTrigAll,
        enums.AlterTableType.AT_EnableTrigUser,
        enums.AlterTableType.AT_DisableTrigUser,
    }
)
_REWRITING_SUBCOMMANDS = {
    enums.AlterTableType.AT_SetTableSpace: "SET TABLESPACE copies the table",
    enums.AlterTableType.AT_SetLogged: "SET LOGGED rewrites the table",
    enums.AlterTableType.AT_SetUnLogged: "SET UNLOGGED rewrites the table",
    enums.AlterTableType.AT_SetAccessMethod: "SET ACCESS METHOD rewrites the table",
    enums.AlterTableType.AT_SetExpression: "SET EXPRESSION recomputes a stored generated column",
}
_RLS_SUBCOMMANDS = {
    enums.AlterTableType.AT_EnableRowSecurity: "ENABLE ROW LEVEL SECURITY",
    enums.AlterTableType.AT_DisableRowSecurity: "DISABLE ROW LEVEL SECURITY",
    enums.AlterTableType.AT_ForceRowSecurity: "FORCE ROW LEVEL SECURITY",
    enums.AlterTableType.AT_NoForceRowSecurity: "NO FORCE ROW LEVEL SECURITY",
}


def _type_name(type_name: Any) -> str:
    return str(type_name.names[-1].sval).lower()


def _add_column(column: Any) -> _Effect:
    constraints = column.constraints or ()
    kinds = {c.contype for c in constraints}
    default = next(
        (c.raw_expr for c in constraints if c.contype == enums.ConstrType.CONSTR_DEFAULT), None
    )
    stored = any(
        c.contype == enums.ConstrType.CONSTR_GENERATED and c.generated_kind == "s"
        for c in constraints
    )
    volatile = _possibly_volatile_call(default) if default is not None else None
    if _type_name(column.typeName) in SERIAL_TYPES:
        why: str | None = "a serial column fills every row from nextval()"
    elif enums.ConstrType.CONSTR_IDENTITY in kinds:
        why = "an identity column fills every row from its sequence"
    elif stored:
        why = "a stored generated column is computed for every row"
    elif volatile is not None:
        why = (
            f"the default calls {volatile}, which may be volatile, so every row gets its own value"
        )
    else:
        why = None
    effect = _Effect("ADD COLUMN takes ACCESS EXCLUSIVE")
    if why is not None:
        effect.rewrites = effect.scans = True
        effect.reason += f" and rewrites the whole table: {why}"
    elif default is not None:
        effect.reason += " briefly; a non-volatile default is stored in the catalog (no rewrite)"
    else:
        effect.reason += " briefly (catalog only)"
    not_null = kinds & {enums.ConstrType.CONSTR_NOTNULL, enums.ConstrType.CONSTR_PRIMARY}
    if not_null and default is None and why is None:
        effect.scans = True
        effect.reason += "; NOT NULL without a default fails if the table has any row"
    if kinds & {enums.ConstrType.CONSTR_PRIMARY, enums.ConstrType.CONSTR_UNIQUE}:
        effect.scans = True
        effect.reason += "; the index is built while the lock is held"
    for target in _foreign_key_targets((column,)):
        effect.lock(target, "SHARE ROW EXCLUSIVE")
    return effect


def _add_constraint(con: Any) -> _Effect:
    kind = con.contype
    not_valid = bool(con.skip_validation)
    if kind == enums.ConstrType.CONSTR_FOREIGN:
        effect = _Effect(
            "ADD FOREIGN KEY takes SHARE ROW EXCLUSIVE on both tables (blocks their writes)"
        )
        effect.lock(con.pktable, "SHARE ROW EXCLUSIVE")
    elif kind in (
        enums.ConstrType.CONSTR_PRIMARY,
        enums.ConstrType.CONSTR_UNIQUE,
        enums.ConstrType.CONSTR_EXCLUSION,
    ):
        word = kind.name.removeprefix("CONSTR_").replace("PRIMARY", "PRIMARY KEY")
        if con.indexname:
            return _Effect(
                f"ADD {word} USING INDEX takes ACCESS EXCLUSIVE briefly (no index build)"
            )
        return _Effect(
            f"ADD {word} builds its index under ACCESS EXCLUSIVE: reads and writes wait; "
            f"build the index CONCURRENTLY first and add the constraint USING INDEX",
            scans=True,
        )
    else:
        word = kind.name.removeprefix("CONSTR_").replace("NOTNULL", "NOT NULL")
        effect = _Effect(f"ADD {word} constraint takes ACCESS EXCLUSIVE")
    if not_valid:
        effect.reason += (
            "; NOT VALID skips the scan (VALIDATE CONSTRAINT later takes SHARE UPDATE EXCLUSIVE)"
        )
    else:
        effect.scans = True
        effect.reason += " and checks every row while holding it"
    return effect


def _alter_column_type(cmd: Any) -> _Effect:
    column = cmd.def_
    target = _type_name(column.typeName)
    if target in WIDENING_TARGET_TYPES and column.raw_default is None:
        return _Effect(
            f"ALTER COLUMN TYPE {target} takes ACCESS EXCLUSIVE; widening a varchar (or varchar "
            "to text) needs no rewrite, any other change rewrites the table and its indexes"
        )
    return _Effect(
        "ALTER COLUMN TYPE takes ACCESS EXCLUSIVE and rewrites the table and its indexes",
        rewrites=True,
        scans=True,
    )


def _alter_table_command(cmd: Any) -> tuple[LockMode, _Effect]:
    """Lock mode on the altered table and the effect of one ALTER TABLE subcommand."""
    at = enums.AlterTableType
    kind = cmd.subtype
    if kind == at.AT_AddColumn:
        return "ACCESS EXCLUSIVE", _add_column(cmd.def_)
    if kind == at.AT_AddConstraint and isinstance(cmd.def_, ast.Constraint):
        effect = _add_constraint(cmd.def_)
        is_fk = cmd.def_.contype == enums.ConstrType.CONSTR_FOREIGN
        return ("SHARE ROW EXCLUSIVE" if is_fk else "ACCESS EXCLUSIVE"), effect
    if kind == at.AT_AddIndexConstraint:
        return "ACCESS EXCLUSIVE", _Effect(
            "ADD CONSTRAINT USING INDEX takes ACCESS EXCLUSIVE briefly"
        )
    if kind == at.AT_ValidateConstraint:
        return "SHARE UPDATE EXCLUSIVE", _Effect(
            "VALIDATE CONSTRAINT takes SHARE UPDATE EXCLUSIVE: reads and writes continue during "
            "the scan (a foreign key also takes ROW SHARE on the referenced table)",
            scans=True,
        )
    if kind == at.AT_AlterColumnType:
        return "ACCESS EXCLUSIVE", _alter_column_type(cmd)
    if kind == at.AT_SetNotNull:
        return "ACCESS EXCLUSIVE", _Effect(
            "SET NOT NULL takes ACCESS EXCLUSIVE and scans the whole table, unless a validated "
            "CHECK (column IS NOT NULL) already proves it",
            scans=True,
        )
    if kind == at.AT_DropNotNull:
        return "ACCESS EXCLUSIVE", _Effect("DROP NOT NULL takes ACCESS EXCLUSIVE briefly")
    if kind == at.AT_ColumnDefault:
        return "ACCESS EXCLUSIVE", _Effect(
            "SET/DROP DEFAULT takes ACCESS EXCLUSIVE briefly; existing rows are not touched"
        )
    if kind == at.AT_DropColumn:
        return "ACCESS EXCLUSIVE", _Effect(
            "DROP COLUMN takes ACCESS EXCLUSIVE briefly; the column is hidden, not rewritten"
        )
    if kind in _RLS_SUBCOMMANDS:
        return "ACCESS EXCLUSIVE", _Effect(
            f"{_RLS_SUBCOMMANDS[kind]} takes ACCESS EXCLUSIVE briefly"
        )
    if kind in _TRIGGER_SUBCOMMANDS:
        return "SHARE ROW EXCLUSIVE", _Effect("ENABLE/DISABLE TRIGGER takes SHARE ROW EXCLUSIVE")
    if kind in _SHARE_UPDATE_EXCLUSIVE_SUBCOMMANDS:
        return "SHARE UPDATE EXCLUSIVE", _Effect(
            "this ALTER TABLE subcommand takes only SHARE UPDATE EXCLUSIVE"
        )
    if kind == at.AT_AttachPartition:
        effect = _Effect(
            "ATTACH PARTITION takes SHARE UPDATE EXCLUSIVE on the parent and ACCESS EXCLUSIVE on "
            "the partition, which is scanned unless a CHECK constraint proves the bound",
            scans=True,
        )
        effect.lock(cmd.def_.name, "ACCESS EXCLUSIVE")
        return "SHARE UPDATE EXCLUSIVE", effect
    if kind == at.AT_DetachPartition:
        if cmd.def_.concurrent:
            effect = _Effect(
                "DETACH PARTITION CONCURRENTLY takes SHARE UPDATE EXCLUSIVE; it cannot run inside "
                "a transaction block",
                concurrently=True,
                no_transaction=True,
            )
            effect.lock(cmd.def_.name, "SHARE UPDATE EXCLUSIVE")
            return "SHARE UPDATE EXCLUSIVE", effect
        effect = _Effect("DETACH PARTITION takes ACCESS EXCLUSIVE on the parent and the partition")
        effect.lock(cmd.def_.name, "ACCESS EXCLUSIVE")
        return "ACCESS EXCLUSIVE", effect
    if kind in _REWRITING_SUBCOMMANDS:
        return "ACCESS EXCLUSIVE", _Effect(
            f"{_REWRITING_SUBCOMMANDS[kind]} under ACCESS EXCLUSIVE", rewrites=True, scans=True
        )
    # AT_DropConstraint -> "DROP CONSTRAINT"
    words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", kind.name.removeprefix("AT_")).upper()
    return "ACCESS EXCLUSIVE", _Effect(f"{words} takes ACCESS EXCLUSIVE")


def _alter_table(node: Any, pg_major: int | None) -> _Effect:
    reasons: list[str] = []
    effect = _Effect("")
    modes: list[LockMode] = []
    for cmd in node.cmds:
        mode, part = _alter_table_command(cmd)
        modes.append(mode)
        reasons.append(part.reason)
        effect.locks += part.locks
        effect.rewrites |= part.rewrites
        effect.scans |= part.scans
        effect.concurrently |= part.concurrently
        effect.no_transaction |= part.no_transaction
    effect.locks.insert(0, (_qualified(node.relation), max(modes, key=LOCK_MODES.index)))
    effect.reason = "; ".join(reasons)
    return effect


def _rename(node: Any, pg_major: int | None) -> _Effect:
    kind = node.renameType
    word = _object_word(kind)
    if node.relation is None:
        return _Effect(f"RENAME {word}: no table lock")
    effect = _Effect(f"RENAME {word} takes ACCESS EXCLUSIVE briefly")
    mode: LockMode = "ACCESS EXCLUSIVE"
    if kind == enums.ObjectType.OBJECT_INDEX:
        effect.reason = "ALTER INDEX RENAME takes SHARE UPDATE EXCLUSIVE"
        mode = "SHARE UPDATE EXCLUSIVE"
    effect.lock(node.relation, mode)
    return effect


def _alter_object_schema(node: Any, pg_major: int | None) -> _Effect:
    if node.relation is None:
        return _Effect("SET SCHEMA: no table lock")
    effect = _Effect("SET SCHEMA takes ACCESS EXCLUSIVE briefly")
    effect.lock(node.relation, "ACCESS EXCLUSIVE")
    return effect


def _policy(node: Any, pg_major: int | None) -> _Effect:
    verb = "CREATE" if isinstance(node, ast.CreatePolicyStmt) else "ALTER"
    effect = _Effect(f"{verb} POLICY takes ACCESS EXCLUSIVE briefly")
    effect.lock(node.table, "ACCESS EXCLUSIVE")
    return effect


def _truncate(node: Any, pg_major: int | None) -> _Effect:
    effect = _Effect("TRUNCATE takes ACCESS EXCLUSIVE and removes every row", changes_data=True)
    for relation in node.relations:
        effect.lock(relation, "ACCESS EXCLUSIVE")
    return effect


def _cluster(node: Any, pg_major: int | None) -> _Effect:
    if node.relation is None:
        return _Effect(
            "CLUSTER without a table re-clusters every clustered table under ACCESS EXCLUSIVE; "
            "it cannot run inside a transaction block",
            rewrites=True,
            scans=True,
            no_transaction=True,
            unnamed_lock="ACCESS EXCLUSIVE",
        )
    effect = _Effect("CLUSTER rewrites the table under ACCESS EXCLUSIVE", rewrites=True, scans=True)
    effect.lock(node.relation, "ACCESS EXCLUSIVE")
    return effect


def _vacuum(node: Any, pg_major: int | None) -> _Effect:
    relations = [r.relation for r in node.rels or () if r.relation is not None]
    if not node.is_vacuumcmd:
        effect = _Effect(
            "ANALYZE takes SHARE UPDATE EXCLUSIVE while it samples the table", scans=True
        )
        mode: LockMode = "SHARE UPDATE EXCLUSIVE"
    elif _has_option(node.options, "full"):
        effect = _Effect(
            "VACUUM FULL rewrites the table under ACCESS EXCLUSIVE; VACUUM cannot run inside a "
            "transaction block",
            rewrites=True,
            scans=True,
            no_transaction=True,
        )
        mode = "ACCESS EXCLUSIVE"
    else:
        effect = _Effect(
            "VACUUM takes SHARE UPDATE EXCLUSIVE; it cannot run inside a transaction block",
            scans=True,
            no_transaction=True,
        )
        mode = "SHARE UPDATE EXCLUSIVE"
    for relation in relations:
        effect.lock(relation, mode)
    if not relations:
        effect.unnamed_lock = mode
    return effect


def _reindex(node: Any, pg_major: int | None) -> _Effect:
    kind = enums.ReindexObjectType
    concurrently = _has_option(node.params, "concurrently")
    wide = node.kind not in (kind.REINDEX_OBJECT_INDEX, kind.REINDEX_OBJECT_TABLE)
    if concurrently:
        effect = _Effect(
            "REINDEX CONCURRENTLY takes SHARE UPDATE EXCLUSIVE; it cannot run inside a "
            "transaction block",
            concurrently=True,
            no_transaction=True,
        )
        mode: LockMode = "SHARE UPDATE EXCLUSIVE"
    elif node.kind == kind.REINDEX_OBJECT_INDEX:
        effect = _Effect(
            "REINDEX INDEX takes ACCESS EXCLUSIVE on the index (queries using it wait) and SHARE "
            "on its table (writes wait)"
        )
        mode = "ACCESS EXCLUSIVE"
    else:
        effect = _Effect(
            "REINDEX takes SHARE on each table (writes wait) and ACCESS EXCLUSIVE on each index "
            "being rebuilt (queries using it wait)"
        )
        mode = "SHARE"
    if wide:
        effect.no_transaction = True
        effect.unnamed_lock = mode
        effect.reason += "; REINDEX SCHEMA/DATABASE/SYSTEM cannot run inside a transaction block"
    else:
        effect.lock(node.relation, mode)
    return effect


def _create_trigger(node: Any, pg_major: int | None) -> _Effect:
    effect = _Effect("CREATE TRIGGER takes SHARE ROW EXCLUSIVE: reads continue, writes wait")
    effect.lock(node.relation, "SHARE ROW EXCLUSIVE")
    return effect


def _create_statistics(node: Any, pg_major: int | None) -> _Effect:
    effect = _Effect("CREATE STATISTICS takes SHARE UPDATE EXCLUSIVE")
    for relation in node.relations or ():
        if isinstance(relation, ast.RangeVar):
            effect.lock(relation, "SHARE UPDATE EXCLUSIVE")
    return effect


_LOCK_STMT_MODES: Mapping[int, LockMode] = MappingProxyType(dict(enumerate(LOCK_MODES, start=1)))


def _lock_table(node: Any, pg_major: int | None) -> _Effect:
    mode = _LOCK_STMT_MODES.get(int(node.mode), "ACCESS EXCLUSIVE")
    effect = _Effect(f"LOCK TABLE takes {mode} explicitly")
    for relation in node.relations:
        effect.lock(relation, mode)
    return effect


def _refresh_matview(node: Any, pg_major: int | None) -> _Effect:
    if node.concurrent:
        effect = _Effect(
            "REFRESH MATERIALIZED VIEW CONCURRENTLY takes EXCLUSIVE: reads continue", scans=True
        )
        effect.lock(node.relation, "EXCLUSIVE")
        effect.concurrently = True
    else:
        effect = _Effect("REFRESH MATERIALIZED VIEW takes ACCESS EXCLUSIVE: reads wait", scans=True)
        effect.lock(node.relation, "ACCESS EXCLUSIVE")
    return effect


def _create_view(node: Any, pg_major: int | None) -> _Effect:
    if node.replace:
        effect = _Effect("CREATE OR REPLACE VIEW takes ACCESS EXCLUSIVE on an existing view")
    else:
        effect = _Effect("CREATE VIEW creates a new relation", creates=True)
    effect.lock(node.view, "ACCESS EXCLUSIVE")
    return effect


def _create_sequence(node: Any, pg_major: int | None) -> _Effect:
    effect = _Effect("CREATE SEQUENCE creates a new relation", creates=True)
    effect.lock(node.sequence, "ACCESS EXCLUSIVE")
    return effect


def _data_change(node: Any, pg_major: int | None) -> _Effect:
    verb = type(node).__name__.removesuffix("Stmt").upper()
    effect = _Effect(
        f"{verb} takes ROW EXCLUSIVE; changed rows stay locked until the file commits",
        changes_data=True,
    )
    effect.lock(node.relation, "ROW EXCLUSIVE")
    return effect


def _select(node: Any, pg_major: int | None) -> _Effect:
    effect = _Effect("SELECT takes ACCESS SHARE on what it reads")
    seen: set[str] = set()
    for relation in _walk(node.fromClause):
        if isinstance(relation, ast.RangeVar) and _qualified(relation) not in seen:
            seen.add(_qualified(relation))
            effect.lock(relation, "ACCESS SHARE")
    return effect


def _comment(node: Any, pg_major: int | None) -> _Effect:
    effect = _Effect("COMMENT takes SHARE UPDATE EXCLUSIVE on the commented relation")
    if node.objtype in _RELATION_OBJECTS | {enums.ObjectType.OBJECT_INDEX}:
        effect.lock(_dotted(node.object), "SHARE UPDATE EXCLUSIVE")
    elif node.objtype == enums.ObjectType.OBJECT_COLUMN:
        effect.lock(_dotted(node.object[:-1]), "SHARE UPDATE EXCLUSIVE")
    else:
        effect.reason = "COMMENT: no table lock"
    return effect


def _alter_enum(node: Any, pg_major: int | None) -> _Effect:
    if node.oldVal:
        return _Effect("ALTER TYPE ... RENAME VALUE: no table lock")
    effect = _Effect(
        "ALTER TYPE ... ADD VALUE: no table lock; the new value cannot be used before the "
        "file commits"
    )
    if pg_major is not None and pg_major < 12:
        effect.no_transaction = True
        effect.reason += "; before PostgreSQL 12 it cannot run inside a transaction block"
    return effect


def _transaction_control(node: Any, pg_major: int | None) -> _Effect:
    return _Effect(
        "transaction control inside a migration file interferes with the runner's transaction"
    )


def _outside_transaction(node: Any, pg_major: int | None) -> _Effect:
    return _Effect(
        f"{type(node).__name__}: no table lock; it cannot run inside a transaction block",
        no_transaction=True,
    )


def _do_block(node: Any, pg_major: int | None) -> _Effect:
    return _Effect("DO block: its body is not analysed; its locks depend on what it runs")


_HANDLERS: Mapping[str, Callable[[Any, int | None], _Effect]] = MappingProxyType(
    {
        "CreateStmt": _create_table,
        "CreateTableAsStmt": _create_table_as,
        "IndexStmt": _create_index,
        "DropStmt": _drop,
        "AlterTableStmt": _alter_table,
        "RenameStmt": _rename,
        "AlterObjectSchemaStmt": _alter_object_schema,
        "CreatePolicyStmt": _policy,
        "AlterPolicyStmt": _policy,
        "TruncateStmt": _truncate,
        "ClusterStmt": _cluster,
        "VacuumStmt": _vacuum,
        "ReindexStmt": _reindex,
        "CreateTrigStmt": _create_trigger,
        "CreateStatsStmt": _create_statistics,
        "LockStmt": _lock_table,
        "RefreshMatViewStmt": _refresh_matview,
        "ViewStmt": _create_view,
        "CreateSeqStmt": _create_sequence,
        "InsertStmt": _data_change,
        "UpdateStmt": _data_change,
        "DeleteStmt": _data_change,
        "MergeStmt": _data_change,
        "SelectStmt": _select,
        "CommentStmt": _comment,
        "AlterEnumStmt": _alter_enum,
        "TransactionStmt": _transaction_control,
        "CreatedbStmt": _outside_transaction,
        "DropdbStmt": _outside_transaction,
        "AlterSystemStmt": _outside_transaction,
        "CreateTableSpaceStmt": _outside_transaction,
        "DropTableSpaceStmt": _outside_transaction,
        "DoStmt": _do_block,
    }
)


def pg_major_version(pg_version: str | None) -> int | None:
    """The major number of a version string such as "15" or "16.4"."""
    if pg_version is None:
        return None
    head = pg_version.strip().split(".")[0]
    if not head.isdigit():
        raise ConfigError(
            "pg_version", f"{pg_version!r} is not a PostgreSQL version such as 15 or 16.4"
        )
    return int(head)


def created_relations(stmt: Statement) -> tuple[str, ...]:
    """Relations (tables, indexes, views, sequences) that exist once `stmt` has run."""
    node: Any = stmt.node
    relation = {
        "CreateStmt": lambda: node.relation,
        "CreateTableAsStmt": lambda: node.into.rel,
        "ViewStmt": lambda: node.view,
        "CreateSeqStmt": lambda: node.sequence,
    }.get(stmt.kind)
    if relation is not None:
        return (_qualified(relation()),)
    if stmt.kind == "IndexStmt" and node.idxname:
        # An index lives in the schema of its table.
        schema = node.relation.schemaname
        return (f"{schema}.{node.idxname}" if schema else node.idxname,)
    return ()


def concurrent_index_target(sql: str) -> tuple[str | None, str] | None:
    """(schema or None, name) of the index a CREATE INDEX CONCURRENTLY statement builds."""
    try:
        statements = split_statements(sql)
    except MigrationFileError:
        return None
    if len(statements) != 1 or statements[0].kind != "IndexStmt":
        return None
    node: Any = statements[0].node
    if not node.concurrent or not node.idxname:
        return None
    return node.relation.schemaname or None, node.idxname


def classify(
    stmt: Statement, created_tables: AbstractSet[str], *, pg_version: str | None = None
) -> StatementAnalysis:
    """The locks `stmt` takes; `created_tables` holds relations created earlier in the file."""
    handler = _HANDLERS.get(stmt.kind)
    effect = (
        handler(stmt.node, pg_major_version(pg_version))
        if handler is not None
        else _Effect(f"{stmt.kind}: takes no table lock")
    )
    new_keys = {relation_key(name) for name in created_tables}
    locks: dict[str, TableLock] = {}
    for index, (name, mode) in enumerate(effect.locks):
        is_new = (effect.creates and index == 0) or relation_key(name) in new_keys
        previous = locks.get(name)
        is_new = is_new or (previous is not None and previous.new_table)
        if previous is None or LOCK_MODES.index(mode) > LOCK_MODES.index(previous.mode):
            locks[name] = TableLock(name, mode, is_new)
    lock_list = tuple(locks.values())
    primary = lock_list[0] if lock_list else None
    modes = [lock.mode for lock in lock_list]
    if effect.unnamed_lock is not None:
        modes.append(effect.unnamed_lock)
    strongest = max(modes, key=LOCK_MODES.index, default=None)
    blocking = any(
        LOCK_MODES.index(lock.mode) > _BLOCKING_ABOVE and not lock.new_table for lock in lock_list
    ) or (
        effect.unnamed_lock is not None and LOCK_MODES.index(effect.unnamed_lock) > _BLOCKING_ABOVE
    )
    new_table = primary is not None and primary.new_table
    rewrites = effect.rewrites
    return StatementAnalysis(
        text=stmt.text,
        line=stmt.line,
        kind=stmt.kind,
        table=primary.table if primary else None,
        lock_level=strongest,
        rewrites_table=rewrites,
        concurrently=effect.concurrently,
        new_table=new_table,
        blocking=blocking or (rewrites and not new_table),
        requires_no_transaction=effect.no_transaction,
        scans_table=effect.scans,
        changes_data=effect.changes_data,
        locks=lock_list,
        reason=effect.reason,
        end_line=stmt.end_line,
    )


# --------------------------------------------------------------------------------------------
# Our own rules


def _finding(
    rule: str, message: str, stmt: StatementAnalysis | None, line: int | None = None
) -> Finding:
    return Finding(
        rule=rule,
        severity=WEDSYNC_RULES[rule],
        message=message,
        line=stmt.line if stmt is not None else line,
        statement=stmt.text if stmt is not None else None,
        source="wedsync",
    )


def _excerpt(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _tenant_tables_without_rls(
    statements: tuple[Statement, ...], analyses: tuple[StatementAnalysis, ...]
) -> list[Finding]:
    enabled: set[str] = set()
    forced: set[str] = set()
    for stmt in statements:
        if stmt.kind == "AlterTableStmt":
            key = relation_key(_qualified(stmt.node.relation))
            for cmd in stmt.node.cmds:
                if cmd.subtype == enums.AlterTableType.AT_EnableRowSecurity:
                    enabled.add(key)
                elif cmd.subtype == enums.AlterTableType.AT_ForceRowSecurity:
                    forced.add(key)
    findings = []
    for stmt, analysis in zip(statements, analyses, strict=True):
        if stmt.kind != "CreateStmt":
            continue
        columns = {e.colname for e in stmt.node.tableElts or () if isinstance(e, ast.ColumnDef)}
        tenant_keys = [k for k in TENANT_KEYS if k in columns]
        name = _qualified(stmt.node.relation)
        key = relation_key(name)
        missing = [
            w for w, done in (("ENABLE", key in enabled), ("FORCE", key in forced)) if not done
        ]
        if tenant_keys and missing:
            findings.append(
                _finding(
                    "tenant-table-without-rls",
                    f"{name} carries the tenant key {tenant_keys[0]} but this file does not "
                    + " and ".join(f"{w} ROW LEVEL SECURITY" for w in missing)
                    + f" on it; add `ALTER TABLE {name} ENABLE ROW LEVEL SECURITY, "
                    "FORCE ROW LEVEL SECURITY;` and its policies",
                    analysis,
                )
            )
    return findings


# INSERT only adds rows nobody else can be waiting for; these lock rows others may be editing.
_ROW_CHANGING_KINDS = frozenset({"UpdateStmt", "DeleteStmt", "MergeStmt"})


def _own_findings(
    directives: Directives,
    statements: tuple[Statement, ...],
    analyses: tuple[StatementAnalysis, ...],
) -> list[Finding]:
    findings = list(directives.problems)
    if not statements:
        findings.append(
            Finding(
                "empty-migration",
                WEDSYNC_RULES["empty-migration"],
                "the file holds no statement; applying it records an empty migration, and "
                "filling it in afterwards is drift — write the SQL before applying",
                None,
                None,
                "wedsync",
            )
        )
    if directives.no_transaction and len(analyses) > 1:
        findings.append(
            _finding(
                "no-transaction-multiple-statements",
                f"`wedsync:no-transaction` files must hold exactly one statement, this one has "
                f"{len(analyses)}; move the others to their own migration files",
                analyses[1],
            )
        )
    for analysis in analyses:
        if analysis.requires_no_transaction and not directives.no_transaction:
            findings.append(
                _finding(
                    "concurrently-in-transaction",
                    f"`{_excerpt(analysis.text)}` cannot run inside a transaction block; put it "
                    "alone in a file that starts with `-- wedsync:no-transaction`",
                    analysis,
                )
            )
        if analysis.kind in _ROW_CHANGING_KINDS:
            existing = [lock.table for lock in analysis.locks if not lock.new_table]
            if existing:
                findings.append(
                    _finding(
                        "data-change-on-existing-table",
                        f"{analysis.kind.removesuffix('Stmt').upper()} on {existing[0]} keeps "
                        "every changed row locked until the migration commits; backfill large "
                        "tables in batches outside the migration",
                        analysis,
                    )
                )
    findings += _tenant_tables_without_rls(statements, analyses)
    return findings


def _blocking_findings(
    analyses: tuple[StatementAnalysis, ...], others: list[Finding]
) -> list[Finding]:
    """One warning per locked table for blocking statements no lock-related finding explains."""
    explained = {
        f.line
        for f in others
        if f.line is not None
        and (f.rule in SQUAWK_ERROR_RULES or f.rule == "concurrently-in-transaction")
    }
    by_target: dict[str, list[StatementAnalysis]] = {}
    for analysis in analyses:
        if analysis.blocking and not any(
            analysis.line <= line <= analysis.end_line for line in explained
        ):
            held = [
                f"{lock.table} ({lock.mode})"
                for lock in analysis.locks
                if not lock.new_table and LOCK_MODES.index(lock.mode) > _BLOCKING_ABOVE
            ] or [f"tables it does not name ({analysis.lock_level})"]
            by_target.setdefault(", ".join(held), []).append(analysis)
    findings = []
    for target, group in by_target.items():
        first = group[0]
        extra = len(group) - 1
        more = f" (and {extra} more statement{'s' * (extra > 1)} in this file)" if extra else ""
        findings.append(
            _finding(
                "blocking-lock-on-existing-table",
                f"blocks other sessions on {target}{more}: {first.reason}",
                first,
            )
        )
    return findings


# --------------------------------------------------------------------------------------------
# squawk findings


def _squawk_severity(violation: squawk.SquawkViolation) -> Severity:
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


def _squawk_findings(
    sql: str,
    analyses: tuple[StatementAnalysis, ...],
    *,
    transactional: bool,
    pg_version: str | None,
) -> list[Finding]:
    try:
        violations = squawk.run_squawk(
            # Only our own directives may silence a rule: squawk's comments are blanked out.
            mask_comments(sql),
            assume_in_transaction=transactional,
            exclude=EXCLUDED_SQUAWK_RULES,
            pg_version=pg_version,
        )
    except squawk.SquawkUnavailable as exc:
        return [_finding("squawk-unavailable", f"squawk lint skipped: {exc}", None)]
    except squawk.SquawkFailed as exc:
        return [_finding("squawk-failed", f"squawk lint skipped: {exc}", None)]
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
                severity=_squawk_severity(v),
                message=message,
                line=stmt.line if stmt is not None else v.line,
                statement=stmt.text if stmt is not None else None,
                source="squawk",
            )
        )
    return findings


def _deduplicate(findings: list[Finding]) -> list[Finding]:
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


# --------------------------------------------------------------------------------------------
# Whole files


def _acknowledge(findings: list[Finding], directives: Directives) -> list[Finding]:
    result = []
    for f in findings:
        reason = directives.allows.get(f.rule)
        if reason is not None and f.rule not in UNACKNOWLEDGEABLE_RULES:
            f = replace(f, acknowledged=True, acknowledgement=reason)
        result.append(f)
    return result


def _unknown_allows(
    findings: list[Finding], directives: Directives, *, squawk_ran: bool
) -> list[Finding]:
    """Allows that waive nothing: a typo, a stale line, or a rule that cannot be waived."""
    reported = {f.rule for f in findings}
    stale = []
    for rule, line in directives.allow_lines.items():
        if rule in UNACKNOWLEDGEABLE_RULES:
            hint = f"{rule} cannot be waived; the file cannot run as written"
        # Without squawk's report we cannot tell whether a squawk rule would have fired.
        elif rule in reported or (not squawk_ran and rule not in WEDSYNC_RULES):
            continue
        else:
            hint = f"no finding of {rule} in this file; remove the allow or check the rule name"
        stale.append(_finding("unknown-allow-rule", f"`wedsync:allow {rule}`: {hint}", None, line))
    return stale


def analyze_sql(
    sql: str,
    *,
    name: str = "<sql>",
    pg_version: str | None = None,
    run_squawk: bool = True,
    created_earlier: Iterable[str] = (),
) -> FileAnalysis:
    """Split, classify and lint one migration file's SQL.

    ``created_earlier`` names relations created by earlier files of the same run: locking
    them blocks nobody, since no other session can be using them yet.
    """
    pg_major_version(pg_version)  # refuse a malformed version before doing any work
    directives = parse_directives(sql)
    try:
        statements = split_statements(sql)
    except MigrationFileError as exc:
        raise MigrationFileError(f"{name}: {exc}") from exc
    created: set[str] = set(created_earlier)
    analyses = []
    for stmt in statements:
        analyses.append(classify(stmt, created, pg_version=pg_version))
        created.update(created_relations(stmt))
    analysis_tuple = tuple(analyses)

    findings = _own_findings(directives, statements, analysis_tuple)
    squawk_ran = False
    if run_squawk and statements:
        from_squawk = _squawk_findings(
            sql, analysis_tuple, transactional=not directives.no_transaction, pg_version=pg_version
        )
        squawk_ran = not any(f.rule in WEDSYNC_RULES for f in from_squawk)
        findings += from_squawk
    findings = _deduplicate(findings)
    findings += _blocking_findings(analysis_tuple, findings)
    findings += _unknown_allows(findings, directives, squawk_ran=squawk_ran)
    findings = _acknowledge(findings, directives)
    findings.sort(key=lambda f: (f.line or 0, _SEVERITY_ORDER[f.severity], f.rule))
    return FileAnalysis(
        name=name, directives=directives, statements=analysis_tuple, findings=tuple(findings)
    )


def analyze_file(
    path: Path, *, pg_version: str | None = None, run_squawk: bool = True
) -> FileAnalysis:
    """`analyze_sql` on a file read as UTF-8, named after the file."""
    try:
        sql = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise MigrationFileError(f"{path.name} is not valid UTF-8") from exc
    return analyze_sql(sql, name=path.name, pg_version=pg_version, run_squawk=run_squawk)
