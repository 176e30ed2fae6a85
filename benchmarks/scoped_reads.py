"""Tenant-scoped read through `db.as_user` vs the same query on a raw autocommit connection.

All three read the same 100 guests of one wedding, interleaved call by call in one process,
each warmed alike:

* raw       a superuser's autocommit connection (no RLS at all): the baseline;
* rls floor the same read as `authenticated` on a dedicated connection whose role and signed
            claims were set once for the session: what row level security itself costs;
* scoped    `db.as_user(claims)` + `fetch_tuples`: a pooled connection, the scope's settings
            and the read in one round trip.

The iterations run in rounds; the spread is the lowest and highest scoped/raw ratio of a round.
Last line: `scoped/raw ratio: X.XX` (target ≤ 1.5).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

import psycopg

from _common import benchmark_database, migrate, sizes, wedding_with_partner
from wedsync_db.db.client import Database, user_dsn_for

QUERY = (
    "select id, first_name, last_name, email, rsvp_status, dietary_requirements, table_number, "
    "plus_one, version from guests where wedding_id = %s order by last_name, first_name"
)
GUESTS = 100


async def setup(db: Database, guests: int) -> tuple[uuid.UUID, uuid.UUID]:
    async with db.service(reason="benchmark setup") as s:
        wedding, couple = await wedding_with_partner(s, "Benchmark", 90)
        await s.copy_rows(
            ("public", "guests"),
            ["wedding_id", "first_name", "last_name", "email", "rsvp_status"],
            (
                (wedding, f"Guest{i}", f"Family{i % 17}", f"guest{i}@example.org", "accepted")
                for i in range(guests)
            ),
        )
    return wedding, couple


async def rls_floor_connection(dsn: str, couple: uuid.UUID) -> psycopg.AsyncConnection[object]:
    """A user-pool login that became `authenticated` with signed claims once, for good."""
    async with await psycopg.AsyncConnection.connect(dsn) as admin:
        cur = await admin.execute("select key from wedsync.claims_signing_key")
        row = await cur.fetchone()
    claims = json.dumps({"sub": str(couple), "aud": "couple", "role": "authenticated"})
    signature = hmac.new(bytes(row[0]), claims.encode(), hashlib.sha256).hexdigest() if row else ""
    conn = await psycopg.AsyncConnection.connect(user_dsn_for(dsn), autocommit=True)
    await conn.execute(
        "select set_config('role', 'authenticated', false),"
        " set_config('request.jwt.claims', %s, false),"
        " set_config('wedsync.claims_signature', %s, false)",
        (claims, signature),
    )
    return conn


Read = Callable[[], Awaitable[int]]


async def main(iterations: int, warmup: int, rounds: int) -> float:
    with benchmark_database() as dsn:
        await migrate(dsn)
        db = Database(
            user_dsn=user_dsn_for(dsn), service_dsn=dsn, user_pool_size=2, service_pool_size=1
        )
        await db.open()
        wedding, couple = await setup(db, GUESTS)
        claims = {"sub": str(couple), "aud": "couple"}
        raw = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
        floor = await rls_floor_connection(dsn, couple)

        async def raw_read() -> int:
            cur = await raw.execute(QUERY, (wedding,))
            return len(await cur.fetchall())

        async def floor_read() -> int:
            cur = await floor.execute(QUERY, (wedding,))
            return len(await cur.fetchall())

        async def scoped_read() -> int:
            async with db.as_user(claims) as s:
                return len(await s.fetch_tuples(QUERY, (wedding,)))

        variants: dict[str, Read] = {
            "raw": raw_read,
            "rls floor": floor_read,
            "scoped": scoped_read,
        }
        times: dict[str, list[list[float]]] = {name: [] for name in variants}
        per_round = max(1, iterations // rounds)
        try:
            order = list(variants.items())
            for _ in range(warmup):
                for _, fn in order:
                    assert await fn() == GUESTS
            for r in range(rounds):
                for name in variants:
                    times[name].append([])
                for i in range(per_round):
                    # rotate which variant goes first so none always follows another
                    k = (i + r) % len(order)
                    for name, fn in order[k:] + order[:k]:
                        t0 = time.perf_counter()
                        n = await fn()
                        times[name][-1].append(time.perf_counter() - t0)
                        assert n == GUESTS, (name, n)
        finally:
            await raw.close()
            await floor.close()
            async with db.service(reason="benchmark cleanup") as s:
                await s.execute("delete from weddings where id = %s", (wedding,))
            await db.close()

    def median_us(name: str) -> float:
        return statistics.median(t for rnd in times[name] for t in rnd) * 1e6

    def p95_us(name: str) -> float:
        return statistics.quantiles([t for rnd in times[name] for t in rnd], n=20)[18] * 1e6

    print(f"iterations: {per_round * rounds} in {rounds} rounds, {warmup} warm-up each")
    for name in variants:
        print(f"{name:9s} median: {median_us(name):4.0f} µs  p95: {p95_us(name):4.0f} µs")
    round_ratios = [
        statistics.median(s) / statistics.median(r)
        for s, r in zip(times["scoped"], times["raw"], strict=True)
    ]
    ratio = median_us("scoped") / median_us("raw")
    print(f"rls floor/raw ratio: {median_us('rls floor') / median_us('raw'):.2f}")
    print(f"scoped/rls-floor ratio: {median_us('scoped') / median_us('rls floor'):.2f}")
    print(f"scoped/raw by round: {min(round_ratios):.2f}–{max(round_ratios):.2f}")
    print(f"scoped/raw ratio: {ratio:.2f}")
    return ratio


if __name__ == "__main__":
    args = sizes(__doc__, iterations=(3000, 200), rounds=(5, 2))
    asyncio.run(main(args.iterations, warmup=50 if args.smoke else 300, rounds=args.rounds))
