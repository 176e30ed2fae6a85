"""Seeding demo data into a real database: counts, tenant isolation, all-or-nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from wedsync_db.db.client import Database
from wedsync_db.demo.generate import DemoData, Guest
from wedsync_db.demo.seed import TENANT_TABLES, SeedReport, reset_tenant_tables, seed
from wedsync_db.errors import Conflict, WedsyncDBError

TODAY = date(2026, 11, 25)
GUESTS_PER_WEDDING = 7


async def table_counts(db: Database) -> dict[str, int]:
    async with db.service(reason="test counts") as s:
        return {t: await s.fetch_val(f"select count(*) from public.{t}") for t in TENANT_TABLES}


async def seed_small(db: Database, seed_value: int = 42) -> SeedReport:
    return await seed(
        db,
        organizations=6,
        weddings=5,
        guests_per_wedding=GUESTS_PER_WEDDING,
        seed=seed_value,
        today=TODAY,
    )


async def test_seed_writes_every_table(database: Database) -> None:
    report = await seed_small(database)
    assert report.counts["organizations"] == 6
    assert report.counts["weddings"] == 5
    assert report.counts["guests"] == 5 * GUESTS_PER_WEDDING
    assert report.elapsed_seconds > 0
    assert await table_counts(database) == report.counts


async def test_seed_leaves_fresh_statistics(database: Database) -> None:
    report = await seed_small(database)
    async with database.ops(reason="test statistics") as s:
        for table in TENANT_TABLES:
            [(analyzed, estimate)] = await s.fetch_tuples(
                "select s.last_analyze is not null, c.reltuples::bigint from pg_stat_user_tables s"
                " join pg_class c on c.oid = s.relid where s.schemaname = 'public'"
                " and s.relname = %s",
                (table,),
            )
            assert analyzed, table
            assert estimate == report.counts[table], table


async def test_couple_sees_exactly_its_wedding_guests(database: Database) -> None:
    report = await seed_small(database)
    sm = report.samples
    async with database.as_user({"sub": str(sm.couple_user_id), "aud": "couple"}) as s:
        assert await s.fetch_val("select count(*) from guests") == GUESTS_PER_WEDDING
        assert await s.fetch_val("select array_agg(distinct wedding_id) from guests") == [
            sm.couple_wedding_id
        ]
        assert await s.fetch_val("select count(*) from weddings") == 1


async def test_vendor_guest_access_follows_the_link(database: Database) -> None:
    report = await seed_small(database)
    sm = report.samples
    assert sm.restricted_user_id is not None
    count = "select count(*) from guests where wedding_id = %s"
    async with database.as_user({"sub": str(sm.vendor_user_id), "aud": "vendor"}) as s:
        assert await s.fetch_val(count, (sm.vendor_wedding_id,)) == GUESTS_PER_WEDDING
    async with database.as_user({"sub": str(sm.restricted_user_id), "aud": "vendor"}) as s:
        # the vendor works on the wedding but was not given the guest list
        assert (
            await s.fetch_val(
                "select count(*) from weddings where id = %s", (sm.restricted_wedding_id,)
            )
            == 1
        )
        assert await s.fetch_val(count, (sm.restricted_wedding_id,)) == 0


async def test_failure_midway_leaves_nothing(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = DemoData.guests

    def guests_then_invalid(self: DemoData) -> Iterator[Guest]:
        rows = list(original(self))
        yield from rows[:10]
        yield rows[10]._replace(rsvp_status="perhaps")  # violates the check constraint

    monkeypatch.setattr(DemoData, "guests", guests_then_invalid)
    with pytest.raises(WedsyncDBError, match="guests_rsvp_status_check"):
        await seed_small(database)
    assert set((await table_counts(database)).values()) == {0}


async def test_running_twice_adds_data_and_same_seed_conflicts(database: Database) -> None:
    await seed_small(database, seed_value=1)
    await seed_small(database, seed_value=2)
    counts = await table_counts(database)
    assert counts["organizations"] == 12
    assert counts["guests"] == 10 * GUESTS_PER_WEDDING
    with pytest.raises(Conflict, match="already exist"):
        await seed_small(database, seed_value=1)
    assert await table_counts(database) == counts


async def test_reset_empties_the_tenant_tables(database: Database) -> None:
    await seed_small(database)
    await reset_tenant_tables(database)
    assert set((await table_counts(database)).values()) == {0}
