"""Load generated demo data: one service transaction, one COPY per table, streamed."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from wedsync_db.db.client import Database
from wedsync_db.demo.generate import PEAK_MONTHS, DemoSamples, DemoSize, generate_demo
from wedsync_db.errors import Conflict

TENANT_TABLES = (
    "organizations",
    "organization_members",
    "clients",
    "weddings",
    "wedding_members",
    "wedding_vendors",
    "guests",
)
_RESET_SQL = (
    "truncate table public.organizations, public.organization_members, public.clients, "
    "public.weddings, public.wedding_members, public.wedding_vendors, public.guests cascade"
)


@dataclass(frozen=True)
class SeedReport:
    """What a seed run wrote, how long it took, and ids to try ``as_user`` with."""

    seed: int
    counts: dict[str, int]
    elapsed_seconds: float
    samples: DemoSamples

    @property
    def total_rows(self) -> int:
        """Rows written across all tables."""
        return sum(self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "seed": self.seed,
            "counts": dict(self.counts),
            "total_rows": self.total_rows,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "samples": {
                k: str(v) if v is not None else None for k, v in asdict(self.samples).items()
            },
        }


async def reset_tenant_tables(db: Database) -> None:
    """Empty every tenant table (TRUNCATE … CASCADE): all rows, not only demo ones."""
    # service_role may delete but not truncate; the service pool's login owns the tables
    async with db.ops(reason="demo reset") as session:
        await session.execute(_RESET_SQL)


async def seed(
    db: Database,
    *,
    organizations: int,
    weddings: int,
    guests_per_wedding: int,
    seed: int = 0,
    today: date | None = None,
    peak_months: frozenset[int] = PEAK_MONTHS,
) -> SeedReport:
    """Generate and load linked demo data in one transaction; a failure leaves nothing behind."""
    size = DemoSize(organizations, weddings, guests_per_wedding, seed)
    started = time.perf_counter()
    data = generate_demo(size, today or date.today(), peak_months=peak_months)
    counts: dict[str, int] = {}
    try:
        async with db.service(reason="demo seed") as session:
            for table, columns, rows in data.tables():
                counts[table] = await session.copy_rows(("public", table), columns, rows)
    except Conflict as exc:
        if not (exc.constraint or "").endswith(("_pkey", "_key")):
            raise
        # ids and slugs derive from the seed: the same seed twice collides
        raise Conflict(
            f"demo rows for seed {seed} already exist ({exc}); "
            "use another seed or empty the tenant tables first",
            constraint=exc.constraint,
        ) from exc
    return SeedReport(
        seed=seed,
        counts=counts,
        elapsed_seconds=time.perf_counter() - started,
        samples=data.samples,
    )
