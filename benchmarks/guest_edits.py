"""20 concurrent editors of one wedding's guest list, through the HTTP data API.

The editors (two partners and planners of the wedding, each with its own access token) work
for a fixed time on a few shared guests, so that they collide: each edit reads a guest (GET),
appends its own mark to the guest's notes and sends it back with `If-Match` (PATCH); on 412 it
reads again and retries. A lost update would be a PATCH answered 200 whose mark is missing
from the final row. The server is a uvicorn process wired as `wedsync-db up` wires it, with
the per-user rate limit off (these editors are scripts, not people).

Prints successes, 412s, lost updates, PATCH latency p50/p95 (every PATCH, 412s included).
Last line: `guest edits: lost=0 p95_ms=X`.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
import uuid

import httpx

from _common import api_server, benchmark_database, migrate, sizes, wedding_with_partner
from wedsync_db.db.client import Database, user_dsn_for
from wedsync_db.identity import development_token


async def setup(
    dsn: str, editors: int, guests: int
) -> tuple[uuid.UUID, list[uuid.UUID], list[uuid.UUID]]:
    db = Database(user_dsn=user_dsn_for(dsn), service_dsn=dsn, user_pool_size=1)
    await db.open()
    try:
        async with db.service(reason="benchmark setup") as s:
            wedding, partner = await wedding_with_partner(s, "Guest edits", 120)
            users = [partner] + [uuid.uuid4() for _ in range(editors - 1)]
            for n, user in enumerate(users[1:]):
                role = "partner" if n == 0 else "planner"
                await s.execute(
                    "insert into wedding_members values (%s, %s, %s)", (wedding, user, role)
                )
            rows = await s.fetch_tuples(
                "insert into guests (wedding_id, first_name, notes)"
                " select %s, 'Guest ' || g, '' from generate_series(1, %s) g returning id",
                (wedding, guests),
            )
    finally:
        await db.close()
    return wedding, users, [r[0] for r in rows]


async def edit(
    client: httpx.AsyncClient,
    token: str,
    url_of: list[str],
    name: str,
    until: float,
    latencies: list[float],
    counts: dict[str, int],
) -> dict[str, list[str]]:
    """Append marks until the time is up; returns the marks acknowledged, per guest URL."""
    headers = {"Authorization": f"Bearer {token}"}
    done: dict[str, list[str]] = {}
    n = 0
    rng = random.Random(name)
    while time.monotonic() < until:
        url, mark = rng.choice(url_of), f"{name}.{n};"
        n += 1
        while True:
            read = await client.get(url, headers=headers)
            read.raise_for_status()
            notes = read.json()["notes"] or ""
            started = time.perf_counter()
            answer = await client.patch(
                url,
                json={"notes": notes + mark},
                headers={**headers, "If-Match": read.headers["etag"]},
            )
            latencies.append((time.perf_counter() - started) * 1000)
            if answer.status_code == 200:
                counts["ok"] += 1
                done.setdefault(url, []).append(mark)
                break
            if answer.status_code != 412:
                counts["other"] += 1
                break
            counts["stale"] += 1
    return done


async def run(dsn: str, editors: int, guests: int, seconds: float) -> tuple[int, float]:
    await migrate(dsn)
    wedding, users, guest_ids = await setup(dsn, editors, guests)
    with api_server(dsn, WEDSYNC_API_USER_RATE="0") as (base, secret):
        urls = [f"/api/v1/weddings/{wedding}/guests/{g}" for g in guest_ids]
        tokens = [development_token(secret, u, "couple") for u in users]
        latencies: list[float] = []
        counts = {"ok": 0, "stale": 0, "other": 0}
        limits = httpx.Limits(max_connections=editors, max_keepalive_connections=editors)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
            until = time.monotonic() + seconds
            acknowledged = await asyncio.gather(
                *(
                    edit(client, tok, urls, f"e{i}", until, latencies, counts)
                    for i, tok in enumerate(tokens)
                )
            )
            final = {}
            for url in urls:
                row = await client.get(url, headers={"Authorization": f"Bearer {tokens[0]}"})
                final[url] = row.json()["notes"] or ""
    lost = sum(
        1 for marks in acknowledged for url, ms in marks.items() for m in ms if m not in final[url]
    )
    q = statistics.quantiles(latencies, n=100) if len(latencies) >= 2 else latencies * 99
    p50, p95 = statistics.median(latencies), q[94]
    print(
        f"editors: {editors} on {guests} shared guest(s) of one wedding, {seconds:g} s, "
        f"HTTP/1.1 keep-alive to {base}"
    )
    print(
        f"successes: {counts['ok']} ({counts['ok'] / seconds:.0f}/s)  412s: {counts['stale']}  "
        f"other answers: {counts['other']}  lost updates: {lost}"
    )
    print(f"PATCH latency: p50 {p50:.1f} ms  p95 {p95:.1f} ms  ({len(latencies)} PATCHes)")
    if counts["other"]:
        raise SystemExit("some PATCHes were answered neither 200 nor 412")
    return lost, p95


def main() -> None:
    args = sizes(
        __doc__,
        editors=(20, 20, "concurrent editors"),
        guests=(5, 5, "guests they share"),
        seconds=(20.0, 3.0, "how long they edit"),
    )
    with benchmark_database() as dsn:
        lost, p95 = asyncio.run(run(dsn, args.editors, args.guests, args.seconds))
    print(f"guest edits: lost={lost} p95_ms={p95:.1f}")


if __name__ == "__main__":
    main()
