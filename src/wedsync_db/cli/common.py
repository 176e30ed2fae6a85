"""Shared CLI plumbing: settings, the database target, error → exit code, output."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Coroutine, Iterator
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console

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

# exit codes (documented in the README): 0 ok, 1 error, 2 refused / health fail, 3 frozen,
# 4 migration lock not obtained
EXIT_CODES: list[tuple[type[BaseException], int]] = [
    (errors.MigrationFrozen, 3),
    (errors.MigrationLockHeld, 4),
    (errors.DriftDetected, 2),
    (errors.MigrationRefused, 2),
    (errors.BackupVerificationFailed, 2),
]


def fail(message: str, code: int = 1) -> NoReturn:
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
        code = next((c for cls, c in EXIT_CODES if isinstance(exc, cls)), 1)
        message = str(exc)
        if json_errors:
            print_json({"error": {"type": type(exc).__name__, "message": message, "exit": code}})
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


def show_dsn(dsn: str) -> str:
    """A DSN safe to print."""
    return redact_dsn(dsn)
