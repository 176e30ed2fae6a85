"""Shared CLI plumbing: settings, the database target, error → exit code, output."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Coroutine, Iterator
from enum import IntEnum
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from typer.core import TyperGroup

from wedsync_db import errors
from wedsync_db.runtime import Target, resolve_target
from wedsync_db.settings import Settings, load_settings, redact_dsn

T = TypeVar("T")
# Piped or logged output is not squeezed into 80 columns (COLUMNS still wins when set).
PIPED_WIDTH = 160


def _console(stream: Any) -> Console:
    # the console looks its stream up at each write (so that captured output works); the
    # width is decided once, from the stream at start-up
    piped = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(
        stderr=stream is sys.stderr, soft_wrap=True, width=PIPED_WIDTH if piped else None
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
        _hide_flag_placeholders(self)
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


def _hide_flag_placeholders(command: Any) -> None:
    # a flag takes no value: an empty metavar is what the help shows in its type column
    help_option = command.get_help_option(typer.Context(command))
    for param in [*command.params, *([help_option] if help_option else [])]:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        _hide_flag_placeholders(sub)


def fail(message: str, code: int = ExitCode.ERROR) -> NoReturn:
    """Print an error to stderr and exit."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
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
        err.print(f"[bold red]error:[/] {_escape(message)}", highlight=False)
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
            highlight=False,
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


def show_dsn(dsn: str) -> str:
    """A DSN safe to print."""
    return redact_dsn(dsn)
