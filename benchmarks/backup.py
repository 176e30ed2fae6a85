"""`wedsync-db backup create` against a bare pg_basebackup of the same server, interleaved;
then the time to restore the newest backup and replay the archive.

The benchmark starts an embedded PostgreSQL of its own in a temporary directory (durable,
archiving into a temporary repository), loads the demo seed and grows the guest list by
doubling it until the database reaches --gb, and removes everything at the end. Each round
runs both, in alternating order: the command as a user runs it (its own process: archive
checks, the copy with its manifest, the fingerprint of every table, the restore point, the
metadata), and `pg_basebackup -D DIR -X stream -c fast` alone. Nothing writes to the server
while they run, so the command's fingerprint, read beside its copy, is kept (see
wedsync_db.backup.service); under writes it is read again after the copy.

The fingerprint is read by ranges of blocks; a range the server's WAL summaries show unwritten
since the previous backup's snapshot keeps that backup's sums (wedsync_db.backup.ranges). The
first round is the first backup and reads every range; the later ones take over all but what
was written in between: --churn updates that many of the newest guests before each of them
(0: nothing, the database as it was), and each round prints how many ranges it read and took
over. The first round's ratio is printed too.

Prints the database size, each round's times and throughput with the command's phases
(prepare: archive checks and repository; copy (with the hashing beside it); pause: the restore
point with writers held; fingerprint: the hashing after the copy, when needed; rest: the
interpreter's start, connections and metadata), and the restore.
Last line: `backup/pg_basebackup ratio: X.XX  restore_s=Y` (ratio = bare time / command time,
i.e. the command's throughput relative to the bare copy; target ≥ 0.8).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg

from _common import migrate, sizes
from wedsync_db.backup import service
from wedsync_db.backup.repository import Repository
from wedsync_db.db import direct
from wedsync_db.db.admin import psql_target
from wedsync_db.db.client import Database, user_dsn_for
from wedsync_db.demo.seed import seed
from wedsync_db.embedded import EmbeddedPostgres, free_port, server_account

WEDSYNC_DB = Path(sys.executable).with_name("wedsync-db")


async def load(dsn: str, gb: float) -> int:
    """The demo seed, then the guests doubled until the database has ``gb`` GiB."""
    db = Database(user_dsn=user_dsn_for(dsn), service_dsn=dsn, user_pool_size=1)
    await db.open()
    try:
        await seed(db, organizations=20, weddings=400, guests_per_wedding=120, seed=7)
    finally:
        await db.close()
    target = int(gb * 2**30)
    async with direct.connect(dsn) as s:
        while True:
            size = int(await s.fetch_val("select pg_database_size(current_database())"))
            if size >= target:
                break
            rows = int(await s.fetch_val("select count(*) from guests"))
            # never more than needed: the last step copies only part of the list
            share = min(1.0, (target - size) / max(size, 1) * 1.05)
            await s.execute(
                "insert into guests (wedding_id, first_name, last_name, email, rsvp_status,"
                " dietary_requirements, table_number, plus_one, plus_one_name, notes)"
                " select wedding_id, first_name, last_name, email, rsvp_status,"
                " dietary_requirements, table_number, plus_one, plus_one_name, notes"
                " from guests limit %s",
                (max(1, int(rows * share)),),
            )
        # a settled database, as autovacuum leaves one: the bulk load's rows (guests and their
        # change feed entries) frozen and hinted, so no first reader pays for setting hint bits
        await s.execute("vacuum (freeze, analyze)")
        await s.execute("checkpoint")
        return int(await s.fetch_val("select pg_database_size(current_database())"))


def bare_basebackup(ctx: service.BackupContext, into: Path) -> float:
    dsn, env = psql_target(ctx.dsn)
    started = time.perf_counter()
    ctx.tools.run(
        "pg_basebackup", ["-D", str(into), "-d", dsn, "-X", "stream", "-c", "fast"], env=env
    )
    return time.perf_counter() - started


def command_backup(
    dsn: str, repo: Path, home: Path
) -> tuple[float, str, dict[str, float], dict[str, Any]]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "DATABASE_URL": dsn,
        "WEDSYNC_BACKUP_DIR": str(repo),
        "WEDSYNC_DATA_DIR": str(home / "unused"),
        "NO_COLOR": "1",
    }
    started = time.perf_counter()
    done = subprocess.run(
        [str(WEDSYNC_DB), "backup", "create", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"backup create failed: {done.stderr.strip()}")
    meta = json.loads(done.stdout)
    details = dict(meta["details"])
    return took, str(meta["id"]), dict(details.get("timings", {})), details


def workdir() -> tuple[Path, tuple[int, int] | None]:
    """A temporary directory, and the server's account when root runs it."""
    if os.geteuid() != 0:
        return Path(tempfile.mkdtemp(prefix="wedsync-backup-bench-")), None
    entry = server_account()  # created when missing, as the server itself does (first)
    base = Path(tempfile.mkdtemp(prefix="wedsync-backup-bench-"))
    base.chmod(0o711)  # the server's account reaches its directories inside
    return base, (entry.pw_uid, entry.pw_gid)


def writer(dsn: str, per_second: int, stop: threading.Event) -> int:
    """Commit one small insert ``per_second`` times a second until stopped; returns how many."""
    done = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("create table if not exists bench_writes (at timestamptz default now())")
        while not stop.wait(1.0 / per_second):
            conn.execute("insert into bench_writes default values")
            done += 1
    return done


async def churn(dsn: str, rows: int, round_: int) -> None:
    """Update the ``rows`` newest guests (their new versions go where free space is, their old
    ones stay where they were)."""
    async with direct.connect(dsn) as s:
        await s.execute(
            "update guests set notes = %s where (wedding_id, id) in"
            " (select wedding_id, id from guests order by created_at desc limit %s)",
            (f"churn {round_}", rows),
        )
        await s.execute("checkpoint")


async def main(gb: float, rounds: int, writes: int, churn_rows: int = 0) -> None:
    base, owner = workdir()
    server = EmbeddedPostgres(base / "server", port=free_port())
    try:
        status, _ = server.ensure_running()
        dsn = status.dsn()
        await migrate(dsn)
        loaded = time.perf_counter()
        size = await load(dsn, gb)
        print(f"database: {size / 2**30:.2f} GiB (loaded in {time.perf_counter() - loaded:.0f} s)")
        facts = await service.archive_settings(dsn)
        ctx = service.BackupContext(
            dsn=dsn,
            repo=Repository(base / "repo", owner=owner),
            tools=service.toolbox_for(facts.server_version, None),
            actor="benchmark",
            embedded=server,
        )
        await service.setup(ctx)
        stop = threading.Event()
        busy = asyncio.create_task(asyncio.to_thread(writer, dsn, writes, stop)) if writes else None
        if writes:
            print(f"a writer commits {writes} times a second through every round")
        bare_s: list[float] = []
        command_s: list[float] = []
        copy_s: list[float] = []
        fingerprint_s: list[float] = []
        beside_s: list[float] = []
        flush_s: list[float] = []
        read: list[str] = []
        phases: dict[str, list[float]] = {}
        newest = ""
        taken: list[str] = []
        for i in range(rounds):
            if i and churn_rows:
                await churn(dsn, churn_rows, i)
            order = ("command", "bare") if i % 2 == 0 else ("bare", "command")
            for which in order:
                # each starts with nothing left to write back from the one before
                await asyncio.to_thread(os.sync)
                if which == "bare":
                    into = base / f"bare-{i}"
                    bare_s.append(await asyncio.to_thread(bare_basebackup, ctx, into))
                    await asyncio.to_thread(shutil.rmtree, into)
                else:
                    took, newest_id, timings, details = await asyncio.to_thread(
                        command_backup, dsn, ctx.repo.root, base
                    )
                    command_s.append(took)
                    # pg_basebackup and the flush of its files, as the bare one does them
                    parts = details.get("beside_copy", {})
                    copy_s.append(parts.get("pg_basebackup_s", 0.0) + parts.get("flush_s", 0.0))
                    flush_s.append(parts.get("flush_s", 0.0))
                    # the hashing itself, wherever it ran (beside the copy, or after it)
                    beside_s.append(float(details.get("beside_copy", {}).get("fingerprint_s") or 0))
                    fingerprint_s.append(
                        timings["fingerprint_s"]
                        if details.get("fingerprint_read") == "after the copy"
                        else beside_s[-1]
                    )
                    read.append(str(details.get("fingerprint_read", "after the copy")))
                    by_range = details.get("fingerprint_ranges")
                    taken.append(
                        f"{by_range['read']} ranges read, {by_range['taken_over']} taken over"
                        if by_range
                        else "whole tables"
                    )
                    # the rest: the interpreter's start, connections, metadata, the event
                    rest = took - sum(timings.values())
                    for name, value in [*timings.items(), ("rest_s", rest)]:
                        phases.setdefault(name, []).append(value)
                    if newest:  # keep only the newest backup on disk
                        ctx.repo.remove(ctx.repo.load(newest))
                    newest = newest_id
            print(
                f"round {i + 1}: backup create {command_s[-1]:.2f} s "
                f"({size / 2**20 / command_s[-1]:,.0f} MiB/s), pg_basebackup {bare_s[-1]:.2f} s "
                f"({size / 2**20 / bare_s[-1]:,.0f} MiB/s); the command's copy "
                f"{copy_s[-1]:.2f} s (its flush {flush_s[-1]:.2f} s), fingerprint "
                f"{fingerprint_s[-1]:.2f} s (read {read[-1]}: {taken[-1]}); "
                + ", ".join(f"{k} {v[-1]:.2f}" for k, v in phases.items()),
                flush=True,
            )
        if busy is not None:
            stop.set()
            print(f"writes committed during the rounds: {await busy:,}")
        into = base / "restored" / "data"
        into.parent.mkdir()
        if owner is not None:
            into.parent.chmod(0o711)
        started = time.perf_counter()
        restored = await service.restore(ctx, into=into, backup=ctx.repo.load(newest))
        restore_s = time.perf_counter() - started
        try:
            async with direct.connect(restored.dsn) as s:
                guests = int(await s.fetch_val("select count(*) from guests"))
        finally:
            service.stop_restored(ctx, restored)
        print(f"restore of {newest} (latest): {restore_s:.2f} s, {guests:,} guests back")
        ratio = statistics.median(bare_s) / statistics.median(command_s)
        copy_ratio = statistics.median(bare_s) / statistics.median(copy_s)
        print(
            f"the command's copy alone vs pg_basebackup: {copy_ratio:.2f}; fingerprint "
            f"{size / 2**30 / statistics.median(fingerprint_s):.2f} GiB/s"
        )
        print(
            "the command's phases (median s): "
            + ", ".join(f"{k} {statistics.median(v):.2f}" for k, v in phases.items())
        )
        print(
            f"first round (a first backup: every range read): ratio {bare_s[0] / command_s[0]:.2f}"
            + (f"; {churn_rows:,} guests updated before each later round" if churn_rows else "")
        )
        print(f"backup/pg_basebackup ratio: {ratio:.2f}  restore_s={restore_s:.1f}")
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    args = sizes(
        __doc__,
        smoke="a small database, one round",
        gb=(3.0, 0.05, "database size (GiB)"),
        rounds=(3, 1),
        writes=(0, 0, "commits per second by a writer running through every round (0: none)"),
        churn=(0, 0, "guests updated before each round after the first (0: none)"),
    )
    asyncio.run(main(args.gb, args.rounds, args.writes, args.churn))
