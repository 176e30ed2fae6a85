"""Bulk import over HTTP: multipart upload with a user token (401 without), another tenant's
organization or wedding (404 / 403), the report and its errors page by page, the size limit
named by its setting, 422 for bad rows and 402 over the plan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from test_data_api import bearer, serve, settings_for

from fixtures.tenants import Tenants, add_client, build_tenants
from wedsync_db.db.client import Database

PROBLEM = "application/problem+json"
CLIENTS = (
    b"Name,Email,Wedding Date,External ID\n"
    b"Amy Able,amy@example.com,2027-06-12,R1\n"
    b"Bea Bond,bea@example.com,12/06/2027,R2\n"
)


@pytest.fixture
async def t(shared_database: Database) -> Tenants:
    return await build_tenants(shared_database)


@pytest.fixture
async def api(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, shared_db: str
) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_for(monkeypatch, tmp_path, import_max_bytes=64 * 1024)
    async with serve(settings, shared_db) as client:
        yield client


def upload(data: bytes, name: str = "clients.csv") -> dict[str, tuple[str, bytes, str]]:
    return {"file": (name, data, "text/csv")}


async def test_an_upload_needs_a_user_token(api: httpx.AsyncClient, t: Tenants) -> None:
    response = await api.post(f"/api/v1/organizations/{t.org_a}/imports", files=upload(CLIENTS))
    assert response.status_code == 401 and response.headers["content-type"] == PROBLEM


async def test_clients_upload_then_report_then_the_same_file_again(
    api: httpx.AsyncClient, t: Tenants
) -> None:
    me = bearer(t.a_owner, "vendor")
    url = f"/api/v1/organizations/{t.org_a}/imports"
    done = await api.post(url, files=upload(CLIENTS), headers=me)
    assert done.status_code == 201, done.text
    report = done.json()
    assert (report["inserted"], report["file_name"], report["status"]) == (
        2,
        "clients.csv",
        "imported",
    )
    assert done.headers["location"] == f"{url}/{report['id']}"
    got = await api.get(done.headers["location"], headers=bearer(t.a_member, "vendor"))
    assert got.status_code == 200 and got.json()["id"] == report["id"]
    again = await api.post(url, files=upload(CLIENTS), headers=me)
    assert again.status_code == 200 and again.json()["repeated"] is True
    dry = await api.post(
        url, params={"dry_run": "true"}, files=upload(CLIENTS + b"Cy,c@x.io,,R3\n"), headers=me
    )
    assert dry.status_code == 200 and dry.json()["dry_run"] and dry.json()["inserted"] == 1


async def test_another_tenants_target_is_404_or_403_and_its_reports_404(
    api: httpx.AsyncClient, t: Tenants
) -> None:
    url = f"/api/v1/organizations/{t.org_a}/imports"
    other = await api.post(url, files=upload(CLIENTS), headers=bearer(t.b_owner, "vendor"))
    assert other.status_code == 404 and other.headers["content-type"] == PROBLEM
    couple = await api.post(url, files=upload(CLIENTS), headers=bearer(t.w1_partner, "couple"))
    assert couple.status_code == 403
    guests = f"/api/v1/weddings/{t.wedding_1}/imports"
    vendor = await api.post(
        guests, files=upload(b"First Name\nGil\n"), headers=bearer(t.a_owner, "vendor")
    )
    assert vendor.status_code == 403
    mine = await api.post(
        guests, files=upload(b"First Name\nGil\n"), headers=bearer(t.w1_partner, "couple")
    )
    assert mine.status_code == 201, mine.text
    report_url = mine.headers["location"]
    assert (await api.get(report_url, headers=bearer(t.w2_partner, "couple"))).status_code == 404
    assert (await api.get(report_url, headers=bearer(t.w1_planner, "couple"))).status_code == 200
    wrong_target = f"/api/v1/weddings/{t.wedding_2}/imports/{mine.json()['id']}"
    assert (await api.get(wrong_target, headers=bearer(t.w2_partner, "couple"))).status_code == 404


async def test_bad_rows_are_422_with_the_report_and_errors_page_through(
    api: httpx.AsyncClient, t: Tenants
) -> None:
    me = bearer(t.w1_partner, "couple")
    url = f"/api/v1/weddings/{t.wedding_1}/imports"
    rows = b"First Name,Table\n" + b"".join(b"G%d,x\n" % i for i in range(5))
    failed = await api.post(url, files=upload(rows), headers=me)
    assert failed.status_code == 422 and failed.headers["content-type"] == PROBLEM
    body = failed.json()
    assert body["report"]["status"] == "failed" and body["report"]["error_count"] == 5
    report_url = f"{url}/{body['report']['id']}"
    lines, cursor = [], None
    while True:
        params = {"limit": 2} | ({"errors_after": cursor} if cursor else {})
        page = (await api.get(report_url, params=params, headers=me)).json()
        lines += [e["line"] for e in page["errors"]]
        cursor = page["next_errors_cursor"]
        if cursor is None:
            break
    assert lines == [2, 3, 4, 5, 6]
    bad_cursor = await api.get(report_url, params={"errors_after": "nope"}, headers=me)
    assert bad_cursor.status_code == 400
    unreadable = await api.post(url, files=upload(b"Email\nx@example.com\n"), headers=me)
    assert unreadable.status_code == 422 and "first_name" in unreadable.json()["detail"]
    missing = await api.post(url, data={"x": "1"}, headers=me)
    assert missing.status_code == 422


async def test_uploads_are_bounded_by_their_own_setting(api: httpx.AsyncClient, t: Tenants) -> None:
    big = b"Name,Notes\n" + b"Ann," + b"x" * (65 * 1024) + b"\n"
    response = await api.post(
        f"/api/v1/organizations/{t.org_a}/imports",
        files=upload(big),
        headers=bearer(t.a_owner, "vendor"),
    )
    assert response.status_code == 413
    assert "WEDSYNC_IMPORT_MAX_BYTES" in response.json()["detail"]


async def test_over_the_plan_is_402_and_writes_nothing(
    api: httpx.AsyncClient, t: Tenants, shared_database: Database
) -> None:
    async with shared_database.service(reason="test: fill the free plan") as s:
        for i in range(47):
            await add_client(s, t.org_a, external_ref=f"fill-{i}")  # 2 + 47 of 50
    response = await api.post(
        f"/api/v1/organizations/{t.org_a}/imports",
        files=upload(CLIENTS),
        headers=bearer(t.a_owner, "vendor"),
    )
    assert response.status_code == 402, response.text
    assert response.json()["detail"].startswith(
        "this file would add 2 clients; your plan allows 1 more"
    )
    async with shared_database.service(reason="test: count") as s:
        assert (
            await s.fetch_val("select count(*) from clients where organization_id = %s", [t.org_a])
            == 49
        )
