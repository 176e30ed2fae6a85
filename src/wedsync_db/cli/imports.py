"""`wedsync-db import clients|guests FILE`: a CSV file into an organization's clients or a
wedding's guests, as one of its users (row level security decides what may be written)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal, NoReturn
from uuid import UUID

import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from wedsync_db import errors
from wedsync_db.cli import common
from wedsync_db.cli.common import err, out
from wedsync_db.db.client import Claims
from wedsync_db.imports.csvfile import ReadStats, parse_map
from wedsync_db.imports.fields import ImportKind
from wedsync_db.imports.report import ImportReport
from wedsync_db.imports.service import ImportOptions, run_import
from wedsync_db.imports.service import Progress as ProgressCallback
from wedsync_db.runtime import database_for

app = typer.Typer(
    help="Bulk import from CSV: a vendor's clients, a couple's guests.", no_args_is_help=True
)

FileArg = Annotated[
    Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The CSV file")
]
AsUser = Annotated[
    UUID, typer.Option("--as", help="The user importing (its row level security applies)")
]
MapOption = Annotated[
    list[str] | None,
    typer.Option(
        "--map",
        metavar="COLUMN=FIELD",
        help="COLUMN=FIELD (or COLUMN=ignore), repeatable; COLUMN a header or #N for the "
        "Nth column",
    ),
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Check and count; write nothing")]
SkipBad = Annotated[
    bool,
    typer.Option("--skip-bad-rows", help="Import the good rows (default: all or nothing)"),
]
DateOrder = Annotated[
    str,
    typer.Option(
        "--date-order",
        metavar="auto|dmy|mdy",
        help="auto (from the timezone), dmy or mdy, for dates like 03/04/2027",
    ),
]
JsonOut = Annotated[bool, typer.Option("--json", help="The report as JSON")]

EPILOG = (
    "Exit: 0 imported (or, with --dry-run, would be), 2 refused (rows with errors and no "
    "--skip-bad-rows, over the plan, or a file that cannot be read), 1 error."
)


def _import_command(
    kind: ImportKind, target: str, target_help: str, audience: str, doc: str
) -> None:
    """`import <kind>` into the organization or wedding ``--<target>`` names, as a user of the
    ``audience`` app."""

    def command(
        file: FileArg,
        target_id: UUID,
        actor: AsUser,
        column_map: MapOption = None,
        dry_run: DryRun = False,
        skip_bad_rows: SkipBad = False,
        date_order: DateOrder = "auto",
        json_out: JsonOut = False,
    ) -> None:
        claims = Claims.coerce({"sub": actor, "aud": audience})
        _run(
            kind, file, target_id, claims, column_map, dry_run, skip_bad_rows, date_order, json_out
        )

    command.__name__ = f"import_{kind}"
    command.__doc__ = doc
    # the target's option is named per kind: typer reads it from the annotations
    command.__annotations__["target_id"] = Annotated[
        UUID, typer.Option(f"--{target}", help=target_help)
    ]
    app.command(kind, epilog=EPILOG)(command)


def _run(
    kind: ImportKind,
    file: Path,
    target: UUID,
    claims: Claims,
    column_map: list[str] | None,
    dry_run: bool,
    skip_bad_rows: bool,
    date_order: str,
    json_out: bool,
) -> None:
    if date_order not in ("auto", "dmy", "mdy"):
        common.fail(f"--date-order {date_order}: use auto, dmy or mdy", common.ExitCode.USAGE)
    order: Literal["auto", "dmy", "mdy"] = date_order  # type: ignore[assignment]
    try:
        explicit = parse_map(column_map or [])
    except errors.ImportRefused as exc:
        _refuse(exc, json_out)
    options = ImportOptions(
        column_map=explicit,
        dry_run=dry_run,
        skip_bad_rows=skip_bad_rows,
        date_order=order,
        file_name=file.name,
    )
    s = common.settings()
    t = common.target(s, quiet=json_out)

    async def go() -> ImportReport | errors.ImportRefused:
        with file.open("rb") as binary, _progress(not json_out) as progress:
            async with database_for(s, t.dsn) as db:
                try:
                    return await run_import(db, claims, kind, target, binary, options, progress)
                except errors.ImportRefused as exc:
                    return exc

    report = common.run(go(), json_errors=json_out)
    if isinstance(report, errors.ImportRefused):
        _refuse(report, json_out)
    if json_out:
        common.print_json(report.model_dump(mode="json"))
    else:
        _print_report(report)
    if report.status != "imported":
        raise typer.Exit(common.ExitCode.REFUSED)


def _refuse(exc: errors.ImportRefused, json_out: bool) -> NoReturn:
    """A file that cannot be imported exits REFUSED with the reason."""
    if json_out:
        common.print_json({"error": {"type": "ImportRefused", "message": str(exc), "exit": 2}})
    common.fail(str(exc), common.ExitCode.REFUSED)


_import_command(
    "clients",
    "organization",
    "The organization whose clients these are",
    "vendor",
    """Import a CRM export into an organization's clients, as one of its members.

    Matched by external_ref, else email, else the partners' names: changed clients are
    updated, unchanged ones are left as they are, new ones are added.
    """,
)
_import_command(
    "guests",
    "wedding",
    "The wedding whose guests these are",
    "couple",
    """Import a guest list into a wedding, as one of its couple.

    Matched by email, else first and last name: changed guests are updated, unchanged ones
    are left as they are, new ones are added.
    """,
)


@contextlib.contextmanager
def _progress(wanted: bool) -> Iterator[ProgressCallback | None]:
    """A progress bar on a terminal (rows, rows/s, errors so far); nothing otherwise."""
    if not wanted or not err.is_terminal:
        yield None
        return
    bar = Progress(
        TextColumn("importing"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[rows]:,} rows  {task.fields[rate]:,.0f} rows/s"),
        TextColumn("{task.fields[problems]:,} errors so far"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    started = time.monotonic()
    task: TaskID | None = None

    def update(stats: ReadStats, done: int, total: int) -> None:
        nonlocal task
        rate = stats.rows / max(time.monotonic() - started, 1e-6)
        if task is None:
            task = bar.add_task("import", total=max(total, 1), rows=0, rate=0.0, problems=0)
        bar.update(task, completed=done, rows=stats.rows, rate=rate, problems=stats.problems)

    with bar:
        yield update


def _print_report(report: ImportReport) -> None:
    what = report.kind
    head = "dry run: " if report.dry_run else ""
    if report.repeated:
        out.print(f"this file was imported before (import {report.id}); its report:")
    out.print(
        f"{head}{report.status}: {report.rows:,} rows read; {report.inserted:,} {what} added, "
        f"{report.updated:,} updated, {report.unchanged:,} unchanged, {report.skipped:,} rows "
        f"skipped; {report.error_count:,} errors"
    )
    f = report.format
    delimiter = "tab" if f.delimiter == "\t" else f.delimiter
    out.print(f"read as {f.encoding}, delimiter {delimiter!r}, dates {f.date_order}")
    if f.ignored_columns:
        out.print(f"ignored columns: {', '.join(f.ignored_columns)}")
    if report.message:
        out.print(report.message)
    if report.errors:
        rows = [[str(e.line), e.field, e.value or "", e.reason] for e in report.errors]
        common.print_table(
            [
                common.Col("line"),
                common.Col("column", kind="text"),
                common.Col("value", drop=1, kind="flex"),
                common.Col("reason", kind="text", min_width=24),
            ],
            rows,
            title="errors",
        )
        if report.error_count > len(report.errors):
            out.print(f"… and {report.error_count - len(report.errors):,} more")
    if report.id is not None and not report.dry_run:
        out.print(f"import {report.id}")
