"""`wedsync-db config show | check`."""

from __future__ import annotations

from dataclasses import asdict

import typer
from rich.markup import escape
from rich.table import Table

from wedsync_db.cli import common
from wedsync_db.cli.common import JsonOpt, err, out
from wedsync_db.errors import ConfigError, MigrationFileError
from wedsync_db.migrate.files import discover
from wedsync_db.settings import check_settings, show_settings

app = typer.Typer(help="Show and check the configuration.", no_args_is_help=True)


@app.command("show")
def show(json_out: JsonOpt = False) -> None:
    """Every variable with its effective value (secrets masked) and where it came from:
    default, the environment profile, the environment or the .env file."""
    s = common.settings()
    shown = show_settings(s)
    user, service = s.pool_sizes
    if json_out:
        common.print_json(
            {
                "environment": s.env,
                "variables": [asdict(v) for v in shown],
                "pools": {"user": user, "service": service},
            }
        )
        return
    table = Table("variable", "value", "source", title=f"wedsync-db settings ({s.env})")
    for v in shown:
        value = escape(v.value) if v.value else "[dim](not set)[/]"
        table.add_row(v.variable, value, v.source)
    out.print(table)
    out.print(f"pools: user {user}, service {service} (from the connection budget)")


@app.command("check")
def check(json_out: JsonOpt = False) -> None:
    """Validate every variable, including what later commands read (freeze windows,
    migration directories); report all problems at once, exit 1 if any, and warn about
    WEDSYNC_* names no setting reads."""
    found = check_settings()
    errors, warnings = list(found.errors), found.warnings
    try:
        # what every migrate command, `up` and the API will read
        discover(found.settings.migration_dirs)
    except MigrationFileError as exc:
        errors.append(ConfigError("WEDSYNC_MIGRATION_DIRS", str(exc)))
    if json_out:
        common.print_json(
            {
                "ok": not errors,
                "errors": [{"variable": e.variable, "problem": e.problem} for e in errors],
                "warnings": warnings,
            }
        )
    for warning in warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}")
    for error in errors:
        err.print(f"[bold red]error:[/] {escape(str(error))}")
    if errors:
        raise typer.Exit(1)
    if not json_out:
        out.print(f"configuration OK ({found.settings.env})")
