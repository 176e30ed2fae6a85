"""Tenant-scoped read through `db.as_user` vs the same query on a raw autocommit connection.

Both read the same 100 guests of one wedding, interleaved, in one process.
Last line: `scoped/raw ratio: X.XX` (target ≤ 1.5).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

import psycopg
from _common import benchmark_database, migrate

from wedsync_db.db.client import Database, user_dsn_for

QUERY = (
    "select id, first_name, last_name, email, rsvp_status, dietary_requirements, table_number, "
    "plus_one, version from guests where wedding_id = %s order by last_name, first_name"
)


async def setup(db: Database, guests: int) -> tuple[uuid.UUID, uuid.UUID]:
    wedding, couple = uuid.uuid4(), uuid.uuid4()
    async with db.service(reason="benchmark setup") as s:
        await s.execute(
            "insert into weddings (id, title, wedding_date) values (%s, 'Benchmark', current_date + 90)",
            (wedding,),
        )
        await s.execute("insert into wedding_members values (%s, %s, 'partner')", (wedding, couple))
        await s.copy_rows(
            ("public", "guests"),
            ["wedding_id", "first_name", "last_name", "email", "rsvp_status"],
            (
                (wedding, f"Guest{i}", f"Family{i % 17}", f"guest{i}@example.org", "accepted")
                for i in range(guests)
            ),
        )
    return wedding, couple


async def main(iterations: int, warmup: int) -> float:
    with benchmark_database() as dsn:
        await migrate(dsn)
        db = Database(user_dsn=user_dsn_for(dsn), service_dsn=dsn, user_pool_size=2, service_pool_size=1)
        await db.open()
        wedding, couple = await setup(db, 100)
        claims = {"sub": str(couple), "aud": "couple"}
        raw = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
        scoped_times: list[float] = []
        raw_times: list[float] = []
        try:
            for i in range(warmup + iterations):
                t0 = time.perf_counter()
                async with db.as_user(claims) as s:
                    cur = await s.connection.execute(QUERY, (wedding,))
                    rows_scoped = await cur.fetchall()
                t1 = time.perf_counter()
                cur2 = await raw.execute(QUERY, (wedding,))
                rows_raw = await cur2.fetchall()
                t2 = time.perf_counter()
                assert len(rows_scoped) == len(rows_raw) == 100, (len(rows_scoped), len(rows_raw))
                if i >= warmup:
                    scoped_times.append(t1 - t0)
                    raw_times.append(t2 - t1)
        finally:
            await raw.close()
            async with db.service(reason="benchmark cleanup") as s:
                await s.execute("delete from weddings where id = %s", (wedding,))
            await db.close()
    scoped_med = statistics.median(scoped_times) * 1e6
    raw_med = statistics.median(raw_times) * 1e6
    print(f"iterations: {iterations}")
    print(f"scoped (as_user) median: {scoped_med:.0f} µs  p95: {statistics.quantiles(scoped_times, n=20)[18] * 1e6:.0f} µs")
    print(f"raw autocommit   median: {raw_med:.0f} µs  p95: {statistics.quantiles(raw_times, n=20)[18] * 1e6:.0f} µs")
    ratio = scoped_med / raw_med
    print(f"scoped/raw ratio: {ratio:.2f}")
    return ratio


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--smoke", action="store_true", help="small size for CI")
    args = parser.parse_args()
    n = 200 if args.smoke else args.iterations
    asyncio.run(main(n, warmup=50 if args.smoke else 300))
