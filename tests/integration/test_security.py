"""Attacks from inside a user scope, each reproduced and shown not to get through: SQL running
in a user scope (an injection, a feature that runs tenant SQL) stays that user.

Each test runs on the session's server: the embedded PostgreSQL 18, or PostgreSQL 15 through
WEDSYNC_TEST_DATABASE_URL.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
import uvicorn
from fastapi.testclient import TestClient
from psycopg import pq

from conftest import make_database
from fixtures.databases import opened
from fixtures.migration_support import (
    SERVICE_KEY,
    MigrationDir,
    migrate_app,
    pending_table,
    settings_for,
    table_exists,
    wedsync_db,
)
from fixtures.tenants import Tenants, add_client, build_tenants, couple, new_id, vendor
from wedsync_db.db.client import Database
from wedsync_db.embedded import free_port
from wedsync_db.errors import Conflict, PermissionDenied, QueryError
from wedsync_db.monitor.collectors import collect


@pytest.fixture
async def db(fresh_db: str) -> AsyncIterator[Database]:
    """One user-pool connection: consecutive scopes certainly share a session."""
    async with _database(fresh_db) as database:
        yield database


@pytest.fixture
async def t(db: Database) -> Tenants:
    return await build_tenants(db)


def admin(dsn: str, *statements: str) -> None:
    """Run statements as the test server's superuser (setting up what a test attacks)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]


def unharden_temp(dsn: str) -> None:
    """A database where every role may still create temporary objects (as before hardening)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        name = conn.info.dbname
        conn.execute(
            psycopg.sql.SQL("grant temporary on database {} to public").format(
                psycopg.sql.Identifier(name)
            )
        )


def _database(dsn: str, **kwargs: Any) -> contextlib.AbstractAsyncContextManager[Database]:
    """A Database opened now (its connections learn what the login may do when they connect)."""
    return opened(make_database(dsn, **{"user_pool_size": 1, **kwargs}))


async def guest_ids(db: Database, claims: dict[str, str]) -> set[UUID]:
    async with db.as_user(claims) as s:
        return {r[0] for r in await s.fetch_tuples("select id from guests")}


async def refused_as_role_and_login(db: Database, claims: dict[str, str], query: str) -> None:
    """The statement is refused in a user scope, as its role and after RESET ROLE (the login)."""
    for as_login in (False, True):
        with pytest.raises(PermissionDenied):
            async with db.as_user(claims) as s:
                if as_login:
                    await s.execute("reset role")
                await s.fetch_tuples(query)


# --- finding 1: temporary objects shadow what SECURITY DEFINER functions call ------------------
@pytest.mark.parametrize(
    "statement",
    [
        "create function pg_temp.spy(x uuid) returns boolean language sql as 'select true'",
        "create domain pg_temp.uuid as pg_catalog.uuid",
        "create temp table guests (id uuid)",
        "create temp view guests as select 1 as id",
    ],
)
@pytest.mark.parametrize("as_login", [False, True], ids=["authenticated", "after-reset-role"])
async def test_user_scopes_cannot_create_temporary_objects(
    db: Database, t: Tenants, statement: str, as_login: bool
) -> None:
    with pytest.raises(PermissionDenied, match="temporary"):
        async with db.as_user(couple(t.w1_partner)) as s:
            if as_login:
                await s.execute("reset role")
            await s.execute(statement)


SPY = (
    "create function pg_temp.spy(anyelement) returns boolean language plpgsql as "
    "$$ begin raise exception 'spy ran as %', current_user; end $$"
)


async def test_definer_helpers_ignore_temporary_types_even_where_temp_is_granted(
    t: Tenants, fresh_db: str
) -> None:
    unharden_temp(fresh_db)
    async with _database(fresh_db) as db, db.as_user(couple(t.w1_partner)) as s:
        await s.execute(SPY)
        for type_name in ("uuid", "text", "jsonb", "bool"):
            await s.execute(
                f"create domain pg_temp.{type_name} as pg_catalog.{type_name}"
                f" check (pg_temp.spy(value))"
            )
        # every policy below calls SECURITY DEFINER helpers; none resolves the planted types
        guests = {r[0] for r in await s.fetch_tuples("select id from guests")}
        orgs = {r[0] for r in await s.fetch_tuples("select id from organizations")}
        me = await s.fetch_val("select wedsync.current_user_id()")
    assert guests == set(t.guests[t.wedding_1])
    assert orgs == {t.org_a, t.org_b}
    assert me == t.w1_partner


async def test_ops_functions_ignore_temporary_types_and_no_definer_is_a_superuser(
    db: Database, fresh_db: str
) -> None:
    async with db.service(reason="test: shadowing ops.*") as s:
        # service_role keeps TEMP; it plants what once ran as the superuser owning ops.*
        await s.execute(SPY)
        for type_name in ("float8", "text", "int4", "int8", "bool", "jsonb", "numeric", "name"):
            await s.execute(
                f"create domain pg_temp.{type_name} as pg_catalog.{type_name}"
                f" check (pg_temp.spy(value))"
            )
        for call in (
            "select count(*) from ops.connection_stats()",
            "select count(*) from ops.table_maintenance_report()",
            "select count(*) from ops.index_recommendations()",
        ):
            assert await s.fetch_val(call) is not None
    supers = await _superuser_definers(fresh_db)
    assert supers == []


async def _superuser_definers(dsn: str) -> list[str]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(
            "select p.oid::regprocedure::text from pg_proc p"
            " join pg_roles r on r.oid = p.proowner"
            " join pg_namespace n on n.oid = p.pronamespace"
            " where p.prosecdef and r.rolsuper and n.nspname in ('wedsync', 'ops', 'public')"
        )
        return [r[0] for r in await cur.fetchall()]


async def test_every_security_definer_function_pins_search_path_ending_in_pg_temp(
    fresh_db: str,
) -> None:
    async with await psycopg.AsyncConnection.connect(fresh_db) as conn:
        cur = await conn.execute(
            "select p.oid::regprocedure::text, p.proconfig from pg_proc p"
            " join pg_namespace n on n.oid = p.pronamespace"
            " where p.prosecdef and n.nspname in ('wedsync', 'ops')"
        )
        rows = await cur.fetchall()
    assert rows, "the schema has SECURITY DEFINER functions"
    for name, config in rows:
        assert "search_path=pg_catalog, pg_temp" in (config or []), name


# --- finding 2: nothing carries over to the next scope on a pooled connection ----------------
async def test_session_settings_and_role_do_not_reach_the_next_scope(
    db: Database, t: Tenants
) -> None:
    forged = json.dumps({"sub": str(t.w1_partner), "aud": "couple"})
    async with db.as_user(couple(t.w1_partner)) as s:
        first = s.backend_pid
        await s.execute("set search_path = wedsync")
        await s.execute("set default_transaction_read_only = on")
        await s.execute("set default_transaction_isolation = 'serializable'")
        await s.execute("select set_config('request.jwt.claims', %s, false)", (forged,))
        await s.execute("select set_config('statement_timeout', '1234', false)")
        await s.execute("set session role anon")
    async with db.as_user(couple(t.w2_partner)) as s:
        assert s.backend_pid == first
        row = await s.fetch_tuples(
            "select current_user, current_setting('statement_timeout'),"
            " current_setting('search_path'), current_setting('transaction_isolation')"
        )
        assert row == [("authenticated", "0", '"$user", public', "read committed")]
        assert await s.fetch_val("select wedsync.current_user_id()") == t.w2_partner
        # a write: the transaction is read-write whatever the previous scope made the default
        await s.execute(
            "insert into guests (wedding_id, first_name) values (%s, 'Fresh')", (t.wedding_2,)
        )
    assert await guest_ids(db, couple(t.w2_partner)) > set(t.guests[t.wedding_2])
    async with db._pools["user"].connection() as conn:
        cur = await conn.execute("select current_user, session_user")
        assert await cur.fetchone() == ("wedsync_authenticator", "wedsync_authenticator")
        await conn.rollback()


@pytest.mark.parametrize("kind", ["table", "view", "domain"])
async def test_temporary_objects_left_by_a_scope_are_gone_for_the_next(
    t: Tenants, fresh_db: str, kind: str
) -> None:
    # a database where TEMP could not be revoked: the client's first statement then checks
    # the session for temporary objects
    unharden_temp(fresh_db)
    async with _database(fresh_db) as db:
        await _leftover_temporary_objects(db, t, kind)


async def _leftover_temporary_objects(db: Database, t: Tenants, kind: str) -> None:
    planted = {
        "table": ["create temp table guests (id uuid, wedding_id uuid, first_name text)"],
        "view": ["create temp view guests as select gen_random_uuid() as id"],
        "domain": [SPY, "create domain pg_temp.uuid as pg_catalog.uuid check (pg_temp.spy(value))"],
    }[kind]
    async with db.as_user(couple(t.w1_partner)) as s:
        first = s.backend_pid
        for statement in planted:
            await s.execute(statement)
    # the next tenant on the same connection reads and writes the real guests table (the
    # session was refused, cleaned with DISCARD ALL and the read tried again)
    async with db.as_user(couple(t.w2_partner)) as s:
        assert s.backend_pid == first
        assert {r[0] for r in await s.fetch_tuples("select id from guests")} == set(
            t.guests[t.wedding_2]
        )
        await s.execute(
            "insert into guests (wedding_id, first_name) values (%s, 'Real')", (t.wedding_2,)
        )
        assert await s.fetch_val(
            "select pg_my_temp_schema() = 0 or not exists ("
            " select from pg_class where relnamespace = pg_my_temp_schema())"
        )
    async with db.service(reason="test check") as s:
        assert (
            await s.fetch_val(
                "select count(*) from guests where wedding_id = %s and first_name = 'Real'",
                (t.wedding_2,),
            )
            == 1
        )


async def test_listen_cursors_and_advisory_locks_do_not_carry_over(
    t: Tenants, fresh_db: str
) -> None:
    # session-level advisory locks are revoked from user roles (next test); where they are not,
    # the next scope's first statement releases them
    admin(fresh_db, "grant execute on function pg_advisory_lock(bigint) to public")
    async with _database(fresh_db) as db:
        async with db.as_user(couple(t.w1_partner)) as s:
            first = s.backend_pid
            await s.execute("listen wedsync_spy")
            await s.execute("select pg_advisory_lock(424242)")
            await s.execute("declare kept cursor with hold for select id from guests")
        observer = await psycopg.AsyncConnection.connect(fresh_db)
        async with observer, db.as_user(couple(t.w2_partner)) as s:
            assert s.backend_pid == first
            assert await s.fetch_val("select count(*) from pg_cursors where name = 'kept'") == 0
            # UNLISTEN takes effect when the scope's first statement commits
            assert await s.fetch_val("select count(*) from pg_listening_channels()") == 0
            cur = await observer.execute(
                "select count(*) from pg_locks where locktype = 'advisory' and objid = 424242"
            )
            assert await cur.fetchone() == (0,)


@pytest.mark.parametrize(
    "call", ["pg_advisory_lock(42)", "pg_try_advisory_lock(42)", "pg_advisory_lock_shared(4, 2)"]
)
async def test_user_scopes_cannot_take_session_advisory_locks(
    db: Database, t: Tenants, call: str
) -> None:
    # a session lock would stay with the pooled connection and block whoever waits for it
    # (the migration runner's lock among them); transaction-level locks end with the scope
    with pytest.raises(PermissionDenied):
        async with db.as_user(couple(t.w1_partner)) as s:
            await s.fetch_val(f"select {call}")
    async with db.as_user(couple(t.w1_partner)) as s:
        assert await s.fetch_val("select pg_try_advisory_xact_lock(42)") is True


async def test_user_scopes_cannot_list_prepared_statements(db: Database, t: Tenants) -> None:
    await refused_as_role_and_login(
        db, couple(t.w1_partner), "select name from pg_prepared_statements"
    )


async def test_deallocating_the_clients_statements_does_not_break_the_next_scope(
    db: Database, t: Tenants
) -> None:
    for _ in range(8):  # the driver has prepared the guard and the read by now
        assert await guest_ids(db, couple(t.w2_partner)) == set(t.guests[t.wedding_2])
    async with db.as_user(couple(t.w1_partner)) as s:
        await s.execute("deallocate all")
    assert await guest_ids(db, couple(t.w2_partner)) == set(t.guests[t.wedding_2])


async def test_a_replaced_prepared_statement_never_runs_in_the_next_scope(
    t: Tenants, fresh_db: str, db: Database
) -> None:
    # a database where the hardening could not revoke the listing (a managed server): the
    # client then never prepares its first statement, and the first statement refuses a session
    # holding statements made with SQL PREPARE
    admin(
        fresh_db,
        "grant select on pg_prepared_statements to public",
        "grant execute on function pg_prepared_statement() to public",
    )
    async with _database(fresh_db) as victim:
        read = "select email from guests where wedding_id = %s"
        for _ in range(8):
            async with victim.as_user(couple(t.w2_partner)) as s:
                await s.fetch_tuples(read, (t.wedding_2,))
        async with victim.as_user(couple(t.w1_partner)) as s:
            name = await s.fetch_val(
                "select name from pg_prepared_statements"
                " where statement like 'select email from guests%%'"
            )
            assert name is not None
            await s.execute(f'deallocate "{name}"')
            await s.execute(
                f'prepare "{name}" (uuid) as select email from guests where wedding_id = $1'
                " and set_config('spy.loot', (select string_agg(email, ',') from guests), false)"
                " is not null"
            )
            attacker = s.backend_pid
        async with victim.as_user(couple(t.w2_partner)) as s:
            assert s.backend_pid == attacker
            emails = {r[0] for r in await s.fetch_tuples(read, (t.wedding_2,))}
        assert len(emails) == len(t.guests[t.wedding_2])
        async with victim.as_user(couple(t.w1_partner)) as s:
            loot = await s.fetch_val("select current_setting('spy.loot', true)")
        assert not loot


# --- claims cannot be forged from inside a scope -----------------------------------------------
@pytest.mark.parametrize("signature", [None, "00" * 32])
async def test_claims_set_by_hand_are_refused(
    db: Database, t: Tenants, signature: str | None
) -> None:
    forged = json.dumps({"sub": str(t.w2_partner), "aud": "couple", "role": "authenticated"})
    with pytest.raises(PermissionDenied, match="not signed"):
        async with db.as_user(couple(t.w1_partner)) as s, s.transaction():
            await s.execute("select set_config('request.jwt.claims', %s, true)", (forged,))
            if signature is not None:
                await s.execute(
                    "select set_config('wedsync.claims_signature', %s, true)", (signature,)
                )
            await s.fetch_tuples("select id from guests")


async def test_without_a_signing_key_claims_are_accepted_unsigned(
    t: Tenants, fresh_db: str
) -> None:
    # PostgREST sets request.jwt.claims without a signature: a database moved behind it drops
    # the key on purpose (and the security lint says so)
    admin(fresh_db, "delete from wedsync.claims_signing_key")
    async with _database(fresh_db) as plain:
        assert await guest_ids(plain, couple(t.w1_partner)) == set(t.guests[t.wedding_1])
        snap = await collect(plain, parts=("security",))
        assert snap.security is not None
        assert "claims_unsigned" in {f.rule for f in snap.security}


# --- finding 3: claims never appear in query text; other sessions' texts are hidden ----------
async def test_claims_travel_only_as_bound_parameters(
    db: Database, t: Tenants, tmp_path: Path
) -> None:
    trace = tmp_path / "libpq.trace"
    claims = {**couple(t.w1_partner), "email": "partner-one@example.org"}
    with trace.open("w") as out:
        async with db.as_user(claims) as s:
            s.connection.pgconn.trace(out.fileno())
            s.connection.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
            await s.fetch_tuples("select id from guests")  # one round trip, no transaction
        async with db.as_user(claims) as s:
            await s.execute(
                "insert into guests (wedding_id, first_name) values (%s, 'Traced')",
                (t.wedding_1,),
            )  # a transaction: BEGIN and the first statement
            s.connection.pgconn.untrace()
    lines = trace.read_text().splitlines()
    sent = [line for line in lines if line.startswith("F")]
    texts = [line for line in sent if "\tParse\t" in line or "\tQuery\t" in line]
    binds = [line for line in sent if "\tBind\t" in line]
    assert texts and binds
    assert any(str(t.w1_partner) in line for line in binds), "the claims were traced"
    for secret in (str(t.w1_partner), "partner-one@example.org"):
        assert not [line for line in texts if secret in line]


@pytest.mark.parametrize(
    "query",
    [
        "select query from pg_stat_activity where pid <> pg_backend_pid()",
        "select pg_stat_get_activity(null)",
        "select pg_stat_get_backend_activity(1)",
    ],
)
async def test_user_scopes_cannot_read_other_sessions_query_texts(
    db: Database, t: Tenants, query: str
) -> None:
    await refused_as_role_and_login(db, vendor(t.a_owner), query)


# --- finding 4: no signalling other backends ---------------------------------------------------
@pytest.mark.parametrize("function", ["pg_cancel_backend(%s)", "pg_terminate_backend(%s)"])
async def test_user_scopes_cannot_signal_other_user_pool_connections(
    fresh_db: str, t: Tenants, function: str
) -> None:
    async with (
        _database(fresh_db, user_pool_size=2) as two,
        two.as_user(vendor(t.a_owner)) as other,
    ):
        await other.execute("select 1")  # holds this connection in an open scope
        victim = other.backend_pid
        with pytest.raises(PermissionDenied):
            async with two.as_user(vendor(t.b_owner)) as s:
                assert s.backend_pid != victim
                await s.execute("reset role")
                await s.fetch_val(f"select {function}", (victim,))
        assert await other.fetch_val("select 1") == 1


# --- finding 5: pg_stat_statements shows other tenants' literals --------------------------------
async def test_user_scopes_cannot_read_pg_stat_statements(db: Database, t: Tenants) -> None:
    async with db.service(reason="test: extension present") as s:
        if not await s.fetch_val("select to_regclass('pg_stat_statements') is not null"):
            pytest.skip("pg_stat_statements is not installed in the test database")
        # the service role keeps the privilege monitoring needs
        assert await s.fetch_val("select has_table_privilege('pg_stat_statements', 'select')")
    # refused before the view runs (also where the module is not preloaded)
    await refused_as_role_and_login(
        db, couple(t.w1_partner), "select count(*) from pg_stat_statements"
    )


# --- finding 6: vendor links need the organization's consent --------------------------------
async def test_a_vendor_link_is_a_request_until_the_organization_accepts(
    db: Database, t: Tenants
) -> None:
    # a fresh organization, not yet working on wedding 2
    owner, member = new_id(), new_id()
    async with db.service(reason="test: new vendor") as s:
        org = new_id()
        await s.execute(
            "insert into organizations (id, name, slug) values (%s, 'Florist', %s)",
            (org, f"florist-{org.hex}"),
        )
        await s.execute(
            "insert into organization_members values (%s, %s, 'owner'), (%s, %s, 'member')",
            (org, owner, org, member),
        )
    partner = couple(t.w2_partner)
    async with db.as_user(partner) as s:
        await s.execute(
            "insert into wedding_vendors (wedding_id, organization_id, can_view_guests, service)"
            " values (%s, %s, true, 'florist')",
            (t.wedding_2, org),
        )
        status, requested_by = (
            await s.fetch_tuples(
                "select status, requested_by from wedding_vendors"
                " where wedding_id = %s and organization_id = %s",
                (t.wedding_2, org),
            )
        )[0]
        assert (status, requested_by) == ("requested", t.w2_partner)
        # until accepted the couple sees the public profile only
        assert await s.fetch_val("select count(*) from organizations where id = %s", (org,)) == 0
        assert (
            await s.fetch_val("select name from organization_profiles where id = %s", (org,))
            == "Florist"
        )
        # and cannot answer for the organization
        with pytest.raises(PermissionDenied):
            async with s.transaction():
                await s.execute(
                    "update wedding_vendors set status = 'accepted'"
                    " where wedding_id = %s and organization_id = %s",
                    (t.wedding_2, org),
                )
    # the vendor sees the request, nothing of the wedding
    async with db.as_user(vendor(member)) as s:
        assert (
            await s.fetch_val(
                "select count(*) from wedding_vendors where wedding_id = %s", (t.wedding_2,)
            )
            == 1
        )
        assert await s.fetch_val("select count(*) from weddings where id = %s", (t.wedding_2,)) == 0
        assert (
            await s.fetch_val("select count(*) from guests where wedding_id = %s", (t.wedding_2,))
            == 0
        )
    # a member accepts: now both sides see each other
    async with db.as_user(vendor(member)) as s:
        assert (
            await s.execute(
                "update wedding_vendors set status = 'accepted'"
                " where wedding_id = %s and organization_id = %s",
                (t.wedding_2, org),
            )
            == 1
        )
        responded = await s.fetch_val(
            "select responded_by from wedding_vendors where wedding_id = %s", (t.wedding_2,)
        )
        assert responded == member
        assert await s.fetch_val("select count(*) from weddings where id = %s", (t.wedding_2,)) == 1
        assert {r[0] for r in await s.fetch_tuples("select id from guests")} == set(
            t.guests[t.wedding_2]
        )
    async with db.as_user(partner) as s:
        assert await s.fetch_val("select count(*) from organizations where id = %s", (org,)) == 1
    # an answer is given once; guest access stays the couple's to decide
    for change in ("status = 'declined'", "status = 'requested'", "can_view_guests = false"):
        with pytest.raises(PermissionDenied if "guests" in change else QueryError):
            async with db.as_user(vendor(owner)) as s:
                await s.execute(
                    f"update wedding_vendors set {change}"
                    " where wedding_id = %s and organization_id = %s",
                    (t.wedding_2, org),
                )


async def test_a_link_request_reveals_nothing_about_another_organizations_clients(
    db: Database, t: Tenants
) -> None:
    async with db.service(reason="test: a real client of A") as s:
        real = await add_client(s, t.org_a)
    insert = (
        "insert into wedding_vendors (wedding_id, organization_id, client_id) values (%s, %s, %s)"
    )
    messages = []
    for client_id in (real, new_id()):
        with pytest.raises(PermissionDenied) as refused:
            async with db.as_user(couple(t.w2_partner)) as s:
                await s.execute(insert, (t.wedding_2, t.org_a, client_id))
        messages.append(str(refused.value))
    # the same refusal whether the client exists or not
    assert messages[0] == messages[1]


async def test_a_vendor_attaches_only_its_own_clients(db: Database, t: Tenants) -> None:
    async with db.service(reason="test: clients") as s:
        mine, theirs = await add_client(s, t.org_b), await add_client(s, t.org_a)
    attach = (
        "update wedding_vendors set client_id = %s where wedding_id = %s and organization_id = %s"
    )
    async with db.as_user(vendor(t.b_owner)) as s:
        assert await s.execute(attach, (mine, t.wedding_2, t.org_b)) == 1
    with pytest.raises(Conflict):
        async with db.as_user(vendor(t.b_owner)) as s:
            await s.execute(attach, (theirs, t.wedding_2, t.org_b))
    # a stranger cannot even see the link to change it
    async with db.as_user(vendor(t.stranger)) as s:
        assert await s.execute(attach, (None, t.wedding_2, t.org_b)) == 0


# --- finding 7: the HTTP API authenticates before it reads a body ----------------------------
@pytest.fixture
def migrations(tmp_path: Path) -> MigrationDir:
    return pending_table(tmp_path, "api_table")


@pytest.fixture
def client(fresh_db: str, migrations: MigrationDir) -> Iterator[TestClient]:
    settings = settings_for("development", fresh_db, max_body_bytes=4096)
    with TestClient(migrate_app(settings, fresh_db, migrations, "security-tests")) as c:
        yield c


AUTH = {"Authorization": f"Bearer {SERVICE_KEY}"}


def test_without_a_key_a_malformed_body_is_unauthorized_not_invalid(client: TestClient) -> None:
    for body in (b"{not json", b'{"dry_run": "maybe"}', b"[]"):
        response = client.post(
            "/api/database/migrate", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 401, response.text


def test_unknown_fields_are_refused_and_nothing_is_applied(
    client: TestClient, fresh_db: str
) -> None:
    response = client.post("/api/database/migrate", json={"dryrun": True}, headers=AUTH)
    assert response.status_code == 422, response.text
    assert "dryrun" in response.json()["detail"]
    assert not table_exists(fresh_db, "api_table")
    # the spelled-right request works
    ok = client.post("/api/database/migrate", json={"dry_run": True}, headers=AUTH)
    assert ok.status_code == 200, ok.text
    assert not table_exists(fresh_db, "api_table")


def test_bodies_over_the_limit_are_refused(client: TestClient, fresh_db: str) -> None:
    big = json.dumps({"dry_run": False, "override_freeze_reason": "x" * 5000})
    response = client.post(
        "/api/database/migrate",
        content=big,
        headers={**AUTH, "content-type": "application/json"},
    )
    assert response.status_code == 413, response.text
    assert "4,096 bytes" in response.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it streams in
        yield big[:3000].encode()
        yield big[3000:].encode()

    streamed = client.post(
        "/api/database/migrate",
        content=chunks(),
        headers={**AUTH, "content-type": "application/json"},
    )
    assert streamed.status_code == 413, streamed.text
    assert not table_exists(fresh_db, "api_table")


@pytest.fixture
def live_api(fresh_db: str, migrations: MigrationDir) -> Iterator[int]:
    """The app on a real socket (uvicorn in a thread), for what a test client cannot show."""
    settings = settings_for("development", fresh_db, max_body_bytes=64 * 2**20 + 1)
    app = migrate_app(settings, fresh_db, migrations, "security-tests")
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    yield port
    server.should_exit = True
    thread.join(timeout=20)


def test_an_unauthenticated_upload_is_refused_before_its_body_arrives(live_api: int) -> None:
    # 64 MiB announced, none of it sent: the 401 must come back without waiting for it
    with socket.create_connection(("127.0.0.1", live_api), timeout=5) as sock:
        sock.sendall(
            b"POST /api/database/migrate HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\n" + f"Content-Length: {64 * 2**20}\r\n\r\n".encode()
        )
        started = time.monotonic()
        head = sock.recv(4096)
        elapsed = time.monotonic() - started
    assert head.startswith(b"HTTP/1.1 401"), head[:200]
    assert elapsed < 3


# --- finding 8: the password never reaches psql's command line -------------------------------
def test_db_psql_passes_the_password_in_the_environment(tmp_path: Path) -> None:
    fake = tmp_path / "bin" / "psql"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\n"
        'printf "%s\\n" "$@" > "$PSQL_ARGV_FILE"\n'
        'printf "%s" "$PGPASSWORD" > "$PSQL_PASSWORD_FILE"\n'
    )
    fake.chmod(0o755)
    argv_file, password_file = tmp_path / "argv", tmp_path / "password"
    done = wedsync_db(
        ["db", "psql", "-c", "select 1"],
        "postgresql://app:s3cr3t-pw@127.0.0.1:5999/wedsync?sslmode=disable",
        tmp_path,
        PATH=f"{fake.parent}:{os.environ.get('PATH', '')}",
        PSQL_ARGV_FILE=str(argv_file),
        PSQL_PASSWORD_FILE=str(password_file),
    )
    assert done.returncode == 0, done.stderr
    argv = argv_file.read_text()
    assert "s3cr3t-pw" not in argv
    assert "host=127.0.0.1" in argv and "-c" in argv
    assert password_file.read_text() == "s3cr3t-pw"


# --- the monitor reports what stays open --------------------------------------------------------
async def test_security_lints_report_unsafe_privileges(db: Database, fresh_db: str) -> None:
    assert (await collect(db, parts=("security",))).security == ()
    unharden_temp(fresh_db)
    admin(
        fresh_db,
        "grant execute on function pg_terminate_backend(integer, bigint) to public",
        "grant select on pg_stat_activity to public",
        "create function public.leaky_definer() returns int language sql security definer"
        " set search_path = '' as 'select 1'",
    )
    snap = await collect(db, parts=("security",))
    assert snap.security is not None
    rules = {(f.rule, f.object) for f in snap.security}
    dbname = psycopg.conninfo.conninfo_to_dict(fresh_db)["dbname"]
    assert ("temp_granted_to_public", dbname) in rules
    assert {r for r, _ in rules} >= {
        "user_roles_can_signal_backends",
        "user_roles_can_read_query_texts",
        "security_definer_search_path_without_pg_temp",
        "security_definer_owned_by_superuser",
    }
    assessment = snap.security or ()
    assert {f.rule for f in assessment} >= {"temp_granted_to_public"}
