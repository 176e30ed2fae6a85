"""The change outbox (migration 0011): what the triggers record, and who may read it.

Visibility is checked as behaviour: each user reads feed.changes through its own scope, so the
outbox's row level security is what decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from fixtures.environment import isolate_settings
from fixtures.tenants import Tenants, build_tenants, couple, service_rows, vendor
from wedsync_db.db.client import Database
from wedsync_db.monitor.collectors import collect
from wedsync_db.monitor.state import MonitorState
from wedsync_db.settings import load_settings


@pytest.fixture
async def t(shared_database: Database) -> Tenants:
    return await build_tenants(shared_database)


async def seen(
    db: Database, claims: Mapping[str, str], stream: UUID, entity: str | None = None
) -> list[tuple[Any, ...]]:
    """(seq, entity, op, key) of a stream's changes as the user reads them."""
    async with db.as_user(claims) as s:
        rows = await s.fetch_tuples(
            "select seq, entity, op, key from feed.changes"
            " where stream = %s and (%s::text is null or entity = %s) order by seq",
            (stream, entity, entity),
        )
    return rows


async def note_guests(db: Database, t: Tenants, note: str) -> None:
    """The couple writes ``note`` on every guest of wedding 1 (one change per guest)."""
    async with db.as_user(couple(t.w1_partner)) as s:
        await s.execute("update guests set notes = %s where wedding_id = %s", (note, t.wedding_1))


async def head(db: Database, stream: UUID) -> int:
    rows = await service_rows(db, "select seq from feed.heads where stream = %s", (stream,))
    return int(rows[0][0]) if rows else 0


async def test_every_write_is_recorded_in_its_stream_in_order(
    shared_database: Database, t: Tenants
) -> None:
    db = shared_database
    before = await head(db, t.wedding_1)
    async with db.as_user(couple(t.w1_partner)) as s:
        await s.execute(
            "insert into guests (wedding_id, first_name) select %s, 'G' || i"
            " from generate_series(1, 5) i",
            (t.wedding_1,),
        )
        await s.execute(
            "update guests set rsvp_status = 'accepted', table_number = 4 where id = %s",
            (t.guests[t.wedding_1][0],),
        )
        # a no-op update changes nothing, so it records nothing
        await s.execute(
            "update guests set first_name = first_name where id = %s", (t.guests[t.wedding_1][1],)
        )
        await s.execute("delete from guests where id = %s", (t.guests[t.wedding_1][2],))
    rows = await service_rows(
        db,
        "select seq, entity, op, key, changed, version, wedding_id, organization_id"
        " from feed.changes where stream = %s and seq > %s order by seq",
        (t.wedding_1, before),
    )
    assert [r[0] for r in rows] == list(range(before + 1, before + 8))
    assert [r[2] for r in rows] == ["insert"] * 5 + ["update", "delete"]
    update, delete = rows[5], rows[6]
    assert update[3] == {"wedding_id": str(t.wedding_1), "id": str(t.guests[t.wedding_1][0])}
    assert update[4] == ["rsvp_status", "table_number"]
    assert update[5] == 2
    assert delete[3]["id"] == str(t.guests[t.wedding_1][2])
    assert {r[6] for r in rows} == {t.wedding_1}
    assert await head(db, t.wedding_1) == before + 7


async def test_each_entity_goes_to_its_tenants_stream(
    shared_database: Database, t: Tenants
) -> None:
    db = shared_database
    async with db.service(reason="test: entity streams") as s:
        await s.execute("update weddings set venue = 'Barn' where id = %s", (t.wedding_2,))
        await s.execute(
            "update wedding_members set role = 'planner' where wedding_id = %s", (t.wedding_2,)
        )
        await s.execute(
            "update wedding_vendors set service = 'photography' where wedding_id = %s",
            (t.wedding_2,),
        )
        await s.execute(
            "update clients set notes = 'call back' where id = %s", (t.clients[t.org_b][0],)
        )
    rows = await service_rows(
        db,
        "select stream, entity, changed, organization_id from feed.changes"
        " where stream = any(%s) and op = 'update' order by stream, seq",
        ([t.wedding_2, t.org_b],),
    )
    by_entity = {r[1]: r for r in rows}
    assert by_entity["wedding"][0] == t.wedding_2 and by_entity["wedding"][2] == ["venue"]
    assert by_entity["wedding_member"][2] == ["role"]
    assert by_entity["vendor_link"][3] == t.org_b
    assert by_entity["client"][0] == t.org_b and by_entity["client"][2] == ["notes"]


async def test_users_read_only_the_changes_they_may_see(
    shared_database: Database, t: Tenants
) -> None:
    db = shared_database
    await note_guests(db, t, "vip")
    guests_of = {
        "couple": await seen(db, couple(t.w1_partner), t.wedding_1, "guest"),
        "planner": await seen(db, couple(t.w1_planner), t.wedding_1, "guest"),
        "with access": await seen(db, vendor(t.a_member), t.wedding_1, "guest"),
        "without access": await seen(db, vendor(t.b_owner), t.wedding_1, "guest"),
        "other couple": await seen(db, couple(t.w2_partner), t.wedding_1, "guest"),
        "stranger": await seen(db, couple(t.stranger), t.wedding_1, "guest"),
        # the audience decides: a vendor user's couple-app token sees no guest list
        "vendor as couple": await seen(db, couple(t.a_member), t.wedding_1, "guest"),
    }
    assert len(guests_of["couple"]) >= 6
    assert guests_of["planner"] == guests_of["couple"] == guests_of["with access"]
    assert guests_of["without access"] == []
    assert guests_of["other couple"] == guests_of["stranger"] == []
    assert guests_of["vendor as couple"] == []
    # B works on the wedding: it sees the wedding's changes and its own link, not the members
    assert await seen(db, vendor(t.b_owner), t.wedding_1, "wedding_member") == []
    links = await seen(db, vendor(t.b_owner), t.wedding_1, "vendor_link")
    assert {r[3]["organization_id"] for r in links} == {str(t.org_b)}
    assert await seen(db, vendor(t.a_owner), t.org_b, "client") == []
    assert await seen(db, vendor(t.b_owner), t.org_b, "client") != []


async def test_a_deleted_guest_is_seen_by_those_who_could_see_it(
    shared_database: Database, t: Tenants
) -> None:
    db = shared_database
    victim = t.guests[t.wedding_1][0]
    async with db.as_user(couple(t.w1_partner)) as s:
        await s.execute("delete from guests where id = %s", (victim,))

    def deletes(rows: list[tuple[Any, ...]]) -> list[str]:
        return [r[3]["id"] for r in rows if r[2] == "delete"]

    assert deletes(await seen(db, couple(t.w1_partner), t.wedding_1)) == [str(victim)]
    assert deletes(await seen(db, vendor(t.a_owner), t.wedding_1)) == [str(victim)]
    assert deletes(await seen(db, vendor(t.b_owner), t.wedding_1)) == []
    assert deletes(await seen(db, couple(t.w2_partner), t.wedding_1)) == []


async def test_revoked_guest_access_hides_guest_changes_at_once(
    shared_database: Database, t: Tenants
) -> None:
    db = shared_database
    await note_guests(db, t, "before")
    assert await seen(db, vendor(t.a_member), t.wedding_1, "guest") != []
    async with db.as_user(couple(t.w1_partner)) as s:
        await s.execute(
            "update wedding_vendors set can_view_guests = false"
            " where wedding_id = %s and organization_id = %s",
            (t.wedding_1, t.org_a),
        )
        await s.execute("update guests set notes = 'after' where wedding_id = %s", (t.wedding_1,))
    assert await seen(db, vendor(t.a_member), t.wedding_1, "guest") == []
    # the vendor still learns that its link changed
    links = await seen(db, vendor(t.a_member), t.wedding_1, "vendor_link")
    assert any(r[2] == "update" for r in links)


async def test_access_keys_are_what_each_users_own_scope_computes(
    shared_database: Database, t: Tenants
) -> None:
    db = shared_database
    subscribers = [
        (t.wedding_1, t.w1_partner, "couple"),
        (t.wedding_1, t.w1_planner, "couple"),
        (t.wedding_1, t.a_member, "vendor"),
        (t.wedding_1, t.a_owner, "vendor"),
        (t.wedding_1, t.b_owner, "vendor"),
        (t.wedding_1, t.a_member, "couple"),
        (t.wedding_2, t.b_owner, "vendor"),
        (t.org_a, t.a_admin, "vendor"),
        (t.org_a, t.b_owner, "vendor"),
        (t.wedding_1, t.stranger, "vendor"),
    ]
    async with db.service(reason="test: access keys") as s:
        batch = await s.fetch_tuples(
            "select stream, user_id, aud, key from feed.access_keys(%s, %s, %s)",
            ([x[0] for x in subscribers], [x[1] for x in subscribers], [x[2] for x in subscribers]),
        )
        # the service scope's own claims are untouched
        assert await s.fetch_val("select current_setting('request.jwt.claims', true)") != ""
    own = []
    for stream, user, aud in subscribers:
        async with db.as_user({"sub": str(user), "aud": aud}) as s:
            own.append(
                (stream, user, aud, await s.fetch_val("select feed.access_key(%s)", (stream,)))
            )
    assert batch == own
    keys = {(x[1], x[2]): x[3] for x in batch if x[0] == t.wedding_1}
    assert keys[(t.w1_partner, "couple")] == keys[(t.w1_planner, "couple")]
    assert keys[(t.a_member, "vendor")] == keys[(t.a_owner, "vendor")]
    assert keys[(t.a_member, "vendor")] != keys[(t.b_owner, "vendor")]
    assert keys[(t.stranger, "vendor")] == ""


async def test_user_scopes_cannot_write_the_outbox_or_compute_others_keys(
    shared_database: Database, t: Tenants
) -> None:
    from wedsync_db.errors import PermissionDenied

    db = shared_database
    for statement, params in (
        (
            "insert into feed.changes (stream, seq, entity, op, key) values"
            " (%s, 999999, 'guest', 'insert', '{}')",
            (t.wedding_1,),
        ),
        ("update feed.heads set seq = 0", None),
        (
            "select * from feed.access_keys(array[%s]::uuid[], array[%s]::uuid[], array['couple'])",
            (t.wedding_1, t.w1_partner),
        ),
        ("select feed.prune(now())", None),
    ):
        with pytest.raises(PermissionDenied):
            async with db.as_user(couple(t.w1_partner)) as s:
                await s.execute(statement, params)


# --- monitoring and retention ------------------------------------------------------------------
async def test_the_outbox_is_measured_and_the_sampler_prunes_it(
    database: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    db = database
    t = await build_tenants(db)
    await note_guests(db, t, "measured")
    snap = await collect(db, parts=["feed"])
    assert snap.feed is not None and not snap.errors
    assert snap.feed.changes >= 3 and snap.feed.bytes > 0 and snap.feed.streams >= 4
    assert snap.feed.oldest_change_at is not None
    assert snap.metrics()["feed_changes"] == snap.feed.changes

    # and an import its process left staging two hours ago: the same pass fails it
    stopped = await service_rows(
        db,
        "insert into ops.imports (kind, organization_id, actor, file_sha256, file_bytes,"
        " options_key, created_at) values ('clients', %s, %s, repeat('b', 64), 1, 'k',"
        " now() - interval '2 hours') returning id",
        (t.org_a, t.a_owner),
    )

    isolate_settings(monkeypatch, tmp_path)
    # a retention of a few milliseconds: everything written so far is past it
    settings = load_settings(feed_retention_hours=1e-6)
    state = MonitorState(settings, db)
    await state.capture(source="test")
    status = "select status from ops.imports where id = %s"
    assert await service_rows(db, status, (stopped[0][0],)) == [("failed",)]
    text = state.exporter.render().decode()
    assert (
        "wedsync_db_feed_changes " in text and "wedsync_db_feed_oldest_change_age_seconds" in text
    )
    assert state.feed_pruned >= snap.feed.changes
    assert await service_rows(db, "select count(*) from feed.changes") == [(0,)]
    pruned = await service_rows(
        db, "select pruned_through, seq from feed.heads where stream = %s", (t.wedding_1,)
    )
    assert pruned[0][0] == pruned[0][1]
    # within the purge interval the sampler does not prune again
    await note_guests(db, t, "kept")
    await state.capture(source="test")
    assert await service_rows(db, "select count(*) from feed.changes") == [(3,)]
