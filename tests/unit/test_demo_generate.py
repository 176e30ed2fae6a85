"""The demo data generator: deterministic, weighted towards Saturdays and peak months, linked."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, timedelta
from itertools import islice

import pytest

from wedsync_db.demo.generate import (
    DIETARY,
    HORIZON_DAYS,
    MAX_GUESTS_PER_WEDDING,
    MAX_ORGANIZATIONS,
    PEAK_MONTHS,
    DemoData,
    DemoSize,
    generate_demo,
    slugify,
    wedding_day_weights,
)

TODAY = date(2026, 11, 25)
SATURDAY = 5


@pytest.fixture(scope="module")
def data() -> DemoData:
    return generate_demo(DemoSize(40, 300, 12, seed=7), TODAY)


@pytest.fixture(scope="module")
def many_weddings() -> DemoData:
    return generate_demo(DemoSize(30, 3000, 1, seed=3), TODAY)


def test_same_seed_same_rows() -> None:
    size = DemoSize(12, 40, 5, seed=99)
    a, b = generate_demo(size, TODAY), generate_demo(size, TODAY)
    assert a == b
    assert list(a.guests()) == list(b.guests())


def test_guests_are_the_same_on_every_iteration(data: DemoData) -> None:
    assert list(islice(data.guests(), 50)) == list(islice(data.guests(), 50))


def test_other_seed_other_rows() -> None:
    a = generate_demo(DemoSize(12, 40, 5, seed=1), TODAY)
    b = generate_demo(DemoSize(12, 40, 5, seed=2), TODAY)
    assert {o.id for o in a.organizations}.isdisjoint(o.id for o in b.organizations)
    assert {o.slug for o in a.organizations}.isdisjoint(o.slug for o in b.organizations)
    assert [w.wedding_date for w in a.weddings] != [w.wedding_date for w in b.weddings]


def test_saturdays_are_favoured(many_weddings: DemoData) -> None:
    weekdays = Counter(w.wedding_date.weekday() for w in many_weddings.weddings)
    saturday_share = weekdays[SATURDAY] / len(many_weddings.weddings)
    # uniform would be 1/7 ≈ 14 %
    assert 0.5 < saturday_share < 0.7
    assert weekdays[SATURDAY] > 3 * max(n for day, n in weekdays.items() if day != SATURDAY)


def test_peak_months_are_favoured(many_weddings: DemoData) -> None:
    days = [d for d, _ in wedding_day_weights(TODAY)]
    uniform_share = sum(d.month in PEAK_MONTHS for d in days) / len(days)
    observed = sum(w.wedding_date.month in PEAK_MONTHS for w in many_weddings.weddings)
    observed_share = observed / len(many_weddings.weddings)
    assert observed_share > uniform_share + 0.15


def test_weddings_fall_in_the_next_18_months(many_weddings: DemoData) -> None:
    dates = [w.wedding_date for w in many_weddings.weddings]
    assert min(dates) >= TODAY
    assert max(dates) < TODAY + timedelta(days=HORIZON_DAYS)


def test_peak_months_follow_the_setting() -> None:
    winter = frozenset({12, 1, 2})
    data = generate_demo(DemoSize(5, 2000, 1, seed=4), TODAY, peak_months=winter)
    share = sum(w.wedding_date.month in winter for w in data.weddings) / len(data.weddings)
    days = [d for d, _ in wedding_day_weights(TODAY)]
    assert share > sum(d.month in winter for d in days) / len(days) + 0.15


def test_organizations(data: DemoData) -> None:
    orgs = data.organizations
    assert len(orgs) == 40
    assert len({o.id for o in orgs}) == len(orgs)
    assert len({o.slug for o in orgs}) == len(orgs)
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9-]*", o.slug) for o in orgs)
    assert all(1 <= len(o.name) <= 200 for o in orgs)
    assert {o.tier for o in orgs} <= {"free", "starter", "professional", "scale", "enterprise"}
    assert len({o.tier for o in orgs}) >= 3
    assert all(o.timezone.startswith("Europe/") for o in orgs)


def test_organization_members(data: DemoData) -> None:
    org_ids = {o.id for o in data.organizations}
    per_org = Counter(m.organization_id for m in data.organization_members)
    assert set(per_org) == org_ids
    assert all(1 <= n <= 5 for n in per_org.values())
    owners = Counter(m.organization_id for m in data.organization_members if m.role == "owner")
    assert all(owners[o] == 1 for o in org_ids)
    keys = [(m.organization_id, m.user_id) for m in data.organization_members]
    assert len(set(keys)) == len(keys)


def test_clients_belong_to_organizations_with_unique_refs(data: DemoData) -> None:
    org_ids = {o.id for o in data.organizations}
    assert all(c.organization_id in org_ids for c in data.clients)
    refs = [(c.organization_id, c.external_ref) for c in data.clients]
    assert len(set(refs)) == len(refs)
    keys = [(c.organization_id, c.id) for c in data.clients]
    assert len(set(keys)) == len(keys)
    assert {c.status for c in data.clients} <= {"lead", "booked", "completed", "cancelled"}


def test_wedding_members(data: DemoData) -> None:
    wedding_ids = {w.id for w in data.weddings}
    by_wedding: dict[object, Counter[str]] = {}
    for m in data.wedding_members:
        assert m.wedding_id in wedding_ids
        by_wedding.setdefault(m.wedding_id, Counter())[m.role] += 1
    assert set(by_wedding) == wedding_ids
    assert all(c["partner"] == 2 and c["planner"] <= 1 for c in by_wedding.values())
    assert any(c["planner"] for c in by_wedding.values())
    users = [m.user_id for m in data.wedding_members]
    assert len(set(users)) == len(users)


def test_vendor_links_point_at_existing_rows(data: DemoData) -> None:
    org_ids = {o.id for o in data.organizations}
    wedding_ids = {w.id for w in data.weddings}
    clients = {(c.organization_id, c.id): c for c in data.clients}
    weddings = {w.id: w for w in data.weddings}
    per_wedding = Counter(v.wedding_id for v in data.wedding_vendors)
    assert set(per_wedding) == wedding_ids
    assert all(2 <= n <= 5 for n in per_wedding.values())
    keys = [(v.wedding_id, v.organization_id) for v in data.wedding_vendors]
    assert len(set(keys)) == len(keys)
    for link in data.wedding_vendors:
        assert link.organization_id in org_ids
        if link.status == "requested":
            # the couple's request: the vendor attaches its client record when accepting
            assert link.client_id is None
            continue
        assert link.status == "accepted"
        assert link.client_id is not None
        # the client row is the same couple in that vendor's own CRM
        client = clients[(link.organization_id, link.client_id)]
        assert client.wedding_date == weddings[link.wedding_id].wedding_date
    share = sum(v.can_view_guests for v in data.wedding_vendors) / len(data.wedding_vendors)
    assert 0.35 < share < 0.7
    requested = sum(v.status == "requested" for v in data.wedding_vendors)
    assert 0.03 < requested / len(data.wedding_vendors) < 0.3


def test_guests(data: DemoData) -> None:
    guests = list(data.guests())
    assert len(guests) == 300 * 12
    assert Counter(g.wedding_id for g in guests) == {w.id: 12 for w in data.weddings}
    assert len({(g.wedding_id, g.id) for g in guests}) == len(guests)
    assert {g.rsvp_status for g in guests} == {"pending", "accepted", "declined", "maybe"}
    assert all(g.table_number is None or g.table_number > 0 for g in guests)
    assert any(g.dietary_requirements for g in guests)
    assert {d for g in guests for d in g.dietary_requirements} <= set(DIETARY)
    assert any(g.plus_one for g in guests)
    assert all(g.plus_one or g.plus_one_name is None for g in guests)
    assert all(g.email is None or g.email.isascii() for g in guests)


def test_samples_are_consistent(data: DemoData) -> None:
    s = data.samples
    members = {(m.organization_id, m.user_id) for m in data.organization_members}
    links = {
        (v.wedding_id, v.organization_id): v.can_view_guests
        for v in data.wedding_vendors
        if v.status == "accepted"
    }
    assert (s.vendor_organization_id, s.vendor_user_id) in members
    assert links[(s.vendor_wedding_id, s.vendor_organization_id)] is True
    assert (s.couple_wedding_id, s.couple_user_id, "partner") in set(data.wedding_members)
    assert (s.restricted_organization_id, s.restricted_user_id) in members
    assert s.restricted_wedding_id is not None and s.restricted_organization_id is not None
    assert links[(s.restricted_wedding_id, s.restricted_organization_id)] is False


def test_small_data_sets_still_link() -> None:
    data = generate_demo(DemoSize(1, 3, 1), TODAY)
    assert len(data.wedding_vendors) == 3
    assert data.samples.vendor_organization_id == data.organizations[0].id


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"organizations": 0}, "organizations must be between 1"),
        ({"weddings": -5}, "weddings must be between 1"),
        ({"guests_per_wedding": MAX_GUESTS_PER_WEDDING + 1}, "guests per wedding must be between"),
        ({"organizations": MAX_ORGANIZATIONS + 1}, "organizations must be between"),
        ({"weddings": 200_000, "guests_per_wedding": 1_000}, "at most 10,000,000"),
        ({"seed": -1}, "seed must be between 0"),
        ({"weddings": 2.5}, "weddings must be a whole number"),
        ({"organizations": True}, "organizations must be a whole number"),
    ],
)
def test_sizes_are_validated(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"organizations": 2, "weddings": 2, "guests_per_wedding": 2}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        DemoSize(**args)  # type: ignore[arg-type]


def test_slugify() -> None:
    assert slugify("Château de Fontaine & Co") == "chateau-de-fontaine-co"
    assert slugify("!!!") == "vendor"
