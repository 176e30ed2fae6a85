"""Run the squawk linter (PyPI `squawk-cli`) on one migration file and read its JSON report.

This is the only module of the lint layer that does I/O: it starts a subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from wedsync_db.errors import WedsyncDBError

INSTALL_HINT = "install it with `pip install squawk-cli` (it ships the squawk binary)"
# A whole file is linted in well under a second; a hung binary must not hang a deploy.
DEFAULT_TIMEOUT_S = 30.0


class SquawkUnavailable(WedsyncDBError):
    """The squawk binary was not found."""


class SquawkFailed(WedsyncDBError):
    """squawk ran but did not produce a report we can read."""


@dataclass(frozen=True)
class SquawkViolation:
    """One entry of squawk's JSON report, with 1-based line numbers."""

    rule: str
    level: str
    message: str
    help: str | None
    line: int
    end_line: int
    column: int


def find_squawk() -> str | None:
    """The squawk binary next to the running interpreter (the virtualenv), else on PATH."""
    beside_python = shutil.which("squawk", path=str(Path(sys.executable).parent))
    return beside_python or shutil.which("squawk")


def parse_report(output: str) -> tuple[SquawkViolation, ...]:
    """Parse `squawk --reporter json` output (a JSON array; lines in it are 0-based)."""
    try:
        entries = json.loads(output)
    except json.JSONDecodeError as exc:
        raise SquawkFailed(f"squawk printed something that is not JSON: {output[:200]!r}") from exc
    if not isinstance(entries, list):
        raise SquawkFailed(f"squawk's JSON report is not a list: {output[:200]!r}")
    violations = []
    for entry in entries:
        try:
            line = int(entry["line"]) + 1
            violations.append(
                SquawkViolation(
                    rule=str(entry["rule_name"]),
                    level=str(entry["level"]),
                    message=str(entry["message"]),
                    help=None if entry.get("help") is None else str(entry["help"]),
                    line=line,
                    end_line=int(entry.get("line_end", entry["line"])) + 1,
                    column=int(entry.get("column", 0)) + 1,
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SquawkFailed(f"unexpected entry in squawk's report: {entry!r}") from exc
    return tuple(violations)


def run_squawk(
    sql: str,
    *,
    assume_in_transaction: bool,
    exclude: Iterable[str] = (),
    pg_version: str | None = None,
    binary: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> tuple[SquawkViolation, ...]:
    """Lint one file's SQL (passed on stdin) and return squawk's violations."""
    executable = binary or find_squawk()
    if executable is None:
        raise SquawkUnavailable(
            f"squawk was not found next to {sys.executable} or on PATH; {INSTALL_HINT}"
        )
    args = [
        executable,
        "--reporter",
        "json",
        # An empty configuration: a stray .squawk.toml in the working directory must not
        # change which rules run.
        "--config",
        os.devnull,
        "--assume-in-transaction" if assume_in_transaction else "--no-assume-in-transaction",
    ]
    excluded = sorted(set(exclude))
    if excluded:
        args.append("--exclude=" + ",".join(excluded))
    if pg_version is not None:
        args.append(f"--pg-version={pg_version}")
    try:
        proc = subprocess.run(
            args,
            input=sql,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise SquawkUnavailable(f"{executable} could not be started; {INSTALL_HINT}") from exc
    except subprocess.TimeoutExpired as exc:
        raise SquawkFailed(f"squawk did not finish within {timeout:g}s") from exc
    # 0: no violations, 1: violations (or a configuration error, which prints no report);
    # anything else is a usage or internal error.
    report = proc.stdout.strip()
    if proc.returncode not in (0, 1) or (proc.returncode == 1 and not report):
        detail = proc.stderr.strip() or report
        raise SquawkFailed(f"squawk exited with status {proc.returncode}: {detail[:500]}")
    return parse_report(report or "[]")
