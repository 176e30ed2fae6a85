"""Bulk import against a real PostgreSQL: the corpus of files (each with its expected report and
rows), idempotent re-import, plan limits before writing, dry run, tenant isolation, the CLI.

Set WEDSYNC_UPDATE_IMPORT_CORPUS=1 to rewrite the expected reports from what the import does
(then read the diff: it is the specification).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from typer.testing import CliRunner

from conftest import make_database
from fixtures.environment import isolate_settings
from fixtures.tenants import Tenants, add_client, build_tenants, couple, vendor
from wedsync_db.cli.main import app
from wedsync_db.db.client import Database
from wedsync_db.errors import ImportRefused, NotFound, PermissionDenied
from wedsync_db.imports.fields import KINDS
from wedsync_db.imports.service import (
    ABANDONED_AFTER,
    ImportOptions,
    clean_up,
    read_report,
    run_import,
)

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "imports"
UPDATE = os.environ.get("WEDSYNC_UPDATE_IMPORT_CORPUS") == "1"
# what a stored report is compared on (ids, times and the hash differ per run)
COMPARED = (
    "status",
    "rows",
    "inserted",
    "updated",
    "unchanged",
    "skipped",
    "error_count",
    "message",
    "format",
    "errors",
)


@pytest.fixture
async def t(shared_database: Database) -> Tenants:
    return await build_tenants(shared_database)


def corpus_cases() -> list[str]:
    return sorted(p.name.removesuffix(".expected.json") for p in CORPUS.glob("*.expected.json"))


def case_file(name: str, spec: dict[str, Any], tmp_path: Path) -> Path:
    """The case's file: stored beside its expectation, or built (a 10 MB cell is not kept)."""
    build = spec.get("build")
    if build is not None:
        path = tmp_path / f"{name}.csv"
        with path.open("w", encoding="utf-8", newline="") as f:
            f.write("Name,Email,Notes\r\nAnna Bell,anna@example.com,short\r\n")
            f.write('Ben Cole,ben@example.com,"' + "x" * build["cell_chars"] + '"\r\n')
            f.write("Cara Dunn,cara@example.com,\r\n")
        return path
    (path,) = [p for p in CORPUS.glob(f"{name}.*") if not p.name.endswith(".expected.json")]
    return path


def options_of(spec: dict[str, Any], name: str) -> ImportOptions:
    given = spec.get("options", {})
    return ImportOptions(
        column_map=given.get("map", {}),
        skip_bad_rows=given.get("skip_bad_rows", False),
        date_order=given.get("date_order", "auto"),
        file_name=name,
    )


async def stored_rows(db: Database, kind: str, target: UUID) -> list[dict[str, Any]]:
    """The target's rows as the import left them (fields of the kind, in name order)."""
    fields = KINDS[kind].fields
    key = "organization_id" if kind == "clients" else "wedding_id"
    order = fields[0]
    async with db.service(reason="test: imported rows") as s:
        rows = await s.fetch_dicts(
            f"select {', '.join(fields)} from {kind} where {key} = %s order by {order}, email",
            [target],
        )
    return [json.loads(json.dumps(r, default=str)) for r in rows]


@pytest.mark.parametrize("name", corpus_cases())
async def test_corpus_file_gives_its_expected_report_and_rows(
    name: str, shared_database: Database, t: Tenants, tmp_path: Path
) -> None:
    expected_path = CORPUS / f"{name}.expected.json"
    spec = json.loads(expected_path.read_text(encoding="utf-8"))
    kind = spec["kind"]
    target, claims = (
        (await fresh_organization(shared_database), None)
        if kind == "clients"
        else (t.wedding_1, couple(t.w1_partner))
    )
    if claims is None:
        claims = vendor(target_owner[target])
    before = await stored_rows(shared_database, kind, target)
    path = case_file(name, spec, tmp_path)
    actual: dict[str, Any] = {}
    try:
        with path.open("rb") as binary:
            report = await run_import(
                shared_database, claims, kind, target, binary, options_of(spec, path.name)
            )
    except ImportRefused as exc:
        actual["refused"] = str(exc)
    else:
        summary = report.model_dump(mode="json")
        actual["report"] = {k: summary[k] for k in COMPARED}
        rows = await stored_rows(shared_database, kind, target)
        actual["stored"] = [r for r in rows if r not in before]
    if UPDATE:
        keep = {k: spec[k] for k in ("kind", "options", "build") if k in spec}
        text = json.dumps({**keep, **actual}, indent=2, ensure_ascii=False)
        expected_path.write_text(text + "\n", encoding="utf-8")
        return
    for key in ("refused", "report", "stored"):
        assert actual.get(key) == spec.get(key), key
    if "refused" in actual:
        assert await stored_rows(shared_database, kind, target) == before


# organizations made for one test each, and their owners
target_owner: dict[UUID, UUID] = {}


async def fresh_organization(db: Database, tier: str = "professional") -> UUID:
    """An organization of its own (so a corpus file meets no earlier rows), with an owner."""
    from fixtures.tenants import add_organization, new_id

    owner = new_id()
    async with db.service(reason="test: organization") as s:
        org = await add_organization(s, {owner: "owner"}, tier=tier)
    target_owner[org] = owner
    return org


def csv_bytes(*rows: str) -> io.BytesIO:
    return io.BytesIO(("\n".join(rows) + "\n").encode())


CLIENTS = (
    "Name,Partner 2,Email,Wedding Date,Venue,Status,External ID",
    "Amy Able,Al Able,amy@example.com,2027-06-12,Barn,lead,R1",
    "Bea Bond,,bea@example.com,2027-06-19,Hall,booked,R2",
    "Cat Cole,Cy Cole,cat@example.com,2027-07-03,,lead,R3",
)


async def versions(db: Database, org: UUID) -> dict[str, tuple[int, str]]:
    async with db.service(reason="test: versions") as s:
        rows = await s.fetch_tuples(
            "select external_ref, version, updated_at::text from clients"
            " where organization_id = %s and external_ref is not null",
            [org],
        )
    return {r[0]: (r[1], r[2]) for r in rows}


async def clients_in(db: Database, org: UUID) -> int:
    return await count(db, "select count(*) from clients where organization_id = %s", org)


async def count(db: Database, query: str, *params: Any) -> int:
    async with db.service(reason="test: count") as s:
        return int(await s.fetch_val(query, list(params)))


# --- idempotence ----------------------------------------------------------------------------------
async def test_reimport_updates_changed_rows_only_and_an_identical_file_returns_its_report(
    shared_database: Database,
) -> None:
    org = await fresh_organization(shared_database)
    me = vendor(target_owner[org])
    first = await run_import(shared_database, me, "clients", org, csv_bytes(*CLIENTS))
    assert (first.status, first.inserted, first.updated) == ("imported", 3, 0)
    before = await versions(shared_database, org)
    assert {v for v, _ in before.values()} == {1}

    again = await run_import(shared_database, me, "clients", org, csv_bytes(*CLIENTS))
    assert again.repeated and again.id == first.id and again.inserted == 3

    changed = [*CLIENTS[:2], CLIENTS[2].replace("Hall", "Great Hall"), CLIENTS[3]]
    changed.append("Dot Dale,,dot@example.com,2027-08-01,,lead,R4")
    second = await run_import(shared_database, me, "clients", org, csv_bytes(*changed))
    assert (second.inserted, second.updated, second.unchanged) == (1, 1, 2)
    after = await versions(shared_database, org)
    assert after["R1"] == before["R1"] and after["R3"] == before["R3"]
    assert after["R2"][0] == 2 and after["R4"][0] == 1
    assert await clients_in(shared_database, org) == 4


async def test_rows_without_a_ref_are_matched_by_normalised_email(
    shared_database: Database,
) -> None:
    org = await fresh_organization(shared_database)
    me = vendor(target_owner[org])
    await run_import(
        shared_database, me, "clients", org, csv_bytes("Name,Email", "Eve Egan,Eve@Example.com")
    )
    report = await run_import(
        shared_database,
        me,
        "clients",
        org,
        csv_bytes("Name,Email,Venue", "Eve Egan,  eve@example.COM ,Barn"),
    )
    assert (report.inserted, report.updated) == (0, 1)
    assert await clients_in(shared_database, org) == 1


# --- plan limits, dry run, all or nothing ----------------------------------------------------
async def test_plan_limit_is_checked_before_anything_is_written(
    shared_database: Database,
) -> None:
    org = await fresh_organization(shared_database, tier="free")  # 50 clients
    async with shared_database.service(reason="test: clients") as s:
        for i in range(45):
            await add_client(s, org, external_ref=f"old-{i}")
    rows = ["Name,Email"] + [f"New {i},new{i}@example.com" for i in range(10)]
    report = await run_import(
        shared_database, vendor(target_owner[org]), "clients", org, csv_bytes(*rows)
    )
    assert report.status == "refused" and report.inserted == 0
    assert report.message is not None
    assert report.message.startswith("this file would add 10 clients; your plan allows 5 more")
    assert await clients_in(shared_database, org) == 45
    stored = await read_report(
        shared_database,
        vendor(target_owner[org]),
        "clients",
        org,
        report.id,  # type: ignore[arg-type]
    )
    assert stored.status == "refused"


async def test_a_dry_run_writes_nothing_and_counts_what_it_would_do(
    shared_database: Database,
) -> None:
    org = await fresh_organization(shared_database)
    me = vendor(target_owner[org])
    await run_import(shared_database, me, "clients", org, csv_bytes(*CLIENTS[:2]))
    before = await versions(shared_database, org)
    imports = await count(shared_database, "select count(*) from ops.imports")
    changed = [CLIENTS[0], CLIENTS[1].replace("Barn", "Mill"), CLIENTS[2], CLIENTS[3]]
    report = await run_import(
        shared_database, me, "clients", org, csv_bytes(*changed), ImportOptions(dry_run=True)
    )
    assert report.dry_run and report.status == "imported"
    assert (report.inserted, report.updated, report.unchanged) == (2, 1, 0)
    assert await versions(shared_database, org) == before
    assert await count(shared_database, "select count(*) from ops.imports") == imports
    assert await count(shared_database, "select count(*) from ops.import_client_rows") == 0


async def test_bad_rows_fail_the_whole_file_unless_skipped(shared_database: Database) -> None:
    org = await fresh_organization(shared_database)
    me = vendor(target_owner[org])
    rows = [*CLIENTS, "Dan Dee,,not-an-email,2027-01-01,,lead,R4"]
    failed = await run_import(shared_database, me, "clients", org, csv_bytes(*rows))
    assert failed.status == "failed" and failed.inserted == 0 and failed.error_count == 1
    assert await clients_in(shared_database, org) == 0
    skipped = await run_import(
        shared_database, me, "clients", org, csv_bytes(*rows), ImportOptions(skip_bad_rows=True)
    )
    assert (skipped.status, skipped.inserted, skipped.skipped) == ("imported", 3, 1)
    assert skipped.errors[0].line == 5 and skipped.errors[0].field == "email"


# --- tenants ----------------------------------------------------------------------------------
async def test_an_import_into_another_tenant_is_refused_and_writes_nothing(
    shared_database: Database, t: Tenants
) -> None:
    imports = await count(shared_database, "select count(*) from ops.imports")
    clients = await clients_in(shared_database, t.org_a)
    with pytest.raises(NotFound):  # B's owner does not see organization A at all
        await run_import(
            shared_database, vendor(t.b_owner), "clients", t.org_a, csv_bytes(*CLIENTS)
        )
    with pytest.raises(PermissionDenied):  # the couple sees its vendor, but not its CRM
        await run_import(
            shared_database, couple(t.w1_partner), "clients", t.org_a, csv_bytes(*CLIENTS)
        )
    guests = csv_bytes("First Name,Email", "Gil,gil@example.com")
    with pytest.raises(PermissionDenied):  # a vendor with guest access reads, never writes
        await run_import(shared_database, vendor(t.a_owner), "guests", t.wedding_1, guests)
    with pytest.raises(NotFound):
        await run_import(
            shared_database, couple(t.w2_partner), "guests", t.wedding_1, csv_bytes("Name", "X")
        )
    assert await count(shared_database, "select count(*) from ops.imports") == imports
    assert await clients_in(shared_database, t.org_a) == clients


async def test_staged_rows_and_reports_are_seen_only_by_their_users(
    shared_database: Database, t: Tenants
) -> None:
    report = await run_import(
        shared_database, vendor(t.a_member), "clients", t.org_a, csv_bytes(*CLIENTS)
    )
    assert report.id is not None
    # a colleague reads the report; another organization's owner does not
    seen = await read_report(shared_database, vendor(t.a_admin), "clients", t.org_a, report.id)
    assert seen.inserted == 3
    with pytest.raises(NotFound):
        await read_report(shared_database, vendor(t.b_owner), "clients", t.org_a, report.id)
    # staged rows: only their importer reads them
    async with shared_database.service(reason="test: staging") as s:
        await s.execute("select set_config('wedsync.import_id', %s, true)", [str(report.id)])
        await s.execute("select set_config('wedsync.import_actor', %s, true)", [str(t.a_member)])
        await s.execute("insert into ops.import_client_rows (line, partner1_name) values (2, 'x')")
    try:
        for user, visible in ((t.a_member, 1), (t.a_owner, 0), (t.b_owner, 0)):
            async with shared_database.as_user(vendor(user)) as s:
                assert await s.fetch_val("select count(*) from ops.import_client_rows") == visible
        async with shared_database.as_user(vendor(t.a_owner)) as s:
            with pytest.raises(PermissionDenied):
                await s.execute(
                    "insert into ops.import_client_rows (import_id, actor, line)"
                    " values (%s, %s, 1)",
                    [report.id, t.a_owner],
                )
    finally:
        async with shared_database.service(reason="test: staging") as s:
            await s.execute("delete from ops.import_client_rows where import_id = %s", [report.id])


async def test_errors_page_through_with_a_cursor(shared_database: Database) -> None:
    org = await fresh_organization(shared_database)
    me = vendor(target_owner[org])
    rows = ["Name,Email"] + [f"P{i},bad{i}" for i in range(5)]
    report = await run_import(shared_database, me, "clients", org, csv_bytes(*rows))
    assert report.error_count == 5 and report.id is not None
    seen, cursor = [], None
    while True:
        page = await read_report(
            shared_database, me, "clients", org, report.id, errors_after=cursor, limit=2
        )
        seen += [e.line for e in page.errors]
        cursor = page.next_errors_cursor
        if cursor is None:
            break
    assert seen == [2, 3, 4, 5, 6]


# --- clean-up -------------------------------------------------------------------------------------
async def stage_import(db: Database, org: UUID, owner: UUID, age: str) -> UUID:
    """An import left staging ``age`` ago with one staged row, as a stopped process leaves it."""
    async with db.service(reason="test: stopped import") as s:
        import_id = UUID(
            str(
                await s.fetch_val(
                    "insert into ops.imports (kind, organization_id, actor, file_sha256,"
                    " file_bytes, options_key, created_at) values ('clients', %s, %s,"
                    " repeat('a', 64), 1, 'k', now() - %s::interval) returning id",
                    [org, owner, age],
                )
            )
        )
        await s.execute("select set_config('wedsync.import_id', %s, true)", [str(import_id)])
        await s.execute("select set_config('wedsync.import_actor', %s, true)", [str(owner)])
        await s.execute("insert into ops.import_client_rows (line, partner1_name) values (2, 'x')")
    return import_id


async def test_clean_up_fails_abandoned_imports_and_prunes_old_row_errors(
    shared_database: Database,
) -> None:
    org = await fresh_organization(shared_database)
    owner = target_owner[org]
    failed = await run_import(
        shared_database, vendor(owner), "clients", org, csv_bytes("Name,Email", "P,bad")
    )
    assert failed.id is not None and failed.error_count == 1
    stopped = await stage_import(shared_database, org, owner, "2 hours")
    running = await stage_import(shared_database, org, owner, "1 minute")
    now = await count(shared_database, "select extract(epoch from now())::bigint")
    done = await clean_up(
        shared_database,
        abandoned_before=datetime.fromtimestamp(now, UTC) - ABANDONED_AFTER,
        errors_before=datetime.fromtimestamp(now + 1, UTC),
    )
    assert done.abandoned >= 1 and done.errors_pruned >= 1
    staged = "select count(*) from ops.import_client_rows where import_id = %s"
    status = "select status || ': ' || coalesce(message, '') from ops.imports where id = %s"
    assert await count(shared_database, staged, stopped) == 0
    async with shared_database.service(reason="test: read") as s:
        assert str(await s.fetch_val(status, [stopped])).startswith("failed: abandoned")
        assert await s.fetch_val(status, [running]) == "staging: "
    # a running import keeps its rows; an old report keeps its counts, not its row errors
    assert await count(shared_database, staged, running) == 1
    report = await read_report(shared_database, vendor(owner), "clients", org, failed.id)
    assert report.error_count == 1 and report.errors == []
    async with shared_database.service(reason="test: tidy") as s:
        await s.execute("delete from ops.imports where id = any(%s)", [[stopped, running]])
        await s.execute("delete from ops.import_client_rows where import_id = %s", [running])


# --- CLI ------------------------------------------------------------------------------------------
def test_cli_imports_and_exits_by_outcome(
    shared_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async def in_database(step: Any) -> Any:
        async with make_database(shared_db) as db:
            return await step(db)

    def clients_of(org: UUID) -> int:
        return int(asyncio.run(in_database(lambda db: clients_in(db, org))))

    org = asyncio.run(in_database(fresh_organization))
    owner = target_owner[org]
    isolate_settings(monkeypatch, tmp_path)
    monkeypatch.setenv("DATABASE_URL", shared_db)
    good = tmp_path / "good.csv"
    good.write_text("\n".join(CLIENTS) + "\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([*CLIENTS, "Dan,,not-an-email,,,,R9"]) + "\n")
    runner = CliRunner()
    base = ["import", "clients", "--organization", str(org), "--as", str(owner)]

    def run(*args: str) -> Any:
        return runner.invoke(app, [*base, *args])

    dry = run(str(good), "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["inserted"] == 3
    assert clients_of(org) == 0
    done = run(str(good))
    assert done.exit_code == 0, done.output
    assert "imported: 3 rows read; 3 clients added" in done.stdout
    assert clients_of(org) == 3
    refused = run(str(bad), "--json")
    assert refused.exit_code == 2 and json.loads(refused.stdout)["status"] == "failed"
    unmapped = run(str(good), "--map", "Nope=email")
    assert unmapped.exit_code == 2 and "no column 'Nope'" in unmapped.output
