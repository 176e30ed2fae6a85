"""`inspect …` reports as a CI log shows them: piped, 80 columns; --json objects throughout;
the tool's own statements out of `inspect queries` by default."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from conftest import Server, create_database, drop_database
from fixtures.environment import isolate_settings, tracks_statements
from fixtures.migration_support import wedsync_db
from wedsync_db.cli import common
from wedsync_db.cli.main import app

NARROW = {"COLUMNS": "80"}
REPORTS = (
    "connections",
    "queries",
    "tables",
    "indexes",
    "locks",
    "vacuum",
    "security",
    "recommendations",
    "backups",
)


@pytest.fixture(scope="module")
def seeded(
    pg_server: Server, template_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """A database of this module's with demo data and some application statements."""
    name = f"wedsync_reports_{os.getpid()}"
    dsn = create_database(pg_server, name, template=template_db)
    work = tmp_path_factory.mktemp("reports")
    seeded = wedsync_db(
        [
            "demo",
            "seed",
            "--organizations",
            "3",
            "--weddings",
            "4",
            "--guests-per-wedding",
            "9",
            "--seed",
            "1010",
        ],
        dsn,
        work,
    )
    assert seeded.returncode == 0, seeded.stderr
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("set role service_role")
        for _ in range(3):
            conn.execute("select count(*) from public.guests where rsvp_status = 'accepted'")
    yield dsn, work
    drop_database(pg_server, name)


@pytest.fixture
def reports(seeded: tuple[str, Path]) -> tuple[str, ...]:
    """The reports this server can give."""
    return REPORTS if tracks_statements(seeded[0]) else tuple(r for r in REPORTS if r != "queries")


@pytest.fixture
def tracked(seeded: tuple[str, Path]) -> None:
    if not tracks_statements(seeded[0]):
        pytest.skip("pg_stat_statements is not in shared_preload_libraries on this server")


def lines_of(text: str) -> list[str]:
    return text.splitlines()


@pytest.fixture
def in_process(
    seeded: tuple[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Callable[..., str]:
    """`wedsync-db ARGS` in this process (faster than a subprocess) on the seeded database;
    it must succeed; its standard output."""
    isolate_settings(monkeypatch, tmp_path)
    monkeypatch.setenv("DATABASE_URL", seeded[0])
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, (args, result.output)
        return result.stdout

    return run


@pytest.fixture
def narrow(in_process: Callable[..., str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """`wedsync-db ARGS` in this process on an 80-column console; its output."""
    monkeypatch.setattr(common.out, "width", 80)
    return in_process


def test_every_report_fits_80_columns(narrow: Callable[..., str], reports: tuple[str, ...]) -> None:
    for report in reports:
        too_wide = [line for line in lines_of(narrow("inspect", report)) if len(line) > 80]
        assert too_wide == [], report


def test_tables_at_80_columns_keep_names_and_numbers(narrow: Callable[..., str]) -> None:
    text = narrow("inspect", "tables")
    for name in ("public.guests", "public.organization_members", "public.wedding_vendors"):
        assert name in text, name
    assert "public…" not in text
    guests = next(line for line in lines_of(text) if "public.guests " in line)
    # the estimated rows right after seeding (ANALYZE) and sizes in IEC units
    assert re.search(r"\b36\b", guests), guests
    assert re.search(r"\d+(\.\d)? (KiB|MiB)", guests), guests
    assert not re.search(r"\b(kB|MB|GB)\b", text)
    assert "left out at this width" in text


@pytest.mark.usefixtures("tracked")
def test_queries_piped_at_80_columns_show_the_numbers(seeded: tuple[str, Path]) -> None:
    # a real process with COLUMNS set, its output piped
    dsn, work = seeded
    proc = wedsync_db(["inspect", "queries", "--include-own"], dsn, work, **NARROW)
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in lines_of(proc.stdout) if " ms " in line]
    assert rows, proc.stdout
    for line in rows:
        # total and mean whole, never cut to "…"
        assert re.search(r"[\d,]+ ms .*[\d,]+\.\d\d ms", line), line
        assert "…" not in line.split("ms")[0], line


@pytest.fixture
def cli(in_process: Callable[..., str]) -> Callable[..., Any]:
    """`wedsync-db ARGS --json` in this process, parsed."""

    def run(*args: str) -> Any:
        return json.loads(in_process(*args, "--json"))

    return run


@pytest.mark.usefixtures("tracked")
def test_queries_leave_out_the_tools_own_statements(cli: Callable[..., Any]) -> None:
    cli("metrics", "capture")  # runs every monitoring query at least once
    default = cli("inspect", "queries", "--top", "500")
    everything = cli("inspect", "queries", "--top", "500", "--include-own")
    texts = [q["query"] for q in default["queries"]]
    all_texts = [q["query"] for q in everything["queries"]]
    own = [t for t in all_texts if "ops.index_recommendations" in t or "pg_stat_activity" in t]
    assert own, "the monitoring statements are recorded"
    assert not [t for t in texts if t in own]
    assert default["own_statements_left_out"] >= len(own)
    # the application's statements (service_role, authenticated, …) stay
    assert any("rsvp_status" in t and "count" in t for t in texts), texts
    assert everything["own_statements_left_out"] == 0


def test_every_json_report_is_an_object(cli: Callable[..., Any], reports: tuple[str, ...]) -> None:
    for report in reports:
        body = cli("inspect", report)
        assert isinstance(body, dict), report
        assert "captured_at" in body or "status" in body, report
