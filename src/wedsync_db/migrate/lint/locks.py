"""Lock classification: the table locks each statement takes and whether others feel them.

Lock modes follow the PostgreSQL documentation: "Explicit Locking", table 13.2 "Conflicting
Lock Modes" (https://www.postgresql.org/docs/current/explicit-locking.html#LOCKING-TABLES),
and the lock notes on each command's reference page (ALTER TABLE, CREATE INDEX, REINDEX...).
Behaviour is that of PostgreSQL 15 and later, the oldest server we support.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pglast import ast, enums

from wedsync_db.migrate.lint.records import (
    BLOCKING_ABOVE,
    LOCK_MODES,
    LockMode,
    Statement,
    StatementAnalysis,
    TableLock,
)

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


def _dotted(names: Any) -> str:
    return ".".join(n.sval for n in names)


def qualified(rangevar: Any) -> str:
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
        name = target if isinstance(target, str) else qualified(target)
        self.locks.append((name, mode))


def _foreign_key_targets(elements: Any) -> list[Any]:
    targets = []
    for element in elements or ():
        constraints = element.constraints if isinstance(element, ast.ColumnDef) else (element,)
        for con in constraints or ():
            if isinstance(con, ast.Constraint) and con.contype == enums.ConstrType.CONSTR_FOREIGN:
                targets.append(con.pktable)
    return targets


def _create_table(node: Any) -> _Effect:
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


def _create_table_as(node: Any) -> _Effect:
    effect = _Effect(
        f"{node.objtype.name.removeprefix('OBJECT_')} AS: creates a new relation", creates=True
    )
    effect.lock(node.into.rel, "ACCESS EXCLUSIVE")
    return effect


def _create_index(node: Any) -> _Effect:
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


def _drop(node: Any) -> _Effect:
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


# subcommands whose lock and effect do not depend on their arguments: (lock, reason, scans)
_FIXED_SUBCOMMANDS: dict[Any, tuple[LockMode, str, bool]] = {
    enums.AlterTableType.AT_AddIndexConstraint: (
        "ACCESS EXCLUSIVE",
        "ADD CONSTRAINT USING INDEX takes ACCESS EXCLUSIVE briefly",
        False,
    ),
    enums.AlterTableType.AT_ValidateConstraint: (
        "SHARE UPDATE EXCLUSIVE",
        "VALIDATE CONSTRAINT takes SHARE UPDATE EXCLUSIVE: reads and writes continue during "
        "the scan (a foreign key also takes ROW SHARE on the referenced table)",
        True,
    ),
    enums.AlterTableType.AT_SetNotNull: (
        "ACCESS EXCLUSIVE",
        "SET NOT NULL takes ACCESS EXCLUSIVE and scans the whole table, unless a validated "
        "CHECK (column IS NOT NULL) already proves it",
        True,
    ),
    enums.AlterTableType.AT_DropNotNull: (
        "ACCESS EXCLUSIVE",
        "DROP NOT NULL takes ACCESS EXCLUSIVE briefly",
        False,
    ),
    enums.AlterTableType.AT_ColumnDefault: (
        "ACCESS EXCLUSIVE",
        "SET/DROP DEFAULT takes ACCESS EXCLUSIVE briefly; existing rows are not touched",
        False,
    ),
    enums.AlterTableType.AT_DropColumn: (
        "ACCESS EXCLUSIVE",
        "DROP COLUMN takes ACCESS EXCLUSIVE briefly; the column is hidden, not rewritten",
        False,
    ),
}


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
    if kind == at.AT_AlterColumnType:
        return "ACCESS EXCLUSIVE", _alter_column_type(cmd)
    if kind in _FIXED_SUBCOMMANDS:
        lock, reason, scans = _FIXED_SUBCOMMANDS[kind]
        return lock, _Effect(reason, scans=scans)
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


def _alter_table(node: Any) -> _Effect:
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
    effect.locks.insert(0, (qualified(node.relation), max(modes, key=LOCK_MODES.index)))
    effect.reason = "; ".join(reasons)
    return effect


def _rename(node: Any) -> _Effect:
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


def _alter_object_schema(node: Any) -> _Effect:
    if node.relation is None:
        return _Effect("SET SCHEMA: no table lock")
    effect = _Effect("SET SCHEMA takes ACCESS EXCLUSIVE briefly")
    effect.lock(node.relation, "ACCESS EXCLUSIVE")
    return effect


def _policy(node: Any) -> _Effect:
    verb = "CREATE" if isinstance(node, ast.CreatePolicyStmt) else "ALTER"
    effect = _Effect(f"{verb} POLICY takes ACCESS EXCLUSIVE briefly")
    effect.lock(node.table, "ACCESS EXCLUSIVE")
    return effect


def _truncate(node: Any) -> _Effect:
    effect = _Effect("TRUNCATE takes ACCESS EXCLUSIVE and removes every row", changes_data=True)
    for relation in node.relations:
        effect.lock(relation, "ACCESS EXCLUSIVE")
    return effect


def _cluster(node: Any) -> _Effect:
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


def _vacuum(node: Any) -> _Effect:
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


def _reindex(node: Any) -> _Effect:
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


def _create_trigger(node: Any) -> _Effect:
    effect = _Effect("CREATE TRIGGER takes SHARE ROW EXCLUSIVE: reads continue, writes wait")
    effect.lock(node.relation, "SHARE ROW EXCLUSIVE")
    return effect


def _create_statistics(node: Any) -> _Effect:
    effect = _Effect("CREATE STATISTICS takes SHARE UPDATE EXCLUSIVE")
    for relation in node.relations or ():
        if isinstance(relation, ast.RangeVar):
            effect.lock(relation, "SHARE UPDATE EXCLUSIVE")
    return effect


_LOCK_STMT_MODES: Mapping[int, LockMode] = MappingProxyType(dict(enumerate(LOCK_MODES, start=1)))


def _lock_table(node: Any) -> _Effect:
    mode = _LOCK_STMT_MODES.get(int(node.mode), "ACCESS EXCLUSIVE")
    effect = _Effect(f"LOCK TABLE takes {mode} explicitly")
    for relation in node.relations:
        effect.lock(relation, mode)
    return effect


def _refresh_matview(node: Any) -> _Effect:
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


def _create_view(node: Any) -> _Effect:
    if node.replace:
        effect = _Effect("CREATE OR REPLACE VIEW takes ACCESS EXCLUSIVE on an existing view")
    else:
        effect = _Effect("CREATE VIEW creates a new relation", creates=True)
    effect.lock(node.view, "ACCESS EXCLUSIVE")
    return effect


def _create_sequence(node: Any) -> _Effect:
    effect = _Effect("CREATE SEQUENCE creates a new relation", creates=True)
    effect.lock(node.sequence, "ACCESS EXCLUSIVE")
    return effect


def _data_change(node: Any) -> _Effect:
    verb = type(node).__name__.removesuffix("Stmt").upper()
    effect = _Effect(
        f"{verb} takes ROW EXCLUSIVE; changed rows stay locked until the file commits",
        changes_data=True,
    )
    effect.lock(node.relation, "ROW EXCLUSIVE")
    return effect


def _select(node: Any) -> _Effect:
    effect = _Effect("SELECT takes ACCESS SHARE on what it reads")
    seen: set[str] = set()
    for relation in _walk(node.fromClause):
        if isinstance(relation, ast.RangeVar) and qualified(relation) not in seen:
            seen.add(qualified(relation))
            effect.lock(relation, "ACCESS SHARE")
    return effect


def _comment(node: Any) -> _Effect:
    effect = _Effect("COMMENT takes SHARE UPDATE EXCLUSIVE on the commented relation")
    if node.objtype in _RELATION_OBJECTS | {enums.ObjectType.OBJECT_INDEX}:
        effect.lock(_dotted(node.object), "SHARE UPDATE EXCLUSIVE")
    elif node.objtype == enums.ObjectType.OBJECT_COLUMN:
        effect.lock(_dotted(node.object[:-1]), "SHARE UPDATE EXCLUSIVE")
    else:
        effect.reason = "COMMENT: no table lock"
    return effect


def _alter_enum(node: Any) -> _Effect:
    if node.oldVal:
        return _Effect("ALTER TYPE ... RENAME VALUE: no table lock")
    return _Effect(
        "ALTER TYPE ... ADD VALUE: no table lock; the new value cannot be used before the "
        "file commits"
    )


def _transaction_control(node: Any) -> _Effect:
    return _Effect(
        "transaction control inside a migration file interferes with the runner's transaction"
    )


def _outside_transaction(node: Any) -> _Effect:
    return _Effect(
        f"{type(node).__name__}: no table lock; it cannot run inside a transaction block",
        no_transaction=True,
    )


def _do_block(node: Any) -> _Effect:
    return _Effect("DO block: its body is not analysed; its locks depend on what it runs")


_HANDLERS: Mapping[str, Callable[[Any], _Effect]] = MappingProxyType(
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
        return (qualified(relation()),)
    if stmt.kind == "IndexStmt" and node.idxname:
        # An index lives in the schema of its table.
        schema = node.relation.schemaname
        return (f"{schema}.{node.idxname}" if schema else node.idxname,)
    return ()


def classify(stmt: Statement, created_tables: AbstractSet[str] = frozenset()) -> StatementAnalysis:
    """The locks `stmt` takes; `created_tables` holds relations created earlier in the file."""
    handler = _HANDLERS.get(stmt.kind)
    effect = (
        handler(stmt.node) if handler is not None else _Effect(f"{stmt.kind}: takes no table lock")
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
        LOCK_MODES.index(lock.mode) > BLOCKING_ABOVE and not lock.new_table for lock in lock_list
    ) or (
        effect.unnamed_lock is not None and LOCK_MODES.index(effect.unnamed_lock) > BLOCKING_ABOVE
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
