"""`wedsync-db migrate …`"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from wedsync_db.cli import common
from wedsync_db.cli.common import err, out
from wedsync_db.migrate.files import MigrationFile
from wedsync_db.migrate.service import apply_migrations
from wedsync_db.runtime import runner_for

app = typer.Typer(help="Versioned SQL migrations.", no_args_is_help=True)

DirOpt = Annotated[
    list[Path] | None,
    typer.Option("--dir", help="Extra migration directory (repeatable), after the built-in files"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output")]


def _dirs(dirs: list[Path] | None) -> tuple[str, ...]:
    return tuple(str(d) for d in dirs or [])


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
            err.print(f"[red]drift:[/] {d.message}", highlight=False)
    raise typer.Exit(2 if st.drift else 1 if st.pending else 0)


@app.command("apply")
def apply(
    dirs: DirOpt = None,
    target: Annotated[
        str | None, typer.Option(help="Apply up to and including this version")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and list what would run; change nothing")
    ] = False,
    lock_wait: Annotated[
        float | None, typer.Option(help="Seconds to wait for another run's lock [default: 60]")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Apply pending migrations. Exit: 0 applied or nothing to do, 1 error, 2 drift, 4 lock held."""
    s = common.settings()
    t = common.target(s)
    runner = runner_for(s, t, _dirs(dirs), lock_wait=lock_wait)

    def progress(event: str, f: MigrationFile, info: dict[str, Any]) -> None:
        if json_out:
            return
        if event == "start":
            err.print(f"→ {f.path} …", highlight=False)
        elif event == "retry":
            err.print(
                f"  lock not obtained within {info['lock_timeout']:g}s (attempt {info['attempt']}); retrying",
                highlight=False,
            )
        elif event == "done":
            err.print(f"  ✓ {f.path} ({info['duration_ms']:.0f} ms)", highlight=False)

    result = common.run(
        apply_migrations(s, runner, target=target, dry_run=dry_run, progress=progress)
    )
    if json_out:
        common.print_json(result.to_dict())
    elif dry_run:
        names = ", ".join(f.path for f in result.would_apply) or "nothing"
        out.print(f"dry run: would apply {names}", highlight=False)
    elif not result.applied:
        out.print("nothing to apply", highlight=False)
    else:
        out.print(f"applied {len(result.applied)} migration(s)", highlight=False)
