"""Weddings, clients and vendor links through the data layer: versions, visibility and the
consent rules of vendor links, all in user scopes."""

from __future__ import annotations

import pytest

from fixtures.tenants import Tenants, build_tenants, couple, new_id, vendor
from wedsync_db.data import clients, guests, organizations, vendor_links, weddings
from wedsync_db.db.client import Database
from wedsync_db.errors import NotFound, PermissionDenied, StaleVersion, WedsyncDBError


@pytest.fixture
async def t(shared_database: Database) -> Tenants:
    return await build_tenants(shared_database)


async def test_weddings_are_edited_by_the_couple_at_the_version_read(
    shared_database: Database, t: Tenants
) -> None:
    db, me = shared_database, couple(t.w1_partner)
    read = await weddings.get_wedding(db, me, (t.wedding_1,))
    done = await weddings.update_wedding(db, me, (t.wedding_1,), read, {"venue": "Kew Gardens"})
    assert (done.version, done.venue) == (2, "Kew Gardens")
    same = await weddings.update_wedding(db, me, (t.wedding_1,), done, {"venue": "Kew Gardens"})
    assert same.version == 2
    with pytest.raises(StaleVersion) as err:
        await weddings.update_wedding(db, me, (t.wedding_1,), read, {"venue": "Barn"})
    assert err.value.conflicting_fields == ("venue",)
    merged = await weddings.update_wedding(
        db, me, (t.wedding_1,), read, {"status": "confirmed"}, merge=True
    )
    assert (merged.version, merged.venue, merged.status) == (3, "Kew Gardens", "confirmed")
    # a linked vendor sees the wedding but does not edit it; others do not see it
    assert (await weddings.get_wedding(db, vendor(t.b_owner), (t.wedding_1,))).version == 3
    with pytest.raises(PermissionDenied):
        await weddings.update_wedding(db, vendor(t.b_owner), (t.wedding_1,), 3, {"venue": "X"})
    with pytest.raises(NotFound):
        await weddings.update_wedding(db, couple(t.w2_partner), (t.wedding_1,), 3, {"venue": "X"})
    page = await weddings.list_weddings(db, vendor(t.b_owner), limit=1)
    assert page.next_cursor is not None
    rest = await weddings.list_weddings(db, vendor(t.b_owner), cursor=page.next_cursor)
    assert {w.id for w in [*page.rows, *rest.rows]} == {t.wedding_1, t.wedding_2}
    assert rest.next_cursor is None


async def test_clients_belong_to_the_vendor_portal_of_their_organization(
    shared_database: Database, t: Tenants
) -> None:
    db, me = shared_database, vendor(t.a_member)
    made = await clients.create_client(
        db, me, t.org_a, {"partner1_name": "Quentin", "email": "q@Example.com", "status": "booked"}
    )
    assert made.version == 1
    found = await clients.list_clients(db, me, t.org_a, search="example.COM", status="booked")
    assert [c.id for c in found.rows] == [made.id]
    assert len((await clients.list_clients(db, me, t.org_a)).rows) == 3
    for outsider in (vendor(t.b_owner), couple(t.w1_partner)):
        with pytest.raises(NotFound):
            await clients.get_client(db, outsider, (t.org_a, made.id))
    key = (t.org_a, made.id)
    changed = await clients.update_client(db, me, key, made, {"phone": "123"})
    stale = [
        clients.update_client(db, me, key, made, {"phone": "456"}),
        clients.delete_client(db, me, key, made.version),
    ]
    for attempt in stale:
        with pytest.raises(StaleVersion):
            await attempt
    await clients.delete_client(db, me, key, changed.version)
    with pytest.raises(NotFound):
        await clients.get_client(db, me, key)


async def test_a_vendor_link_is_a_request_until_the_organization_accepts_it(
    shared_database: Database, t: Tenants
) -> None:
    db, partner, member = shared_database, couple(t.w2_partner), vendor(t.a_member)
    asked = await vendor_links.request_link(
        db, partner, t.wedding_2, t.org_a, {"service": "photo", "can_view_guests": True}
    )
    assert (asked.status, asked.version, asked.requested_by) == ("requested", 1, t.w2_partner)
    # both sides see the request; the vendor sees neither the wedding nor its guests yet
    assert [x.wedding_id for x in await vendor_links.list_links(db, member, wedding_id=t.wedding_2)]
    with pytest.raises(NotFound):
        await weddings.get_wedding(db, member, (t.wedding_2,))
    assert (await guests.list_guests(db, member, t.wedding_2)).rows == []
    # only the organization answers, once
    with pytest.raises(PermissionDenied):
        await vendor_links.accept_link(db, partner, t.wedding_2, t.org_a, asked)
    accepted = await vendor_links.accept_link(
        db, member, t.wedding_2, t.org_a, asked, client_id=t.clients[t.org_a][0]
    )
    assert (accepted.status, accepted.version, accepted.responded_by) == (
        "accepted",
        2,
        t.a_member,
    )
    assert accepted.client_id == t.clients[t.org_a][0]
    with pytest.raises(StaleVersion):
        await vendor_links.decline_link(db, member, t.wedding_2, t.org_a, asked)
    with pytest.raises(WedsyncDBError, match="once"):
        await vendor_links.decline_link(db, member, t.wedding_2, t.org_a, accepted)
    assert len((await guests.list_guests(db, member, t.wedding_2)).rows) == 3
    # the couple decides guest access; the vendor cannot grant it to itself
    with pytest.raises(PermissionDenied):
        await vendor_links.update_link(
            db, member, (t.wedding_2, t.org_a), accepted, {"service": "video"}
        )
    closed = await vendor_links.update_link(
        db, partner, (t.wedding_2, t.org_a), accepted, {"can_view_guests": False}
    )
    assert closed.version == 3
    assert (await guests.list_guests(db, member, t.wedding_2)).rows == []
    # a plain member may not withdraw (owners and admins do); the couple ends the link
    with pytest.raises(PermissionDenied):
        await vendor_links.revoke_link(db, member, (t.wedding_2, t.org_a), closed.version)
    await vendor_links.revoke_link(db, partner, (t.wedding_2, t.org_a), closed.version)
    with pytest.raises(NotFound):
        await vendor_links.get_link(db, member, (t.wedding_2, t.org_a))


async def test_a_stranger_cannot_request_a_link_for_someone_elses_wedding(
    shared_database: Database, t: Tenants
) -> None:
    with pytest.raises(PermissionDenied):
        await vendor_links.request_link(shared_database, couple(t.stranger), t.wedding_1, t.org_a)


async def test_organizations_and_members_are_managed_by_owners_and_admins(
    shared_database: Database, t: Tenants
) -> None:
    db, admin, member = shared_database, vendor(t.a_admin), vendor(t.a_member)
    assert [o.id for o in await organizations.list_organizations(db, member)] == [t.org_a]
    org = await organizations.get_organization(db, member, (t.org_a,))
    with pytest.raises(PermissionDenied):
        await organizations.update_organization(db, member, (t.org_a,), org, {"name": "Mine"})
    renamed = await organizations.update_organization(db, admin, (t.org_a,), org, {"name": "Ours"})
    assert (renamed.name, renamed.version) == ("Ours", 2)
    with pytest.raises(ValueError, match="extra"):
        organizations.OrganizationUpdate.model_validate({"tier": "enterprise"})
    with pytest.raises(NotFound):
        await organizations.get_organization(db, vendor(t.b_owner), (t.org_a,))
    newcomer = new_id()
    added = await organizations.add_member(db, admin, t.org_a, newcomer)
    assert (added.role, added.version) == ("member", 1)
    assert len(await organizations.list_members(db, member, t.org_a)) == 4
    promoted = await organizations.update_member(
        db, admin, (t.org_a, newcomer), added, {"role": "admin"}
    )
    assert promoted.version == 2
    with pytest.raises(StaleVersion):
        await organizations.update_member(db, admin, (t.org_a, newcomer), added, {"role": "member"})
    with pytest.raises(PermissionDenied):
        await organizations.remove_member(db, member, (t.org_a, newcomer))
    await organizations.remove_member(db, admin, (t.org_a, newcomer), promoted.version)
    with pytest.raises(NotFound):
        await organizations.remove_member(db, admin, (t.org_a, newcomer))
