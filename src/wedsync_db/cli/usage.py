"""`wedsync-db usage …`: plan usage per organization, and a recount of the usage counters."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import typer
from rich.table import Table

from wedsync_db.cli import common
from wedsync_db.cli.common import out
from wedsync_db.db.queries import load_queries
from wedsync_db.runtime import database_for

QUERIES = load_queries("wedsync_db.cli", "sql/usage.sql")
LIMITS = ("clients", "members", "weddings")

app = typer.Typer(help="Plan limits: usage per organization, and a recount.", no_args_is_help=True)


async def _service_rows(name: str, params: dict[str, Any], reason: str) -> list[dict[str, Any]]:
    s = common.settings()
    t = common.target(s)
    async with database_for(s, t.dsn) as db, db.service(reason=reason) as session:
        return await session.fetch_dicts(QUERIES[name].sql, params)


def _of(maximum: int | None) -> str:
    return "unlimited" if maximum is None else f"{maximum:,}"


@app.command("show")
def show(
    organization: Annotated[
        UUID | None, typer.Option(help="Only this organization (default: all, at most 1,000)")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Each organization's plan, what it uses and what its plan (or override) allows.

    Exit: 0 shown, 1 error.
    """
    rows = common.run(
        _service_rows("organization_usage", {"organization": organization}, "usage show")
    )
    if organization is not None and not rows:
        common.fail(f"no organization {organization}")
    if json_out:
        common.print_json(
            {
                "organizations": [
                    {
                        "organization_id": str(r["organization_id"]),
                        "plan": r["plan"],
                        "usage": {
                            limit: {"current": r[limit], "maximum": r[f"max_{limit}"]}
                            for limit in LIMITS
                        },
                    }
                    for r in rows
                ]
            }
        )
        return
    table = Table("organization", "plan", *LIMITS, title="plan usage")
    for r in rows:
        table.add_row(
            str(r["organization_id"]),
            r["plan"],
            *(f"{r[limit]:,} of {_of(r[f'max_{limit}'])}" for limit in LIMITS),
        )
    out.print(table)


@app.command("reconcile")
def reconcile(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report the drift without fixing it")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Recount every usage counter from the tables and fix the ones that drifted.

    Exit: 0 reconciled (or nothing to fix), 1 error.
    """
    rows = common.run(_service_rows("reconcile_usage", {"dry_run": dry_run}, "usage reconcile"))
    changes = [
        {
            "scope": r["scope"],
            "id": str(r["id"]),
            "counter": r["counter"],
            "recorded": r["recorded"],
            "actual": r["actual"],
        }
        for r in rows
    ]
    if json_out:
        common.print_json({"applied": not dry_run, "changes": changes})
        return
    if not changes:
        out.print("every usage counter matches the tables")
        return
    table = Table("scope", "id", "counter", "recorded", "actual", title="usage drift")
    for c in changes:
        recorded = "-" if c["recorded"] is None else f"{c['recorded']:,}"
        table.add_row(c["scope"], c["id"], c["counter"], recorded, f"{c['actual']:,}")
    out.print(table)
    verb = "would fix" if dry_run else "fixed"
    out.print(f"{verb} {len(changes)} counter(s)")
