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
            "insert into weddings (id, title, wedding_date) "
            "values (%s, 'Benchmark', current_date + 90)",
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
        db = Database(
            user_dsn=user_dsn_for(dsn), service_dsn=dsn, user_pool_size=2, service_pool_size=1
        )
        await db.open()
        wedding, couple = await setup(db, 100)
        claims = {"sub": str(couple), "aud": "couple"}
        raw = await psycopg.AsyncConnection.connect(dsn, autocommit=True)

        async def scoped_read() -> int:
            async with db.as_user(claims) as s:
                return len(await s.fetch_tuples(QUERY, (wedding,)))

        async def raw_read() -> int:
            cur = await raw.execute(QUERY, (wedding,))
            return len(await cur.fetchall())

        scoped_times: list[float] = []
        raw_times: list[float] = []
        try:
            for i in range(warmup + iterations):
                # alternate which side runs first so neither always follows the other
                order = (scoped_read, raw_read) if i % 2 else (raw_read, scoped_read)
                for fn in order:
                    t0 = time.perf_counter()
                    n = await fn()
                    elapsed = time.perf_counter() - t0
                    assert n == 100, n
                    if i >= warmup:
                        (scoped_times if fn is scoped_read else raw_times).append(elapsed)
        finally:
            await raw.close()
            async with db.service(reason="benchmark cleanup") as s:
                await s.execute("delete from weddings where id = %s", (wedding,))
            await db.close()
    scoped_med = statistics.median(scoped_times) * 1e6
    raw_med = statistics.median(raw_times) * 1e6
    print(f"iterations: {iterations}")
    scoped_p95 = statistics.quantiles(scoped_times, n=20)[18] * 1e6
    raw_p95 = statistics.quantiles(raw_times, n=20)[18] * 1e6
    print(f"scoped (as_user) median: {scoped_med:.0f} µs  p95: {scoped_p95:.0f} µs")
    print(f"raw autocommit   median: {raw_med:.0f} µs  p95: {raw_p95:.0f} µs")
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
