"""Plan limits in the database: counters kept by statement-level triggers, refusals (WS402) as
PlanLimitExceeded, race-free under concurrency, downgrades that block growth without deleting,
per-organization overrides, and the usage commands."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from typer.testing import CliRunner

from fixtures.environment import isolate_settings
from fixtures.tenants import (
    Tenants,
    add_client,
    add_organization,
    build_tenants,
    couple,
    new_id,
    service_rows,
    vendor,
)
from wedsync_db.cli.main import app
from wedsync_db.db.client import Database
from wedsync_db.errors import PermissionDenied, PlanLimitExceeded
from wedsync_db.monitor.collectors import collect
from wedsync_db.monitor.prometheus import families


@pytest.fixture
async def t(database: Database) -> Tenants:
    return await build_tenants(database)


async def set_limit(db: Database, org: UUID, limit: str, maximum: int | None) -> None:
    """An override of one limit for one organization."""
    async with db.service(reason="test: plan override") as s:
        await s.execute(
            "insert into organization_limit_overrides"
            " (organization_id, limit_name, maximum, reason) values (%s, %s, %s, 'test')"
            " on conflict (organization_id, limit_name)"
            " do update set maximum = excluded.maximum",
            (org, limit, maximum),
        )


async def usage(db: Database, org: UUID) -> tuple[int, int, int]:
    rows = await service_rows(
        db,
        "select clients, members, weddings from organization_usage where organization_id = %s",
        (org,),
    )
    return rows[0]


async def insert_client(db: Database, user: UUID, org: UUID, name: str = "New") -> None:
    async with db.as_user(vendor(user)) as s:
        await s.execute(
            "insert into clients (organization_id, partner1_name) values (%s, %s)", (org, name)
        )


async def test_fifty_concurrent_inserts_against_a_limit_of_ten_let_exactly_ten_in(
    database: Database,
) -> None:
    owner = new_id()
    async with database.service(reason="test: organization") as s:
        org = await add_organization(s, {owner: "owner"})
    await set_limit(database, org, "clients", 10)

    async def attempt(i: int) -> bool:
        try:
            await insert_client(database, owner, org, f"Client {i}")
        except PlanLimitExceeded as exc:
            assert (exc.limit, exc.maximum) == ("clients", 10)
            assert exc.current == 10
            return False
        return True

    outcomes = await asyncio.gather(*(attempt(i) for i in range(50)))
    assert sum(outcomes) == 10
    rows = await service_rows(
        database, "select count(*) from clients where organization_id = %s", (org,)
    )
    assert rows == [(10,)]
    assert (await usage(database, org))[0] == 10


async def test_a_bulk_insert_over_the_limit_fails_whole(database: Database, t: Tenants) -> None:
    await set_limit(database, t.org_a, "clients", 5)  # org A has 2 clients
    with pytest.raises(PlanLimitExceeded) as info:
        async with database.as_user(vendor(t.a_owner)) as s:
            await s.execute(
                "insert into clients (organization_id, partner1_name)"
                " select %s, 'Bulk ' || n from generate_series(1, 4) n",
                (t.org_a,),
            )
    assert (info.value.limit, info.value.current, info.value.maximum) == ("clients", 2, 5)
    assert "clients is at 2 of 5" in str(info.value)
    assert (await usage(database, t.org_a))[0] == 2
    # three fit
    async with database.as_user(vendor(t.a_owner)) as s:
        await s.execute(
            "insert into clients (organization_id, partner1_name)"
            " select %s, 'Bulk ' || n from generate_series(1, 3) n",
            (t.org_a,),
        )
    assert (await usage(database, t.org_a))[0] == 5


async def test_deletes_free_capacity(database: Database, t: Tenants) -> None:
    await set_limit(database, t.org_a, "clients", 2)
    with pytest.raises(PlanLimitExceeded):
        await insert_client(database, t.a_owner, t.org_a)
    async with database.as_user(vendor(t.a_owner)) as s:
        await s.execute("delete from clients where id = %s", (t.clients[t.org_a][0],))
    assert (await usage(database, t.org_a))[0] == 1
    await insert_client(database, t.a_owner, t.org_a)
    assert (await usage(database, t.org_a))[0] == 2


async def test_a_downgrade_blocks_growth_but_keeps_every_row(database: Database) -> None:
    owner = new_id()
    async with database.service(reason="test: organization") as s:
        org = await add_organization(s, {owner: "owner"}, tier="starter")
        for _ in range(60):  # over the free plan's 50 clients
            await add_client(s, org)
    await insert_client(database, owner, org)
    async with database.service(reason="test: downgrade") as s:
        await s.execute("update organizations set tier = 'free' where id = %s", (org,))
    with pytest.raises(PlanLimitExceeded) as info:
        await insert_client(database, owner, org)
    assert (info.value.current, info.value.maximum) == (61, 50)
    # service code (imports, support) is trusted: counted, never refused
    async with database.service(reason="test: import") as s:
        await add_client(s, org)
    rows = await service_rows(
        database, "select count(*) from clients where organization_id = %s", (org,)
    )
    assert rows == [(62,)]
    # shrinking and editing still work above the maximum
    async with database.as_user(vendor(owner)) as s:
        await s.execute("update clients set notes = 'kept' where organization_id = %s", (org,))
        await s.execute(
            "delete from clients where id in"
            " (select id from clients where organization_id = %s limit 1)",
            (org,),
        )
    assert (await usage(database, org))[0] == 61


async def test_an_override_wins_over_the_plan(database: Database, t: Tenants) -> None:
    # the free plan allows 5 members; org A has 3
    async with database.service(reason="test: plan") as s:
        await s.execute("update organizations set tier = 'enterprise' where id = %s", (t.org_a,))
    await set_limit(database, t.org_a, "members", 3)
    insert = "insert into organization_members (organization_id, user_id) values (%s, %s)"
    with pytest.raises(PlanLimitExceeded) as info:
        async with database.as_user(vendor(t.a_owner)) as s:
            await s.execute(insert, (t.org_a, new_id()))
    assert (info.value.limit, info.value.current, info.value.maximum) == ("members", 3, 3)
    # an override with no maximum lifts the limit
    await set_limit(database, t.org_b, "members", None)
    async with database.service(reason="test: plan") as s:
        await s.execute("update plans set max_members = 1 where name = 'free'")
    async with database.as_user(vendor(t.b_owner)) as s:
        await s.execute(insert, (t.org_b, new_id()))
    assert (await usage(database, t.org_b))[1] == 2


async def test_guests_per_wedding_follow_the_most_generous_vendor(
    database: Database, t: Tenants
) -> None:
    # wedding 2 (3 guests) is worked on by org B only
    await set_limit(database, t.org_b, "guests_per_wedding", 4)
    insert = "insert into guests (wedding_id, first_name) values (%s, %s)"
    async with database.as_user(couple(t.w2_partner)) as s:
        await s.execute(insert, (t.wedding_2, "Fourth"))
    with pytest.raises(PlanLimitExceeded) as info:
        async with database.as_user(couple(t.w2_partner)) as s:
            await s.execute(insert, (t.wedding_2, "Fifth"))
    assert (info.value.limit, info.value.current, info.value.maximum) == (
        "guests_per_wedding",
        4,
        4,
    )
    # wedding 1 is worked on by A (free: 200) and B (4): the more generous plan counts
    async with database.as_user(couple(t.w1_partner)) as s:
        await s.execute(
            "insert into guests (wedding_id, first_name)"
            " select %s, 'Guest ' || n from generate_series(1, 10) n",
            (t.wedding_1,),
        )
    rows = await service_rows(
        database, "select guests from wedding_usage where wedding_id = %s", (t.wedding_1,)
    )
    assert rows == [(13,)]


async def test_accepting_a_link_counts_against_the_wedding_limit(
    database: Database, t: Tenants
) -> None:
    # org B works on weddings 1 and 2; a third request waits for its answer
    await set_limit(database, t.org_b, "weddings", 2)
    partner = new_id()
    async with database.service(reason="test: wedding") as s:
        wedding = new_id()
        await s.execute(
            "insert into weddings (id, title, wedding_date) values (%s, 'W3', '2027-07-01')",
            (wedding,),
        )
        await s.execute(
            "insert into wedding_members (wedding_id, user_id, role) values (%s, %s, 'partner')",
            (wedding, partner),
        )
    async with database.as_user(couple(partner)) as s:
        await s.execute(
            "insert into wedding_vendors (wedding_id, organization_id) values (%s, %s)",
            (wedding, t.org_b),
        )
    with pytest.raises(PlanLimitExceeded) as info:
        async with database.as_user(vendor(t.b_owner)) as s:
            await s.execute(
                "update wedding_vendors set status = 'accepted'"
                " where wedding_id = %s and organization_id = %s",
                (wedding, t.org_b),
            )
    assert (info.value.limit, info.value.current, info.value.maximum) == ("weddings", 2, 2)


async def test_users_cannot_write_counters_plans_or_overrides(
    database: Database, t: Tenants
) -> None:
    for query in (
        "update organization_usage set clients = 0",
        "update plans set max_clients = null",
        "insert into organization_limit_overrides (organization_id, limit_name, maximum, reason)"
        f" values ('{t.org_a}', 'clients', null, 'mine')",
        "update wedding_usage set guests = 0",
    ):
        with pytest.raises(PermissionDenied):
            async with database.as_user(vendor(t.a_owner)) as s:
                await s.execute(query)
    # nor can an admin change its own plan
    with pytest.raises(PermissionDenied):
        async with database.as_user(vendor(t.a_owner)) as s:
            await s.execute(
                "update organizations set tier = 'enterprise' where id = %s", (t.org_a,)
            )
    async with database.as_user(vendor(t.a_owner)) as s:
        await s.execute("update organizations set name = 'Renamed' where id = %s", (t.org_a,))


async def test_members_read_their_own_usage_only(database: Database, t: Tenants) -> None:
    async with database.as_user(vendor(t.a_member)) as s:
        rows = await s.fetch_tuples(
            "select organization_id, clients, members from organization_usage"
        )
        plans = await s.fetch_tuples("select name from plans order by max_clients nulls last")
    assert rows == [(t.org_a, 2, 3)]
    assert [p[0] for p in plans] == ["free", "starter", "professional", "scale", "enterprise"]
    async with database.as_user(vendor(t.stranger)) as s:
        assert await s.fetch_tuples("select * from organization_usage") == []


@pytest.fixture
def cli(fresh_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., Any]:
    """`wedsync-db ARGS --json` in this process against the test's database, parsed."""
    isolate_settings(monkeypatch, tmp_path)
    monkeypatch.setenv("DATABASE_URL", fresh_db)

    def run(*args: str) -> Any:
        result = CliRunner().invoke(app, [*args, "--json"])
        assert result.exit_code == 0, (args, result.output)
        return json.loads(result.stdout)

    return run


async def test_usage_reconcile_fixes_a_corrupted_counter(
    database: Database, t: Tenants, cli: Callable[..., Any]
) -> None:
    async with database.service(reason="test: corrupt") as s:
        await s.execute(
            "update organization_usage set clients = 40 where organization_id = %s", (t.org_a,)
        )
        await s.execute("update wedding_usage set guests = 0 where wedding_id = %s", (t.wedding_1,))

    dry = await asyncio.to_thread(cli, "usage", "reconcile", "--dry-run")
    changes = {(c["id"], c["counter"]): (c["recorded"], c["actual"]) for c in dry["changes"]}
    assert changes == {(str(t.org_a), "clients"): (40, 2), (str(t.wedding_1), "guests"): (0, 3)}
    assert dry["applied"] is False
    assert (await usage(database, t.org_a))[0] == 40

    fixed = await asyncio.to_thread(cli, "usage", "reconcile")
    assert len(fixed["changes"]) == 2 and fixed["applied"] is True
    assert (await usage(database, t.org_a))[0] == 2
    again = await asyncio.to_thread(cli, "usage", "reconcile")
    assert again["changes"] == []

    shown = await asyncio.to_thread(cli, "usage", "show", "--organization", str(t.org_a))
    assert shown["organizations"] == [
        {
            "organization_id": str(t.org_a),
            "plan": "free",
            "usage": {
                "clients": {"current": 2, "maximum": 50},
                "members": {"current": 3, "maximum": 5},
                "weddings": {"current": 1, "maximum": 20},
            },
        }
    ]


async def test_the_plan_usage_collector_counts_organizations_at_and_over_a_limit(
    database: Database, t: Tenants
) -> None:
    before = (await collect(database, parts=("plan_usage",))).plan_usage
    assert before is not None
    assert (before.organizations, before.clients, before.guests) == (2, 4, 6)
    assert before.at_clients_limit == 0
    await set_limit(database, t.org_a, "clients", 2)
    await set_limit(database, t.org_b, "members", 0)
    snap = await collect(database, parts=("plan_usage",))
    after = snap.plan_usage
    assert after is not None
    assert (after.at_clients_limit, after.over_clients_limit) == (1, 0)
    assert (after.at_members_limit, after.over_members_limit) == (0, 1)
    # the history stores it, Prometheus shows it
    metrics = snap.metrics()
    assert metrics["organizations_at_clients_limit"] == 1 and metrics["plan_clients_total"] == 4
    shown = families(
        snap, up=True, scrapes=1, scrape_errors={}, query_totals=None, heartbeats={},
        pool_stats={}, now=snap.captured_at,
    )  # fmt: skip
    rendered = {
        (m.name, tuple(sorted(sample.labels.items()))): sample.value
        for m in shown
        for sample in m.samples
    }
    at = ("wedsync_db_plan_organizations_at_limit", (("limit", "members"), ("state", "over")))
    assert rendered[at] == 1
    assert rendered[("wedsync_db_plan_usage_rows", (("kind", "clients"),))] == 4


async def test_a_ws402_without_the_json_detail_keeps_its_message(database: Database) -> None:
    with pytest.raises(PlanLimitExceeded) as info:
        async with database.service(reason="test: raise") as s:
            await s.execute(
                "do $$ begin raise exception 'seats are full' using errcode = 'WS402'; end $$"
            )
    assert str(info.value) == "seats are full" and info.value.limit == ""
