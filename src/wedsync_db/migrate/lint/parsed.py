"""A migration file parsed once: its text, header directives and top-level statements.

Plan, lint and apply all read the same `ParsedFile`; nothing parses a file's SQL again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pglast.parser import ParseError, parse_sql, scan, split

from wedsync_db.errors import MigrationFileError
from wedsync_db.migrate.lint.directives import parse_directives
from wedsync_db.migrate.lint.records import Directives, Statement

# `NNNN_name.sql`: the only names a migration directory may hold.
FILE_PATTERN = re.compile(r"^(\d{4,})_([a-z0-9][a-z0-9_]*)\.sql$")


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


@dataclass(frozen=True)
class ParsedFile:
    """One file's SQL and statements; ``error`` says why it could not be split."""

    name: str
    sql: str
    statements: tuple[Statement, ...]
    error: MigrationFileError | None = None

    @cached_property
    def directives(self) -> Directives:
        """The `-- wedsync:` header (read even when the SQL cannot be split)."""
        return parse_directives(self.sql)

    @property
    def statements_or_raise(self) -> tuple[Statement, ...]:
        """The statements, or the parse error naming the file."""
        if self.error is not None:
            raise self.error
        return self.statements


def parse_file(sql: str, *, name: str = "<sql>") -> ParsedFile:
    """Read the directives and split the statements of one file's SQL."""
    try:
        statements = split_statements(sql)
    except MigrationFileError as exc:
        error = MigrationFileError(f"{name}: {exc}")
        error.__cause__ = exc.__cause__
        return ParsedFile(name, sql, (), error)
    return ParsedFile(name, sql, statements)


def decode(data: bytes, *, name: str) -> str:
    """A file's bytes as UTF-8; the error names the file and the first bad byte's offset."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MigrationFileError(
            f"{name} is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "save it as UTF-8"
        ) from exc


def concurrent_index_target(stmt: Statement) -> tuple[str | None, str] | None:
    """(schema or None, name) of the index a CREATE INDEX CONCURRENTLY statement builds."""
    if stmt.kind != "IndexStmt":
        return None
    node: Any = stmt.node
    if not node.concurrent or not node.idxname:
        return None
    return node.relation.schemaname or None, node.idxname
