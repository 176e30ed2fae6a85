"""Backups against an embedded server of this module's own (durable, archiving into a
temporary repository): point-in-time restore, incremental chains, corruption caught by verify,
prune keeping what a kept point in time needs, an interrupted backup never listed as good, and
logical exports."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from fixtures.environment import scratch_dir
from fixtures.migration_support import WEDSYNC_DB
from fixtures.own_server import OwnServer
from wedsync_db.backup import ranges, service
from wedsync_db.backup.repository import BackupMeta, Repository, prune_plan
from wedsync_db.backup.schedule import BackupScheduler
from wedsync_db.calendar import calendar_context
from wedsync_db.db import direct
from wedsync_db.errors import BackupError
from wedsync_db.migrate.runner import MigrationRunner, RunnerOptions
from wedsync_db.monitor.assess import Assessment, assess
from wedsync_db.monitor.collectors import collect_backups
from wedsync_db.monitor.snapshot import Snapshot
from wedsync_db.monitor.thresholds import thresholds_for


@pytest.fixture(scope="module")
def server() -> Iterator[OwnServer]:
    own = OwnServer()
    try:
        asyncio.run(MigrationRunner(own.dsn, options=RunnerOptions(actor="tests")).apply())
        with psycopg.connect(own.dsn, autocommit=True) as conn:
            conn.execute("create table if not exists bk_rows (id serial primary key, note text)")
            # no autovacuum transaction running as a test's snapshot is taken (a backup then
            # records no fingerprint layout, rightly, and a test of take-over could not tell)
            conn.execute("alter system set autovacuum = off")
            conn.execute("select pg_reload_conf()")
        yield own
    finally:
        own.close()


@pytest.fixture(scope="module")
def repo_root() -> Iterator[Path]:
    root = scratch_dir("wedsync-backup-repo-")
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def ctx(server: OwnServer, repo_root: Path) -> AsyncIterator[service.BackupContext]:
    owner = None
    if os.geteuid() == 0:
        import pwd

        entry = pwd.getpwnam("embedded_postgres")
        owner = (entry.pw_uid, entry.pw_gid)
    settings = await service.archive_settings(server.dsn)
    context = service.BackupContext(
        dsn=server.dsn,
        repo=Repository(repo_root, owner=owner),
        tools=service.toolbox_for(settings.server_version, None),
        actor="tests",
        embedded=server.server,
    )
    if not settings.archiving:
        await service.setup(context)
    yield context


@contextlib.contextmanager
def plain_login(server: OwnServer, role: str) -> Iterator[str]:
    """A login with no privilege (created now, dropped after): its DSN."""
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute(f"drop role if exists {role}")
        conn.execute(f"create role {role} login")
    try:
        yield server.dsn.replace("postgres@", f"{role}@")
    finally:
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute(f"drop role {role}")


def assess_in(env: Any, snap: Snapshot) -> Assessment:
    context = calendar_context(snap.captured_at, "UTC", frozenset(), 0)
    thresholds = thresholds_for(context.level, environment=env)
    return assess(snap, context, thresholds, now=snap.captured_at)


def write(server: OwnServer, note: str, n: int = 5) -> None:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        for i in range(n):
            conn.execute("insert into bk_rows (note) values (%s)", (f"{note}-{i}",))


def notes(dsn: str) -> set[str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {r[0] for r in conn.execute("select note from bk_rows").fetchall()}


async def live_fingerprint(dsn: str) -> Any:
    async with service._snapshot(dsn) as s:
        return await service.fingerprint(s)


async def restored(ctx: service.BackupContext, **kwargs: Any) -> AsyncIterator[service.Restored]:
    into = scratch_dir("wedsync-restore-test-") / "data"
    if ctx.tools.run_as is not None:
        into.parent.chmod(0o711)
    copy = await service.restore(ctx, into=into, **kwargs)
    try:
        yield copy
    finally:
        service.stop_restored(ctx, copy)
        shutil.rmtree(into.parent, ignore_errors=True)


# --- point in time --------------------------------------------------------------------------
async def test_restore_to_a_point_in_time_between_backups(
    server: OwnServer, ctx: service.BackupContext
) -> None:
    write(server, "before-backup")
    full = await service.create(ctx)
    assert full.good and full.kind == "full" and full.fingerprint
    # nothing in the repository is readable by others (the root may be 0711 so that the
    # server's own account reaches its archive)
    for path in [ctx.repo.root, *ctx.repo.root.rglob("*")]:
        mode = path.stat().st_mode & 0o777
        allowed = 0o711 if path == ctx.repo.root else 0o700 if path.is_dir() else 0o600
        assert mode & ~allowed == 0, (path, oct(mode))
    write(server, "after-backup")
    expected = await live_fingerprint(server.dsn)
    expected_notes = notes(server.dsn)
    await asyncio.sleep(0.2)
    t = datetime.now(UTC)
    await asyncio.sleep(0.2)
    write(server, "after-t")
    async for copy in restored(ctx, to=t):
        assert notes(copy.dsn) == expected_notes
        got = await live_fingerprint(copy.dsn)
        assert service.fingerprint_differences(expected, got) == []
        assert copy.backup.id == full.id


async def test_a_quiet_backup_keeps_the_fingerprint_read_beside_the_copy(
    server: OwnServer, ctx: service.BackupContext
) -> None:
    write(server, "quiet")
    before = await live_fingerprint(server.dsn)
    meta = await service.create(ctx)
    # nothing committed during the copy: the hashes read beside it are the backup's, and a
    # restore to its point holds exactly those rows
    assert meta.details["fingerprint_read"] == "beside the copy"
    assert meta.details["timings"]["fingerprint_s"] < meta.details["beside_copy"]["fingerprint_s"]
    # the server runs here: its hashing process gave the cores to the copy
    assert meta.details["beside_copy"]["fingerprint_niced"] is True
    assert service.fingerprint_differences(before, meta.fingerprint) == []
    result = await service.verify(ctx, meta.id)
    assert result.ok, result.problems


async def test_a_backup_taken_under_writes_verifies(
    server: OwnServer, ctx: service.BackupContext
) -> None:
    stop = threading.Event()

    def writer() -> None:
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            while not stop.is_set():
                conn.execute("insert into bk_rows (note) values ('during')")
                conn.execute("update bk_rows set note = note || '.' where id = 1")

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        meta = await service.create(ctx)
    finally:
        stop.set()
        thread.join()
    # the table changed between the hashing beside the copy and the restore point: the
    # fingerprint is read again in the restore point's snapshot
    assert notes(server.dsn) and meta.good
    assert meta.details["fingerprint_read"] == "after the copy"
    result = await service.verify(ctx, meta.id)
    assert result.ok, result.problems


async def test_an_incremental_chain_restores_and_verifies(
    server: OwnServer, ctx: service.BackupContext
) -> None:
    write(server, "chain-0")
    await service.create(ctx)
    write(server, "chain-1")
    first = await service.create(ctx, incremental=True)
    write(server, "chain-2")
    second = await service.create(ctx, incremental=True)
    assert (second.kind, second.parent) == ("incremental", first.id)
    write(server, "chain-3")
    expected_notes = notes(server.dsn)
    async for copy in restored(ctx):  # latest: the chain, then all archived WAL
        assert notes(copy.dsn) == expected_notes
    result = await service.verify(ctx, second.id)
    assert result.ok, result.problems
    assert any("pg_amcheck" in step for step in result.steps)
    with psycopg.connect(server.dsn) as conn:
        row = conn.execute(
            "select status, actor from ops.backup_events where backup_id = %s"
            " and action = 'verify' order by id desc limit 1",
            (second.id,),
        ).fetchone()
    assert row == ("ok", "tests")


async def test_a_corrupted_backup_fails_verification(
    server: OwnServer, ctx: service.BackupContext
) -> None:
    write(server, "to-corrupt")
    meta = await service.create(ctx)
    victim = next(
        p
        for p in sorted((ctx.repo.backup_path(meta) / "base").rglob("*"))
        if p.is_file() and p.stat().st_size > 8192
    )
    data = bytearray(victim.read_bytes())
    data[4096] ^= 0xFF
    victim.write_bytes(bytes(data))
    result = await service.verify(ctx, meta.id)
    assert not result.ok
    assert any("checksum" in p or "pg_verifybackup" in p for p in result.problems), result.problems
    assert ctx.repo.load(meta.id).details["last_verification"]["ok"] is False


# --- fingerprints taken over -----------------------------------------------------------------
async def by_range(dsn: str, previous: Any = None, per_range: int = 8) -> service.RangedPrints:
    """The fingerprint by range in a new snapshot, taking over what the WAL summaries say was
    not written since ``previous`` (a checkpoint ends the summary past the snapshot)."""
    async with service._positioned_snapshot(dsn) as (s, position):
        assert position is not None
        snapshot, high = (await s.fetch_tuples(service.Q["snapshot_position"].sql))[0]
        written = None
        if previous is not None:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("checkpoint")
            written = await service.written_since(
                dsn, previous.position, high, per_range=per_range, wait=30
            )
            assert written is not None, "the WAL summaries did not reach the snapshot"
        quiet = await service.nothing_in_progress(s, dsn, snapshot)
        return await service.fingerprint_by_range(
            s, position, quiet, previous=previous, written=written, per_range=per_range
        )


def wide_table(server: OwnServer, name: str) -> None:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute(f"drop table if exists {name}")
        conn.execute(f"create table {name} (id int primary key, pad text)")
        # about 130 blocks, frozen (no hint bit left for a read to write)
        conn.execute(
            f"insert into {name} select g, repeat(md5(g::text), 16) from generate_series(1, 2000) g"
        )
        conn.execute(f"vacuum (freeze) {name}")


async def test_ranges_nothing_was_written_to_are_taken_over_and_the_rest_read(
    server: OwnServer, ctx: service.BackupContext
) -> None:
    wide_table(server, "bk_wide")
    first = await by_range(server.dsn)
    assert first.layout is not None
    before = first.layout.tables["public.bk_wide"]
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("update bk_wide set pad = 'changed' where id = 1")  # the first range
        conn.execute("delete from bk_wide where id = 2000")  # the last
    second = await by_range(server.dsn, first.layout)
    after = second.layout.tables["public.bk_wide"] if second.layout else None
    assert after is not None and len(after.ranges) == len(before.ranges) >= 10
    # the untouched middle ranges come from the first read, unchanged
    assert after.ranges[1:-1] == before.ranges[1:-1]
    assert after.ranges[0] != before.ranges[0] and after.ranges[-1] != before.ranges[-1]
    assert second.ranges_reused >= len(before.ranges) - 2
    # and the sums are the table's: the whole-table read agrees
    assert {f.table: f for f in second.prints} == {
        f.table: f for f in await live_fingerprint(server.dsn)
    }


async def test_a_transaction_in_progress_at_the_snapshot_leaves_no_layout_to_take_over(
    server: OwnServer, ctx: service.BackupContext
) -> None:
    """Its rows are on pages written before the snapshot: were the next backup to take those
    pages' sums over, a commit after the snapshot would go unseen."""
    wide_table(server, "bk_late")
    with psycopg.connect(server.dsn) as late:
        late.execute("insert into bk_late values (5000, 'late')")
        ranged = await by_range(server.dsn)
        assert ranged.layout is None
        late.commit()
    meta = await service.create(ctx)
    assert "fingerprint_layout" in meta.details


async def test_a_login_that_cannot_see_every_session_records_no_layout(
    server: OwnServer, ctx: service.BackupContext
) -> None:
    with plain_login(server, "bk_viewer") as dsn:
        async with service._positioned_snapshot(dsn) as (s, _position):
            snapshot, _high = (await s.fetch_tuples(service.Q["snapshot_position"].sql))[0]
            # others' transaction ids are hidden from it: it cannot know the snapshot quiet
            assert ranges.snapshot_quiet(snapshot)
            assert not await service.nothing_in_progress(s, dsn, snapshot)


async def test_a_column_added_without_a_rewrite_is_read_again(
    server: OwnServer, ctx: service.BackupContext
) -> None:
    wide_table(server, "bk_added")
    first = await by_range(server.dsn)
    assert first.layout is not None
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        # no write to the table's pages: every row now reads 7 in the new column
        conn.execute("alter table bk_added add column seven int not null default 7")
    second = await by_range(server.dsn, first.layout)
    assert second.layout is not None
    assert (
        second.layout.tables["public.bk_added"].ranges
        != first.layout.tables["public.bk_added"].ranges
    )
    assert {f.table: f for f in second.prints} == {
        f.table: f for f in await live_fingerprint(server.dsn)
    }


async def test_a_renamed_enum_label_takes_nothing_over(
    server: OwnServer, ctx: service.BackupContext
) -> None:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("drop table if exists bk_moods; drop type if exists bk_mood")
        conn.execute("create type bk_mood as enum ('calm', 'busy')")
        conn.execute("create table bk_moods (id int primary key, moods bk_mood[])")
        conn.execute("insert into bk_moods values (1, '{calm,busy}')")
    first = await by_range(server.dsn)
    assert first.layout is not None
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        # the rows read differently, their pages unwritten
        conn.execute("alter type bk_mood rename value 'busy' to 'booked'")
    second = await by_range(server.dsn, first.layout)
    assert second.ranges_reused == 0
    now = {f.table: f for f in second.prints}
    assert now["public.bk_moods"] != {f.table: f for f in first.prints}["public.bk_moods"]
    assert now == {f.table: f for f in await live_fingerprint(server.dsn)}


async def test_a_second_backup_takes_over_what_was_not_written_and_verifies(
    server: OwnServer, ctx: service.BackupContext
) -> None:
    wide_table(server, "bk_again")
    first = await service.create(ctx)
    assert first.details["fingerprint_read"] == "beside the copy"
    assert "fingerprint_layout" in first.details
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("update bk_again set pad = 'again' where id = 1")
    expected = await live_fingerprint(server.dsn)
    second = await service.create(ctx)
    taken = second.details["fingerprint_ranges"]
    assert taken["from"] == first.id and taken["taken_over"] > 0 and taken["read"] > 0
    assert service.fingerprint_differences(expected, second.fingerprint) == []
    result = await service.verify(ctx, second.id)
    assert result.ok, result.problems


# --- prune ---------------------------------------------------------------------------------------
def _meta(
    i: int,
    days_ago: float,
    *,
    kind: str = "full",
    parent: str | None = None,
    status: str = "complete",
) -> BackupMeta:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    when = now - timedelta(days=days_ago)
    return BackupMeta(
        id=f"b{i}",
        kind=kind,  # type: ignore[arg-type]
        status=status,  # type: ignore[arg-type]
        started_at=when,
        finished_at=when,
        database="wedsync",
        server_version=180000,
        parent=parent,
        start_wal=f"00000001000000000000{i:04X}",
    )


def test_prune_keeps_what_a_restore_within_the_window_needs_and_nothing_more() -> None:
    backups = [
        _meta(1, 10),  # old full: superseded by b3 for every point in the window
        _meta(2, 9, kind="incremental", parent="b1"),
        _meta(3, 8),  # the newest full backup before the 7-day window: restores start here
        _meta(4, 7.5, kind="incremental", parent="b3"),  # before the window too, b5 needs it
        _meta(5, 3, kind="incremental", parent="b4"),
        _meta(6, 1),
        _meta(7, 0.5, status="interrupted"),
    ]
    segments = [f"00000001000000000000{i:04X}" for i in range(1, 9)]
    plan = prune_plan(backups, segments, now=datetime(2026, 12, 1, tzinfo=UTC), retention_days=7)
    assert {b.id for b in plan.keep} == {"b3", "b4", "b5", "b6"}
    assert {b.id for b in plan.remove} == {"b1", "b2", "b7"}
    assert plan.oldest_wal_needed == "000000010000000000000003"
    assert plan.wal_remove == ("000000010000000000000001", "000000010000000000000002")


async def test_prune_removes_old_backups_and_their_wal(
    server: OwnServer, ctx: service.BackupContext
) -> None:
    write(server, "prune-a")
    old = await service.create(ctx)
    ctx.repo.save(replace(old, finished_at=old.finished_at - timedelta(days=30)))  # type: ignore[operator]
    write(server, "prune-b")
    anchor = await service.create(ctx)
    ctx.repo.save(replace(anchor, finished_at=anchor.finished_at - timedelta(days=20)))  # type: ignore[operator]
    write(server, "prune-c")
    recent = await service.create(ctx)
    before = ctx.repo.wal_segments()
    plan = await service.prune(ctx, retention_days=7)
    ids = {b.id for b in ctx.repo.all()}
    assert old.id not in ids and anchor.id in ids and recent.id in ids
    assert not ctx.repo.backup_path(old).exists()
    after = ctx.repo.wal_segments()
    assert plan.oldest_wal_needed is not None
    assert all(s[8:] >= plan.oldest_wal_needed[8:] for s in after)
    assert len(after) <= len(before)
    # what is left still restores
    async for copy in restored(ctx):
        assert "prune-c-0" in notes(copy.dsn)


# --- an interrupted backup ---------------------------------------------------------------------
def test_a_backup_killed_midway_is_never_listed_as_good(
    server: OwnServer, ctx: service.BackupContext, tmp_path: Path
) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "DATABASE_URL": server.dsn,
        "WEDSYNC_BACKUP_DIR": str(ctx.repo.root),
        "WEDSYNC_DATA_DIR": str(tmp_path / "data"),
        "NO_COLOR": "1",
    }
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        # enough data that the copy takes a moment
        conn.execute(
            "create table if not exists bk_bulk as"
            " select g, repeat('x', 500) as pad from generate_series(1, 200000) g"
        )
    if not any(b.good for b in ctx.repo.all()):
        # a complete backup to restore from, whichever tests ran before
        asyncio.run(service.create(ctx))
    before = {b.id for b in ctx.repo.all()}
    proc = subprocess.Popen(
        [str(WEDSYNC_DB), "backup", "create"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            running = [b for b in ctx.repo.all() if b.id not in before]
            if running and ctx.repo.backup_path(running[0]).exists():
                break
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    listed = json.loads(
        subprocess.run(
            [str(WEDSYNC_DB), "backup", "list", "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )["backups"]
    new = [b for b in listed if b["id"] not in before]
    assert new and all(not b["good"] for b in new), new
    assert new[0]["status"] == "interrupted"
    # and a restore never starts from it
    assert service.backup_for(ctx.repo.all(), None).id not in {b["id"] for b in new}


# --- what monitoring sees, and the schedule of `up` -----------------------------------------------
async def test_health_and_metrics_see_the_recorded_verification(
    server: OwnServer, ctx: service.BackupContext
) -> None:
    meta = await service.create(ctx)
    assert (await service.verify(ctx, meta.id)).ok
    async with direct.connect(server.dsn) as s:
        stats = await collect_backups(s)
    assert stats.archiving and stats.can_replicate and not stats.provider_managed
    assert stats.archived_count > 0 and not stats.archive_failing
    assert stats.last_verified_at is not None and stats.verifications_ok >= 1
    assert stats.last_backup_at is not None and stats.last_backup_bytes == meta.size_bytes
    snap = Snapshot(captured_at=datetime.now(UTC), duration_ms=0.0, backups=stats)
    checks = {c.key: c for c in assess_in("production", snap).checks if c.key.startswith("backup")}
    assert checks["backup:lastVerifiedAge"].status == "pass"
    assert checks["backup:walArchiving"].status == "pass"


async def test_the_schedule_of_up_takes_verifies_and_prunes(
    server: OwnServer, ctx: service.BackupContext, tmp_path: Path
) -> None:
    write(server, "scheduled")
    scheduler = BackupScheduler(ctx, backup_every_hours=24, verify_every_hours=24, retention_days=7)
    later = datetime.now(UTC) + timedelta(days=2)  # everything so far is old enough to redo
    work = await scheduler.run_once(now=later)
    assert work.backup in ("full", "incremental") and work.verify is not None
    newest = max((b for b in ctx.repo.all() if b.good), key=lambda b: b.started_at)
    assert newest.id == work.verify.id
    assert newest.details["last_verification"]["ok"] is True
    # nothing is due right after
    again = await scheduler.run_once()
    assert (again.backup, again.verify) == (None, None)


async def test_a_login_without_replication_is_told_to_use_a_logical_export(
    server: OwnServer, ctx: service.BackupContext
) -> None:
    with plain_login(server, "bk_managed") as dsn:
        managed = replace(ctx, dsn=dsn)
        with pytest.raises(BackupError, match=r"neither REPLICATION nor SUPERUSER.*--logical"):
            await service.create(managed)
        with pytest.raises(BackupError, match="needs a superuser"):
            await service.setup(managed)


# --- logical exports ---------------------------------------------------------------------------
async def test_a_logical_export_is_verified_the_same_way(
    server: OwnServer, ctx: service.BackupContext
) -> None:
    write(server, "logical")
    meta = await service.create(ctx, logical=True)
    assert meta.kind == "logical" and ctx.repo.backup_path(meta).stat().st_mode & 0o777 == 0o600
    result = await service.verify(ctx, meta.id)
    assert result.ok, result.problems


async def test_incremental_needs_a_parent_and_unknown_ids_are_named(
    ctx: service.BackupContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = replace(ctx, repo=Repository(tmp_path / "elsewhere"))
    with pytest.raises(BackupError, match=r"archives into .* not into this repository"):
        await service.create(elsewhere)
    assert not elsewhere.repo.root.exists()
    # only interrupted or failed backups so far: nothing an increment could build on
    monkeypatch.setattr(ctx.repo, "all", lambda: [])
    with pytest.raises(BackupError, match="needs a complete earlier backup"):
        await service.create(ctx, incremental=True)
    with pytest.raises(KeyError, match="no backup 'nope'"):
        ctx.repo.load("nope")
