"""Static analysis of migration SQL: a file is parsed once (`parsed`), its header read
(`directives`), each statement's table locks classified (`locks`), and the registered rules
(`registry`, `rules`) plus squawk (`squawk_rules`) lint it (`engine`)."""

from wedsync_db.migrate.lint.directives import parse_directives
from wedsync_db.migrate.lint.engine import (
    analyze_parsed,
    analyze_sql,
    check_pg_version,
    lint_source,
    lint_sources,
)
from wedsync_db.migrate.lint.locks import classify, created_relations
from wedsync_db.migrate.lint.parsed import (
    FILE_PATTERN,
    ParsedFile,
    concurrent_index_target,
    decode,
    mask_comments,
    parse_file,
    split_statements,
)
from wedsync_db.migrate.lint.records import (
    LOCK_MODES,
    Directives,
    FileAnalysis,
    Finding,
    LockMode,
    Severity,
    Statement,
    StatementAnalysis,
    TableLock,
)
from wedsync_db.migrate.lint.registry import RULES, Rule
from wedsync_db.migrate.lint.squawk_rules import EXCLUDED_SQUAWK_RULES, SQUAWK_ERROR_RULES

__all__ = [
    "EXCLUDED_SQUAWK_RULES",
    "FILE_PATTERN",
    "LOCK_MODES",
    "RULES",
    "SQUAWK_ERROR_RULES",
    "Directives",
    "FileAnalysis",
    "Finding",
    "LockMode",
    "ParsedFile",
    "Rule",
    "Severity",
    "Statement",
    "StatementAnalysis",
    "TableLock",
    "analyze_parsed",
    "analyze_sql",
    "check_pg_version",
    "classify",
    "concurrent_index_target",
    "created_relations",
    "decode",
    "lint_source",
    "lint_sources",
    "mask_comments",
    "parse_directives",
    "parse_file",
    "split_statements",
]
