"""Tenant isolation as behaviour: what each user can see and change, enforced by RLS.

Example tests walk every table's select / insert / update / delete policies on a small
hand-made world; a hypothesis property test checks the same rules over random worlds. All rows
carry fresh uuids, so the tests share one database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures.tenants import (
    Tenants,
    add_client,
    add_guests,
    add_organization,
    add_wedding,
    build_tenants,
    couple,
    link_vendor,
    new_id,
    service_rows,
    vendor,
)
from wedsync_db.db.client import Database
from wedsync_db.errors import Conflict, PermissionDenied


@pytest.fixture
def db(shared_database: Database) -> Database:
    """The session's Database, under the short name every test here uses."""
    return shared_database


@pytest.fixture
async def t(db: Database) -> Tenants:
    return await build_tenants(db)


async def ids(db: Database, claims: Mapping[str, str], query: str, *params: Any) -> set[Any]:
    """The first column of every row the user sees."""
    async with db.as_user(claims) as s:
        return {r[0] for r in await s.fetch_tuples(query, params)}


async def rowcount(db: Database, claims: Mapping[str, str], query: str, *params: Any) -> int:
    """Rows affected by a statement run as the user (committed)."""
    async with db.as_user(claims) as s:
        return await s.execute(query, params)


async def refused(db: Database, claims: Mapping[str, str], query: str, *params: Any) -> None:
    """The statement run as the user fails with PermissionDenied."""
    with pytest.raises(PermissionDenied):
        async with db.as_user(claims) as s:
            await s.execute(query, params)


async def cannot_write_guests(
    db: Database,
    claims: Mapping[str, str],
    wedding: Any,
    guest: Any,
    first_name: str,
    update: str,
) -> None:
    """The user can add no guest to ``wedding`` and neither change (``update``) nor delete
    ``guest``, which the service still reads unchanged."""
    read = "select first_name, version from guests where id = %s"
    before = await service_rows(db, read, (guest,))
    insert = "insert into guests (wedding_id, first_name) values (%s, %s)"
    await refused(db, claims, insert, wedding, first_name)
    assert await rowcount(db, claims, update, guest) == 0
    assert await rowcount(db, claims, "delete from guests where id = %s", guest) == 0
    assert await service_rows(db, read, (guest,)) == before


async def service_val(db: Database, query: str, *params: Any) -> Any:
    rows = await service_rows(db, query, params)
    return rows[0][0] if rows else None


# --- who sees which rows ---------------------------------------------------------------------
Sees = Callable[[Tenants], set[Any]]
# (query, the user's app, the user, the rows the user sees); every row of the hand-made world
# is the user's own organization's, wedding's or guest list's, or invisible
VISIBILITY: list[tuple[str, Callable[[UUID], dict[str, str]], str, Sees]] = [
    # organizations: members see their own; couples those working on their wedding
    ("select id from organizations", vendor, "a_member", lambda t: {t.org_a}),
    ("select id from organizations", vendor, "b_owner", lambda t: {t.org_b}),
    ("select id from organizations", vendor, "stranger", lambda t: set()),
    ("select id from organizations", couple, "w1_partner", lambda t: {t.org_a, t.org_b}),
    ("select id from organizations", couple, "w2_partner", lambda t: {t.org_b}),
    # colleagues see each other and nobody else
    (
        "select user_id from organization_members",
        vendor,
        "a_member",
        lambda t: {t.a_owner, t.a_admin, t.a_member},
    ),
    ("select user_id from organization_members", vendor, "b_owner", lambda t: {t.b_owner}),
    ("select user_id from organization_members", couple, "w1_partner", lambda t: set()),
    # vendors see only their organization's clients
    ("select id from clients", vendor, "a_member", lambda t: set(t.clients[t.org_a])),
    ("select id from clients", vendor, "b_owner", lambda t: set(t.clients[t.org_b])),
    ("select id from clients", vendor, "stranger", lambda t: set()),
    # weddings: the couple's own; vendors those they are linked to
    ("select id from weddings", couple, "w1_partner", lambda t: {t.wedding_1}),
    ("select id from weddings", couple, "w1_planner", lambda t: {t.wedding_1}),
    ("select id from weddings", couple, "w2_partner", lambda t: {t.wedding_2}),
    ("select id from weddings", vendor, "a_member", lambda t: {t.wedding_1}),
    ("select id from weddings", vendor, "b_owner", lambda t: {t.wedding_1, t.wedding_2}),
    ("select id from weddings", vendor, "stranger", lambda t: set()),
    # wedding members see each other only
    (
        "select user_id from wedding_members",
        couple,
        "w1_partner",
        lambda t: {t.w1_partner, t.w1_planner},
    ),
    ("select user_id from wedding_members", couple, "w2_partner", lambda t: {t.w2_partner}),
    ("select user_id from wedding_members", vendor, "a_owner", lambda t: set()),
    # guests: the couple's; A has guest access on wedding 1; B works on wedding 1 without it
    # and on 2 with it
    ("select id from guests", couple, "w1_partner", lambda t: set(t.guests[t.wedding_1])),
    ("select id from guests", couple, "w1_planner", lambda t: set(t.guests[t.wedding_1])),
    ("select id from guests", couple, "w2_partner", lambda t: set(t.guests[t.wedding_2])),
    ("select id from guests", vendor, "a_member", lambda t: set(t.guests[t.wedding_1])),
    ("select id from guests", vendor, "b_owner", lambda t: set(t.guests[t.wedding_2])),
    ("select id from guests", vendor, "stranger", lambda t: set()),
    # a vendor holding a couple-app token gets nothing through the vendor arm
    ("select id from guests", couple, "a_owner", lambda t: set()),
]


@pytest.mark.parametrize(
    ("query", "app", "user", "sees"),
    VISIBILITY,
    ids=[f"{q.split()[-1]}-{app.__name__}-{user}" for q, app, user, _ in VISIBILITY],
)
async def test_who_sees_which_rows(
    db: Database,
    t: Tenants,
    query: str,
    app: Callable[[UUID], dict[str, str]],
    user: str,
    sees: Sees,
) -> None:
    assert await ids(db, app(getattr(t, user)), query) == sees(t)


# (table, the user's app, the user, an insert into the table, the target it names): the token
# of the other app reaches no policy arm of the table, to read or to write
OTHER_APP: list[tuple[str, Callable[[UUID], dict[str, str]], str, str, str]] = [
    # the same vendor user, but with a couple-app token: the CRM stays invisible
    (
        "clients",
        couple,
        "a_owner",
        "insert into clients (organization_id, partner1_name) values (%s, 'X')",
        "org_a",
    ),
    # a couple member holding a vendor-portal token gets nothing through the couple arm
    (
        "guests",
        vendor,
        "w1_partner",
        "insert into guests (wedding_id, first_name) values (%s, 'Via vendor app')",
        "wedding_1",
    ),
]


@pytest.mark.parametrize(
    ("table", "app", "user", "insert", "target"),
    OTHER_APP,
    ids=[f"{table}-{app.__name__}-{user}" for table, app, user, _, _ in OTHER_APP],
)
async def test_the_audience_decides_which_policy_arm_applies(
    db: Database,
    t: Tenants,
    table: str,
    app: Callable[[UUID], dict[str, str]],
    user: str,
    insert: str,
    target: str,
) -> None:
    claims = app(getattr(t, user))
    assert await ids(db, claims, f"select id from {table}") == set()
    await refused(db, claims, insert, getattr(t, target))


# --- organizations --------------------------------------------------------------------------
async def test_users_cannot_create_organizations(db: Database, t: Tenants) -> None:
    org_id = new_id()
    for claims in (vendor(t.a_owner), couple(t.w1_partner), vendor(t.stranger)):
        await refused(
            db,
            claims,
            "insert into organizations (id, name, slug) values (%s, 'Mine', %s)",
            org_id,
            f"mine-{org_id.hex}",
        )
    assert await service_val(db, "select count(*) from organizations where id = %s", org_id) == 0


async def test_owners_and_admins_update_their_organization_others_cannot(
    db: Database, t: Tenants
) -> None:
    update = "update organizations set name = %s where id = %s"
    assert await rowcount(db, vendor(t.a_admin), update, "Renamed by admin", t.org_a) == 1
    assert await rowcount(db, vendor(t.a_member), update, "Renamed by member", t.org_a) == 0
    assert await rowcount(db, vendor(t.b_owner), update, "Renamed by B", t.org_a) == 0
    assert await rowcount(db, couple(t.w1_partner), update, "Renamed by couple", t.org_a) == 0
    name = "select name from organizations where id = %s"
    assert await service_val(db, name, t.org_a) == "Renamed by admin"
    assert await rowcount(db, vendor(t.a_owner), update, "Renamed by owner", t.org_a) == 1
    assert await service_val(db, name, t.org_a) == "Renamed by owner"


async def test_only_owners_and_admins_delete_their_organization(db: Database, t: Tenants) -> None:
    delete = "delete from organizations where id = %s"
    assert await rowcount(db, vendor(t.a_member), delete, t.org_a) == 0
    assert await rowcount(db, vendor(t.b_owner), delete, t.org_a) == 0
    assert await rowcount(db, vendor(t.a_owner), delete, t.org_b) == 0
    exists = "select count(*) from organizations where id = any(%s)"
    assert await service_val(db, exists, [t.org_a, t.org_b]) == 2
    assert await rowcount(db, vendor(t.b_owner), delete, t.org_b) == 1
    assert await service_val(db, exists, [t.org_a, t.org_b]) == 1


# --- organization_members -------------------------------------------------------------------
async def test_owners_and_admins_manage_members(db: Database, t: Tenants) -> None:
    insert = "insert into organization_members (organization_id, user_id, role) values (%s, %s, %s)"
    hired = new_id()
    async with db.as_user(vendor(t.a_admin)) as s:
        await s.execute(insert, (t.org_a, hired, "member"))
    update = "update organization_members set role = %s where organization_id = %s and user_id = %s"
    assert await rowcount(db, vendor(t.a_owner), update, "admin", t.org_a, hired) == 1
    delete = "delete from organization_members where organization_id = %s and user_id = %s"
    assert await rowcount(db, vendor(t.a_owner), delete, t.org_a, hired) == 1
    assert (
        await service_val(db, "select count(*) from organization_members where user_id = %s", hired)
        == 0
    )


async def test_members_cannot_manage_membership_or_join_other_organizations(
    db: Database, t: Tenants
) -> None:
    insert = "insert into organization_members (organization_id, user_id, role) values (%s, %s, %s)"
    await refused(db, vendor(t.a_member), insert, t.org_a, new_id(), "member")
    # nobody adds themselves to someone else's organization, not even another owner
    await refused(db, vendor(t.b_owner), insert, t.org_a, t.b_owner, "owner")
    await refused(db, vendor(t.stranger), insert, t.org_a, t.stranger, "member")
    # a plain member cannot promote itself, nor remove the owner
    update = "update organization_members set role = 'owner' where user_id = %s"
    assert await rowcount(db, vendor(t.a_member), update, t.a_member) == 0
    delete = "delete from organization_members where organization_id = %s and user_id = %s"
    assert await rowcount(db, vendor(t.a_member), delete, t.org_a, t.a_owner) == 0
    assert await rowcount(db, vendor(t.b_owner), delete, t.org_a, t.a_member) == 0
    roles = await service_rows(
        db,
        "select user_id, role from organization_members where organization_id = %s",
        (t.org_a,),
    )
    assert dict(roles) == {t.a_owner: "owner", t.a_admin: "admin", t.a_member: "member"}


async def test_an_admin_cannot_move_a_member_into_another_organization(
    db: Database, t: Tenants
) -> None:
    move = "update organization_members set organization_id = %s where user_id = %s"
    await refused(db, vendor(t.a_admin), move, t.org_b, t.a_member)


# --- clients --------------------------------------------------------------------------------
async def test_vendors_cannot_name_another_organizations_client(db: Database, t: Tenants) -> None:
    # naming another organization's client explicitly does not help
    other = t.clients[t.org_b][0]
    assert await ids(db, vendor(t.a_owner), "select id from clients where id = %s", other) == set()


async def test_vendors_write_their_own_clients_only(db: Database, t: Tenants) -> None:
    insert = "insert into clients (organization_id, id, partner1_name) values (%s, %s, %s)"
    mine = new_id()
    async with db.as_user(vendor(t.a_member)) as s:
        await s.execute(insert, (t.org_a, mine, "Alex"))
    await refused(db, vendor(t.a_member), insert, t.org_b, new_id(), "Sneaky")

    theirs = t.clients[t.org_b][0]
    before = await service_rows(
        db, "select partner1_name, updated_at from clients where id = %s", (theirs,)
    )
    update = "update clients set partner1_name = %s where id = %s"
    assert await rowcount(db, vendor(t.a_owner), update, "Hijacked", theirs) == 0
    assert await rowcount(db, vendor(t.a_owner), "delete from clients where id = %s", theirs) == 0
    assert (
        await service_rows(
            db, "select partner1_name, updated_at from clients where id = %s", (theirs,)
        )
        == before
    )

    assert await rowcount(db, vendor(t.a_member), update, "Alexandra", mine) == 1
    # moving a client into another organization violates the policy's WITH CHECK
    await refused(
        db,
        vendor(t.a_member),
        "update clients set organization_id = %s where id = %s",
        t.org_b,
        mine,
    )
    assert await rowcount(db, vendor(t.a_member), "delete from clients where id = %s", mine) == 1


async def test_duplicate_external_ref_is_a_conflict_naming_the_constraint(
    db: Database, t: Tenants
) -> None:
    insert = (
        "insert into clients (organization_id, partner1_name, external_ref) values (%s, %s, %s)"
    )
    async with db.as_user(vendor(t.a_owner)) as s:
        await s.execute(insert, (t.org_a, "First", "CRM-1"))
    with pytest.raises(Conflict) as info:
        async with db.as_user(vendor(t.a_owner)) as s:
            await s.execute(insert, (t.org_a, "Second", "CRM-1"))
    assert info.value.constraint == "clients_organization_id_external_ref_key"
    # the same reference in another organization is fine
    async with db.as_user(vendor(t.b_owner)) as s:
        await s.execute(insert, (t.org_b, "Other", "CRM-1"))


# --- weddings -------------------------------------------------------------------------------
async def test_users_cannot_create_weddings(db: Database, t: Tenants) -> None:
    insert = "insert into weddings (title, wedding_date) values ('Ours', '2027-07-03')"
    await refused(db, couple(t.w1_partner), insert)
    await refused(db, vendor(t.a_owner), insert)


async def test_the_couple_edits_its_wedding_vendors_cannot(db: Database, t: Tenants) -> None:
    update = "update weddings set venue = %s where id = %s"
    assert await rowcount(db, couple(t.w1_planner), update, "Planner's pick", t.wedding_1) == 1
    assert await rowcount(db, vendor(t.a_owner), update, "Vendor's pick", t.wedding_1) == 0
    assert await rowcount(db, couple(t.w2_partner), update, "Neighbour's pick", t.wedding_1) == 0
    assert await service_val(db, "select venue from weddings where id = %s", t.wedding_1) == (
        "Planner's pick"
    )


async def test_only_partners_delete_their_wedding(db: Database, t: Tenants) -> None:
    delete = "delete from weddings where id = %s"
    assert await rowcount(db, couple(t.w1_planner), delete, t.wedding_1) == 0
    assert await rowcount(db, vendor(t.a_owner), delete, t.wedding_1) == 0
    assert await rowcount(db, couple(t.w2_partner), delete, t.wedding_1) == 0
    assert await service_val(db, "select count(*) from weddings where id = %s", t.wedding_1) == 1
    assert await rowcount(db, couple(t.w1_partner), delete, t.wedding_1) == 1
    assert (
        await service_val(db, "select count(*) from guests where wedding_id = %s", t.wedding_1) == 0
    )


# --- wedding_members ------------------------------------------------------------------------
async def test_partners_manage_wedding_members(db: Database, t: Tenants) -> None:
    insert = "insert into wedding_members (wedding_id, user_id, role) values (%s, %s, %s)"
    planner = new_id()
    async with db.as_user(couple(t.w1_partner)) as s:
        await s.execute(insert, (t.wedding_1, planner, "planner"))
    assert await ids(db, couple(planner), "select id from weddings") == {t.wedding_1}
    # a planner cannot add people, and nobody joins someone else's wedding
    await refused(db, couple(t.w1_planner), insert, t.wedding_1, new_id(), "partner")
    await refused(db, couple(t.w2_partner), insert, t.wedding_1, t.w2_partner, "partner")
    await refused(db, vendor(t.a_owner), insert, t.wedding_1, t.a_owner, "planner")
    update = "update wedding_members set role = 'partner' where wedding_id = %s and user_id = %s"
    assert await rowcount(db, couple(t.w1_planner), update, t.wedding_1, t.w1_planner) == 0
    delete = "delete from wedding_members where wedding_id = %s and user_id = %s"
    assert await rowcount(db, couple(t.w1_planner), delete, t.wedding_1, t.w1_partner) == 0
    assert await rowcount(db, couple(t.w1_partner), delete, t.wedding_1, planner) == 1
    assert await ids(db, couple(planner), "select id from weddings") == set()


# --- wedding_vendors ------------------------------------------------------------------------
async def test_the_couple_decides_which_vendors_see_guests(db: Database, t: Tenants) -> None:
    guests_of_2 = "select id from guests where wedding_id = %s"
    assert await ids(db, vendor(t.a_owner), guests_of_2, t.wedding_2) == set()

    async with db.as_user(couple(t.w2_partner)) as s:
        await s.execute(
            "insert into wedding_vendors (wedding_id, organization_id, can_view_guests)"
            " values (%s, %s, true)",
            (t.wedding_2, t.org_a),
        )
    # a request: nothing of the wedding until the organization accepts it
    assert await ids(db, vendor(t.a_owner), guests_of_2, t.wedding_2) == set()
    accept = (
        "update wedding_vendors set status = 'accepted'"
        " where wedding_id = %s and organization_id = %s"
    )
    assert await rowcount(db, vendor(t.a_member), accept, t.wedding_2, t.org_a) == 1
    assert await ids(db, vendor(t.a_owner), guests_of_2, t.wedding_2) == set(t.guests[t.wedding_2])

    revoke = (
        "update wedding_vendors set can_view_guests = false"
        " where wedding_id = %s and organization_id = %s"
    )
    assert await rowcount(db, couple(t.w2_partner), revoke, t.wedding_2, t.org_a) == 1
    assert await ids(db, vendor(t.a_owner), guests_of_2, t.wedding_2) == set()
    assert await ids(db, vendor(t.a_owner), "select id from weddings") == {t.wedding_1, t.wedding_2}

    unlink = "delete from wedding_vendors where wedding_id = %s and organization_id = %s"
    assert await rowcount(db, couple(t.w2_partner), unlink, t.wedding_2, t.org_a) == 1
    assert await ids(db, vendor(t.a_owner), "select id from weddings") == {t.wedding_1}


async def test_vendors_cannot_link_themselves_or_grant_themselves_guest_access(
    db: Database, t: Tenants
) -> None:
    await refused(
        db,
        vendor(t.a_owner),
        "insert into wedding_vendors (wedding_id, organization_id, can_view_guests)"
        " values (%s, %s, true)",
        t.wedding_2,
        t.org_a,
    )
    # B sees its own link on wedding 1 but the guest access is the couple's to give
    await refused(
        db,
        vendor(t.b_owner),
        "update wedding_vendors set can_view_guests = true"
        " where wedding_id = %s and organization_id = %s",
        t.wedding_1,
        t.org_b,
    )
    assert (
        await ids(db, vendor(t.b_owner), "select id from guests where wedding_id = %s", t.wedding_1)
        == set()
    )
    # B's owner withdraws B from the wedding, and cannot remove the other vendors
    unlink = "delete from wedding_vendors where wedding_id = %s"
    assert await rowcount(db, vendor(t.b_owner), unlink, t.wedding_1) == 1
    links = "select organization_id from wedding_vendors where wedding_id = %s"
    assert await ids(db, couple(t.w1_partner), links, t.wedding_1) == {t.org_a}
    # a vendor sees its own links, not the other vendors on the wedding
    assert await ids(db, vendor(t.a_member), links, t.wedding_1) == {t.org_a}


async def test_couples_cannot_link_vendors_to_another_wedding(db: Database, t: Tenants) -> None:
    await refused(
        db,
        couple(t.w1_partner),
        "insert into wedding_vendors (wedding_id, organization_id, can_view_guests)"
        " values (%s, %s, true)",
        t.wedding_2,
        t.org_a,
    )


# --- guests ---------------------------------------------------------------------------------
async def test_the_couple_manages_its_guest_list(db: Database, t: Tenants) -> None:
    new_guest = new_id()
    async with db.as_user(couple(t.w1_partner)) as s:
        await s.execute(
            "insert into guests (wedding_id, id, first_name) values (%s, %s, 'Nan')",
            (t.wedding_1, new_guest),
        )
    update = "update guests set rsvp_status = 'accepted' where id = %s"
    assert await rowcount(db, couple(t.w1_planner), update, new_guest) == 1
    assert await service_rows(
        db, "select rsvp_status, version from guests where id = %s", (new_guest,)
    ) == [("accepted", 2)]
    # moving a guest onto another wedding's list violates the WITH CHECK
    await refused(
        db,
        couple(t.w1_partner),
        "update guests set wedding_id = %s where id = %s",
        t.wedding_2,
        new_guest,
    )
    assert (
        await rowcount(db, couple(t.w1_partner), "delete from guests where id = %s", new_guest) == 1
    )


async def test_couples_cannot_touch_another_weddings_guests(db: Database, t: Tenants) -> None:
    theirs = t.guests[t.wedding_2][0]
    await cannot_write_guests(
        db,
        couple(t.w1_partner),
        t.wedding_2,
        theirs,
        "Gatecrasher",
        "update guests set first_name = 'Renamed' where id = %s",
    )


async def test_vendors_cannot_write_guests_even_with_guest_access(db: Database, t: Tenants) -> None:
    guest = t.guests[t.wedding_1][0]
    # A can read wedding 1's guests ...
    assert guest in await ids(db, vendor(t.a_owner), "select id from guests")
    # ... but not add, change or remove any
    await cannot_write_guests(
        db,
        vendor(t.a_owner),
        t.wedding_1,
        guest,
        "Vendor plus-one",
        "update guests set table_number = 1 where id = %s",
    )


async def test_the_anon_role_reads_nothing(db: Database, t: Tenants) -> None:
    claims = {"sub": str(t.w1_partner), "aud": "couple", "role": "anon"}
    with pytest.raises(PermissionDenied):
        async with db.as_user(claims) as s:
            await s.fetch_val("select count(*) from guests")


async def test_the_service_client_sees_everything(db: Database, t: Tenants) -> None:
    async with db.service(reason="test: service sees all") as s:
        guests = {r[0] for r in await s.fetch_tuples("select id from guests")}
        clients = {r[0] for r in await s.fetch_tuples("select id from clients")}
    assert set(t.guests[t.wedding_1]) | set(t.guests[t.wedding_2]) <= guests
    assert set(t.clients[t.org_a]) | set(t.clients[t.org_b]) <= clients


# --- property: random worlds ----------------------------------------------------------------
ORG_ROLES = ("owner", "admin", "member")
WEDDING_ROLES = ("partner", "planner")
# a link the organization has not accepted (yet) shows neither side the other's data
LINK_STATUSES = ("requested", "accepted", "declined")


@dataclass(frozen=True)
class WorldSpec:
    """A random world by index: who belongs where, which links exist, how many rows."""

    users: int
    org_members: dict[tuple[int, int], str]  # (org, user) -> role
    wedding_members: dict[tuple[int, int], str]  # (wedding, user) -> role
    links: dict[tuple[int, int], tuple[bool, str]]  # (wedding, org) -> (can_view_guests, status)
    clients_per_org: list[int]
    guests_per_wedding: list[int]

    def orgs_of(self, user: int) -> set[int]:
        return {o for (o, u) in self.org_members if u == user}

    def weddings_of(self, user: int) -> set[int]:
        return {w for (w, u) in self.wedding_members if u == user}


@st.composite
def worlds(draw: st.DrawFn) -> WorldSpec:
    users = draw(st.integers(1, 5))
    orgs = draw(st.integers(1, 3))
    weddings = draw(st.integers(1, 3))
    user = st.integers(0, users - 1)
    return WorldSpec(
        users=users,
        org_members=draw(
            st.dictionaries(
                st.tuples(st.integers(0, orgs - 1), user), st.sampled_from(ORG_ROLES), max_size=6
            )
        ),
        wedding_members=draw(
            st.dictionaries(
                st.tuples(st.integers(0, weddings - 1), user),
                st.sampled_from(WEDDING_ROLES),
                max_size=5,
            )
        ),
        links=draw(
            st.dictionaries(
                st.tuples(st.integers(0, weddings - 1), st.integers(0, orgs - 1)),
                st.tuples(st.booleans(), st.sampled_from(LINK_STATUSES)),
            )
        ),
        clients_per_org=draw(st.lists(st.integers(0, 3), min_size=orgs, max_size=orgs)),
        guests_per_wedding=draw(st.lists(st.integers(0, 4), min_size=weddings, max_size=weddings)),
    )


@dataclass(frozen=True)
class World:
    """A WorldSpec written to the database: index -> uuid."""

    spec: WorldSpec
    users: list[UUID]
    orgs: list[UUID]
    weddings: list[UUID]
    clients: list[list[UUID]]
    guests: list[list[UUID]]


async def materialise(db: Database, spec: WorldSpec) -> World:
    users = [new_id() for _ in range(spec.users)]
    async with db.service(reason="test: random world") as s:
        orgs = [await add_organization(s) for _ in spec.clients_per_org]
        weddings = [await add_wedding(s) for _ in spec.guests_per_wedding]
        for (o, u), role in spec.org_members.items():
            await s.execute(
                "insert into organization_members (organization_id, user_id, role)"
                " values (%s, %s, %s)",
                (orgs[o], users[u], role),
            )
        for (w, u), role in spec.wedding_members.items():
            await s.execute(
                "insert into wedding_members (wedding_id, user_id, role) values (%s, %s, %s)",
                (weddings[w], users[u], role),
            )
        for (w, o), (can_view, status) in spec.links.items():
            await link_vendor(s, weddings[w], orgs[o], can_view_guests=can_view, status=status)
        clients = [
            [await add_client(s, org) for _ in range(n)]
            for org, n in zip(orgs, spec.clients_per_org, strict=True)
        ]
        guests = [
            await add_guests(s, w, n)
            for w, n in zip(weddings, spec.guests_per_wedding, strict=True)
        ]
    return World(spec, users, orgs, weddings, clients, guests)


def flatten(groups: list[list[UUID]], indexes: set[int]) -> set[UUID]:
    return {x for i in indexes for x in groups[i]}


async def snapshot(db: Database, world: World) -> list[tuple[Any, ...]]:
    """Every row of the world as the service client sees it (for unchanged-after checks)."""
    all_guests = [g for gs in world.guests for g in gs]
    all_clients = [c for cs in world.clients for c in cs]
    rows: list[tuple[Any, ...]] = await service_rows(
        db,
        "select 'guest', id::text, first_name, version::text from guests where id = any(%s)"
        " union all select 'client', id::text, partner1_name, status"
        "   from clients where id = any(%s)"
        " union all select 'org', id::text, name, tier from organizations where id = any(%s)"
        " union all select 'member', user_id::text, organization_id::text, role"
        "   from organization_members where organization_id = any(%s)"
        " union all select 'wedding', id::text, title, venue from weddings where id = any(%s)"
        " union all select 'link', wedding_id::text, organization_id::text,"
        "   can_view_guests::text || ' ' || status from wedding_vendors where wedding_id = any(%s)"
        " order by 1, 2, 3",
        (all_guests, all_clients, world.orgs, world.orgs, world.weddings, world.weddings),
    )
    return rows


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(spec=worlds())
async def test_random_worlds_stay_isolated(shared_database: Database, spec: WorldSpec) -> None:
    db = shared_database
    world = await materialise(db, spec)
    before = await snapshot(db, world)

    # the service client sees every row of the world
    assert len([r for r in before if r[0] == "guest"]) == sum(spec.guests_per_wedding)
    assert len([r for r in before if r[0] == "client"]) == sum(spec.clients_per_org)
    assert len([r for r in before if r[0] == "link"]) == len(spec.links)

    all_orgs = set(range(len(world.orgs)))
    all_weddings = set(range(len(world.weddings)))
    for u, user in enumerate(world.users):
        my_orgs = spec.orgs_of(u)
        my_weddings = spec.weddings_of(u)
        accepted = {k for k, (_, status) in spec.links.items() if status == "accepted"}
        linked = {w for (w, o) in accepted if o in my_orgs}
        with_access = {w for (w, o) in accepted if o in my_orgs and spec.links[(w, o)][0]}
        vendors_of_mine = {o for (w, o) in accepted if w in my_weddings}
        # both sides see the link rows themselves, requests and refusals included
        my_links = {
            (world.weddings[w], world.orgs[o])
            for (w, o) in spec.links
            if o in my_orgs or w in my_weddings
        }

        async with db.as_user(vendor(user)) as s:
            clients = {r[0] for r in await s.fetch_tuples("select id from clients")}
            guests = {r[0] for r in await s.fetch_tuples("select id from guests")}
            weddings = {r[0] for r in await s.fetch_tuples("select id from weddings")}
            orgs = {r[0] for r in await s.fetch_tuples("select id from organizations")}
            links = set(
                await s.fetch_tuples("select wedding_id, organization_id from wedding_vendors")
            )
        # a vendor never sees another organization's clients
        assert clients == flatten(world.clients, my_orgs)
        assert not clients & flatten(world.clients, all_orgs - my_orgs)
        # guests only of weddings linked with guest access, all of them
        assert guests == flatten(world.guests, with_access)
        assert not guests & flatten(world.guests, linked - with_access)
        assert weddings == {world.weddings[w] for w in my_weddings | linked}
        assert orgs == {world.orgs[o] for o in my_orgs | vendors_of_mine}
        assert {link for link in links if link[0] in set(world.weddings)} == my_links

        async with db.as_user(couple(user)) as s:
            clients = {r[0] for r in await s.fetch_tuples("select id from clients")}
            guests = {r[0] for r in await s.fetch_tuples("select id from guests")}
        # a couple never sees another wedding's guests, nor any vendor's CRM
        assert clients == set()
        assert guests == flatten(world.guests, my_weddings)
        assert not guests & flatten(world.guests, all_weddings - my_weddings)

        # writes into other tenants' rows: inserts refused, updates match nothing
        foreign_orgs = sorted(all_orgs - my_orgs)
        foreign_weddings = sorted(all_weddings - my_weddings)
        for claims, foreign, tenants, insert in (
            (
                vendor(user),
                foreign_orgs,
                world.orgs,
                "insert into clients (organization_id, partner1_name) values (%s, 'Intruder')",
            ),
            (
                couple(user),
                foreign_weddings,
                world.weddings,
                "insert into guests (wedding_id, first_name) values (%s, 'Gatecrasher')",
            ),
        ):
            if foreign:
                await refused(db, claims, insert, tenants[foreign[0]])
        if foreign_orgs and world.clients[foreign_orgs[0]]:
            hijack = "update clients set partner1_name = 'Hijacked' where id = %s"
            theirs = world.clients[foreign_orgs[0]][0]
            assert await rowcount(db, vendor(user), hijack, theirs) == 0
        # vendors never write guests, whatever their access; couples not other weddings'
        for claims, targets in (
            (vendor(user), all_weddings),
            (couple(user), set(foreign_weddings)),
        ):
            victims = sorted(flatten(world.guests, targets))
            if victims:
                assert (
                    await rowcount(
                        db,
                        claims,
                        "update guests set first_name = 'Renamed' where id = any(%s)",
                        victims,
                    )
                    == 0
                )
        # only a member of the organization answers its requests
        for (w, o), (_, status) in spec.links.items():
            if status != "requested" or o in my_orgs:
                continue
            accept = (
                "update wedding_vendors set status = 'accepted'"
                " where wedding_id = %s and organization_id = %s"
            )
            if w in my_weddings:  # the couple sees the request, and may not answer it
                await refused(db, couple(user), accept, world.weddings[w], world.orgs[o])
            else:
                assert (
                    await rowcount(db, vendor(user), accept, world.weddings[w], world.orgs[o]) == 0
                )
        if with_access:
            await refused(
                db,
                vendor(user),
                "insert into guests (wedding_id, first_name) values (%s, 'Vendor guest')",
                world.weddings[min(with_access)],
            )

    assert await snapshot(db, world) == before
