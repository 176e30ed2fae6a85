"""The guest data layer against a real PostgreSQL: optimistic concurrency, merges, visibility,
keyset pagination and filters, all through user scopes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from uuid import UUID

import pytest

from conftest import make_database
from fixtures.databases import opened
from fixtures.tenants import Tenants, add_wedding, build_tenants, couple, service_rows, vendor
from wedsync_db.data import guests
from wedsync_db.data.guests import GuestCreate, GuestUpdate
from wedsync_db.db.client import Database
from wedsync_db.errors import NotFound, PermissionDenied, StaleVersion


@pytest.fixture
async def t(shared_database: Database) -> Tenants:
    return await build_tenants(shared_database)


@pytest.fixture
async def wide_database(shared_db: str) -> AsyncIterator[Database]:
    """A client with enough user connections for 20 editors at once."""
    async with opened(make_database(shared_db, user_pool_size=20, service_pool_size=2)) as db:
        yield db


async def test_an_update_names_its_version_and_bumps_it(
    shared_database: Database, t: Tenants
) -> None:
    me, wedding, guest_id = couple(t.w1_partner), t.wedding_1, t.guests[t.wedding_1][0]
    read = await guests.get_guest(shared_database, me, (wedding, guest_id))
    assert read.version == 1
    done = await guests.update_guest(
        shared_database, me, (wedding, guest_id), read.version, {"table_number": 4}
    )
    assert (done.version, done.table_number) == (2, 4)
    assert done.updated_at > read.updated_at


async def test_an_unchanged_update_keeps_the_version(shared_database: Database, t: Tenants) -> None:
    me, wedding, guest_id = couple(t.w1_partner), t.wedding_1, t.guests[t.wedding_1][0]
    read = await guests.get_guest(shared_database, me, (wedding, guest_id))
    same = await guests.update_guest(
        shared_database, me, (wedding, guest_id), read, {"first_name": read.first_name}
    )
    assert same.version == read.version and same.updated_at == read.updated_at


async def test_the_caller_never_sets_the_version(shared_database: Database, t: Tenants) -> None:
    wedding, guest_id = t.wedding_1, t.guests[t.wedding_1][0]
    async with shared_database.service(reason="test: write version") as s:
        await s.execute(
            "update guests set version = 99, notes = 'x' where wedding_id = %s and id = %s",
            (wedding, guest_id),
        )
        await s.execute(
            "insert into guests (wedding_id, first_name, version) values (%s, 'New', 50),"
            " (%s, 'Unsaid', null), (%s, 'Said', 1)",
            (wedding, wedding, wedding),
        )
    rows = await service_rows(
        shared_database,
        "select first_name, version from guests where wedding_id = %s order by version",
        (wedding,),
    )
    assert {("New", 1), ("Unsaid", 1), ("Said", 1)} <= set(rows)
    assert max(v for _, v in rows) == 2
    with pytest.raises(Exception, match="version"):
        GuestUpdate.model_validate({"version": 5})


async def test_a_stale_version_reports_the_current_row_and_conflicting_fields(
    shared_database: Database, t: Tenants
) -> None:
    me, wedding, guest_id = couple(t.w1_partner), t.wedding_1, t.guests[t.wedding_1][0]
    read = await guests.get_guest(shared_database, me, (wedding, guest_id))
    planner = couple(t.w1_planner)
    await guests.update_guest(shared_database, planner, (wedding, guest_id), read, {"notes": "vip"})
    with pytest.raises(StaleVersion) as err:
        await guests.update_guest(
            shared_database, me, (wedding, guest_id), read, {"notes": "late", "table_number": 2}
        )
    assert err.value.conflicting_fields == ("notes",)
    assert isinstance(err.value.current, guests.Guest)
    assert (err.value.current.version, err.value.current.notes) == (2, "vip")
    # with only the version, the change feed tells which fields changed since: notes (table
    # number did not), so only notes conflicts, and not when already set to the value asked for
    with pytest.raises(StaleVersion) as bare:
        await guests.update_guest(
            shared_database, me, (wedding, guest_id), 1, {"notes": "late", "table_number": 2}
        )
    assert bare.value.conflicting_fields == ("notes",)
    with pytest.raises(StaleVersion) as same:
        await guests.update_guest(
            shared_database, me, (wedding, guest_id), 1, {"notes": "vip", "table_number": 2}
        )
    assert same.value.conflicting_fields == ()
    merged = await guests.update_guest(
        shared_database, me, (wedding, guest_id), 1, {"table_number": 2}, merge=True
    )
    assert (merged.notes, merged.table_number, merged.version) == ("vip", 2, 3)


async def test_a_bare_version_without_the_feeds_record_falls_back_to_values(
    shared_database: Database, t: Tenants
) -> None:
    """Past the change feed's retention the history is gone: a changed field conflicts when its
    current value is not the one asked for."""
    me, wedding, guest_id = couple(t.w1_partner), t.wedding_1, t.guests[t.wedding_1][1]
    await guests.update_guest(
        shared_database, couple(t.w1_planner), (wedding, guest_id), 1, {"notes": "vip"}
    )
    async with shared_database.service(reason="test: prune the feed") as s:
        await s.execute("delete from feed.changes where stream = %s", (wedding,))
    with pytest.raises(StaleVersion) as bare:
        await guests.update_guest(
            shared_database, me, (wedding, guest_id), 1, {"notes": "vip", "table_number": 2}
        )
    assert bare.value.conflicting_fields == ("table_number",)


async def test_disjoint_edits_merge_and_overlapping_ones_conflict(
    shared_database: Database, t: Tenants
) -> None:
    me, wedding, guest_id = couple(t.w1_partner), t.wedding_1, t.guests[t.wedding_1][0]
    read = await guests.get_guest(shared_database, me, (wedding, guest_id))
    await guests.update_guest(
        shared_database, couple(t.w1_planner), (wedding, guest_id), read, {"table_number": 7}
    )
    merged = await guests.update_guest(
        shared_database, me, (wedding, guest_id), read, {"email": None, "notes": "n"}, merge=True
    )
    assert (merged.version, merged.table_number, merged.email, merged.notes) == (3, 7, None, "n")
    with pytest.raises(StaleVersion) as err:
        await guests.update_guest(
            shared_database, me, (wedding, guest_id), read, {"table_number": 8}, merge=True
        )
    assert err.value.conflicting_fields == ("table_number",)
    assert err.value.current.version == 3  # type: ignore[attr-defined]


async def test_invisible_rows_are_not_found_and_read_only_rows_are_denied(
    shared_database: Database, t: Tenants
) -> None:
    wedding, guest_id = t.wedding_1, t.guests[t.wedding_1][0]
    # org B is linked to wedding 1 without guest access: the guest does not exist for it
    for who in (vendor(t.b_owner), couple(t.w2_partner), couple(t.stranger)):
        with pytest.raises(NotFound):
            await guests.get_guest(shared_database, who, (wedding, guest_id))
        with pytest.raises(NotFound):
            await guests.update_guest(shared_database, who, (wedding, guest_id), 1, {"notes": "x"})
        with pytest.raises(NotFound):
            await guests.delete_guest(shared_database, who, (wedding, guest_id), 1)
    # org A reads the list (accepted link with guest access) but only the couple edits it
    reader = vendor(t.a_member)
    assert (await guests.get_guest(shared_database, reader, (wedding, guest_id))).id == guest_id
    with pytest.raises(PermissionDenied):
        await guests.update_guest(shared_database, reader, (wedding, guest_id), 1, {"notes": "x"})
    with pytest.raises(NotFound):
        await guests.get_guest(shared_database, couple(t.w1_partner), (wedding, UUID(int=1)))


async def test_a_requested_link_with_guest_access_shows_no_guests(
    shared_database: Database, t: Tenants
) -> None:
    async with shared_database.service(reason="test: pending link") as s:
        wedding = await add_wedding(s, {t.w1_partner: "partner"})
        await s.execute(
            "insert into guests (wedding_id, first_name) values (%s, 'Ann')", (wedding,)
        )
        await s.execute(
            "insert into wedding_vendors (wedding_id, organization_id, can_view_guests, status)"
            " values (%s, %s, true, 'requested')",
            (wedding, t.org_a),
        )
    page = await guests.list_guests(shared_database, vendor(t.a_owner), wedding)
    assert page.rows == []
    assert len((await guests.list_guests(shared_database, couple(t.w1_partner), wedding)).rows) == 1


async def test_create_delete_and_bulk_rsvp(shared_database: Database, t: Tenants) -> None:
    me, wedding = couple(t.w1_partner), t.wedding_1
    made = await guests.create_guest(
        shared_database, me, wedding, GuestCreate(first_name="Zoë", dietary_requirements=["vegan"])
    )
    assert (made.version, made.rsvp_status, made.dietary_requirements) == (1, "pending", ["vegan"])
    with pytest.raises(PermissionDenied):
        await guests.create_guest(shared_database, vendor(t.a_owner), wedding, {"first_name": "X"})
    with pytest.raises(ValueError, match="extra"):
        GuestCreate.model_validate({"first_name": "A", "wedding_id": str(wedding)})
    with pytest.raises(ValueError, match="first_name cannot be null"):
        GuestUpdate.model_validate({"first_name": None})
    ids = [*t.guests[wedding][:2], made.id]
    changed = await guests.bulk_rsvp(shared_database, me, wedding, ids, "accepted")
    assert sorted(g.id for g in changed) == sorted(ids)
    assert all(g.rsvp_status == "accepted" and g.version == 2 for g in changed)
    assert (
        await guests.bulk_rsvp(shared_database, vendor(t.a_owner), wedding, ids, "declined") == []
    )
    with pytest.raises(StaleVersion):
        await guests.delete_guest(shared_database, me, (wedding, made.id), 1)
    await guests.delete_guest(shared_database, me, (wedding, made.id), 2)
    with pytest.raises(NotFound):
        await guests.get_guest(shared_database, me, (wedding, made.id))


async def test_filters(shared_database: Database, t: Tenants) -> None:
    me, wedding = couple(t.w1_partner), t.wedding_1
    specs = [
        {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": "ada@math.org",
            "table_number": 1,
            "dietary_requirements": ["vegan"],
            "rsvp_status": "accepted",
        },
        {
            "first_name": "Alan",
            "last_name": "Turing",
            "email": "alan@bletchley.uk",
            "table_number": 2,
            "dietary_requirements": ["vegan", "nut-free"],
            "rsvp_status": "declined",
        },
        {"first_name": "Grace", "last_name": "Hopper_", "table_number": 1, "rsvp_status": "maybe"},
    ]
    for spec in specs:
        await guests.create_guest(shared_database, me, wedding, spec)

    async def names(**filters: object) -> list[str]:
        page = await guests.list_guests(shared_database, me, wedding, **filters)  # type: ignore[arg-type]
        return [g.first_name for g in page.rows]

    assert await names(rsvp="accepted") == ["Ada"]
    assert await names(rsvp=["accepted", "declined"]) == ["Ada", "Alan"]
    assert await names(dietary="vegan") == ["Ada", "Alan"]
    assert await names(dietary="nut-free") == ["Alan"]
    assert await names(table=1) == ["Grace", "Ada"]  # Hopper before Lovelace
    assert await names(search="BLETCH") == ["Alan"]
    assert await names(search="love") == ["Ada"]
    assert await names(search="r_") == ["Grace"]  # the underscore is a character, not a wildcard
    assert await names(table=1, rsvp="maybe") == ["Grace"]
    assert len(await names()) == 6  # the three fixture guests too


async def test_keyset_pages_return_every_row_once_under_inserts(
    shared_database: Database, t: Tenants
) -> None:
    me, wedding = couple(t.w1_partner), t.wedding_1
    for i in range(22):
        await guests.create_guest(
            shared_database, me, wedding, {"first_name": f"G{i % 5}", "last_name": f"L{i % 3}"}
        )
    before = {
        g.id for g in (await guests.list_guests(shared_database, me, wedding, limit=1000)).rows
    }
    assert len(before) == 25
    seen: list[UUID] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await guests.list_guests(shared_database, me, wedding, limit=4, cursor=cursor)
        seen.extend(g.id for g in page.rows)
        pages += 1
        # rows sorting before and after the cursor arrive between pages
        for name in ("A", "Z"):
            await guests.create_guest(
                shared_database, me, wedding, {"first_name": name, "last_name": name}
            )
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages >= 7
    assert len(seen) == len(set(seen))
    assert before <= set(seen)
    with pytest.raises(ValueError, match="cursor"):
        await guests.list_guests(shared_database, me, wedding, cursor="bm90IGEgY3Vyc29y")


async def test_twenty_concurrent_editors_lose_no_update(
    wide_database: Database, t: Tenants
) -> None:
    """Each editor appends its mark to the notes (read, then update naming the version read):
    every reported success is in the final row, every failure was a StaleVersion."""
    me, wedding, guest_id = couple(t.w1_partner), t.wedding_1, t.guests[t.wedding_1][0]
    await guests.update_guest(wide_database, me, (wedding, guest_id), 1, {"notes": ""})
    start = asyncio.Event()
    outcomes: dict[int, str] = {}

    async def editor(n: int) -> None:
        await start.wait()
        for _ in range(3):
            read = await guests.get_guest(wide_database, me, (wedding, guest_id))
            try:
                await guests.update_guest(
                    wide_database, me, (wedding, guest_id), read, {"notes": f"{read.notes}[{n}]"}
                )
            except StaleVersion as exc:
                assert exc.conflicting_fields == ("notes",)
                outcomes[n] = "stale"
                continue
            outcomes[n] = "ok"
            return

    tasks = [asyncio.create_task(editor(n)) for n in range(20)]
    start.set()
    await asyncio.gather(*tasks)
    final = await guests.get_guest(wide_database, me, (wedding, guest_id))
    successes = [n for n, outcome in outcomes.items() if outcome == "ok"]
    assert len(outcomes) == 20 and successes
    assert all(f"[{n}]" in (final.notes or "") for n in successes)
    assert (final.notes or "").count("[") == len(successes)
    assert final.version == 2 + len(successes)


async def test_the_data_layer_runs_only_in_user_scopes(
    shared_database: Database, t: Tenants
) -> None:
    key = (t.wedding_1, t.guests[t.wedding_1][0])
    async with shared_database.service(reason="test: refused") as s:
        with pytest.raises(ValueError, match="user scopes"):
            await guests.get_guest(s, None, key)
    with pytest.raises(ValueError, match="claims"):
        await guests.get_guest(shared_database, None, key)
    async with shared_database.as_user(couple(t.w1_partner)) as s:
        read = await guests.get_guest(s, None, key)
        done = await guests.update_guest(s, None, key, read, {"notes": "in one transaction"})
    assert done.version == read.version + 1
