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


async def test_the_fingerprint_tells_apart_what_the_rows_tell_apart(fresh_db: str) -> None:
    """Each change below keeps the row count: only the hash can see it."""
    rows = (
        "insert into fp_kinds values"
        " (1, 'alice', '', '{\"x\": 1}', '{\"x\": 1}', 1.0, 0, '{1,2}', '2026-01-01', 1,"
        " 'k1'),"
        " (2, 'bob', null, '[1, 2]', '[1, 2]', 2, 1.5, '{3}', '2026-01-02', 2, 'k2')"
    )
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(
            "create table fp_kinds (id int primary key, a text, b text, j json, jb jsonb,"
            " n numeric, f float8, arr int[], at timestamptz, big bigint, k text not null)"
        )
        conn.execute(rows)
    changes = [
        # a value swapped between two rows (a linear sum of row hashes cannot see it)
        "update fp_kinds set a = case id when 1 then 'bob' else 'alice' end",
        "update fp_kinds set k = case id when 1 then 'k2' else 'k1' end",  # NOT NULL
        # a value moved to another column of the same row
        "update fp_kinds set a = 'x', b = 'alice' where id = 1",
        # NULL and the empty string
        "update fp_kinds set b = null where id = 1",
        "update fp_kinds set b = '' where id = 2",
        # json as written (no hash function) and jsonb (its own hash)
        "update fp_kinds set j = '{\"x\": 2}' where id = 1",
        "update fp_kinds set j = '{\"x\":1}' where id = 1",
        "update fp_kinds set jb = '{\"x\": 2}' where id = 1",
        # equal to the type, not the same value: scale, the sign of zero, array bounds
        "update fp_kinds set n = 1.00 where id = 1",
        "update fp_kinds set f = '-0' where id = 1",
        "update fp_kinds set arr = '[0:1]={1,2}' where id = 1",
        # 2^32 and 1: bigint's own hash folds both to the same 32 bits
        "update fp_kinds set big = 4294967296 where id = 1",
        "update fp_kinds set at = at + interval '1 microsecond' where id = 1",
    ]
    base = (await prints(fresh_db))["public.fp_kinds"]
    for change in changes:
        with psycopg.connect(fresh_db, autocommit=True) as conn:
            conn.execute(change)
        changed = (await prints(fresh_db))["public.fp_kinds"]
        assert changed.rows == base.rows
        assert changed.hash_sum != base.hash_sum, change
        # the same rows again give the same sum
        with psycopg.connect(fresh_db, autocommit=True) as conn:
            conn.execute("delete from fp_kinds")
            conn.execute(rows)
        assert (await prints(fresh_db))["public.fp_kinds"] == base


async def test_a_lost_or_duplicated_row_changes_the_fingerprint(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("create table fp_bag (v text)")  # no key: duplicates are possible
        conn.execute("insert into fp_bag values ('a'), ('b'), ('c')")
    base = (await prints(fresh_db))["public.fp_bag"]
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        # a duplicate in place of a lost row: the same count
        conn.execute("update fp_bag set v = 'a' where v = 'b'")
    changed = (await prints(fresh_db))["public.fp_bag"]
    assert changed.rows == base.rows and changed.hash_sum != base.hash_sum
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        # the rows in another physical order: the same table
        conn.execute(
            "update fp_bag set v = 'b' where ctid = (select min(ctid) from fp_bag"
            " where v = 'a' and ctid > (select min(ctid) from fp_bag where v = 'a'))"
        )
        conn.execute("vacuum full fp_bag")
        conn.execute("update fp_bag set v = v || '' where v = 'a'")  # moved to the end
    assert (await prints(fresh_db))["public.fp_bag"] == base


async def test_backups_recorded_with_the_record_hash_are_still_read(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("create table fp_old (id int primary key, v json)")
        conn.execute("insert into fp_old values (1, '{}')")
    async with service._snapshot(fresh_db) as s:
        old = {f.table: f for f in await service.fingerprint(s, service.FINGERPRINT_RECORD)}
        again = {f.table: f for f in await service.fingerprint(s, service.FINGERPRINT_RECORD)}
    assert old["public.fp_old"].rows == 1  # json: the text fallback of that method
    assert again == old


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


async def test_a_fingerprint_read_by_block_range_is_the_whole_table_one(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("create table fp_ranged (id int primary key, pad text, n numeric)")
        # about 70 blocks: ranges of 8 blocks, the last one open
        conn.execute(
            "insert into fp_ranged select g, repeat(md5(g::text), 8), g / 7.0"
            " from generate_series(1, 2000) g"
        )
        conn.execute("create table fp_ranged_empty (id int)")
        conn.execute(
            "create table fp_parted (id int, at date) partition by range (at);"
            " create table fp_parted_2026 partition of fp_parted"
            " for values from ('2026-01-01') to ('2027-01-01');"
            " insert into fp_parted select g, date '2026-01-01' + g % 300"
            " from generate_series(1, 500) g"
        )
    async with service._positioned_snapshot(fresh_db) as (s, position):
        assert position is not None
        snapshot, _high = (await s.fetch_tuples(service.Q["snapshot_position"].sql))[0]
        quiet = await service.nothing_in_progress(s, fresh_db, snapshot)
        ranged = await service.fingerprint_by_range(s, position, quiet, per_range=8)
        whole = await service.fingerprint(s)
    assert ranged.prints == whole
    # every range read, none taken over; the layout is the one a later backup starts from
    assert ranged.ranges_reused == 0 and ranged.ranges_read >= 9
    assert ranged.layout is not None
    table = ranged.layout.tables["public.fp_ranged"]
    assert [r.start for r in table.ranges][:3] == [0, 8, 16] and table.ranges[-1].end is None
    assert sum(r.rows for r in table.ranges) == 2000
    # a partitioned table keeps no rows of its own: read whole, no layout
    assert "public.fp_parted" not in ranged.layout.tables
