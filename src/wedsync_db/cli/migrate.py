"""`wedsync-db migrate …`"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.markup import escape
from rich.table import Table

from wedsync_db.cli import common
from wedsync_db.cli.common import JsonOpt, err, out
from wedsync_db.migrate.files import (
    BUILTIN,
    MigrationFile,
    builtin_directory,
    discover,
    next_version,
)
from wedsync_db.migrate.lint import FILE_PATTERN, FileAnalysis, Finding, lint_sources
from wedsync_db.migrate.plan import MigrationPlan
from wedsync_db.migrate.service import apply_migrations, plan_migrations
from wedsync_db.runtime import runner_for
from wedsync_db.settings import load_settings

app = typer.Typer(help="Versioned SQL migrations.", no_args_is_help=True)

DirOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--dir",
        help="Migration directory (repeatable), after the built-in files; replaces "
        "WEDSYNC_MIGRATION_DIRS",
    ),
]


def _dirs(dirs: list[Path] | None) -> list[Path] | None:
    """``--dir`` values, or None so that WEDSYNC_MIGRATION_DIRS applies."""
    return dirs or None


def _configured_dirs() -> tuple[Path, ...]:
    """WEDSYNC_MIGRATION_DIRS, for commands that need no database."""
    with common.handled():
        return load_settings(generate_key=False).migration_dirs


@app.command("status")
def status(dirs: DirOpt = None, json_out: JsonOpt = False) -> None:
    """Applied, pending and drifted files; exit 0 current, 1 pending, 2 drift."""
    s = common.settings()
    t = common.target(s)
    runner = runner_for(s, t, _dirs(dirs))
    st = common.run(runner.status())
    if json_out:
        common.print_json(st.to_dict())
    else:
        table = Table("version", "name", "state", "applied at", "by", "ms")
        drifted = {d.version: d.kind for d in st.drift}
        for a in st.applied:
            state = f"drift: {drifted[a.version]}" if a.version in drifted else "applied"
            table.add_row(
                a.version,
                a.name,
                state,
                f"{a.applied_at:%Y-%m-%d %H:%M:%S}",
                a.applied_by,
                f"{a.duration_ms:.0f}",
            )
        for f in st.pending:
            state = f"drift: {drifted[f.version]}" if f.version in drifted else "pending"
            table.add_row(f.version, f.name, state, "", "", "")
        out.print(table)
        for d in st.drift:
            err.print(f"[red]drift:[/] {d.message}")
    raise typer.Exit(2 if st.drift else 1 if st.pending else 0)


@app.command("apply")
def apply(
    dirs: DirOpt = None,
    target: Annotated[
        str | None, typer.Option(help="Apply up to and including this version")
    ] = None,
    dry_run: Annotated[
        bool, common.flag("--dry-run", "Run every check, list what would run, change nothing")
    ] = False,
    override_freeze: Annotated[
        str | None,
        typer.Option(
            "--override-freeze",
            metavar="REASON",
            help="Run despite a freeze; the written reason is stored in the audit table",
        ),
    ] = None,
    lock_wait: Annotated[
        float | None,
        typer.Option(
            help="Seconds to wait for another run's lock "
            "(default: WEDSYNC_MIGRATION_LOCK_WAIT or 60)"
        ),
    ] = None,
    lock_timeout: Annotated[
        float | None,
        typer.Option(help="Per-file lock_timeout in seconds, grown on retries (default: 2)"),
    ] = None,
    actor: Annotated[
        str | None, typer.Option(help="Who runs this, for history and audit (default: user@host)")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Apply pending migrations behind lint and the freeze policy.

    Exit codes: 0 applied or nothing to do, 1 error, 2 drift or lint refusal, 3 frozen,
    4 lock not obtained.
    """
    s = common.settings()
    t = common.target(s)
    runner = runner_for(s, t, _dirs(dirs), lock_wait=lock_wait, lock_timeout=lock_timeout)
    if actor:
        runner.options = replace(runner.options, actor=actor)

    def progress(event: str, f: MigrationFile, info: dict[str, Any]) -> None:
        if json_out:
            return
        if event == "start":
            err.print(f"→ {f.path} …")
        elif event == "retry":
            err.print(
                f"  lock not obtained within {info['lock_timeout']:g}s "
                f"(attempt {info['attempt']}); retrying in {info['sleep']:g}s",
            )
        elif event == "done":
            err.print(f"  ✓ {f.path} ({info['duration_ms']:.0f} ms)")

    result = common.run(
        apply_migrations(
            s,
            runner,
            target=target,
            dry_run=dry_run,
            override_freeze_reason=override_freeze,
            progress=progress,
        ),
        json_errors=json_out,
    )
    if json_out:
        common.print_json(result.to_dict())
        return
    for warning in (*result.guard.warnings, *result.hardening_skipped):
        err.print(f"[yellow]warning:[/] {escape(warning)}")
    if dry_run:
        names = ", ".join(f.path for f in result.would_apply) or "nothing"
        out.print(f"dry run: would apply {names}")
    elif not result.applied:
        out.print("nothing to apply")
    else:
        for a in result.applied:
            for note in a.notes:
                err.print(f"  {a.path}: {note}")
        out.print(f"applied {len(result.applied)} migration(s)")


ShowAcknowledgedOpt = Annotated[
    bool, common.flag("--show-acknowledged", "Also print findings a `wedsync:allow` acknowledged")
]


def _split_acknowledged(
    findings: Iterable[Finding], show_acknowledged: bool
) -> tuple[list[Finding], int]:
    """The findings to print and how many acknowledged ones stay quiet (quiet by default)."""
    listed = list(findings)
    shown = [f for f in listed if show_acknowledged or not f.acknowledged]
    return shown, len(listed) - len(shown)


def _print_quiet_count(quiet: int) -> None:
    if quiet:
        out.print(f"{quiet} acknowledged finding(s) not shown (--show-acknowledged)")


@app.command("plan")
def plan(
    dirs: DirOpt = None,
    at: Annotated[
        str | None,
        typer.Option(
            help="Evaluate the freeze policy at this ISO-8601 time (only the policy; "
            "apply always uses the real clock)"
        ),
    ] = None,
    show_acknowledged: ShowAcknowledgedOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Pending files with statements, lock levels, lint findings and the freeze decision."""
    s = common.settings()
    when: datetime | None = None
    if at is not None:
        try:
            when = datetime.fromisoformat(at)
        except ValueError:
            common.fail(f"--at {at!r} is not an ISO-8601 time (e.g. 2027-06-12T10:00:00+01:00)")
        if when.tzinfo is None:
            when = when.replace(tzinfo=ZoneInfo(s.timezone))
    t = common.target(s)
    runner = runner_for(s, t, _dirs(dirs))
    p = common.run(plan_migrations(s, runner, at=when))
    if json_out:
        common.print_json(p.to_dict())
        return
    _print_plan(p, show_acknowledged=show_acknowledged)


def _print_plan(p: MigrationPlan, *, show_acknowledged: bool) -> None:
    if not p.pending:
        out.print("no pending migrations")
    quiet = 0
    for item in p.pending:
        a = item.analysis
        mode = "transaction" if a.transactional else "no transaction"
        flag = "[red]BLOCKING[/]" if a.blocking else "[green]non-blocking[/]"
        out.print(
            f"[bold]{escape(item.file.path)}[/]  {mode}  {flag}  "
            f"strongest lock: {a.strongest_lock or 'none'}"
        )
        table = Table("line", "statement", "table", "lock", "rewrite", "blocking", box=None)
        for st in a.statements:
            first = " ".join(st.text.split())[:70]
            table.add_row(
                str(st.line),
                escape(first),
                st.table or "",
                st.lock_level or "",
                "yes" if st.rewrites_table else "",
                "[red]yes[/]" if st.blocking else "",
            )
        out.print(table)
        shown, kept_quiet = _split_acknowledged(a.findings, show_acknowledged)
        quiet += kept_quiet
        for f in shown:
            colour = {"error": "red", "warning": "yellow"}.get(f.severity, "blue")
            ack = f" (acknowledged: {escape(f.acknowledgement or '')})" if f.acknowledged else ""
            out.print(
                f"  [{colour}]{f.severity}[/] {f.rule} line {f.line or '?'}: "
                f"{escape(f.message)}{ack}",
            )
    _print_quiet_count(quiet)
    d = p.freeze
    state = (
        "[red]FROZEN[/]" if not d.allowed else "[yellow]freeze (warn)[/]" if d.active else "allowed"
    )
    out.print(f"\nfreeze at {d.evaluated_at.isoformat()} ({d.mode}): {state}")
    for m in d.messages:
        out.print(f"  - {escape(m)}")
    for drift in p.drift:
        err.print(f"[red]drift:[/] {escape(drift.message)}")


def _lint_targets(paths: list[Path] | None, dirs: list[Path] | None) -> list[tuple[str, bytes]]:
    """(name, bytes) of every file to lint: the paths given, else the migration directories.

    A directory contributes each ``*.sql`` file in it, whatever its name: the name rule is a
    finding of the file (`migration-file-name`), the same whether the file was named on the
    command line or found in a directory.
    """
    targets: list[tuple[str, bytes]] = []
    if not paths:
        for entry in sorted(builtin_directory().iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".sql"):
                targets.append((f"{BUILTIN}/{entry.name}", entry.read_bytes()))
    for path in [*(paths or []), *(dirs or [])]:
        if path.is_dir():
            targets += [(str(f), f.read_bytes()) for f in sorted(path.glob("*.sql"))]
        elif path.is_file():
            targets.append((str(path), path.read_bytes()))
        else:
            common.fail(f"{path}: no such file or directory")
    return targets


def _print_finding(f: Finding, suffix: str = "") -> None:
    colour = {"error": "red", "warning": "yellow"}.get(f.severity, "blue")
    ack = " (acknowledged)" if f.acknowledged else ""
    out.print(
        f"    [{colour}]{f.severity}[/] {f.rule} line {f.line or '?'}: "
        f"{escape(f.message)}{ack}{suffix}",
    )


def _print_lint(result: FileAnalysis, *, show_acknowledged: bool, verbose: bool) -> int:
    """One file's report; returns how many acknowledged findings it kept quiet."""
    shown, quiet = _split_acknowledged(result.findings, show_acknowledged)
    status = "[red]✗[/]" if result.unacknowledged_errors else "[green]✓[/]"
    out.print(f"{status} {escape(result.name)}")
    by_rule: dict[tuple[str, str], list[Finding]] = {}
    for f in shown:
        by_rule.setdefault((f.rule, f.severity), []).append(f)
    for f in shown:
        group = by_rule[(f.rule, f.severity)]
        if verbose or f.severity == "error" or len(group) == 1:
            _print_finding(f)
        elif f is group[0]:
            lines = ", ".join(str(g.line or "?") for g in group[1:])
            _print_finding(f, f" [dim](and {len(group) - 1} more at lines {lines}; --verbose)[/]")
    return quiet


@app.command("lint")
def lint(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Files or directories to lint (default: every migration file, built-in and "
            "--dir or WEDSYNC_MIGRATION_DIRS)"
        ),
    ] = None,
    dirs: DirOpt = None,
    pg_version: Annotated[
        str | None, typer.Option(help="Target PostgreSQL version for version-aware rules")
    ] = None,
    show_acknowledged: ShowAcknowledgedOpt = False,
    verbose: Annotated[
        bool,
        common.flag(
            "--verbose", "Print every warning (by default a rule repeated in a file is one line)"
        ),
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Lint migration files (squawk + wedsync rules); exit 2 on unacknowledged errors.

    Every file is reported: a file that is not UTF-8 or cannot be parsed is an error of that
    file, and the others are still linted.
    """
    if not paths and not dirs:
        dirs = list(_configured_dirs())
    targets = _lint_targets(paths, dirs)
    with common.handled():
        results = lint_sources(targets, pg_version=pg_version)
    errors = sum(len(r.unacknowledged_errors) for r in results)
    if json_out:
        common.print_json({"files": [r.to_dict() for r in results], "errors": errors})
    else:
        quiet = sum(
            _print_lint(r, show_acknowledged=show_acknowledged, verbose=verbose) for r in results
        )
        _print_quiet_count(quiet)
        out.print(f"{len(results)} file(s), {errors} unacknowledged error(s)")
    raise typer.Exit(2 if errors else 0)


@app.command("new")
def new(
    name: Annotated[
        str, typer.Argument(help="Short name: lower-case letters, digits, underscores")
    ],
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="Directory to create the file in (default: the first of "
            "WEDSYNC_MIGRATION_DIRS, else ./migrations)",
        ),
    ] = None,
) -> None:
    """Create the next numbered migration file (numbers are unique across all directories)."""
    slug = name.strip().lower().replace("-", "_").replace(" ", "_")
    if not FILE_PATTERN.match(f"0000_{slug}.sql"):
        common.fail(f"{name!r}: use lower-case letters, digits and underscores")
    configured = _configured_dirs()
    directory = directory or (configured[0] if configured else Path("migrations"))
    with common.handled():
        existing = discover([d for d in {directory, *configured} if d.is_dir()])
    path = directory / f"{next_version(existing)}_{slug}.sql"
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"-- {slug.replace('_', ' ')}\n"
        "-- Headers: `-- wedsync:no-transaction` (one statement, e.g. CREATE INDEX CONCURRENTLY)\n"
        "--          `-- wedsync:allow <rule>: <reason>` to acknowledge a lint finding\n\n",
        encoding="utf-8",
    )
    out.print(str(path))


@app.command("repair")
def repair(
    version: Annotated[str, typer.Argument(help="Version whose drift was reviewed, e.g. 0004")],
    reason: Annotated[str, typer.Option(help="What was reviewed and why the change is safe")],
    dirs: DirOpt = None,
) -> None:
    """After review, record an edited file's new checksum (or forget a deleted file); audited."""
    s = common.settings()
    t = common.target(s)
    runner = runner_for(s, t, _dirs(dirs))
    d = common.run(runner.repair(version, reason=reason))
    out.print(f"repaired {d.kind} drift of {d.version}_{d.name}")
