"""The data API (/api/v1) against a real PostgreSQL: bearer identity, ETag / If-Match (428, 412,
404), plan limits (402), rate limits (429), bodies that refuse unknown fields, and 20 editors
of one guest losing no update."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from conftest import make_database
from fixtures.environment import isolate_settings
from fixtures.tenants import Tenants, build_tenants, service_rows
from wedsync_db.api.app import create_app
from wedsync_db.db.client import Database
from wedsync_db.identity import development_token
from wedsync_db.migrate.runner import MigrationRunner
from wedsync_db.settings import Settings, load_settings

KEY = "test-service-key-0123456789-abcdefghij"
SECRET = "jwt-secret-for-the-data-api-tests-0123456789"
PROBLEM = "application/problem+json"


def settings_for(mp: pytest.MonkeyPatch, directory: Path, **overrides: Any) -> Settings:
    isolate_settings(mp, directory)
    return load_settings(service_key=KEY, jwt_secret=SECRET, **overrides)


def bearer(user: UUID, audience: str, **kwargs: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {development_token(SECRET, user, audience, **kwargs)}"}  # type: ignore[arg-type]


@pytest.fixture
async def t(shared_database: Database) -> Tenants:
    return await build_tenants(shared_database)


@contextlib.asynccontextmanager
async def serve(settings: Settings, dsn: str, **db_kwargs: Any) -> AsyncIterator[httpx.AsyncClient]:
    database = make_database(dsn, **db_kwargs)
    app = create_app(settings, database=database, runner=MigrationRunner(dsn))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client


@pytest.fixture
async def api(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, shared_db: str
) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(settings_for(monkeypatch, tmp_path), shared_db) as client:
        yield client


def guest_url(t: Tenants, index: int = 0, wedding: UUID | None = None) -> str:
    wedding = wedding or t.wedding_1
    return f"/api/v1/weddings/{wedding}/guests/{t.guests[wedding][index]}"


# --- identity -----------------------------------------------------------------------------------
async def test_no_token_bad_token_and_the_service_key_are_401(
    api: httpx.AsyncClient, t: Tenants
) -> None:
    url = guest_url(t)
    missing = await api.get(url)
    assert missing.status_code == 401 and missing.headers["content-type"] == PROBLEM
    assert "Bearer" in missing.headers["www-authenticate"]
    service = await api.get(url, headers={"Authorization": f"Bearer {KEY}"})
    assert service.status_code == 401 and "invalid_token" in service.headers["www-authenticate"]
    expired = await api.get(url, headers=bearer(t.w1_partner, "couple", now=time.time() - 7200))
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
    token = development_token("another-secret-of-enough-length-0123456789", t.w1_partner, "couple")
    forged = await api.get(url, headers={"Authorization": f"Bearer {token}"})
    assert forged.status_code == 401 and "signature" in forged.json()["detail"]
    assert token not in forged.text and KEY not in service.text


async def test_a_row_has_its_etag_and_a_page_its_cursor(api: httpx.AsyncClient, t: Tenants) -> None:
    me = bearer(t.w1_partner, "couple")
    one = await api.get(guest_url(t), headers=me)
    assert one.status_code == 200 and one.headers["etag"] == f'"{one.json()["version"]}"'
    first = await api.get(f"/api/v1/weddings/{t.wedding_1}/guests?limit=2", headers=me)
    page = first.json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = await api.get(
        f"/api/v1/weddings/{t.wedding_1}/guests",
        params={"limit": 2, "cursor": page["next_cursor"]},
        headers=me,
    )
    ids = [g["id"] for g in page["items"] + rest.json()["items"]]
    assert sorted(ids) == sorted(str(g) for g in t.guests[t.wedding_1])
    assert rest.json()["next_cursor"] is None


# --- If-Match: 428, 412, 404 --------------------------------------------------------------------
async def test_patch_needs_if_match_and_a_stale_one_gets_the_current_row(
    api: httpx.AsyncClient, t: Tenants
) -> None:
    me, url = bearer(t.w1_partner, "couple"), guest_url(t)
    etag = (await api.get(url, headers=me)).headers["etag"]
    missing = await api.patch(url, json={"table_number": 3}, headers=me)
    assert missing.status_code == 428 and missing.headers["content-type"] == PROBLEM
    done = await api.patch(url, json={"table_number": 3}, headers={**me, "If-Match": etag})
    assert done.status_code == 200 and done.json()["table_number"] == 3
    assert done.headers["etag"] != etag
    stale = await api.patch(url, json={"table_number": 5}, headers={**me, "If-Match": etag})
    assert stale.status_code == 412 and stale.headers["content-type"] == PROBLEM
    body = stale.json()
    assert body["conflicting_fields"] == ["table_number"]
    assert body["current"]["table_number"] == 3 and stale.headers["etag"] == done.headers["etag"]
    bad = await api.patch(url, json={"table_number": 5}, headers={**me, "If-Match": "*"})
    assert bad.status_code == 400
    after = (await api.get(url, headers=me)).json()
    assert after["table_number"] == 3 and after["version"] == done.json()["version"]


async def test_merge_rebases_an_edit_of_another_field(api: httpx.AsyncClient, t: Tenants) -> None:
    me, url = bearer(t.w1_partner, "couple"), guest_url(t, 1)
    etag = (await api.get(url, headers=me)).headers["etag"]
    await api.patch(url, json={"table_number": 7}, headers={**me, "If-Match": etag})
    merged = await api.patch(
        f"{url}?merge=true", json={"notes": "vegan cake"}, headers={**me, "If-Match": etag}
    )
    assert merged.status_code == 200
    assert (merged.json()["table_number"], merged.json()["notes"]) == (7, "vegan cake")


async def test_a_vendor_without_guest_access_gets_404_not_403(
    api: httpx.AsyncClient, t: Tenants
) -> None:
    url = guest_url(t)  # wedding 1 links organization B without guest access
    outsider = bearer(t.b_owner, "vendor")
    seen = await api.get(url, headers=outsider)
    assert seen.status_code == 404 and seen.headers["content-type"] == PROBLEM
    changed = await api.patch(url, json={"notes": "x"}, headers={**outsider, "If-Match": '"1"'})
    assert changed.status_code == 404
    gone = await api.delete(url, headers={**outsider, "If-Match": '"1"'})
    assert gone.status_code == 404
    listed = await api.get(f"/api/v1/weddings/{t.wedding_1}/guests", headers=outsider)
    assert listed.status_code == 200 and listed.json()["items"] == []
    insider = await api.get(url, headers=bearer(t.a_member, "vendor"))
    assert insider.status_code == 200


async def test_a_reader_who_may_not_change_gets_403(api: httpx.AsyncClient, t: Tenants) -> None:
    url = guest_url(t)  # organization A sees wedding 1's guests but does not edit them
    reader = bearer(t.a_member, "vendor")
    etag = (await api.get(url, headers=reader)).headers["etag"]
    refused = await api.patch(url, json={"notes": "x"}, headers={**reader, "If-Match": etag})
    assert refused.status_code == 403


async def test_delete_needs_the_current_version(api: httpx.AsyncClient, t: Tenants) -> None:
    me, url = bearer(t.w1_partner, "couple"), guest_url(t, 2)
    etag = (await api.get(url, headers=me)).headers["etag"]
    assert (await api.delete(url, headers=me)).status_code == 428
    await api.patch(url, json={"notes": "moved"}, headers={**me, "If-Match": etag})
    assert (await api.delete(url, headers={**me, "If-Match": etag})).status_code == 412
    current = (await api.get(url, headers=me)).headers["etag"]
    assert (await api.delete(url, headers={**me, "If-Match": current})).status_code == 204
    assert (await api.get(url, headers=me)).status_code == 404


# --- bodies -------------------------------------------------------------------------------------
async def test_bodies_refuse_unknown_fields_and_nulls_of_required_ones(
    api: httpx.AsyncClient, t: Tenants
) -> None:
    me = bearer(t.w1_partner, "couple")
    new = f"/api/v1/weddings/{t.wedding_1}/guests"
    unknown = await api.post(new, json={"first_name": "Ann", "version": 9}, headers=me)
    assert unknown.status_code == 422 and "version" in unknown.text
    created = await api.post(
        new, json={"first_name": "Ann", "email": "ann@example.com"}, headers=me
    )
    assert created.status_code == 201 and created.headers["etag"] == '"1"'
    url = f"{new}/{created.json()['id']}"
    null = await api.patch(url, json={"first_name": None}, headers={**me, "If-Match": '"1"'})
    assert null.status_code == 422 and "first_name cannot be null" in null.text
    cleared = await api.patch(url, json={"email": None}, headers={**me, "If-Match": '"1"'})
    assert cleared.status_code == 200 and cleared.json()["email"] is None


async def test_bulk_rsvp_and_filters(api: httpx.AsyncClient, t: Tenants) -> None:
    me = bearer(t.w2_partner, "couple")
    ids = [str(g) for g in t.guests[t.wedding_2][:2]]
    done = await api.post(
        f"/api/v1/weddings/{t.wedding_2}/guests/rsvp",
        json={"guest_ids": ids, "status": "declined"},
        headers=me,
    )
    assert done.status_code == 200 and sorted(g["id"] for g in done.json()["items"]) == sorted(ids)
    declined = await api.get(
        f"/api/v1/weddings/{t.wedding_2}/guests", params={"rsvp": "declined"}, headers=me
    )
    assert sorted(g["id"] for g in declined.json()["items"]) == sorted(ids)


# --- plan limits and rate limits ----------------------------------------------------------------
async def test_a_plan_limit_is_402_with_its_numbers(
    api: httpx.AsyncClient, t: Tenants, shared_database: Database
) -> None:
    async with shared_database.service(reason="test: limit clients") as s:
        count = await s.fetch_val(
            "select count(*) from clients where organization_id = %s", (t.org_a,)
        )
        await s.execute(
            "insert into organization_limit_overrides"
            " (organization_id, limit_name, maximum, reason) values (%s, 'clients', %s, 'test')",
            (t.org_a, count),
        )
    refused = await api.post(
        f"/api/v1/organizations/{t.org_a}/clients",
        json={"partner1_name": "Sam"},
        headers=bearer(t.a_member, "vendor"),
    )
    assert refused.status_code == 402 and refused.headers["content-type"] == PROBLEM
    body = refused.json()
    assert (body["limit"], body["current"], body["maximum"]) == ("clients", count, count)
    rows = await service_rows(
        shared_database, "select count(*) from clients where organization_id = %s", (t.org_a,)
    )
    assert rows == [(count,)]


async def test_rate_limits_per_user_and_per_organization(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, shared_db: str, t: Tenants
) -> None:
    limits = {
        "api_user_rate": 0.01,
        "api_user_burst": 3,
        "api_organization_rate": 0.01,
        "api_organization_burst": 4,
    }
    settings = settings_for(monkeypatch, tmp_path, **limits)
    async with serve(settings, shared_db) as api:
        url = f"/api/v1/organizations/{t.org_a}"
        owner, admin = bearer(t.a_owner, "vendor"), bearer(t.a_admin, "vendor")
        statuses = [(await api.get(url, headers=owner)).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        refused = await api.get(url, headers=owner)
        assert int(refused.headers["retry-after"]) >= 1
        # the organization has one token left of its 4: the admin gets it, then 429
        assert (await api.get(url, headers=admin)).status_code == 200
        assert (await api.get(url, headers=admin)).status_code == 429
        # a couple belongs to no organization: only its own bucket counts
        couple = bearer(t.w1_partner, "couple")
        assert (await api.get(f"/api/v1/weddings/{t.wedding_1}", headers=couple)).status_code == 200


# --- the OpenAPI document -----------------------------------------------------------------------
async def test_openapi_declares_the_bearer_scheme_and_the_bodies(api: httpx.AsyncClient) -> None:
    doc = (await api.get("/openapi.json")).json()
    assert doc["components"]["securitySchemes"]["userToken"]["scheme"] == "bearer"
    patch = doc["paths"]["/api/v1/weddings/{wedding_id}/guests/{guest_id}"]["patch"]
    assert {"userToken": []} in patch["security"]
    assert "application/merge-patch+json" in patch["requestBody"]["content"]
    assert any(p["name"] == "If-Match" and p["required"] for p in patch["parameters"])


# --- 20 concurrent editors ----------------------------------------------------------------------
async def test_twenty_editors_of_one_guest_lose_no_update(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, shared_db: str, t: Tenants
) -> None:
    """Each editor appends its marks to the notes with read-modify-write and If-Match, and
    re-reads on 412: every success is in the final row, every other attempt was told 412."""
    settings = settings_for(monkeypatch, tmp_path, api_user_rate=0)
    editors, rounds = 20, 3
    async with serve(settings, shared_db, user_pool_size=10, service_pool_size=2) as api:
        me, url = bearer(t.w1_partner, "couple"), guest_url(t)
        await api.patch(url, json={"notes": ""}, headers={**me, "If-Match": '"1"'})
        outcomes: list[int] = []

        async def editor(n: int) -> list[str]:
            written = []
            for k in range(rounds):
                mark = f"e{n}.{k};"
                while True:
                    read = await api.get(url, headers=me)
                    notes = read.json()["notes"] or ""
                    done = await api.patch(
                        url,
                        json={"notes": notes + mark},
                        headers={**me, "If-Match": read.headers["etag"]},
                    )
                    outcomes.append(done.status_code)
                    if done.status_code == 200:
                        written.append(mark)
                        break
            return written

        results = await asyncio.gather(*(editor(n) for n in range(editors)))
        final = (await api.get(url, headers=me)).json()
    marks = [m for written in results for m in written]
    assert len(marks) == editors * rounds
    assert all(m in final["notes"] for m in marks)
    assert set(outcomes) <= {200, 412} and outcomes.count(200) == editors * rounds
    assert final["version"] == 2 + editors * rounds


async def test_lists_and_the_vendor_link_flow(api: httpx.AsyncClient, t: Tenants) -> None:
    owner, partner = bearer(t.a_owner, "vendor"), bearer(t.w2_partner, "couple")
    members = await api.get(f"/api/v1/organizations/{t.org_a}/members", headers=owner)
    assert len(members.json()["items"]) == 3
    stranger = bearer(t.stranger, "vendor")
    hidden = await api.get(f"/api/v1/organizations/{t.org_a}/members", headers=stranger)
    assert hidden.status_code == 200 and hidden.json()["items"] == []
    vendors = await api.get(f"/api/v1/weddings/{t.wedding_1}/vendors", headers=partner)
    assert vendors.json()["items"] == []  # wedding 1 is not this partner's
    # the couple of wedding 2 asks organization A; A's owner accepts with the link's ETag
    asked = await api.post(
        f"/api/v1/weddings/{t.wedding_2}/vendors",
        json={"organization_id": str(t.org_a), "service": "photography"},
        headers=partner,
    )
    assert asked.status_code == 201 and asked.json()["status"] == "requested"
    link = f"/api/v1/weddings/{t.wedding_2}/vendors/{t.org_a}"
    accepted = await api.post(
        f"{link}/accept", json={}, headers={**owner, "If-Match": asked.headers["etag"]}
    )
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    listed = await api.get(f"/api/v1/organizations/{t.org_a}/vendor-links", headers=owner)
    assert str(t.wedding_2) in {item["wedding_id"] for item in listed.json()["items"]}
    again = await api.post(f"{link}/decline", headers={**owner, "If-Match": asked.headers["etag"]})
    assert again.status_code == 412
