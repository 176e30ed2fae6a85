"""kill -9 of the (embedded) postmaster under concurrent writers, restart, repeat.

The benchmark starts an embedded PostgreSQL of its own in a temporary directory (durable
settings), signals only that server's postmaster, by PID, and removes it at the end. Writers
insert guests through `db.as_user`; a write counts as acknowledged once its scope exited
without an error. At the end every acknowledged row must be in the table.

Prints acknowledged / lost / errors by class / the longest call / seconds from each kill to the
first write acknowledged by the restarted server.
Last line: `outage: lost=0 max_call_s=X.XX recovery_s=Y.YY`
(target: lost 0, max call ≤ pool timeout + 1 s, recovery ≤ 5 s).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import shutil
import signal
import tempfile
import time
import uuid
from pathlib import Path

import psutil
import psycopg

from _common import migrate, sizes, wedding_with_partner
from wedsync_db.db.client import Database, user_dsn_for
from wedsync_db.embedded import EmbeddedPostgres, free_port
from wedsync_db.errors import WedsyncDBError

POOL_TIMEOUT = 5.0


def _wait_gone(pids: list[int], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while any(Path(f"/proc/{pid}").exists() for pid in pids):
        if time.monotonic() > deadline:
            raise RuntimeError("the killed server's processes did not exit")
        time.sleep(0.05)


async def main(writers: int, cycles: int, load_seconds: float) -> None:
    directory = Path(tempfile.mkdtemp(prefix="wedsync-outage-bench-"))
    server = EmbeddedPostgres(directory, port=free_port())
    try:
        status, _ = server.ensure_running()
        dsn = status.dsn()
        await migrate(dsn)
        db = Database(
            user_dsn=user_dsn_for(dsn),
            service_dsn=dsn,
            user_pool_size=8,
            service_pool_size=2,
            pool_timeout=POOL_TIMEOUT,
            query_timeout=POOL_TIMEOUT,
            heartbeat_interval=1.0,
        )
        await db.open()
        async with db.service(reason="benchmark setup") as s:
            wedding, partner = await wedding_with_partner(s, "Outage", 30)
        claims = {"sub": str(partner), "aud": "couple"}
        acknowledged: set[uuid.UUID] = set()
        errors: collections.Counter[str] = collections.Counter()
        longest = 0.0
        # when the first write that began on the restarted server was acknowledged
        recovered_at: float | None = None
        gone_at = float("inf")
        stop = asyncio.Event()

        async def writer() -> None:
            nonlocal longest, recovered_at
            while not stop.is_set():
                guest = uuid.uuid4()
                started = time.monotonic()
                try:
                    async with db.as_user(claims) as s:
                        await s.execute(
                            "insert into guests (wedding_id, id, first_name) values (%s, %s, 'W')",
                            (wedding, guest),
                        )
                except WedsyncDBError as exc:
                    errors[type(exc).__name__] += 1
                    await asyncio.sleep(0.05)
                else:
                    acknowledged.add(guest)
                    if started > gone_at and recovered_at is None:
                        recovered_at = time.monotonic()
                finally:
                    longest = max(longest, time.monotonic() - started)

        tasks = [asyncio.create_task(writer()) for _ in range(writers)]
        recoveries: list[float] = []
        try:
            for _ in range(cycles):
                await asyncio.sleep(load_seconds)
                postmaster = server.status().pid
                assert postmaster is not None
                pids = [postmaster, *(p.pid for p in psutil.Process(postmaster).children())]
                recovered_at = None
                killed_at = time.monotonic()
                os.kill(postmaster, signal.SIGKILL)
                # the backends leave once they notice (until then they may still serve, and
                # commit, a write); then the server starts again and replays its WAL
                await asyncio.to_thread(_wait_gone, pids)
                gone_at = time.monotonic()
                await asyncio.to_thread(server.ensure_running)
                deadline = killed_at + 60
                while recovered_at is None:
                    if time.monotonic() > deadline:
                        raise RuntimeError("no write was acknowledged within 60 s of the kill")
                    await asyncio.sleep(0.05)
                recoveries.append(recovered_at - killed_at)
                gone_at = float("inf")
            await asyncio.sleep(load_seconds)
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            cur = await conn.execute("select id from guests where wedding_id = %s", (wedding,))
            present = {row[0] for row in await cur.fetchall()}
        await db.close()
        lost = len(acknowledged - present)
        print(f"writers: {writers}, kills: {cycles}, load between kills: {load_seconds:g} s")
        print(f"acknowledged writes: {len(acknowledged)}, in the table: {len(present)}")
        print(f"lost acknowledged writes: {lost}")
        print("errors by class: " + (", ".join(f"{k} {v}" for k, v in errors.items()) or "none"))
        print(
            "seconds from kill to a write acknowledged by the restarted server: "
            + ", ".join(f"{r:.2f}" for r in recoveries)
        )
        print(f"outage: lost={lost} max_call_s={longest:.2f} recovery_s={max(recoveries):.2f}")
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    # the pool logs every failed reconnection attempt while the server is down
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    args = sizes(__doc__, writers=(16, 4), cycles=(3, 1), load_seconds=(3.0, 1.0))
    asyncio.run(main(args.writers, args.cycles, args.load_seconds))
