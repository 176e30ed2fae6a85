"""1000 concurrent simulated users through the dual client on a 20-connection budget.

Couples read their guest list and update RSVPs, vendors read their client list, with a short
think time between actions. The same workload first runs for one user at a time in the same
process (the uncontended baseline). Prints p50/p95/p99, errors and the pools' wait counters;
last line `users/single p95 ratio: X.XX`. Targets: p95 ≤ 200 ms, 0 errors.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field

from _common import benchmark_database, migrate, sizes
from wedsync_db.db.client import Database, user_dsn_for
from wedsync_db.demo.seed import seed
from wedsync_db.errors import WedsyncDBError

BUDGET = 20  # connections the whole process may use (user 16 + service 4)
GUESTS = "select id, first_name, last_name, rsvp_status, version from guests where wedding_id = %s"
CLIENTS = (
    "select id, partner1_name, wedding_date, status from clients "
    "where organization_id = %s order by wedding_date limit 50"
)
RSVP = (
    "update guests set rsvp_status = %s where wedding_id = %s "
    "and id = (select id from guests where wedding_id = %s limit 1)"
)


@dataclass
class Results:
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, exc: BaseException) -> None:
        name = type(exc).__name__
        self.errors[name] = self.errors.get(name, 0) + 1

    def p(self, pct: int) -> float:
        values = sorted(self.latencies_ms)
        return values[min(len(values) - 1, int(len(values) * pct / 100))] if values else 0.0


async def people(db: Database) -> tuple[list[tuple[str, uuid.UUID]], list[tuple[str, uuid.UUID]]]:
    async with db.service(reason="benchmark: pick users") as s:
        couples = await s.fetch_tuples(
            "select user_id::text, wedding_id from wedding_members where role = 'partner'"
        )
        vendors = await s.fetch_tuples(
            "select user_id::text, organization_id from organization_members"
        )
    return [(str(u), w) for u, w in couples], [(str(u), o) for u, o in vendors]


async def act(db: Database, rng: random.Random, couples: list, vendors: list, out: Results) -> None:
    started = time.perf_counter()
    try:
        if rng.random() < 0.7:
            user, wedding = rng.choice(couples)
            async with db.as_user({"sub": user, "aud": "couple"}) as s:
                await s.fetch_tuples(GUESTS, (wedding,))
                if rng.random() < 0.3:
                    status = rng.choice(["accepted", "declined", "maybe"])
                    await s.execute(RSVP, (status, wedding, wedding))
        else:
            user, org = rng.choice(vendors)
            async with db.as_user({"sub": user, "aud": "vendor"}) as s:
                await s.fetch_tuples(CLIENTS, (org,))
    except WedsyncDBError as exc:
        out.error(exc)
        return
    out.latencies_ms.append((time.perf_counter() - started) * 1000)


async def user_loop(
    db: Database, seed_: int, deadline: float, couples: list, vendors: list, out: Results
) -> None:
    rng = random.Random(seed_)
    await asyncio.sleep(rng.random() * 0.5)  # users arrive over half a second
    while time.perf_counter() < deadline:
        await act(db, rng, couples, vendors, out)
        await asyncio.sleep(rng.uniform(0.2, 1.0))  # think time between clicks


def report(name: str, r: Results, seconds: float) -> None:
    n = len(r.latencies_ms)
    print(
        f"{name:<14} {n / seconds:8.0f} actions/s  p50 {r.p(50):7.1f} ms  p95 {r.p(95):7.1f} ms  "
        f"p99 {r.p(99):7.1f} ms  errors {sum(r.errors.values())} {r.errors or ''}"
    )


async def main(users: int, seconds: float, weddings: int) -> float:
    with benchmark_database() as dsn:
        await migrate(dsn)
        db = Database(
            user_dsn=user_dsn_for(dsn),
            service_dsn=dsn,
            user_pool_size=BUDGET * 4 // 5,
            service_pool_size=BUDGET // 5,
            pool_timeout=5.0,
            max_waiting=users * 2,
        )
        await db.open()
        try:
            report_ = await seed(
                db,
                organizations=max(10, weddings // 5),
                weddings=weddings,
                guests_per_wedding=100,
                seed=random.randrange(1 << 30),
            )
            couples, vendors = await people(db)
            # baseline: the same actions, one user at a time
            single = Results()
            rng = random.Random(1)
            t0 = time.perf_counter()
            for _ in range(300):
                await act(db, rng, couples, vendors, single)
            single_s = time.perf_counter() - t0
            before = db.pool_stats()["user"]
            loaded = Results()
            t0 = time.perf_counter()
            deadline = t0 + seconds
            await asyncio.gather(
                *(user_loop(db, i, deadline, couples, vendors, loaded) for i in range(users))
            )
            loaded_s = time.perf_counter() - t0
            after = db.pool_stats()["user"]
        finally:
            await db.close()
    print(f"seeded {report_.counts.get('guests', 0)} guests; budget {BUDGET} connections")
    report("single user", single, single_s)
    report(f"{users} users", loaded, loaded_s)
    waits = after.get("requests_waiting", 0)
    waited = after.get("requests_queued", 0) - before.get("requests_queued", 0)
    wait_ms = after.get("requests_wait_ms", 0) - before.get("requests_wait_ms", 0)
    print(
        f"pool waits: {waited} checkouts queued, {wait_ms} ms waited in total, "
        f"{waits} still waiting, {after.get('requests_errors', 0)} errors"
    )
    ratio = loaded.p(95) / single.p(95) if single.p(95) else float("nan")
    errors = sum(loaded.errors.values())
    print(f"p95 under load: {loaded.p(95):.1f} ms (target ≤ 200), errors {errors}")
    print(f"users/single p95 ratio: {ratio:.2f}")
    return ratio


if __name__ == "__main__":
    args = sizes(__doc__, users=(1000, 100), seconds=(20.0, 3.0))
    asyncio.run(main(users=args.users, seconds=args.seconds, weddings=50 if args.smoke else 300))
