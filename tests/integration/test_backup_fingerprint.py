"""The backup fingerprint and the writer pause on the test server (18 and 15)."""

from __future__ import annotations

import time

import psycopg
import pytest

from wedsync_db.backup import service
from wedsync_db.backup.repository import TableFingerprint


async def prints(dsn: str) -> dict[str, TableFingerprint]:
    async with service._snapshot(dsn) as s:
        return {f.table: f for f in await service.fingerprint(s)}


async def test_every_row_change_changes_the_fingerprint_and_unlogged_tables_are_left_out(
    fresh_db: str,
) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("create table fp_text (id int primary key, v text)")
        # json has no hash function: its table is hashed by the rows' text
        conn.execute("create table fp_json (id int primary key, v json)")
        conn.execute("create unlogged table fp_scratch (id int)")
        conn.execute("insert into fp_text select g, g::text from generate_series(1, 300) g")
        conn.execute("insert into fp_json select g, to_json(g) from generate_series(1, 300) g")
        conn.execute("insert into fp_scratch values (1)")
    before = await prints(fresh_db)
    assert "public.fp_scratch" not in before
    assert before["public.fp_json"].rows == 300
    assert await prints(fresh_db) == before  # deterministic
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("update fp_text set v = 'x' where id = 7")
        conn.execute("update fp_json set v = '\"x\"' where id = 7")
    after = await prints(fresh_db)
    for table in ("public.fp_text", "public.fp_json"):
        assert after[table].rows == before[table].rows
        assert after[table].hash_sum != before[table].hash_sum
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("update fp_text set v = '7' where id = 7")  # back as it was
    assert (await prints(fresh_db))["public.fp_text"] == before["public.fp_text"]


async def test_writers_wait_while_paused_and_readers_do_not(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("create table fp_pause (id int)")
    async with service._writers_paused(fresh_db) as pause:
        assert pause.ok, pause.reason
        with psycopg.connect(fresh_db, autocommit=True) as conn:
            assert conn.execute("select count(*) from fp_pause").fetchone() == (0,)
            conn.execute("set lock_timeout = '200ms'")
            started = time.monotonic()
            try:
                conn.execute("insert into fp_pause values (1)")
            except psycopg.errors.LockNotAvailable:
                pass
            else:
                raise AssertionError("a writer got through the pause")
            assert time.monotonic() - started >= 0.15
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("insert into fp_pause values (1)")  # released


async def test_a_writer_that_will_not_finish_leaves_the_pause_open_with_a_reason(
    fresh_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("create table fp_busy (id int)")
    with psycopg.connect(fresh_db) as writer:
        writer.execute("insert into fp_busy values (1)")  # holds its lock, uncommitted
        monkeypatch.setattr(service, "PAUSE_LOCK_TIMEOUT", "100ms")
        monkeypatch.setattr(service, "PAUSE_TRIES", 2)
        async with service._writers_paused(fresh_db) as pause:
            assert not pause.ok and "could not be paused" in pause.reason
        writer.rollback()
