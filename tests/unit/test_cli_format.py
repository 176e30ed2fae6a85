"""Pure CLI formatting: sizes in one unit family, tables that fit the width."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from wedsync_db.cli.common import Col, fit_table, format_bytes


@pytest.mark.parametrize(
    ("n", "shown"),
    [
        (None, "-"),
        (0, "0 B"),
        (1023, "1,023 B"),
        (1024, "1.0 KiB"),
        (1536 * 1024, "1.5 MiB"),
        (3 * 2**30, "3.0 GiB"),
        (5 * 2**40, "5.0 TiB"),
        (2**50, "1,024.0 TiB"),
    ],
)
def test_sizes_are_iec(n: float | None, shown: str) -> None:
    assert format_bytes(n) == shown


def _render(columns: list[Col], rows: list[list[str]], width: int) -> tuple[str, list[str]]:
    table, dropped = fit_table(columns, rows, title=None, width=width)
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(table)
    return console.export_text(), dropped


COLUMNS = [
    Col("table", kind="id"),
    Col("total"),
    Col("extra", drop=1),
    Col("spare", drop=2),
    Col("query", kind="flex", min_width=10),
]
ROWS = [["public.organization_members", "123,456 ms", "x" * 12, "y" * 12, "select 1 " * 10]]


def test_columns_are_dropped_least_important_first() -> None:
    text, dropped = _render(COLUMNS, ROWS, 80)
    assert dropped == ["spare"]
    assert "public.organization_members" in text and "123,456 ms" in text
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "select 1 select 1" in text and "…" in text  # the free text shortened to fit

    narrow, dropped = _render(COLUMNS, ROWS, 60)
    assert dropped == ["extra", "spare"]
    assert "public.organization_members" in narrow and "123,456 ms" in narrow

    wide, dropped = _render(COLUMNS, ROWS, 200)
    assert dropped == [] and "…" not in wide


def test_the_identifying_column_folds_only_as_a_last_resort() -> None:
    text, dropped = _render(COLUMNS, ROWS, 30)
    assert dropped == ["extra", "spare"]  # what may go has gone; the name wraps, whole
    first_column = "".join(line.split("│")[1].strip() for line in text.splitlines()[3:-1])
    assert first_column.startswith("public.organization_members")
    assert max(len(line) for line in text.splitlines()) <= 30


def test_a_style_spanning_lines_of_a_cell_renders_at_80_columns() -> None:
    """A recommendation's remedy with multi-line SQL in one dim style (it used to raise
    rich's MarkupError: the closing tag alone on a later line)."""
    remedy = "add the index\n[dim]create index concurrently guests_x_idx\n    on guests (x);[/]"
    columns = [Col("key", kind="id"), Col("remedy", kind="text")]
    text, dropped = _render(columns, [["missing-index", remedy]], 80)
    assert "create index concurrently" in text and "on guests (x);" in text and not dropped
    assert "[dim]" not in text and "[/]" not in text
