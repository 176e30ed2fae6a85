"""A verified access token opens a user scope that sees exactly that user's rows."""

from __future__ import annotations

import time

import jwt
import pytest

from fixtures.tenants import Tenants, build_tenants
from wedsync_db.db.client import Database
from wedsync_db.identity import TokenVerifier, development_token

SECRET = "identity-scope-test-secret-" + "0123456789abcdef" * 3


@pytest.fixture
async def t(shared_database: Database) -> Tenants:
    return await build_tenants(shared_database)


async def test_verified_claims_open_the_right_scope(shared_database: Database, t: Tenants) -> None:
    verifier = TokenVerifier(secret=SECRET)

    couple = verifier.verify(development_token(SECRET, t.w1_partner, "couple"))
    async with shared_database.as_user(couple) as s:
        rows = await s.fetch_tuples("select id from guests order by id")
        me = await s.fetch_tuples("select wedsync.current_user_id(), wedsync.current_audience()")
    assert {r[0] for r in rows} == set(t.guests[t.wedding_1])
    assert me == [(t.w1_partner, "couple")]

    # a Supabase-issued vendor token: aud "authenticated", the audience in app_metadata
    now = int(time.time())
    issued = {
        "sub": str(t.a_owner),
        "aud": "authenticated",
        "role": "authenticated",
        "exp": now + 600,
        "iat": now,
        "app_metadata": {"provider": "email", "audience": "vendor"},
    }
    vendor = verifier.verify(jwt.encode(issued, SECRET, algorithm="HS256"))
    async with shared_database.as_user(vendor) as s:
        clients = await s.fetch_tuples("select id from clients")
        guests = await s.fetch_tuples("select wedding_id from guests")
    assert {r[0] for r in clients} == set(t.clients[t.org_a])
    assert {r[0] for r in guests} == {t.wedding_1}  # linked with guest access

    stranger = verifier.verify(development_token(SECRET, t.stranger, "vendor"))
    async with shared_database.as_user(stranger) as s:
        assert await s.fetch_tuples("select id from guests") == []
