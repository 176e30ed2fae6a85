"""The change feed's delivery: every change a subscriber may see, exactly once, in commit order
per stream, across reconnections; never one it may not see; revocation and pruning.

Waits are bounded (a test never hangs) but nothing is timed: a poll of the hub is forced where a
test needs everything committed so far to have been handed out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from test_isolation import WorldSpec, materialise, worlds

from conftest import make_database
from fixtures.databases import opened
from fixtures.environment import free_port, isolate_settings
from fixtures.tenants import Tenants, build_tenants, couple, new_id, service_rows, vendor
from wedsync_db import feed
from wedsync_db.api.app import create_app
from wedsync_db.db.client import Database
from wedsync_db.feed import Change, CursorAhead, CursorExpired, Subscription
from wedsync_db.identity import development_token
from wedsync_db.migrate.runner import MigrationRunner
from wedsync_db.runtime import database_for
from wedsync_db.settings import Settings, load_settings

KEY = "test-service-key-0123456789-abcdefghij"
SECRET = "jwt-secret-for-the-change-feed-tests-0123456789"
# the longest any test waits for something that arrives within a poll interval or two
BOUND = 30.0


@pytest.fixture
async def db(shared_db: str) -> AsyncIterator[Database]:
    """A Database of its own, so that each test has its own hub (and listener)."""
    async with opened(make_database(shared_db)) as d:
        yield d


@pytest.fixture
async def t(shared_database: Database) -> Tenants:
    return await build_tenants(shared_database)


async def settle(db: Database, *subs: Subscription) -> list[list[Change]]:
    """Force a poll (everything committed so far is handed out), then take what each has."""
    hub = feed.hub_for(db)
    while await hub.poll():
        pass
    return [await sub.next_batch(timeout=0) for sub in subs]


async def receive(sub: Subscription, n: int) -> list[Change]:
    """The next ``n`` changes, waiting for them in the background (bounded)."""
    got: list[Change] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BOUND
    while len(got) < n and loop.time() < deadline:
        got += await sub.next_batch(timeout=deadline - loop.time())
    return got


def in_order_once(changes: list[Change]) -> None:
    seqs = [c.seq for c in changes]
    assert seqs == sorted(set(seqs)), "duplicated or out of order"


async def visible_seqs(
    db: Database, claims: Mapping[str, str], stream: UUID, after: int
) -> list[int]:
    """What RLS on the outbox lets the user read of a stream after a cursor (the truth)."""
    async with db.as_user(claims) as s:
        rows = await s.fetch_tuples(
            "select seq from feed.changes where stream = %s and seq > %s order by seq",
            (stream, after),
        )
    return [int(r[0]) for r in rows]


async def update_guest(db: Database, claims: Mapping[str, str], guest: UUID, note: str) -> None:
    async with db.as_user(claims) as s:
        await s.execute("update guests set notes = %s where id = %s", (note, guest))


# --- order, exactly once, reconnection ----------------------------------------------------------
async def test_a_late_commit_is_delivered_and_commit_order_holds_per_wedding(
    db: Database, t: Tenants
) -> None:
    w1_couple = await feed.subscribe(db, couple(t.w1_partner), wedding_id=t.wedding_1)
    w2_couple = await feed.subscribe(db, couple(t.w2_partner), wedding_id=t.wedding_2)
    g1, g2 = t.guests[t.wedding_1][0], t.guests[t.wedding_2][0]

    # T1 writes wedding 2 and stays open; T2 writes wedding 1 and commits first
    async with db.service(reason="test: late commit") as late:
        await late.execute("update guests set notes = 'T1' where id = %s", (g2,))
        await update_guest(db, couple(t.w1_partner), g1, "T2")
        (early,) = await settle(db, w1_couple)
        assert [c.key["id"] for c in early] == [str(g1)]
        assert await settle(db, w2_couple) == [[]]
        # T3 writes wedding 2 after T1: it waits for T1's commit, so it comes after T1
        t3 = asyncio.create_task(update_guest(db, couple(t.w2_partner), g2, "T3"))
        await asyncio.sleep(0.2)
        assert not t3.done()
    await t3
    (late_ones,) = await settle(db, w2_couple)
    assert [c.version for c in late_ones] == sorted(c.version for c in late_ones)
    assert len(late_ones) == 2
    notes = await service_rows(db, "select notes from guests where id = %s", (g2,))
    assert notes == [("T3",)]
    in_order_once(late_ones)


async def test_concurrent_writers_reach_every_subscriber_exactly_once_in_commit_order(
    db: Database, t: Tenants
) -> None:
    rng = random.Random(7)
    watchers = {
        "w1 couple": (couple(t.w1_partner), t.wedding_1),
        "w1 planner": (couple(t.w1_planner), t.wedding_1),
        "w1 vendor with guests": (vendor(t.a_member), t.wedding_1),
        "w1 vendor without": (vendor(t.b_owner), t.wedding_1),
        "w2 couple": (couple(t.w2_partner), t.wedding_2),
        "w2 vendor with guests": (vendor(t.b_owner), t.wedding_2),
    }
    starts = {
        name: int(
            (
                await service_rows(
                    db, "select coalesce(max(seq), 0) from feed.changes where stream = %s", (w,)
                )
            )[0][0]
        )
        for name, (_, w) in watchers.items()
    }
    subs = {
        name: await feed.subscribe(db, claims, wedding_id=w, after=starts[name])
        for name, (claims, w) in watchers.items()
    }
    received: dict[str, list[Change]] = {name: [] for name in watchers}

    async def writer(n: int) -> None:
        for i in range(6):
            # a transaction over both weddings (always in the same order: no deadlock) that
            # commits after others that started later
            async with db.service(reason="test: concurrent writer") as s:
                for w in (t.wedding_1, t.wedding_2):
                    g = rng.choice(t.guests[w])
                    await s.execute("update guests set notes = %s where id = %s", (f"w{n}-{i}", g))
                    await asyncio.sleep(rng.random() * 0.02)
            await update_guest(
                db, couple(t.w1_partner), rng.choice(t.guests[t.wedding_1]), f"c{n}-{i}"
            )

    writers = [asyncio.create_task(writer(n)) for n in range(4)]
    # one subscriber disconnects midway and comes back with its last change id; the listener
    # loses its connection (the polling fallback covers the gap)
    name = "w1 vendor with guests"
    received[name] += await receive(subs[name], 5)
    await subs[name].close()
    await feed.hub_for(db).listener.drop_connection()
    await asyncio.gather(*writers)
    subs[name] = await feed.subscribe(
        db, vendor(t.a_member), wedding_id=t.wedding_1, after=received[name][-1].seq
    )
    batches = await settle(db, *subs.values())
    for n, batch in zip(subs, batches, strict=True):
        received[n] += batch

    for n, (claims, w) in watchers.items():
        got = received[n]
        in_order_once(got)
        assert [c.seq for c in got] == await visible_seqs(db, claims, w, starts[n]), n
        # each guest's versions arrive in the order they were committed
        versions: dict[str, list[int]] = {}
        for c in got:
            if c.entity == "guest" and c.version is not None:
                versions.setdefault(c.key["id"], []).append(c.version)
        assert all(v == sorted(v) and len(set(v)) == len(v) for v in versions.values()), n
    assert len(received["w1 couple"]) >= 4 * 6 * 2
    assert received["w1 couple"] == received["w1 planner"] == received["w1 vendor with guests"]
    assert not any(c.entity == "guest" for c in received["w1 vendor without"])
    assert received["w2 couple"] == received["w2 vendor with guests"]


async def test_changes_arrive_without_notify_through_the_polling_fallback(
    db: Database, t: Tenants
) -> None:
    sub = await feed.subscribe(db, couple(t.w1_partner), wedding_id=t.wedding_1)
    await feed.hub_for(db).listener.stop()
    await update_guest(db, couple(t.w1_partner), t.guests[t.wedding_1][0], "no notify heard")
    got = await receive(sub, 1)
    assert [c.op for c in got] == ["update"] and feed.hub_for(db).listener.notifications == 0


async def test_the_python_api_iterates_changes(db: Database, t: Tenants) -> None:
    stream = feed.changes(db, couple(t.w1_partner), wedding_id=t.wedding_1)
    first = asyncio.ensure_future(anext(stream))
    async with asyncio.timeout(BOUND):
        while feed.hub_for(db).subscribers == 0:  # noqa: ASYNC110 - the generator subscribes
            await asyncio.sleep(0.01)
    await update_guest(db, couple(t.w1_partner), t.guests[t.wedding_1][1], "iterated")
    change = await asyncio.wait_for(first, BOUND)
    assert (change.entity, change.op, change.changed) == ("guest", "update", ("notes",))
    await stream.aclose()  # type: ignore[attr-defined]
    assert feed.hub_for(db).subscribers == 0
    with pytest.raises(ValueError, match="exactly one"):
        await feed.subscribe(db, couple(t.w1_partner))


# --- who receives what --------------------------------------------------------------------------
async def test_revoked_guest_access_stops_guest_changes(db: Database, t: Tenants) -> None:
    vendor_sub = await feed.subscribe(db, vendor(t.a_member), wedding_id=t.wedding_1)
    couple_sub = await feed.subscribe(db, couple(t.w1_partner), wedding_id=t.wedding_1)
    await update_guest(db, couple(t.w1_partner), t.guests[t.wedding_1][0], "seen by the vendor")
    before, _ = await settle(db, vendor_sub, couple_sub)
    assert [c.entity for c in before] == ["guest"]
    async with db.as_user(couple(t.w1_partner)) as s:
        await s.execute(
            "update wedding_vendors set can_view_guests = false"
            " where wedding_id = %s and organization_id = %s",
            (t.wedding_1, t.org_a),
        )
    for i in range(3):
        await update_guest(db, couple(t.w1_partner), t.guests[t.wedding_1][i], "not for them")
    after, couples = await settle(db, vendor_sub, couple_sub)
    assert [(c.entity, c.op) for c in after] == [("vendor_link", "update")]
    assert after[0].changed == ("can_view_guests",)
    assert [c.entity for c in couples] == ["vendor_link", "guest", "guest", "guest"]


async def test_deletes_reach_only_those_who_could_see_the_row(db: Database, t: Tenants) -> None:
    subs = {
        "couple": await feed.subscribe(db, couple(t.w1_partner), wedding_id=t.wedding_1),
        "with access": await feed.subscribe(db, vendor(t.a_owner), wedding_id=t.wedding_1),
        "without": await feed.subscribe(db, vendor(t.b_owner), wedding_id=t.wedding_1),
        "other couple": await feed.subscribe(db, couple(t.w2_partner), wedding_id=t.wedding_1),
    }
    victim = t.guests[t.wedding_1][2]
    async with db.as_user(couple(t.w1_partner)) as s:
        await s.execute("delete from guests where id = %s", (victim,))
    got = dict(zip(subs, await settle(db, *subs.values()), strict=True))
    deleted = [("guest", "delete", str(victim))]
    assert [(c.entity, c.op, c.key["id"]) for c in got["couple"]] == deleted
    assert [(c.entity, c.op, c.key["id"]) for c in got["with access"]] == deleted
    assert got["without"] == got["other couple"] == []


async def test_organization_streams_carry_clients_to_their_members_only(
    db: Database, t: Tenants
) -> None:
    member = await feed.subscribe(db, vendor(t.a_admin), organization_id=t.org_a)
    outsider = await feed.subscribe(db, vendor(t.b_owner), organization_id=t.org_a)
    async with db.as_user(vendor(t.a_admin)) as s:
        await s.execute(
            "update clients set status = 'booked' where id = %s", (t.clients[t.org_a][0],)
        )
    mine, theirs = await settle(db, member, outsider)
    assert [(c.entity, c.changed) for c in mine] == [("client", ("status",))]
    assert theirs == []


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=worlds())
async def test_random_worlds_deliver_exactly_what_each_user_may_see(
    shared_database: Database, spec: WorldSpec
) -> None:
    db = shared_database
    world = await materialise(db, spec)
    subs: dict[tuple[int, str, int], Subscription] = {}
    for u, user in enumerate(world.users):
        for aud in ("vendor", "couple"):
            for w, wedding in enumerate(world.weddings):
                subs[(u, aud, w)] = await feed.subscribe(
                    db, {"sub": str(user), "aud": aud}, wedding_id=wedding
                )
    async with db.service(reason="test: random writes") as s:
        for w, wedding in enumerate(world.weddings):
            await s.execute("update weddings set venue = 'Hall' where id = %s", (wedding,))
            await s.execute("update guests set notes = 'n' where wedding_id = %s", (wedding,))
            await s.execute(
                "insert into guests (wedding_id, first_name) values (%s, 'New')", (wedding,)
            )
            if world.guests[w]:
                await s.execute("delete from guests where id = %s", (world.guests[w][0],))
            await s.execute(
                "update wedding_members set role = case role when 'partner' then 'planner'"
                " else 'partner' end where wedding_id = %s",
                (wedding,),
            )
            await s.execute(
                "update wedding_vendors set service = 'venue' where wedding_id = %s", (wedding,)
            )
    got = dict(zip(subs, await settle(db, *subs.values()), strict=True))
    accepted = {k for k, (_, status) in spec.links.items() if status == "accepted"}
    for (u, aud, w), changes in got.items():
        orgs, mine = spec.orgs_of(u), spec.weddings_of(u)
        linked = {o for (lw, o) in accepted if lw == w and o in orgs}
        sees_guests = (aud == "couple" and w in mine) or (
            aud == "vendor" and any(spec.links[(w, o)][0] for o in linked)
        )
        sees = {
            "guest": sees_guests,
            "wedding": w in mine or bool(linked),
            "wedding_member": w in mine,
        }
        for c in changes:
            if c.entity == "vendor_link":
                assert w in mine or spec.orgs_of(u) & {world.orgs.index(c.organization_id)}
            else:
                assert sees[c.entity], (u, aud, w, c.entity)
        kinds = {c.entity for c in changes}
        for entity, visible in sees.items():
            wrote = entity != "wedding_member" or any(k[0] == w for k in spec.wedding_members)
            assert (entity in kinds) == (visible and wrote), (u, aud, w, entity)
        in_order_once(changes)
    for sub in subs.values():
        await sub.close()


# --- retention ----------------------------------------------------------------------------------
async def test_a_cursor_older_than_the_retention_must_resync(db: Database, t: Tenants) -> None:
    hub = feed.hub_for(db)
    # the hub reads nothing meanwhile, so this subscriber is left behind the pruning
    async with hub._poll_lock:
        behind = await feed.subscribe(db, couple(t.w2_partner), wedding_id=t.wedding_2)
        await update_guest(db, couple(t.w2_partner), t.guests[t.wedding_2][0], "old")
        rows = await service_rows(
            db, "select seq from feed.heads where stream = %s", (t.wedding_2,)
        )
        head = int(rows[0][0])
        assert await feed.prune(db, datetime.now(UTC) + timedelta(seconds=1)) >= 1
    with pytest.raises(CursorExpired, match="retention"):
        await feed.subscribe(db, couple(t.w2_partner), wedding_id=t.wedding_2, after=head - 1)
    with pytest.raises(CursorAhead):
        await feed.subscribe(db, couple(t.w2_partner), wedding_id=t.wedding_2, after=head + 5)
    # the head itself is still a good cursor; the subscriber left behind is told to resync
    current = await feed.subscribe(db, couple(t.w2_partner), wedding_id=t.wedding_2, after=head)
    await update_guest(db, couple(t.w2_partner), t.guests[t.wedding_2][0], "new")
    (fresh,) = await settle(db, current)
    assert [c.seq for c in fresh] == [head + 1]
    with pytest.raises(CursorExpired):
        await behind.next_batch(timeout=0)


# --- HTTP ------------------------------------------------------------------------------------
def settings_for(mp: pytest.MonkeyPatch, directory: Path, **overrides: Any) -> Settings:
    isolate_settings(mp, directory)
    return load_settings(service_key=KEY, jwt_secret=SECRET, **overrides)


def bearer(user: UUID, audience: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {development_token(SECRET, user, audience)}"}  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def http_server(settings: Settings, dsn: str) -> AsyncIterator[str]:
    """The API on a real server (SSE needs one: an in-memory transport buffers responses)."""
    app = create_app(settings, database=make_database(dsn), runner=MigrationRunner(dsn))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def sse_events(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], want: int
) -> list[dict[str, Any]]:
    """Read events from an SSE response until ``want`` change events arrived, then hang up."""
    events: list[dict[str, Any]] = []
    changes = 0
    async with client.stream("GET", url, headers={**headers, "Accept": "text/event-stream"}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        event: dict[str, Any] = {}
        async with asyncio.timeout(BOUND):
            async for line in r.aiter_lines():
                if line == "":
                    if event:
                        events.append(event)
                        changes += event.get("event") == "change"
                        event = {}
                    if changes >= want:
                        break
                    continue
                if line.startswith(":"):
                    events.append({"comment": line[1:].strip()})
                    continue
                name, _, value = line.partition(":")
                event[name] = value.strip()
    return events


async def test_sse_resumes_from_last_event_id_and_sends_heartbeats(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, shared_db: str, shared_database: Database
) -> None:
    t = await build_tenants(shared_database)
    settings = settings_for(monkeypatch, tmp_path, feed_heartbeat_interval=0.2)
    me = bearer(t.w1_partner, "couple")
    url = f"/api/v1/weddings/{t.wedding_1}/changes"
    async with http_server(settings, shared_db) as base, httpx.AsyncClient(base_url=base) as client:

        async def write(n: int, tag: str) -> None:
            for i in range(n):
                await update_guest(
                    shared_database, couple(t.w1_partner), t.guests[t.wedding_1][i % 3], f"{tag}{i}"
                )

        start = (await client.get(url, headers=me)).json()["head"]
        writes = asyncio.create_task(write(4, "a"))
        first = await sse_events(client, f"{url}?after={start}", me, 2)
        await writes
        # the connection is gone; more changes are committed meanwhile
        await write(3, "b")
        last_id = [e for e in first if e.get("event") == "change"][-1]["id"]
        rest = await sse_events(client, url, {**me, "Last-Event-ID": last_id}, 5)
        # an idle stream sends heartbeats
        idle = await sse_events_for(client, url, me, seconds=1.0)

        pages = (await client.get(url, headers=me, params={"after": start, "limit": 3})).json()
        gone_check = await client.get(url, headers=me, params={"after": "x"})
        stranger = await client.get(url, headers=bearer(new_id(), "couple"))

    ids = [int(e["id"]) for e in first + rest if e.get("event") == "change"]
    assert ids == list(range(start + 1, start + 8))
    data = [json.loads(e["data"]) for e in rest if e.get("event") == "change"]
    assert {d["entity"] for d in data} == {"guest"} and all(d["changed"] == ["notes"] for d in data)
    assert first[0]["event"] == "ready" and first[0]["id"] == str(start)
    assert any(e.get("comment") == "heartbeat" for e in idle)
    assert [c["id"] for c in pages["changes"]] == [start + 1, start + 2, start + 3]
    assert pages["next_after"] == start + 3
    assert gone_check.status_code == 400
    assert stranger.status_code == 404


async def test_a_stream_ends_when_its_token_expires_and_resumes_with_a_fresh_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, shared_db: str, shared_database: Database
) -> None:
    t = await build_tenants(shared_database)
    settings = settings_for(monkeypatch, tmp_path, feed_heartbeat_interval=0.2, jwt_leeway=0)
    short = development_token(SECRET, t.w1_partner, "couple", ttl=2)  # type: ignore[arg-type]
    url = f"/api/v1/weddings/{t.wedding_1}/changes"
    me = bearer(t.w1_partner, "couple")
    async with http_server(settings, shared_db) as base, httpx.AsyncClient(base_url=base) as client:
        start = (await client.get(url, headers=me)).json()["head"]
        opened_at = asyncio.get_running_loop().time()
        ended = await sse_events_for(
            client, f"{url}?after={start}", {"Authorization": f"Bearer {short}"}, seconds=BOUND
        )
        took = asyncio.get_running_loop().time() - opened_at
        # committed once the token is no longer valid: not for that stream, but not lost
        await update_guest(shared_database, couple(t.w1_partner), t.guests[t.wedding_1][0], "late")
        last_id = str(start)
        resumed = await sse_events(client, url, {**me, "Last-Event-ID": last_id}, 1)
    kinds = [e["event"] for e in ended if "event" in e]
    assert kinds[0] == "ready" and kinds[-1] == "reauthenticate" and "change" not in kinds
    assert took < BOUND  # the server ended the stream, the client did not time out
    changes = [e for e in resumed if e.get("event") == "change"]
    assert [int(e["id"]) for e in changes] == [start + 1]


async def sse_events_for(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], seconds: float
) -> list[dict[str, Any]]:
    """What an SSE stream sends in ``seconds`` (comments included)."""
    events: list[dict[str, Any]] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            headers = {**headers, "Accept": "text/event-stream"}
            async with client.stream("GET", url, headers=headers) as r:
                async for line in r.aiter_lines():
                    if line.startswith(":"):
                        events.append({"comment": line[1:].strip()})
                    elif line.startswith("event:"):
                        events.append({"event": line.partition(":")[2].strip()})
    return events


async def test_json_poll_is_410_past_the_retention_with_a_resync_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, shared_db: str, shared_database: Database
) -> None:
    t = await build_tenants(shared_database)
    await update_guest(shared_database, couple(t.w2_partner), t.guests[t.wedding_2][0], "x")
    await feed.prune(shared_database, datetime.now(UTC) + timedelta(seconds=1))
    app = create_app(
        settings_for(monkeypatch, tmp_path),
        database=make_database(shared_db),
        runner=MigrationRunner(shared_db),
    )
    url = f"/api/v1/weddings/{t.wedding_2}/changes"
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            gone = await client.get(
                url, headers=bearer(t.w2_partner, "couple"), params={"after": 0}
            )
            fresh = await client.get(url, headers=bearer(t.w2_partner, "couple"))
    assert gone.status_code == 410 and gone.headers["content-type"] == "application/problem+json"
    assert gone.json()["resync"]["reload"] == f"/api/v1/weddings/{t.wedding_2}"
    assert fresh.status_code == 200 and fresh.json()["changes"] == []
    assert fresh.json()["next_after"] == fresh.json()["head"] >= 1


def test_the_listener_uses_the_direct_url_behind_a_transaction_pooler(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = settings_for(
        monkeypatch,
        tmp_path,
        database_url="postgresql://app@pooler.invalid:6543/app",
        direct_database_url="postgresql://app@db.invalid:5432/app",
        pooler="transaction",
    )
    database = database_for(settings, "postgresql://app@pooler.invalid:6543/app")
    assert "db.invalid" in database.listen_dsn
