"""Migration statement analysis: splitting, lock classification, directives and lint rules.

Pure apart from squawk, which runs as a subprocess (tests that need it skip when it is absent).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from wedsync_db.errors import ConfigError, MigrationFileError
from wedsync_db.migrate import lint as analysis
from wedsync_db.migrate import squawk
from wedsync_db.migrate.lint import (
    RULES,
    SQUAWK_ERROR_RULES,
    analyze_sql,
    classify,
    concurrent_index_target,
    lint_source,
    lint_sources,
    parse_directives,
    split_statements,
)

LINT_FIXTURES = Path(__file__).parent.parent / "fixtures" / "lint"
GOOD = sorted((LINT_FIXTURES / "good").glob("*.sql"))
BAD = sorted((LINT_FIXTURES / "bad").glob("*.sql"))

needs_squawk = pytest.mark.skipif(
    squawk.find_squawk() is None, reason="squawk binary not installed (pip install squawk-cli)"
)


def rules(sql: str, **kw: Any) -> set[str]:
    """Rules reported for ``sql``, our own only unless run_squawk=True is passed."""
    kw.setdefault("run_squawk", False)
    return {f.rule for f in analyze_sql(sql, **kw).findings}


def analyzed(sql: str) -> analysis.FileAnalysis:
    """``sql`` analysed without squawk."""
    return analyze_sql(sql, run_squawk=False)


# --------------------------------------------------------------------------------------------
# split_statements

FUNCTION_WITH_SEMICOLONS = """\
create function wedsync.touch() returns trigger language plpgsql as $fn$
begin
    new.updated_at := now();  -- ; in a comment
    raise notice 'a ; in a string and $$ in a body';
    return new;
end;
$fn$;
"""


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        pytest.param("", [], id="empty"),
        pytest.param("  \n-- only a comment\n/* and a block */\n", [], id="comments-only"),
        pytest.param(";;", [], id="empty-statements"),
        pytest.param(
            "create table a (id bigint);\n\ncreate index a_idx on a (id);",
            [
                ("create table a (id bigint)", 1, "CreateStmt"),
                ("create index a_idx on a (id)", 3, "IndexStmt"),
            ],
            id="two-statements",
        ),
        pytest.param(
            "-- header\n/* note */\nselect 1; -- trailing\n  select 2",
            [("select 1", 3, "SelectStmt"), ("select 2", 4, "SelectStmt")],
            id="comments-are-not-statements",
        ),
        pytest.param(
            FUNCTION_WITH_SEMICOLONS + "select 1;",
            [
                (FUNCTION_WITH_SEMICOLONS.rstrip().removesuffix(";"), 1, "CreateFunctionStmt"),
                ("select 1", 8, "SelectStmt"),
            ],
            id="dollar-quoted-function",
        ),
        pytest.param(
            "do $$\nbegin\n  perform 1; perform 2;\nend\n$$;\nselect 3;",
            [
                ("do $$\nbegin\n  perform 1; perform 2;\nend\n$$", 1, "DoStmt"),
                ("select 3", 6, "SelectStmt"),
            ],
            id="do-block",
        ),
        pytest.param(
            "-- Café des Mariés\nselect 'é;è';\nselect 2;",
            [("select 'é;è'", 2, "SelectStmt"), ("select 2", 3, "SelectStmt")],
            id="non-ascii",
        ),
    ],
)
def test_split_statements(sql: str, expected: list[tuple[str, int, str]]) -> None:
    assert [(s.text, s.line, s.kind) for s in split_statements(sql)] == expected


def test_split_statements_end_line_counts_lines_of_the_statement() -> None:
    (stmt,) = split_statements("\n\nalter table a\n  add column b text;\n")
    assert (stmt.line, stmt.end_line) == (3, 4)


@pytest.mark.parametrize(
    ("sql", "line", "fragment"),
    [
        pytest.param(
            "select 1;\n\ncreat table a ();", 3, 'syntax error at or near "creat"', id="syntax"
        ),
        pytest.param(
            "select 1;\ndo $$ begin\n", 2, "unterminated dollar-quoted string", id="dollar"
        ),
        pytest.param("select 1;\n\nselect 'abc", 3, "unterminated quoted string", id="quote"),
        pytest.param("select 1;\ncreate table a (\n\n", 2, "at end of input", id="end-of-input"),
        pytest.param("select 'é';\ncreate tabl x ();", 2, '"tabl"', id="non-ascii-before-error"),
    ],
)
def test_split_statements_syntax_error_names_the_line(sql: str, line: int, fragment: str) -> None:
    with pytest.raises(MigrationFileError, match=f"line {line}: ") as caught:
        split_statements(sql)
    assert fragment in str(caught.value)


def test_analyze_sql_syntax_error_names_the_file() -> None:
    with pytest.raises(MigrationFileError, match=r"^0007_bad\.sql: line 1: syntax error"):
        analyze_sql("selec 1;", name="0007_bad.sql", run_squawk=False)


def test_mask_comments_keeps_lines_and_strings() -> None:
    sql = "-- squawk-ignore ban-drop-column\nselect '-- not a comment' /* gone */;\n"
    masked = analysis.mask_comments(sql)
    assert len(masked) == len(sql)
    assert masked.count("\n") == sql.count("\n")
    assert "squawk-ignore" not in masked and "gone" not in masked
    assert "'-- not a comment'" in masked


# --------------------------------------------------------------------------------------------
# classify


def classified(
    sql: str, created: set[str] | frozenset[str] = frozenset(), **kw: Any
) -> analysis.StatementAnalysis:
    """The analysis of the last statement of ``sql``, earlier statements only creating relations."""
    statements = split_statements(sql)
    known = set(created)
    for stmt in statements[:-1]:
        known.update(analysis.created_relations(stmt))
    return classify(statements[-1], known, **kw)


AE, SRE, SHARE, SUE = "ACCESS EXCLUSIVE", "SHARE ROW EXCLUSIVE", "SHARE", "SHARE UPDATE EXCLUSIVE"

# (sql, table, lock_level, flags): R rewrites the table, B blocking, N new table,
# X requires no transaction. `g` is an existing table throughout.
CLASSIFY_CASES = [
    ("create table t (id bigint primary key)", "t", AE, "N"),
    ("create table s.t (id bigint, o uuid references orgs (id))", "s.t", AE, "BN"),
    ("create table t (id bigint); create index t_idx on t (id)", "t", SHARE, "N"),
    ("create index g_idx on g (email)", "g", SHARE, "B"),
    ("create index concurrently g_idx on g (email)", "g", SUE, "X"),
    ("create unique index concurrently g_idx on public.g (email)", "public.g", SUE, "X"),
    ("drop index g_idx", "g_idx", AE, "B"),
    ("drop index concurrently g_idx", "g_idx", SUE, "X"),
    ("create index g_idx on g (e); drop index g_idx", "g_idx", AE, "N"),
    ("alter table g add column note text", "g", AE, "B"),
    ("alter table g add column seated boolean not null default false", "g", AE, "B"),
    ("alter table g add column added_at timestamptz default now()", "g", AE, "B"),
    ("alter table g add column tags jsonb not null default '{}'::jsonb", "g", AE, "B"),
    ("alter table g add column r float8 default random()", "g", AE, "RB"),
    ("alter table g add column t timestamptz default clock_timestamp()", "g", AE, "RB"),
    ("alter table g add column token uuid default gen_random_uuid()", "g", AE, "RB"),
    ("alter table g add column n bigserial", "g", AE, "RB"),
    ("alter table g add column n bigint generated always as identity", "g", AE, "RB"),
    ("alter table g add column s int generated always as (a * 2) stored", "g", AE, "RB"),
    ("alter table g add column v int generated always as (a * 2) virtual", "g", AE, "B"),
    ("alter table g add column meal text not null", "g", AE, "B"),
    (
        "create table t (id bigint); alter table t add column r float8 default random()",
        "t",
        AE,
        "RN",
    ),
    ("alter table g alter column table_number type bigint", "g", AE, "RB"),
    ("alter table g alter column name type varchar(200)", "g", AE, "B"),
    ("alter table g alter column name type text", "g", AE, "B"),
    ("alter table g alter column code type text using code::text", "g", AE, "RB"),
    ("alter table g alter column email set not null", "g", AE, "B"),
    ("alter table g alter column email drop not null", "g", AE, "B"),
    ("alter table g alter column rsvp set default 'pending'", "g", AE, "B"),
    ("alter table g add constraint c check (party_size > 0)", "g", AE, "B"),
    ("alter table g add constraint c check (party_size > 0) not valid", "g", AE, "B"),
    ("alter table g add constraint fk foreign key (w) references w (id)", "g", SRE, "B"),
    ("alter table g add constraint fk foreign key (w) references w (id) not valid", "g", SRE, "B"),
    ("alter table g validate constraint c", "g", SUE, ""),
    ("alter table g add primary key (wedding_id, id)", "g", AE, "B"),
    ("alter table g add constraint u unique (wedding_id, email)", "g", AE, "B"),
    ("alter table g add constraint u unique using index g_idx", "g", AE, "B"),
    ("alter table g drop column legacy", "g", AE, "B"),
    ("alter table g drop constraint c", "g", AE, "B"),
    ("drop table g", "g", AE, "B"),
    ("create table t (id bigint); drop table t", "t", AE, "N"),
    ("alter table g rename column rsvp to rsvp_status", "g", AE, "B"),
    ("alter table g rename to wedding_guests", "g", AE, "B"),
    ("alter index g_idx rename to g_email_idx", "g_idx", SUE, ""),
    ("alter table g enable row level security", "g", AE, "B"),
    ("alter table g force row level security", "g", AE, "B"),
    ("create policy p on g for select using (true)", "g", AE, "B"),
    ("truncate g", "g", AE, "B"),
    ("cluster g using g_pkey", "g", AE, "RB"),
    ("vacuum full g", "g", AE, "RBX"),
    ("vacuum (analyze) g", "g", SUE, "X"),
    ("analyze g", "g", SUE, ""),
    ("reindex table g", "g", SHARE, "B"),
    ("reindex index g_idx", "g_idx", AE, "B"),
    ("reindex table concurrently g", "g", SUE, "X"),
    ("reindex schema concurrently public", None, SUE, "X"),
    ("create trigger t before update on g for each row execute function f()", "g", SRE, "B"),
    ("create or replace function f() returns int language sql as $$ select 1 $$", None, None, ""),
    ("create schema wedsync", None, None, ""),
    ("create role reporting nologin", None, None, ""),
    ("grant select on g to authenticated", None, None, ""),
    ("create extension if not exists pg_stat_statements", None, None, ""),
    ("comment on table g is 'people invited'", "g", SUE, ""),
    ("comment on column public.g.email is 'lower-case'", "public.g", SUE, ""),
    ("update g set rsvp = 'pending' where rsvp is null", "g", "ROW EXCLUSIVE", ""),
    ("delete from g where wedding_id is null", "g", "ROW EXCLUSIVE", ""),
    ("insert into tiers (name) values ('scale')", "tiers", "ROW EXCLUSIVE", ""),
    ("alter type rsvp_status add value 'maybe'", None, None, ""),
    ("create table p_2026 partition of bookings for values in (2026)", "p_2026", AE, "BN"),
    ("alter table bookings attach partition p_2026 for values in (2026)", "bookings", AE, "B"),
    ("alter table bookings detach partition p_2025 concurrently", "bookings", SUE, "X"),
    ("lock table g in share mode", "g", SHARE, "B"),
    (
        "create table g (id bigint); alter table public.g add column n bigserial",
        "public.g",
        AE,
        "RN",
    ),
    (
        "alter table g add column a text, alter column b set not null, validate constraint c",
        "g",
        AE,
        "B",
    ),
]


@pytest.mark.parametrize(
    ("sql", "table", "lock", "flags"), CLASSIFY_CASES, ids=[c[0] for c in CLASSIFY_CASES]
)
def test_classify(sql: str, table: str | None, lock: str | None, flags: str) -> None:
    result = classified(sql)
    assert (result.table, result.lock_level) == (table, lock)
    assert result.rewrites_table is ("R" in flags)
    assert result.blocking is ("B" in flags)
    assert result.new_table is ("N" in flags)
    assert result.requires_no_transaction is ("X" in flags)
    assert result.concurrently is ("concurrently" in sql)
    assert result.reason


def test_foreign_key_locks_both_tables() -> None:
    result = classified(
        "alter table guests add constraint fk foreign key (w) references weddings (id)"
    )
    assert {(lock.table, lock.mode) for lock in result.locks} == {
        ("guests", SRE),
        ("weddings", SRE),
    }
    assert result.scans_table


def test_not_valid_constraint_skips_the_scan_and_validate_scans_without_blocking() -> None:
    assert not classified("alter table g add constraint c check (x > 0) not valid").scans_table
    assert classified("alter table g add constraint c check (x > 0)").scans_table
    validate = classified("alter table g validate constraint c")
    assert validate.scans_table and not validate.blocking


def test_new_table_referencing_an_existing_one_blocks_only_the_existing_one() -> None:
    result = classified("create table notes (org uuid references organizations (id))")
    locks = {lock.table: (lock.mode, lock.new_table) for lock in result.locks}
    assert locks == {"notes": (AE, True), "organizations": (SRE, False)}
    assert result.blocking and result.new_table


def test_data_changes_are_flagged() -> None:
    assert classified("update guests set rsvp = 'no'").changes_data
    assert classified("truncate guests").changes_data
    assert not classified("alter table guests add column a text").changes_data


def test_set_not_null_scans_and_add_nullable_column_does_not() -> None:
    assert classified("alter table g alter column e set not null").scans_table
    assert not classified("alter table g add column e text").scans_table


def test_add_enum_value_runs_in_a_transaction() -> None:
    assert not classified("alter type rsvp_status add value 'maybe'").requires_no_transaction


def test_unreadable_pg_version_is_refused() -> None:
    with pytest.raises(ConfigError, match="pg_version"):
        analyze_sql("select 1", pg_version="fifteen", run_squawk=False)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("create index concurrently g_idx on public.guests (email)", ("public", "g_idx")),
        ("create index concurrently if not exists g_idx on guests (email)", (None, "g_idx")),
        ("create index g_idx on guests (email)", None),
        ("create index concurrently on guests (email)", None),
        ("select 1", None),
    ],
)
def test_concurrent_index_target(sql: str, expected: tuple[str | None, str] | None) -> None:
    (stmt,) = split_statements(sql)
    assert concurrent_index_target(stmt) == expected


# --------------------------------------------------------------------------------------------
# Directives


# directives that neither open a transaction nor allow a rule, and the problems they report
GRANTING_NOTHING: dict[str, tuple[str, list[tuple[str, int]]]] = {
    "empty-reason": (
        "-- wedsync:allow ban-drop-column:   \nselect 1;",
        [("allow-without-reason", 1)],
    ),
    "no-reason": ("-- wedsync:allow ban-drop-column\nselect 1;", [("allow-without-reason", 1)]),
    "allow-no-rule": ("-- wedsync:allow\nselect 1;", [("invalid-directive", 1)]),
    "typo": ("-- wedsync:no-transactions\nselect 1;", [("invalid-directive", 1)]),
    "junk": ("-- wedsync:no-transaction please\nselect 1;", [("invalid-directive", 1)]),
    "misplaced": ("select 1;\n-- wedsync:no-transaction\nselect 2;", [("invalid-directive", 2)]),
    "foreign-syntax-ignored": ("-- squawk-ignore ban-drop-column\nselect 1;", []),
}


@pytest.mark.parametrize(
    ("sql", "no_transaction", "allows", "problems"),
    [
        pytest.param("", False, {}, [], id="empty"),
        pytest.param("create index concurrently i on t (a);", False, {}, [], id="no-header"),
        pytest.param(
            "-- wedsync:no-transaction\ncreate index concurrently i on t (a);",
            True,
            {},
            [],
            id="no-tx",
        ),
        pytest.param(
            "\n-- Why this file exists.\n\n--wedsync:no-transaction\nselect 1;",
            True,
            {},
            [],
            id="no-tx-later",
        ),
        pytest.param(
            "-- wedsync:allow ban-drop-column: nobody reads it since v2\n"
            "alter table t drop column c;",
            False,
            {"ban-drop-column": "nobody reads it since v2"},
            [],
            id="allow",
        ),
    ]
    + [
        pytest.param(sql, False, {}, problems, id=name)
        for name, (sql, problems) in GRANTING_NOTHING.items()
    ],
)
def test_parse_directives(
    sql: str, no_transaction: bool, allows: dict[str, str], problems: list[tuple[str, int]]
) -> None:
    directives = parse_directives(sql)
    assert directives.no_transaction is no_transaction
    assert dict(directives.allows) == allows
    assert [(p.rule, p.line) for p in directives.problems] == problems


# --------------------------------------------------------------------------------------------
# Our own rules (squawk off: these must hold without it)


def test_no_transaction_file_must_hold_one_statement() -> None:
    sql = (
        "-- wedsync:no-transaction\n"
        "create index concurrently a on t (x);\n"
        "create index concurrently b on t (y);"
    )
    (finding,) = [f for f in analyze_sql(sql, run_squawk=False).findings if f.source == "wedsync"]
    assert (finding.rule, finding.severity, finding.line) == (
        "no-transaction-multiple-statements",
        "error",
        3,
    )


@pytest.mark.parametrize(
    "statement",
    [
        "create index concurrently i on t (a)",
        "drop index concurrently i",
        "reindex index concurrently i",
        "vacuum t",
        "alter table p detach partition c concurrently",
    ],
)
def test_non_transactional_statement_in_a_transactional_file(statement: str) -> None:
    assert "concurrently-in-transaction" in rules(statement)
    assert "concurrently-in-transaction" not in rules(f"-- wedsync:no-transaction\n{statement}")


@pytest.mark.parametrize(
    ("sql", "missing"),
    [
        ("create table n (organization_id uuid, id uuid)", "ENABLE ROW LEVEL SECURITY and FORCE"),
        (
            "create table n (wedding_id uuid); alter table n enable row level security;",
            "FORCE ROW LEVEL",
        ),
        (
            "create table n (wedding_id uuid); alter table n force row level security;",
            "ENABLE ROW LEVEL",
        ),
    ],
)
def test_tenant_table_without_rls(sql: str, missing: str) -> None:
    (finding,) = [
        f
        for f in analyze_sql(sql, run_squawk=False).findings
        if f.rule == "tenant-table-without-rls"
    ]
    assert finding.severity == "error" and finding.line == 1
    assert missing in finding.message


@pytest.mark.parametrize(
    "sql",
    [
        "create table public.n (organization_id uuid);"
        "alter table n enable row level security, force row level security;",
        "create table n (wedding_id uuid);"
        "alter table n enable row level security;"
        "alter table public.n force row level security;",
        "create table lookup_tiers (name text primary key)",
    ],
)
def test_tenant_table_with_rls_or_without_tenant_key(sql: str) -> None:
    assert "tenant-table-without-rls" not in rules(sql)


def test_blocking_lock_warning_only_for_existing_tables() -> None:
    (finding,) = analyze_sql("alter table guests add column note text", run_squawk=False).findings
    assert (finding.rule, finding.severity) == ("blocking-lock-on-existing-table", "warning")
    assert "guests (ACCESS EXCLUSIVE)" in finding.message
    assert not analyze_sql(
        "create table t (a int); alter table t add column b text;", run_squawk=False
    ).findings


def test_blocking_lock_warning_is_one_per_table() -> None:
    sql = (
        "alter table g enable row level security;\ncreate policy p on g using (true);\ntruncate h;"
    )
    findings = analyzed(sql).findings
    assert [(f.rule, f.line) for f in findings] == [
        ("blocking-lock-on-existing-table", 1),
        ("blocking-lock-on-existing-table", 3),
    ]
    assert "(and 1 more statement in this file)" in findings[0].message


def test_data_change_on_existing_table() -> None:
    assert "data-change-on-existing-table" in rules(
        "update guests set rsvp = 'no' where rsvp is null"
    )
    assert "data-change-on-existing-table" not in rules("insert into tiers (name) values ('scale')")
    assert "data-change-on-existing-table" not in rules(
        "create table t (a int); update t set a = 1;"
    )


def test_unknown_allow_rule() -> None:
    sql = "-- wedsync:allow tenant-table-without-rls: not a tenant table\ncreate table t (a int);"
    (finding,) = analyze_sql(sql, run_squawk=False).findings
    assert (finding.rule, finding.severity, finding.line) == ("unknown-allow-rule", "warning", 1)
    # Without squawk's report, an allow of a squawk rule cannot be judged stale.
    assert not analyze_sql(
        "-- wedsync:allow ban-drop-column: ok\nselect 1;", run_squawk=False
    ).findings


def test_an_allow_needed_on_an_upgrade_is_not_unknown_in_a_fresh_run() -> None:
    # a fresh database applies the file that creates `organizations` in the same run: the
    # foreign key then blocks nobody, yet on an upgrade it does, and the allow is needed there
    sql = (
        "-- wedsync:allow blocking-lock-on-existing-table: brief\n"
        "create table notes (id int, author uuid references organizations (id));"
    )
    fresh = analyze_sql(sql, run_squawk=False, created_earlier={"organizations"})
    assert {f.rule for f in fresh.findings} == set()
    upgrade = analyze_sql(sql, run_squawk=False)
    assert [(f.rule, f.acknowledged) for f in upgrade.findings] == [
        ("blocking-lock-on-existing-table", True)
    ]
    # an allow no run needs is still reported
    stale = analyze_sql(
        "-- wedsync:allow blocking-lock-on-existing-table: brief\ncreate table n (a int);",
        run_squawk=False,
        created_earlier={"organizations"},
    )
    assert {f.rule for f in stale.findings} == {"unknown-allow-rule"}


# --------------------------------------------------------------------------------------------
# Acknowledgement


def test_acknowledged_finding_keeps_its_reason_and_stops_refusing() -> None:
    sql = (
        "-- wedsync:allow tenant-table-without-rls: an ops table, never exposed\n"
        "create table ops.log (organization_id uuid);"
    )
    result = analyze_sql(sql, run_squawk=False)
    (finding,) = result.findings
    assert finding.acknowledged and finding.acknowledgement == "an ops table, never exposed"
    assert result.unacknowledged_errors == ()


def test_allow_without_reason_does_not_acknowledge() -> None:
    sql = "-- wedsync:allow tenant-table-without-rls\ncreate table log (organization_id uuid);"
    result = analyze_sql(sql, run_squawk=False)
    assert {f.rule for f in result.unacknowledged_errors} == {
        "allow-without-reason",
        "tenant-table-without-rls",
    }


def test_a_file_that_cannot_run_cannot_be_waived() -> None:
    sql = (
        "-- wedsync:allow concurrently-in-transaction: trust me\n"
        "create index concurrently i on t (a);"
    )
    result = analyze_sql(sql, run_squawk=False)
    assert [f.rule for f in result.unacknowledged_errors] == ["concurrently-in-transaction"]
    assert "unknown-allow-rule" in {f.rule for f in result.findings}


# --------------------------------------------------------------------------------------------
# squawk


def test_parse_report_makes_lines_one_based() -> None:
    output = json.dumps(
        [
            {
                "file": "stdin",
                "line": 2,
                "column": 14,
                "level": "Warning",
                "message": "Dropping a column may break existing clients.",
                "help": None,
                "rule_name": "ban-drop-column",
                "column_end": 27,
                "line_end": 3,
            }
        ]
    )
    (v,) = squawk.parse_report(output)
    assert (v.rule, v.level, v.line, v.end_line, v.column, v.help) == (
        "ban-drop-column",
        "Warning",
        3,
        4,
        15,
        None,
    )


@pytest.mark.parametrize("output", ["not json", '{"a": 1}', '[{"line": 1}]'])
def test_parse_report_rejects_garbage(output: str) -> None:
    with pytest.raises(squawk.SquawkFailed):
        squawk.parse_report(output)


def test_missing_squawk_is_an_info_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(squawk, "find_squawk", lambda: None)
    result = analyze_sql("alter table guests drop column legacy;")
    (finding,) = [f for f in result.findings if f.rule == "squawk-unavailable"]
    assert finding.severity == "info" and "pip install squawk-cli" in finding.message
    assert "ban-drop-column" not in {f.rule for f in result.findings}


def test_failing_squawk_is_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(sql: str, **kw: Any) -> tuple[squawk.SquawkViolation, ...]:
        raise squawk.SquawkFailed("squawk exited with status 101: panicked")

    monkeypatch.setattr(squawk, "run_squawk", broken)
    (finding,) = [f for f in analyze_sql("select 1").findings if f.source == "wedsync"]
    assert (finding.rule, finding.severity) == ("squawk-failed", "warning")


@needs_squawk
def test_squawk_accepts_every_excluded_rule_name() -> None:
    # squawk refuses unknown names in --exclude; a renamed rule would disable the whole lint.
    assert (
        squawk.run_squawk(
            "select 1;", assume_in_transaction=True, exclude=analysis.EXCLUDED_SQUAWK_RULES
        )
        == ()
    )


@needs_squawk
def test_squawk_findings_point_at_their_statement() -> None:
    sql = "-- header\nalter table g add column a text;\n\nalter table g\n  drop column legacy;\n"
    (finding,) = [f for f in analyze_sql(sql).findings if f.rule == "ban-drop-column"]
    assert (finding.source, finding.severity, finding.line) == ("squawk", "error", 4)
    assert finding.statement == "alter table g\n  drop column legacy"


@needs_squawk
def test_excluded_squawk_rules_do_not_appear() -> None:
    found = rules("create table t (id int primary key, name varchar(20));", run_squawk=True)
    assert not found & set(analysis.EXCLUDED_SQUAWK_RULES)


@needs_squawk
def test_squawk_knows_tables_created_in_the_same_file() -> None:
    assert "require-concurrent-index-creation" not in rules(
        "create table t (id bigint); create index t_idx on t (id);", run_squawk=True
    )


@needs_squawk
def test_overlapping_squawk_finding_is_deduplicated() -> None:
    found = [f.rule for f in analyze_sql("create index concurrently i on guests (email);").findings]
    assert found == ["concurrently-in-transaction"]


@needs_squawk
def test_squawk_ignore_comments_do_not_silence_findings() -> None:
    found = rules(
        "-- squawk-ignore ban-drop-column\nalter table guests drop column legacy;", run_squawk=True
    )
    assert "ban-drop-column" in found


@needs_squawk
def test_acknowledging_a_squawk_finding() -> None:
    sql = (
        "-- wedsync:allow ban-drop-column: unused since the client_notes move\n"
        "alter table clients drop column legacy;"
    )
    result = analyze_sql(sql)
    (finding,) = [f for f in result.findings if f.rule == "ban-drop-column"]
    assert finding.acknowledged and finding.acknowledgement == "unused since the client_notes move"
    assert result.unacknowledged_errors == ()


# --------------------------------------------------------------------------------------------
# Whole files


def test_file_analysis_summary_and_json() -> None:
    sql = (
        "create table t (id bigint);\ncreate index t_i on t (id);\nalter table g add column a text"
    )
    result = analyzed(sql)
    assert result.transactional
    assert result.blocking
    assert result.strongest_lock == "ACCESS EXCLUSIVE"
    data = json.loads(json.dumps(result.to_dict()))
    assert data["strongest_lock"] == "ACCESS EXCLUSIVE"
    assert [s["kind"] for s in data["statements"]] == ["CreateStmt", "IndexStmt", "AlterTableStmt"]
    assert data["statements"][1]["locks"] == [{"table": "t", "mode": "SHARE", "new_table": True}]


def test_strongest_lock_ignores_new_tables() -> None:
    result = analyzed("create table t (id bigint);\ncreate index concurrently i on guests (e);")
    assert result.strongest_lock == SUE
    assert not result.blocking
    # A schema-wide statement locks tables it does not name, which all existed before.
    assert analyzed("reindex schema public").strongest_lock == SHARE


def test_no_transaction_file_is_not_transactional() -> None:
    assert not analyzed("-- wedsync:no-transaction\nvacuum guests;").transactional


def test_lint_source_names_the_file() -> None:
    data = b"alter table guests add column note text;\n"
    result = lint_source(data, name="db/0042_guests_note.sql", run_squawk=False)
    assert result.name == "db/0042_guests_note.sql"
    assert result.statements[0].table == "guests"
    assert [f.rule for f in result.findings] == ["blocking-lock-on-existing-table"]


def test_lint_source_reports_a_file_that_is_not_utf8() -> None:
    result = lint_source(b"select 1;\n-- caf\xe9\n", name="db/0001_x.sql", run_squawk=False)
    (finding,) = result.findings
    assert (finding.rule, finding.severity) == ("not-utf8", "error")
    assert "db/0001_x.sql is not valid UTF-8" in finding.message
    assert "byte 0xe9 at offset 16" in finding.message and finding.line == 2
    assert result.unacknowledged_errors == (finding,)


def test_lint_source_reports_a_syntax_error_as_a_finding() -> None:
    result = lint_source(b"select 1;\n\ncreat table a ();", name="0002_x.sql")
    (finding,) = result.findings
    assert (finding.rule, finding.line) == ("unparseable-sql", 3)
    assert finding.message.startswith("0002_x.sql: line 3: syntax error")


def test_lint_source_warns_about_a_name_apply_refuses() -> None:
    result = lint_source(b"select 1;", name="db/bad_name.sql", run_squawk=False)
    assert [(f.rule, f.severity) for f in result.findings] == [("migration-file-name", "warning")]
    assert "bad_name.sql is not named NNNN_name.sql" in result.findings[0].message


def test_lint_sources_reports_a_version_used_twice_across_directories() -> None:
    results = lint_sources(
        [
            ("team_a/0042_guests_note.sql", b"select 1;"),
            ("team_b/0042_vendor_note.sql", b"select 2;"),
            ("team_b/0043_next.sql", b"select 3;"),
        ],
        run_squawk=False,
    )
    assert [[f.rule for f in r.findings] for r in results] == [[], ["duplicate-version"], []]
    (finding,) = results[1].findings
    assert finding.severity == "error" and results[1].unacknowledged_errors == (finding,)
    assert finding.message.startswith(
        "version 0042 is used twice: team_a/0042_guests_note.sql and team_b/0042_vendor_note.sql"
    )


# --------------------------------------------------------------------------------------------
# Corpus: each registered rule with a corpus case has `bad/<rule>.sql`, which trips it; the
# squawk rules' cases run only where squawk is installed. Good files pass.

OUR_CASES = sorted(name for name, rule in RULES.items() if rule.corpus)


def test_every_registered_rule_has_its_corpus_case() -> None:
    assert {
        name for name in OUR_CASES if not (LINT_FIXTURES / "bad" / f"{name}.sql").exists()
    } == set()
    unknown = {p.stem for p in BAD} - set(RULES) - SQUAWK_ERROR_RULES
    assert unknown == set(), "corpus files must be named after a registered or squawk rule"
    assert len(GOOD) >= 4


def _corpus_result(path: Path, *, run_squawk: bool) -> analysis.FileAnalysis:
    # named like a migration file, so only the rule under test fires
    return lint_source(path.read_bytes(), name="0001_corpus_case.sql", run_squawk=run_squawk)


@pytest.mark.parametrize("name", OUR_CASES)
def test_our_rules_trip_on_their_corpus_case(name: str) -> None:
    rule = RULES[name]
    result = _corpus_result(LINT_FIXTURES / "bad" / f"{name}.sql", run_squawk=False)
    tripped = result.unacknowledged_errors if rule.severity == "error" else result.findings
    assert name in {f.rule for f in tripped}, [f.rule for f in result.findings]


@pytest.mark.parametrize("path", GOOD, ids=[p.name for p in GOOD])
def test_good_migrations_pass_our_rules(path: Path) -> None:
    result = _corpus_result(path, run_squawk=False)
    assert result.unacknowledged_errors == (), [f.message for f in result.unacknowledged_errors]


@needs_squawk
@pytest.mark.parametrize("path", GOOD, ids=[p.name for p in GOOD])
def test_good_migrations_pass(path: Path) -> None:
    result = _corpus_result(path, run_squawk=True)
    assert result.unacknowledged_errors == (), [f.message for f in result.unacknowledged_errors]


SQUAWK_CASES = sorted(p for p in BAD if p.stem in SQUAWK_ERROR_RULES)


@needs_squawk
@pytest.mark.parametrize("path", SQUAWK_CASES, ids=[p.name for p in SQUAWK_CASES])
def test_squawk_rules_trip_on_their_corpus_case(path: Path) -> None:
    result = _corpus_result(path, run_squawk=True)
    assert path.stem in {f.rule for f in result.unacknowledged_errors}, [
        f.rule for f in result.findings
    ]


def test_our_corpus_runs_without_squawk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(squawk, "find_squawk", lambda: None)
    result = _corpus_result(LINT_FIXTURES / "bad" / "tenant-table-without-rls.sql", run_squawk=True)
    assert {f.rule for f in result.findings} == {"tenant-table-without-rls", "squawk-unavailable"}
