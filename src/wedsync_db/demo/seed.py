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
_TABLE_LIST = ", ".join(f"public.{t}" for t in TENANT_TABLES)
_RESET_SQL = f"truncate table {_TABLE_LIST} cascade"
# fresh statistics, so that row estimates and index advice describe the seeded rows at once
_ANALYZE_SQL = f"analyze {_TABLE_LIST}"


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
    # ANALYZE needs the tables' owner (or MAINTAIN): the service pool's login
    async with db.ops(reason="demo seed statistics") as session:
        await session.execute(_ANALYZE_SQL)
    return SeedReport(
        seed=seed,
        counts=counts,
        elapsed_seconds=time.perf_counter() - started,
        samples=data.samples,
    )
