"""Shared CLI plumbing: settings, the database target, error → exit code, output."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Annotated, Any, Literal, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from wedsync_db import errors
from wedsync_db.runtime import Target, resolve_target
from wedsync_db.settings import Settings, load_settings, redact_dsn

T = TypeVar("T")
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output")]


def flag(name: str, help: str) -> Any:
    """An on/off option, off unless ``name`` is given (use as ``Annotated[bool, flag(…)]``)."""
    return typer.Option(name, help=help)


# Piped or logged output is not squeezed into 80 columns (COLUMNS still wins when set).
PIPED_WIDTH = 160


def _console(stream: Any) -> Console:
    # the console looks its stream up at each write (so that captured output works); the
    # width is decided once, from the stream at start-up; numbers and paths in messages are
    # not recoloured (markup says what is coloured)
    piped = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(
        stderr=stream is sys.stderr,
        soft_wrap=True,
        width=PIPED_WIDTH if piped else None,
    )


out = _console(sys.stdout)
err = _console(sys.stderr)


class ExitCode(IntEnum):
    """The exit codes of every command (the README and ``--help`` print :data:`EXIT_MEANINGS`)."""

    OK = 0
    ERROR = 1
    REFUSED = 2
    FROZEN = 3
    LOCK_HELD = 4
    # sysexits.h EX_USAGE: apart from every code a command chooses itself
    USAGE = 64


EXIT_MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "ok (health pass or warn)",
    ExitCode.ERROR: "error (unreachable, bad configuration, failed run, pending, stopped)",
    ExitCode.REFUSED: "refused: health fail, drift, lint errors, failed verification",
    ExitCode.FROZEN: "migrations frozen",
    ExitCode.LOCK_HELD: "the migration lock is held by another run",
    ExitCode.USAGE: "usage error: unknown command or option, missing or invalid value",
}

# our exceptions whose exit code is not ERROR
EXIT_CODES: list[tuple[type[BaseException], ExitCode]] = [
    (errors.MigrationFrozen, ExitCode.FROZEN),
    (errors.MigrationLockHeld, ExitCode.LOCK_HELD),
    (errors.DriftDetected, ExitCode.REFUSED),
    (errors.MigrationRefused, ExitCode.REFUSED),
    (errors.BackupVerificationFailed, ExitCode.REFUSED),
]


def exit_code_epilog() -> str:
    """The exit code table as ``--help`` prints it."""
    rows = "\n".join(f"{int(code):>3}  {text}" for code, text in EXIT_MEANINGS.items())
    return f"Exit codes:\n\n{rows}"


# click's UsageError (typer vendors click: found through the public BadParameter)
_USAGE_ERROR: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError"
)


class Group(TyperGroup):
    """The root command: usage errors exit :attr:`ExitCode.USAGE` (click would say 2, the code
    of a refusal), and boolean flags show no ``<bool>`` placeholder in ``--help``."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Run the command line (after hiding the flags' placeholders)."""
        hide_flag_placeholders(self)
        return super().main(*args, **kwargs)

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        """Parse the root's own options."""
        with _usage_exit_code():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        """Parse and run the subcommand."""
        with _usage_exit_code():
            return super().invoke(ctx)


@contextlib.contextmanager
def _usage_exit_code() -> Iterator[None]:
    try:
        yield
    except _USAGE_ERROR as exc:
        exc.exit_code = ExitCode.USAGE  # type: ignore[attr-defined]
        raise


def hide_flag_placeholders(command: Any) -> None:
    """No placeholder for the flags of a command and its sub-commands (a flag takes no value:
    an empty metavar is what the help shows in its type column)."""
    help_option = command.get_help_option(typer.Context(command))
    for param in [*command.params, *([help_option] if help_option else [])]:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        hide_flag_placeholders(sub)


def fail(message: str, code: int = ExitCode.ERROR) -> NoReturn:
    """Print an error to stderr and exit."""
    err.print(f"[bold red]error:[/] {message}", markup=True)
    raise typer.Exit(code)


@contextlib.contextmanager
def handled(*, json_errors: bool = False) -> Iterator[None]:
    """Turn our exceptions into a one-line message and the documented exit code; with
    ``json_errors`` the error is also printed as JSON on stdout (for --json callers)."""
    try:
        yield
    except errors.WedsyncDBError as exc:
        code = next((c for cls, c in EXIT_CODES if isinstance(exc, cls)), ExitCode.ERROR)
        message = str(exc)
        if json_errors:
            print_json(
                {"error": {"type": type(exc).__name__, "message": message, "exit": int(code)}}
            )
        err.print(f"[bold red]error:[/] {_escape(message)}")
        raise typer.Exit(code) from None


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def settings() -> Settings:
    """Load and validate settings, exiting 1 with the variable's name on error."""
    with handled():
        return load_settings()


def target(s: Settings, *, start: bool = True, quiet: bool = False) -> Target:
    """The database to use; starts the embedded server when needed (and says so)."""
    with handled():
        t = resolve_target(s, start=start)
    if t.started_embedded and not quiet:
        err.print(
            f"started embedded PostgreSQL in {s.data_dir} "
            "(it keeps running; stop it with `wedsync-db db stop`)",
        )
    return t


def run(coro: Coroutine[Any, Any, T], *, json_errors: bool = False) -> T:
    """Run a coroutine with our error handling."""
    with handled(json_errors=json_errors):
        return asyncio.run(coro)


def print_json(data: Any) -> None:
    """Machine-readable output on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def format_bytes(n: float | None) -> str:
    """A size in the CLI's one unit family, IEC (KiB, MiB, GiB, TiB: powers of 1024)."""
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} TiB"


# --- reports that fit the width ----------------------------------------------------------------
ColumnKind = Literal["id", "num", "text", "flex"]


@dataclass(frozen=True)
class Col:
    """One column of a report: ``drop`` 0 is never left out (what identifies a row, or what
    the report is about); when the width is short the highest ``drop`` goes first. ``num``
    and ``id`` cells are never wrapped or shortened, ``text`` wraps, ``flex`` (plain text, not
    markup) takes the room that is left and is shortened with "…"."""

    header: str
    drop: int = 0
    kind: ColumnKind = "num"
    min_width: int = 16


def print_table(
    columns: Sequence[Col],
    rows: Sequence[Sequence[str]],
    *,
    title: str | None = None,
    width: int | None = None,
    empty: str | None = None,
) -> None:
    """Print rows with the columns that fit ``width`` (the console's), saying which were left
    out (``--json`` has them all); with no rows, print ``empty`` instead, when given."""
    if not rows and empty is not None:
        out.print(empty)
        return
    table, dropped = fit_table(columns, rows, title=title, width=width or out.width)
    # soft wrapping (the console's default, for messages) would let a table overflow the width
    out.print(table, soft_wrap=False)
    if dropped:
        out.print(
            f"(left out at this width: {', '.join(dropped)}; --json has every column)",
            soft_wrap=False,
        )


def fit_table(
    columns: Sequence[Col], rows: Sequence[Sequence[str]], *, title: str | None, width: int
) -> tuple[Table, list[str]]:
    """The table for ``width`` and the headers of the columns left out (pure)."""
    flat = [
        [_flat(cell) if c.kind == "flex" else cell for c, cell in zip(columns, row, strict=True)]
        for row in rows
    ]
    natural = [max((_cell_width(r[i]) for r in flat), default=0) for i in range(len(columns))]
    word = [max(len(w) for w in c.header.split()) for c in columns]
    need = [
        max(word[i], min(natural[i], c.min_width) if c.kind in ("text", "flex") else natural[i])
        for i, c in enumerate(columns)
    ]

    def total(keep: list[int]) -> int:
        # each column has one space of padding on either side and a border
        return sum(need[i] + 3 for i in keep) + 1

    keep = list(range(len(columns)))
    while total(keep) > width:
        droppable = [i for i in keep if columns[i].drop > 0]
        if not droppable:
            break
        keep.remove(max(droppable, key=lambda i: (columns[i].drop, i)))
    spare = max(0, width - total(keep))
    allotted = dict.fromkeys(keep, 0)
    for i in keep:
        if columns[i].kind == "flex":
            allotted[i] = min(natural[i], need[i] + spare)
            spare -= allotted[i] - need[i]
    for i in keep:
        # then room for whole headers
        grow = min(spare, len(columns[i].header) - need[i]) if columns[i].kind != "flex" else 0
        if grow > 0:
            need[i] += grow
            spare -= grow
    # numbers, names and the shortened text get exactly their width (their headers wrap);
    # only when the identifying columns alone are too wide does everything fold to fit
    fits = total(keep) <= width
    table = Table(title=title)
    for i in keep:
        c = columns[i]
        fixed = allotted[i] if c.kind == "flex" else need[i]
        table.add_column(
            c.header,
            justify="right" if c.kind == "num" else "left",
            width=fixed if fits and c.kind != "text" else None,
            min_width=need[i] if fits else None,
            overflow="fold",
        )
    for row in flat:
        table.add_row(
            *(
                _escape(_shorten(row[i], allotted[i])) if columns[i].kind == "flex" else row[i]
                for i in keep
            )
        )
    return table, [columns[i].header for i in range(len(columns)) if i not in keep]


def _flat(text: str) -> str:
    return " ".join(text.split())


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _cell_width(cell: str) -> int:
    # markup is parsed for the whole cell: a style may span lines (a multi-line SQL remedy)
    return max((line.cell_len for line in Text.from_markup(cell).split("\n")), default=0)


def show_dsn(dsn: str) -> str:
    """A DSN safe to print."""
    return redact_dsn(dsn)
