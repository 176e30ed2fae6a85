"""`wedsync-db demo …`"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated
from uuid import UUID
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from wedsync_db.cli import common
from wedsync_db.cli.common import out
from wedsync_db.demo.generate import (
    MAX_GUESTS_PER_WEDDING,
    MAX_ORGANIZATIONS,
    MAX_WEDDINGS,
    DemoSize,
)
from wedsync_db.demo.seed import SeedReport, reset_tenant_tables, seed
from wedsync_db.runtime import database_for, runner_for

app = typer.Typer(help="Realistic demo data.", no_args_is_help=True)


@app.command("seed")
def seed_command(
    organizations: Annotated[
        int,
        typer.Option(help=f"Vendor organizations, 1–{MAX_ORGANIZATIONS:,}, each with 1–5 members"),
    ] = 50,
    weddings: Annotated[
        int,
        typer.Option(
            help=f"Weddings over the next 18 months, 1–{MAX_WEDDINGS:,}, 2–5 vendors each"
        ),
    ] = 200,
    guests_per_wedding: Annotated[
        int, typer.Option(help=f"Guests on every wedding, 1–{MAX_GUESTS_PER_WEDDING:,}")
    ] = 100,
    seed_value: Annotated[
        int | None,
        typer.Option(
            "--seed", help="Random seed: the same seed gives the same rows", show_default="random"
        ),
    ] = None,
    reset: Annotated[
        bool,
        common.flag(
            "--reset",
            "First empty ALL tenant tables (TRUNCATE … CASCADE), not only earlier demo rows",
        ),
    ] = False,
    json_out: common.JsonOpt = False,
) -> None:
    """Create linked demo vendors, clients, weddings, couples and guests.

    Every run adds more data with fresh ids and slugs; the same --seed twice collides.

    --reset empties the tenant tables first, in its own transaction before seeding.

    Weddings favour Saturdays and the peak months (WEDSYNC_PEAK_MONTHS). Refused in production.

    Exit: 0 seeded, 1 error, 2 refused.
    """
    s = common.settings()
    if s.env == "production":
        common.fail(
            "demo data is for development and staging; WEDSYNC_ENV is production",
            code=common.ExitCode.REFUSED,
        )
    chosen_seed = seed_value if seed_value is not None else secrets.randbelow(10**9)
    try:
        DemoSize(organizations, weddings, guests_per_wedding, chosen_seed)
    except ValueError as exc:
        common.fail(str(exc))
    today = datetime.now(ZoneInfo(s.timezone)).date()
    t = common.target(s)

    async def run() -> SeedReport:
        # without the schema the user pool cannot even log in: say so instead of timing out
        status = await runner_for(s, t).status()
        if status.pending:
            common.fail(
                f"{len(status.pending)} migration(s) pending: run `wedsync-db migrate apply` first"
            )
        async with database_for(s, t.dsn) as db:
            if reset:
                await reset_tenant_tables(db)
            return await seed(
                db,
                organizations=organizations,
                weddings=weddings,
                guests_per_wedding=guests_per_wedding,
                seed=chosen_seed,
                today=today,
                peak_months=s.peak_months,
            )

    report = common.run(run())
    if json_out:
        common.print_json(report.to_dict())
        return
    _print_report(report)


def _print_report(report: SeedReport) -> None:
    table = Table("table", "rows", title="demo data")
    for name, count in report.counts.items():
        table.add_row(name, f"{count:,}")
    table.add_row("total", f"{report.total_rows:,}", style="bold")
    out.print(table)
    rate = report.total_rows / report.elapsed_seconds if report.elapsed_seconds else 0.0
    out.print(
        f"seeded in {report.elapsed_seconds:.2f} s ({rate:,.0f} rows/s), seed {report.seed}",
    )
    sm = report.samples
    users: list[tuple[str, UUID | None, str, UUID | None, UUID | None]] = [
        (
            "vendor with guest access",
            sm.vendor_user_id,
            "vendor",
            sm.vendor_organization_id,
            sm.vendor_wedding_id,
        ),
        ("couple partner", sm.couple_user_id, "couple", None, sm.couple_wedding_id),
        (
            "vendor without guest access",
            sm.restricted_user_id,
            "vendor",
            sm.restricted_organization_id,
            sm.restricted_wedding_id,
        ),
    ]
    out.print("\nsample users for db.as_user(...):")
    for label, user_id, audience, organization_id, wedding_id in users:
        if user_id is None:
            continue
        out.print(f"  {label}")
        out.print(f'    {{"sub": "{user_id}", "aud": "{audience}"}}', markup=False)
        if organization_id is not None:
            out.print(f"    organization {organization_id}")
        out.print(f"    wedding      {wedding_id}")
