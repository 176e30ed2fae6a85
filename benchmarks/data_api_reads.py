"""A guest-list page of 100 through `GET /api/v1/weddings/{id}/guests` vs the same read
through `as_user` in this process.

* as_user   `guests.list_guests(db, claims, wedding, limit=100)`: a user scope, the keyset
            query under row level security, 100 typed rows (the baseline);
* api       the same page over HTTP/1.1 keep-alive from a uvicorn process wired as
            `wedsync-db up` wires it: token verification, rate limits, the same data-layer
            call, JSON encoding, the HTTP round trip and decoding the answer here.

One call at a time, interleaved call by call, both warmed alike; the in-process read is also
shown with the JSON encoding the API does, to tell that part from the HTTP layer's own.
Last line: `api/as_user ratio: X.XX` (median latency over median latency).
"""

from __future__ import annotations

import asyncio
import statistics
import time

import httpx

from _common import api_server, benchmark_database, migrate, sizes
from scoped_reads import setup
from wedsync_db.api.v1.http import page_response
from wedsync_db.data import guests
from wedsync_db.data.guests import Guest
from wedsync_db.db.client import Database, user_dsn_for
from wedsync_db.identity import development_token

PAGE = 100


async def run(dsn: str, iterations: int, count: int) -> float:
    await migrate(dsn)
    db = Database(user_dsn=user_dsn_for(dsn), service_dsn=dsn, user_pool_size=2)
    await db.open()
    try:
        wedding, partner = await setup(db, count)
        claims = {"sub": str(partner), "aud": "couple"}
        with api_server(dsn, WEDSYNC_API_USER_RATE="0") as (base, secret):
            headers = {"Authorization": f"Bearer {development_token(secret, partner, 'couple')}"}
            url = f"/api/v1/weddings/{wedding}/guests?limit={PAGE}"
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:

                async def api() -> None:
                    answer = await client.get(url, headers=headers)
                    assert answer.status_code == 200 and len(answer.json()["items"]) == PAGE

                async def in_process() -> None:
                    page = await guests.list_guests(db, claims, wedding, limit=PAGE)
                    assert len(page.rows) == PAGE

                async def with_json() -> None:
                    page = await guests.list_guests(db, claims, wedding, limit=PAGE)
                    assert len(page_response(page, Guest).body) > 0

                targets = {"api": api, "as_user": in_process, "as_user+json": with_json}
                times: dict[str, list[float]] = {name: [] for name in targets}
                for _ in range(max(10, iterations // 10)):  # warm-up, not recorded
                    for call in targets.values():
                        await call()
                for i in range(iterations):
                    order = list(targets.items())
                    if i % 2:
                        order.reverse()
                    for name, call in order:
                        started = time.perf_counter()
                        await call()
                        times[name].append((time.perf_counter() - started) * 1000)
    finally:
        await db.close()
    median = {name: statistics.median(t) for name, t in times.items()}
    print(f"a page of {PAGE} of {count} guests, {iterations} calls each, interleaved")
    for name, t in times.items():
        p95 = statistics.quantiles(t, n=20)[18]
        print(f"{name:<13} median {median[name]:6.2f} ms  p95 {p95:6.2f} ms")
    return median["api"] / median["as_user"]


def main() -> None:
    args = sizes(
        __doc__,
        iterations=(1000, 50, "calls per target"),
        guests=(300, 300, "guests in the wedding"),
    )
    with benchmark_database() as dsn:
        ratio = asyncio.run(run(dsn, args.iterations, args.guests))
    print(f"api/as_user ratio: {ratio:.2f}")


if __name__ == "__main__":
    main()
