"""Change feed: SSE subscribers of a real uvicorn server on 127.0.0.1, writers at a steady rate.

One server process (our app wired as `wedsync-db up` wires it) serves
`GET /api/v1/weddings/{id}/changes` as Server-Sent Events. This process seeds the weddings
(each with its couple and a vendor organization with guest access, every subscriber a user of
its own), opens the subscribers, and commits guest updates at a steady rate spread over the
weddings. Each change is timed from its writer's COMMIT returning to its event arriving at
each subscriber that may see it (all of them here: couples and vendors with guest access).

Two phases on the same weddings and write rate: few subscribers, then many. Database
transactions per second (pg_stat_database, the writers' own commits subtracted) must stay
flat between them: the server reads once per wedding and kind of access, not per subscriber.
Prints p50/p99 commit→event, events/s delivered, missing events and queries/s per phase; the
last line is `change feed: p99_ms=X events_per_s=Y queries_per_s=Z` for the larger phase.
Target: p99 ≤ 1000 ms.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


# --- server process -------------------------------------------------------------------------
def serve(dsn: str, data_dir: str) -> None:
    """Serve the app on an ephemeral port (printed first) until terminated; the JWT secret
    arrives on stdin (never in argv or the environment)."""
    import uvicorn
    from pydantic import SecretStr

    from wedsync_db.api.app import create_app
    from wedsync_db.migrate.runner import MigrationRunner, RunnerOptions
    from wedsync_db.runtime import database_for
    from wedsync_db.settings import Settings

    settings = Settings(
        _env_file=None,
        service_key=SecretStr(secrets.token_urlsafe(32)),
        jwt_secret=SecretStr(sys.stdin.readline().strip()),
        data_dir=Path(data_dir),
        # the monitor's own queries stay out of the measurement window
        sample_interval=3600.0,
    )
    database = database_for(settings, dsn)
    runner = MigrationRunner(dsn, options=RunnerOptions(actor="benchmark"))
    app = create_app(settings, database=database, runner=runner)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", timeout_keep_alive=60
    )
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))


# --- the world ------------------------------------------------------------------------------
@dataclass
class Wedding:
    id: uuid.UUID
    guests: list[uuid.UUID]
    couples: list[uuid.UUID] = field(default_factory=list)
    vendors: list[uuid.UUID] = field(default_factory=list)


async def seed(db: Any, weddings: int, users_per_wedding: int) -> list[Wedding]:
    """Weddings with 20 guests, a vendor with guest access and ``users_per_wedding`` users
    (half the couple's side, half the vendor's)."""
    out = []
    async with db.service(reason="benchmark: change feed world") as s:
        for n in range(weddings):
            wedding, org = uuid.uuid4(), uuid.uuid4()
            await s.execute(
                "insert into weddings (id, title, wedding_date) values"
                " (%s, %s, current_date + 100)",
                (wedding, f"Feed benchmark {n}"),
            )
            await s.execute(
                "insert into organizations (id, name, slug, tier)"
                " values (%s, 'Feed vendor', %s, 'enterprise')",
                (org, f"feed-{org.hex[:12]}"),
            )
            await s.execute(
                "insert into wedding_vendors (wedding_id, organization_id, status,"
                " can_view_guests) values (%s, %s, 'accepted', true)",
                (wedding, org),
            )
            guests = [uuid.uuid4() for _ in range(20)]
            for i, g in enumerate(guests):
                await s.execute(
                    "insert into guests (wedding_id, id, first_name) values (%s, %s, %s)",
                    (wedding, g, f"Guest {i}"),
                )
            w = Wedding(wedding, guests)
            for i in range(users_per_wedding):
                user = uuid.uuid4()
                if i % 2 == 0:
                    role = "partner" if not w.couples else "planner"
                    await s.execute(
                        "insert into wedding_members (wedding_id, user_id, role)"
                        " values (%s, %s, %s)",
                        (wedding, user, role),
                    )
                    w.couples.append(user)
                else:
                    await s.execute(
                        "insert into organization_members (organization_id, user_id, role)"
                        " values (%s, %s, 'member')",
                        (org, user),
                    )
                    w.vendors.append(user)
            out.append(w)
    return out


# --- subscribers ----------------------------------------------------------------------------
@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    events: int = 0
    errors: int = 0
    ready: int = 0
    # events per subscriber
    received: dict[int, int] = field(default_factory=dict)
    # set once every subscriber's stream is open (or failed)
    expected: int = 0
    all_open: asyncio.Event = field(default_factory=asyncio.Event)

    def opened(self, ok: bool) -> None:
        if ok:
            self.ready += 1
        else:
            self.errors += 1
        if self.ready + self.errors >= self.expected:
            self.all_open.set()

    def p(self, pct: float) -> float:
        values = sorted(self.latencies_ms)
        return values[min(len(values) - 1, int(len(values) * pct / 100))] if values else 0.0


async def subscriber(
    n: int,
    client: Any,
    wedding: uuid.UUID,
    token: str,
    committed: dict[tuple[str, int], float],
    tally: Tally,
    stop: asyncio.Event,
) -> None:
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    url = f"/api/v1/weddings/{wedding}/changes"
    try:
        async with client.stream("GET", url, headers=headers) as r:
            if r.status_code != 200:
                tally.opened(False)
                return
            kind = data = None
            async for line in r.aiter_lines():
                if stop.is_set():
                    return
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:"):
                    data = line[5:].strip()
                elif line == "":
                    if kind == "ready":
                        tally.opened(True)
                    elif kind == "change" and data:
                        arrived = time.perf_counter()
                        change = json.loads(data)
                        sent = committed.get((change["key"]["id"], change["version"]))
                        tally.events += 1
                        tally.received[n] = tally.received.get(n, 0) + 1
                        if sent is not None:
                            tally.latencies_ms.append((arrived - sent) * 1000.0)
                    kind = data = None
    except Exception:
        if not stop.is_set():
            tally.errors += 1


async def writer(
    db: Any,
    weddings: list[Wedding],
    rate: float,
    deadline: float,
    committed: dict[tuple[str, int], float],
    counts: dict[uuid.UUID, int],
) -> None:
    """Guest updates at ``rate`` commits/s, paced against the clock (no drift)."""
    rng = random.Random(11)
    # a fresh value every time: an update that changes nothing is not a change
    run = uuid.uuid4().hex[:8]
    interval = 1.0 / rate
    next_at = time.perf_counter()
    n = 0
    while time.perf_counter() < deadline:
        w = weddings[n % len(weddings)]
        guest = rng.choice(w.guests)
        async with db.service(reason="benchmark: writer") as s:
            version = await s.fetch_val(
                "update guests set notes = %s where id = %s and wedding_id = %s returning version",
                (f"note {run}-{n}", guest, w.id),
            )
        committed[(str(guest), int(version))] = time.perf_counter()
        counts[w.id] = counts.get(w.id, 0) + 1
        n += 1
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))


async def transactions(db: Any) -> int:
    async with db.service(reason="benchmark: counters") as s:
        value = await s.fetch_val(
            "select xact_commit + xact_rollback from pg_stat_database"
            " where datname = current_database()"
        )
    return int(value)


@dataclass
class Phase:
    subscribers: int
    seconds: float
    tally: Tally
    writes: int
    expected_events: int
    queries_per_s: float

    @property
    def events_per_s(self) -> float:
        return self.tally.events / self.seconds


async def phase(
    port: int,
    db: Any,
    world: list[Wedding],
    secret: str,
    subscribers: int,
    rate: float,
    seconds: float,
) -> Phase:
    import httpx

    from wedsync_db.identity import development_token

    tally = Tally(expected=subscribers)
    committed: dict[tuple[str, int], float] = {}
    counts: dict[uuid.UUID, int] = {}
    stop = asyncio.Event()
    watchers: list[tuple[uuid.UUID, str]] = []
    for i in range(subscribers):
        w = world[i % len(world)]
        j = i // len(world)
        people, audience = (w.couples, "couple") if j % 2 == 0 else (w.vendors, "vendor")
        user = people[(j // 2) % len(people)]
        watchers.append((w.id, development_token(secret, user, audience, ttl=3600)))  # type: ignore[arg-type]
    limits = httpx.Limits(max_connections=subscribers + 10, max_keepalive_connections=0)
    timeout = httpx.Timeout(10.0, read=None)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=timeout
    ) as client:
        tasks = [
            asyncio.create_task(subscriber(n, client, w, token, committed, tally, stop))
            for n, (w, token) in enumerate(watchers)
        ]
        await asyncio.wait_for(tally.all_open.wait(), 120.0)
        await asyncio.sleep(1.0)  # settle: every stream open and idle
        before = await transactions(db)
        started = time.perf_counter()
        await writer(db, world, rate, started + seconds, committed, counts)
        await asyncio.sleep(1.5)  # the last changes' events
        elapsed = time.perf_counter() - started
        after = await transactions(db)
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    writes = sum(counts.values())
    per_wedding = {w.id: 0 for w in world}
    for w, _ in watchers:
        per_wedding[w] += 1
    expected = sum(counts.get(w, 0) * n for w, n in per_wedding.items())
    # the writers' own transactions and this process's two counter reads are not the feed's
    feed_queries = (after - before) - writes - 1
    # every subscriber may see every change of its wedding
    short = sum(
        1 for n, (w, _) in enumerate(watchers) if tally.received.get(n, 0) < counts.get(w, 0)
    )
    if short:
        print(f"  {short} subscriber(s) received fewer events than their wedding's commits")
    return Phase(subscribers, elapsed, tally, writes, expected, feed_queries / elapsed)


def report(p: Phase) -> None:
    t = p.tally
    missing = p.expected_events - t.events
    print(
        f"{p.subscribers:4d} subscribers: {p.writes} commits, {t.events} events "
        f"({p.events_per_s:.0f}/s, {missing} missing, {t.errors} errors)  "
        f"commit→event p50 {t.p(50):.1f} ms p99 {t.p(99):.1f} ms  "
        f"feed queries {p.queries_per_s:.1f}/s"
    )


async def run(port: int, dsn: str, secret: str, args: Any) -> list[Phase]:
    from wedsync_db.db.client import Database, user_dsn_for

    db = Database(user_dsn=user_dsn_for(dsn), service_dsn=dsn, service_pool_size=4)
    await db.open()
    try:
        most = max(args.subscribers)
        world = await seed(db, args.weddings, max(2, -(-most // args.weddings)))
        return [
            await phase(port, db, world, secret, n, args.rate, args.seconds)
            for n in args.subscribers
        ]
    finally:
        await db.close()


def main(args: Any) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import benchmark_database, migrate, stop_process

    secret = secrets.token_urlsafe(32)
    with benchmark_database() as dsn, tempfile.TemporaryDirectory() as data_dir:
        asyncio.run(migrate(dsn))
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", data_dir],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "WEDSYNC_BENCH_DSN": dsn},
        )
        try:
            assert server.stdin is not None and server.stdout is not None
            server.stdin.write(secret + "\n")
            server.stdin.close()
            port = int(server.stdout.readline())
            phases = asyncio.run(run(port, dsn, secret, args))
        finally:
            stop_process(server, timeout=20)
    print(
        f"{args.weddings} weddings, writers at {args.rate:g} commits/s for {args.seconds:g} s "
        "per phase, SSE over 127.0.0.1"
    )
    for p in phases:
        report(p)
    few, many = phases[0], phases[-1]
    ratio = many.queries_per_s / few.queries_per_s if few.queries_per_s else float("nan")
    print(
        f"feed queries/s with {many.subscribers} vs {few.subscribers} subscribers: "
        f"{ratio:.2f}× (subscribers {many.subscribers / few.subscribers:.0f}×)"
    )
    print(f"p99 commit→event: {many.tally.p(99):.1f} ms (target ≤ 1000)")
    print(
        f"change feed: p99_ms={many.tally.p(99):.1f} events_per_s={many.events_per_s:.0f} "
        f"queries_per_s={many.queries_per_s:.1f}"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
        serve(os.environ["WEDSYNC_BENCH_DSN"], sys.argv[2])
        sys.exit(0)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import arguments

    parser = arguments(__doc__, smoke="4 weddings, 8 and 32 subscribers, 3 s per phase")
    parser.add_argument("--weddings", type=int, default=20)
    parser.add_argument(
        "--subscribers", type=int, nargs="+", default=[50, 200], help="one phase per count"
    )
    parser.add_argument("--rate", type=float, default=40.0, help="commits per second")
    parser.add_argument("--seconds", type=float, default=15.0, help="per phase")
    parsed = parser.parse_args()
    if parsed.smoke:
        parsed.weddings, parsed.subscribers, parsed.seconds, parsed.rate = 4, [8, 32], 3.0, 20.0
    main(parsed)
