"""Backup use-cases: set up archiving, take, list, verify, restore and prune backups.

Physical backups (self-hosted and embedded servers) are pg_basebackup copies with SHA-256
manifest checksums, incremental ones on PostgreSQL 17 and later, plus the WAL the server
archives with basic_archive: together they restore any point in time since the oldest kept
backup. A managed database (no REPLICATION, no archive) gets logical exports (pg_dump -Fc) that
go through the same commands.

Right after a backup, a named restore point is written to the WAL in the statement that takes
a snapshot (writers held off for that instant), and the fingerprint of every table is the one
of that snapshot; ``verify`` restores the backup into a scratch directory on a free loopback
port up to that point and compares. The fingerprint is read beside the copy, in a snapshot
taken as it starts; when the restore point's snapshot equals that one (no transaction
committed or aborted during the copy: a quiet database), those hashes are the backup's,
otherwise the fingerprint is read again in the restore point's snapshot. Should writers not
be held off, a transaction that commits in the microseconds between the snapshot and the
restore point's WAL record shows as a difference (in the table it touched).

The fingerprint of a table is its row count and the sum (mod 2^64) of one 64-bit hash per
row, not a hash of the rows in primary-key order: no sort and no ordered scan, one sequential
read in parallel workers. A multiset of rows is what a table is (the heap's order is no part of
its content: vacuum, HOT updates and a logical restore all move rows), and the sum detects
what an ordered hash detects:

- a changed row: every column, the primary key included, enters the row's hash: by the
  type's own 64-bit hash when equal values of the type are identical; by its 8 bytes for
  8-byte types (their own hashes fold them to 32 bits); by its text form otherwise (numeric
  1.0 vs 1.00, float -0, array bounds, json as written, and, on PostgreSQL 15, 8-byte types
  and bool, whose hashes SQL cannot call there). The columns that may be NULL are hashed with
  their position as seed (a NULL as a fixed mark of its column, so NULL and '' differ) and
  combined by XOR; that value seeds a chain through the NOT NULL columns, each hashed with
  the hash so far as its seed. The row hash is so not linear in its columns: a value swapped
  between two rows, or moved to another column, changes the rows' hashes and the sum (a sum
  of linear row hashes, as hash_record_extended's, is blind to a value swapped between rows);
- a lost or duplicated row: the count changes, and so does the sum (by that row's hash; a
  sum, unlike XOR, does not cancel a duplicate).

Two different tables of the same count have the same sum with a chance of about 2^-64
(hashes taken as random): the strength of a 64-bit ordered hash. Two rows swapping their whole
contents (primary keys included) are the same table, and rightly the same fingerprint.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from psycopg import sql

from wedsync_db.backup import ranges
from wedsync_db.backup.repository import (
    DIR_MODE,
    BackupMeta,
    Kind,
    PrunePlan,
    Repository,
    TableFingerprint,
    backup_for,
    chain,
    new_backup_id,
    prune_plan,
)
from wedsync_db.backup.tools import Toolbox, find_bin_dir
from wedsync_db.db import direct
from wedsync_db.db.admin import psql_target
from wedsync_db.db.queries import load_queries
from wedsync_db.db.session import Session, compose, ident, joined
from wedsync_db.embedded import free_port
from wedsync_db.errors import BackupError, BackupVerificationFailed, QueryError, WedsyncDBError

Q = load_queries("wedsync_db.backup", "sql/backup.sql")
log = logging.getLogger(__name__)

# roles a logical export's policies and grants name (restored into a scratch server)
STANDARD_ROLES = (
    "anon",
    "authenticated",
    "service_role",
    "wedsync_authenticator",
    "wedsync_policy_owner",
    "wedsync_ops",
)


@dataclass(frozen=True)
class ArchiveSettings:
    """What the server says about archiving, and what this login may do."""

    server_version: int
    wal_level: str
    archive_mode: str
    archive_library: str
    archive_command: str
    archive_directory: str | None
    summarize_wal: str | None
    can_replicate: bool
    superuser: bool
    database: str

    @property
    def archiving(self) -> bool:
        return self.archive_mode in ("on", "always") and bool(
            self.archive_library or self.archive_command not in ("", "(disabled)")
        )

    @property
    def incremental_possible(self) -> bool:
        return self.server_version >= 170000 and self.summarize_wal == "on"

    def problems(self, repo: Repository) -> list[str]:
        """Why a physical backup with point-in-time recovery cannot be taken, if it cannot."""
        out = []
        if not self.can_replicate:
            out.append(
                "the login has neither REPLICATION nor SUPERUSER, so pg_basebackup cannot copy "
                "the server (a managed database: use `wedsync-db backup create --logical` for a "
                "pg_dump export; point-in-time recovery is the provider's)"
            )
        if self.wal_level == "minimal":
            out.append("wal_level is minimal: set it to replica (needs a restart)")
        if not self.archiving:
            out.append(
                "WAL archiving is off (archive_mode needs a restart): run "
                "`wedsync-db backup setup`, which sets it up and says whether to restart"
            )
        elif (
            self.archive_library == "basic_archive"
            and self.archive_directory
            and (Path(self.archive_directory) != repo.wal_dir)
        ):
            out.append(
                f"the server archives into {self.archive_directory}, not into this "
                f"repository's {repo.wal_dir}: set WEDSYNC_BACKUP_DIR accordingly"
            )
        return out


@dataclass(frozen=True)
class BackupContext:
    """Everything a backup command needs: the database, the repository, the tools."""

    dsn: str
    repo: Repository
    tools: Toolbox
    actor: str
    # the embedded server when this process manages it (setup may restart it)
    embedded: Any | None = None


def default_actor() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


async def archive_settings(dsn: str) -> ArchiveSettings:
    """Read the archive settings (and this login's privileges) from the server."""
    async with direct.connect(dsn) as s:
        row = (await s.fetch_dicts(Q["archive_settings"].sql))[0]
    return ArchiveSettings(**row)


def toolbox_for(server_version: int, configured: Path | None) -> Toolbox:
    """The tools of the server in use; as root, scratch servers run as the embedded account."""
    from wedsync_db.embedded import ROOT_RUN_AS

    # scratch servers started by root run as the embedded convention's unprivileged account
    run_as = ROOT_RUN_AS if os.geteuid() == 0 else None
    return Toolbox(find_bin_dir(server_version, configured), run_as=run_as)


# --- setup ------------------------------------------------------------------------------------
async def setup(ctx: BackupContext) -> list[str]:
    """Turn on WAL archiving into the repository (and WAL summaries where incremental backups
    exist); restart the embedded server if it needs one, or say that the server does."""
    ctx.repo.ensure()
    before = await archive_settings(ctx.dsn)
    if not before.superuser:
        raise BackupError(
            "setting up archiving needs a superuser (ALTER SYSTEM): on a managed database "
            "point-in-time recovery is the provider's; use `backup create --logical` for exports"
        )
    statements = [
        ("wal_level", "replica" if before.wal_level == "minimal" else before.wal_level),
        ("archive_mode", "on"),
        ("archive_library", "basic_archive"),
        ("basic_archive.archive_directory", str(ctx.repo.wal_dir)),
        # a quiet server still closes a segment a minute: the most WAL an outage can lose
        ("archive_timeout", "60"),
    ]
    if before.server_version >= 170000:
        statements.append(("summarize_wal", "on"))
    async with direct.connect(ctx.dsn) as s:
        for name, value in statements:
            await s.execute(f"alter system set {name} = '{value}'")
        await s.execute("select pg_reload_conf()")
    notes = [f"{name} = {value}" for name, value in statements]
    needs_restart = before.archive_mode not in ("on", "always") or before.wal_level == "minimal"
    if needs_restart:
        if ctx.embedded is not None:
            await asyncio.to_thread(ctx.embedded.stop)
            await asyncio.to_thread(ctx.embedded.ensure_running)
            notes.append("the embedded server was restarted (archive_mode takes a restart)")
        else:
            notes.append("RESTART the server now: archive_mode and wal_level take effect only then")
    return notes


# --- fingerprints -----------------------------------------------------------------------------
# how a fingerprint's hashes are computed (recorded with each backup; a verification hashes the
# restored copy the same way)
FINGERPRINT_COLUMNS = "column-hash-chain-sum"
# earlier methods, still read for the backups recorded with them
FINGERPRINT_RECORD = "record-hash-sum"
FINGERPRINT_TEXT = "text-hash-sum"
_HASH_QUERIES = {
    # the row as stored, hashed with hash_record_extended (a linear mix of the column hashes:
    # blind to one column's values swapped between two rows, hence the column method)
    FINGERPRINT_RECORD: "select count(*), (coalesce(sum(hash_record_extended(t, 0)), 0)"
    " % 18446744073709551616)::text from {table} t",
    # the row's text form: any type, slower
    FINGERPRINT_TEXT: "select count(*), (coalesce(sum(hashtextextended(t::text, 0)), 0)"
    " % 18446744073709551616)::text from {table} t",
}
_COLUMNS_QUERY = (
    "select count(*), (coalesce(sum({row_hash}), 0) % 18446744073709551616)::text from {table} t"
)
UNDEFINED_FUNCTION = "42883"
_MASK = 2**64 - 1


def _null_mark(attnum: int) -> int:
    """The stand-in hash of a NULL in column ``attnum`` (a fixed 64-bit value per column,
    signed as bigint; no value's hash is expected to equal it)."""
    value = (0x9E3779B97F4A7C15 * (attnum + 1) + 0x632BE59BD9B4E019) & _MASK
    return value - 2**64 if value >= 2**63 else value


@dataclass(frozen=True)
class ColumnHash:
    """How one column enters its row's hash (from the catalog: see fingerprint_columns)."""

    attnum: int
    name: str
    not_null: bool
    # the type's own extended hash (schema, function) when equal values are identical
    hash_fn: tuple[str, str] | None = None
    # the binary send function, for an 8-byte value (hashed as bytes)
    send_fn: tuple[str, str] | None = None


def row_hash_sql(columns: list[ColumnHash], bytea_hash: tuple[str, str] | None) -> sql.Composable:
    """The 64-bit hash of a row of ``t``, each column hashed by its type's own hash, its
    bytes or its text (see fingerprint_columns).

    The columns that may be NULL are hashed with their position as seed (a NULL as a fixed
    mark of its column) and combined by XOR; that value seeds a chain through the NOT NULL
    columns, each hashed with the hash of the columns before it as seed. The row hash is so
    not linear in its columns (a sum of linear row hashes cannot see a value swapped between
    two rows), at one hash call per column."""
    nullable: list[sql.Composable] = []
    chain: sql.Composable | None = None
    for col in (c for c in columns if not c.not_null):
        term = sql.SQL("coalesce({}, {}::int8)").format(
            _column_hash(col, bytea_hash, sql.Literal(col.attnum)),
            sql.Literal(_null_mark(col.attnum)),
        )
        nullable.append(term)
    if nullable:
        chain = sql.SQL("({})").format(sql.SQL(" # ").join(nullable))
    not_null = [c for c in columns if c.not_null]
    if not not_null:
        if chain is None:
            return sql.SQL("0::int8")
        # no chain to mix the XOR: hash it once more, as 8 bytes (or as text)
        if bytea_hash is None:
            return sql.SQL("pg_catalog.hashtextextended(({})::text, 0)").format(chain)
        return sql.SQL("{}(pg_catalog.int8send({}), 0)").format(sql.Identifier(*bytea_hash), chain)
    for col in not_null:
        chain = _column_hash(col, bytea_hash, chain if chain is not None else sql.Literal(0))
    assert chain is not None
    return chain


def _column_hash(
    col: ColumnHash, bytea_hash: tuple[str, str] | None, seed: sql.Composable
) -> sql.Composable:
    value = sql.SQL("t.{}").format(sql.Identifier(col.name))
    if col.hash_fn is not None and col.send_fn is not None and bytea_hash is not None:
        return sql.SQL("{}({}({}), {})").format(
            sql.Identifier(*bytea_hash), sql.Identifier(*col.send_fn), value, seed
        )
    if col.hash_fn is not None and col.send_fn is None:
        return sql.SQL("{}({}, {})").format(sql.Identifier(*col.hash_fn), value, seed)
    # no hash that tells apart every value the type can tell apart (1.0 and 1.00, -0 and 0,
    # array bounds, json as written), or an 8-byte value where bytea's hash cannot be
    # called: the text form, byte by byte
    return sql.SQL('pg_catalog.hashtextextended(({})::text collate pg_catalog."C", {})').format(
        value, seed
    )


async def fingerprint(
    s: Session, method: str = FINGERPRINT_COLUMNS
) -> tuple[TableFingerprint, ...]:
    """Row count and hash sum of every user table, in the current snapshot (call inside a
    REPEATABLE READ transaction for one moment across tables). Unlogged tables are left
    out: a restored copy has them empty. See the module docstring for what the sum of row
    hashes detects."""
    if method not in (FINGERPRINT_COLUMNS, *_HASH_QUERIES):
        raise BackupError(f"unknown fingerprint method {method!r}")
    await s.execute(Q["fingerprint_settings"].sql)
    tables = await s.fetch_tuples(Q["user_tables"].sql)
    if method != FINGERPRINT_COLUMNS:
        return tuple(
            [
                await _hash_table(s, ident(schema, name), qualified, method)
                for schema, name, qualified in tables
            ]
        )
    queries = await _column_queries(s, tables)
    out = []
    for qualified, query in queries:
        row = (await s.fetch_tuples(query))[0]
        out.append(TableFingerprint(qualified, int(row[0]), str(row[1])))
    return tuple(out)


async def _column_queries(
    s: Session, tables: list[tuple[Any, ...]]
) -> list[tuple[str, sql.Composed]]:
    """One counting and hashing statement per table (column method)."""
    columns, bytea_hash = await _table_columns(s, tables)
    return [
        (
            str(qualified),
            compose(
                _COLUMNS_QUERY,
                row_hash=row_hash_sql(columns[str(qualified)], bytea_hash),
                table=ident(schema_, name_),
            ),
        )
        for schema_, name_, qualified in tables
    ]


async def _table_columns(
    s: Session, tables: list[tuple[Any, ...]]
) -> tuple[dict[str, list[ColumnHash]], tuple[str, str] | None]:
    """How each column of each table is hashed, and bytea's hash (column method)."""
    columns: dict[str, list[ColumnHash]] = {str(t[2]): [] for t in tables}
    rows = await s.fetch_tuples(Q["fingerprint_columns"].sql, ([str(t[2]) for t in tables],))
    # bytea's hash, the same in every row
    bytea_hash = (str(rows[0][8]), str(rows[0][9])) if rows and rows[0][9] else None
    for qualified, attnum, attname, not_null, h_schema, h_fn, s_schema, s_fn, *_ in rows:
        columns[str(qualified)].append(
            ColumnHash(
                attnum=int(attnum),
                name=str(attname),
                not_null=bool(not_null),
                hash_fn=(str(h_schema), str(h_fn)) if h_fn else None,
                send_fn=(str(s_schema), str(s_fn)) if s_fn else None,
            )
        )
    return columns, bytea_hash


async def _hash_table(s: Session, table: Any, qualified: str, method: str) -> TableFingerprint:
    if method == FINGERPRINT_RECORD:
        try:
            async with s.savepoint():
                row = (await s.fetch_tuples(compose(_HASH_QUERIES[method], table=table)))[0]
        except QueryError as exc:
            if exc.sqlstate != UNDEFINED_FUNCTION:
                raise
            row = (await s.fetch_tuples(compose(_HASH_QUERIES[FINGERPRINT_TEXT], table=table)))[0]
    else:
        row = (await s.fetch_tuples(compose(_HASH_QUERIES[method], table=table)))[0]
    return TableFingerprint(qualified, int(row[0]), str(row[1]))


# --- fingerprints by block range (see ranges.py) ---------------------------------------------
_RANGE_QUERY = (
    "select count(*), coalesce(sum({row_hash}), 0)::text from {table} t"
    " where t.ctid >= {start}::tid{end}"
)
# how long the hashing beside a copy waits for the WAL summaries to reach its snapshot (the
# copy's checkpoint ends a summary file) before it reads every range
SUMMARY_WAIT = 20.0


@dataclass(frozen=True)
class RangedPrints:
    """A fingerprint read by range: the tables' fingerprints, the layout to record (None when
    the snapshot was not quiet: a later backup could not take it over), and how much was
    taken over from the previous backup's layout."""

    prints: tuple[TableFingerprint, ...]
    layout: ranges.Layout | None
    ranges_read: int
    ranges_reused: int
    blocks_reused: int


async def position_now(s: Session) -> ranges.Position:
    """The WAL position now (outside a snapshot's transaction, before it begins)."""
    lsn, timeline, system, database_oid = (await s.fetch_tuples(Q["wal_position"].sql))[0]
    return ranges.Position(str(lsn), int(timeline), str(system), int(database_oid))


def _range_query(
    columns: list[ColumnHash],
    bytea_hash: tuple[str, str] | None,
    table: sql.Composable,
    start: int,
    end: int | None,
) -> sql.Composed:
    return compose(
        _RANGE_QUERY,
        row_hash=row_hash_sql(columns, bytea_hash),
        table=table,
        start=sql.Literal(f"({start},0)"),
        end=sql.SQL("")
        if end is None
        else sql.SQL(" and t.ctid < {}::tid").format(sql.Literal(f"({end},0)")),
    )


async def fingerprint_by_range(
    s: Session,
    position: ranges.Position,
    quiet: bool,
    *,
    previous: ranges.Layout | None = None,
    written: dict[int, ranges.Touched] | None = None,
    per_range: int = ranges.RANGE_BLOCKS,
) -> RangedPrints:
    """The fingerprint of the current snapshot (column method), read by block range; with the
    previous backup's layout and the blocks written since it (``written``, from the WAL
    summaries: None when unknown), a range nothing was written to is taken over unread. The
    fingerprint equals :func:`fingerprint`'s, which a verification reads. ``quiet``: no
    transaction was in progress as the snapshot was taken (see :func:`nothing_in_progress`),
    so a later backup may take this one's ranges over."""
    await s.execute(Q["fingerprint_settings"].sql)
    tables = await s.fetch_tuples(Q["user_tables"].sql)
    columns, bytea_hash = await _table_columns(s, tables)
    storage = {
        str(row[0]): row
        for row in await s.fetch_tuples(Q["table_storage"].sql, ([str(t[2]) for t in tables],))
    }
    labels = str(await s.fetch_val(Q["enum_labels"].sql))
    if previous is not None and (
        written is None
        or previous.labels != labels
        or previous.method != FINGERPRINT_COLUMNS
        or previous.per_range != per_range
        or previous.position.system != position.system
        or previous.position.database_oid != position.database_oid
        or previous.position.timeline != position.timeline
    ):
        previous = None
    out: list[TableFingerprint] = []
    layouts: dict[str, ranges.TableLayout] = {}
    read = reused = reused_blocks = 0
    for schema_, name_, qualified in tables:
        qualified = str(qualified)
        table = ident(schema_, name_)
        _name, relkind, filenode, toast, blocks, catalog = storage[qualified]
        cols = columns[qualified]
        if filenode is None:
            # a partitioned table keeps no rows of its own: read it whole
            row = (
                await s.fetch_tuples(
                    compose(_COLUMNS_QUERY, row_hash=row_hash_sql(cols, bytea_hash), table=table)
                )
            )[0]
            out.append(TableFingerprint(qualified, int(row[0]), str(row[1])))
            continue
        key = ranges.table_key(
            relkind, int(filenode), toast, catalog, tuple(cols), bytea_hash, per_range
        )
        before = previous.tables.get(qualified) if previous is not None else None
        touched = (written or {}).get(int(filenode))
        sums: list[ranges.RangeSum] = []
        for start, end in ranges.block_ranges(int(blocks), per_range):
            kept = ranges.reusable(before, key, start, end, touched, per_range)
            if kept is not None:
                sums.append(kept)
                reused += 1
                reused_blocks += (end if end is not None else max(int(blocks), start)) - start
                continue
            count, total = (
                await s.fetch_tuples(_range_query(cols, bytea_hash, table, start, end))
            )[0]
            sums.append(ranges.RangeSum(start, end, int(count), int(total)))
            read += 1
        layouts[qualified] = ranges.TableLayout(key, tuple(sums))
        out.append(
            TableFingerprint(
                qualified,
                sum(r.rows for r in sums),
                str(ranges.sql_mod(sum(r.total for r in sums))),
            )
        )
    layout = (
        ranges.Layout(position, FINGERPRINT_COLUMNS, per_range, labels, layouts) if quiet else None
    )
    return RangedPrints(tuple(out), layout, read, reused, reused_blocks)


async def nothing_in_progress(s: Session, dsn: str, snapshot: str) -> bool:
    """Whether no transaction with an id was running when ``snapshot``, the transaction's of
    ``s``, was taken (call right after its first statement). A snapshot lists the running
    transactions below its newest completed one only; so: none listed, none running now that
    this login can see all sessions, and a snapshot taken now equal to it (nothing completed
    in between that could have been running then)."""
    if not ranges.snapshot_quiet(snapshot):
        return False
    if not await s.fetch_val(Q["sees_every_transaction"].sql):
        return False
    if await s.fetch_val(Q["transactions_in_progress"].sql):
        return False
    async with direct.connect(dsn, application_name="wedsync:backup watch") as w:
        return str(await w.fetch_val(Q["current_snapshot"].sql)) == snapshot


async def written_since(
    dsn: str,
    since: ranges.Position,
    until_lsn: str,
    *,
    wait: float = SUMMARY_WAIT,
    per_range: int = ranges.RANGE_BLOCKS,
) -> dict[int, ranges.Touched] | None:
    """The blocks of the database's relations written between two WAL positions, by
    relation file (from the WAL summaries, waiting up to ``wait`` seconds for the summarizer
    to get there), or None when the summaries cannot tell (summarize_wal off, the summaries
    removed or not there in time, another timeline, or this login may not read them)."""
    start, end = ranges.lsn_value(since.lsn), ranges.lsn_value(until_lsn)
    deadline = time.monotonic() + wait
    try:
        async with direct.connect(dsn, application_name="wedsync:backup summaries") as w:
            position = await position_now(w)
            if position.timeline != since.timeline:
                log.debug("backup: a new timeline since the previous fingerprint")
                return None
            while True:
                files = [
                    (ranges.lsn_value(a), ranges.lsn_value(b), a, b)
                    for a, b in await w.fetch_tuples(Q["wal_summaries"].sql, (since.timeline,))
                ]
                chosen = ranges.summaries_covering([(f[0], f[1]) for f in files], start, end)
                if chosen is not None:
                    break
                _lsn, pid = (await w.fetch_tuples(Q["summarizer"].sql))[0]
                if pid is None or time.monotonic() >= deadline:
                    log.debug(
                        "backup: no WAL summaries from %s to %s (summarizer %s)",
                        since.lsn,
                        until_lsn,
                        "not running" if pid is None else f"at {_lsn}",
                    )
                    return None
                await asyncio.sleep(0.1)
            text = {(f[0], f[1]): (f[2], f[3]) for f in files}
            rows: list[tuple[Any, ...]] = []
            for lo, hi in chosen:
                a, b = text[(lo, hi)]
                rows.extend(
                    await w.fetch_tuples(
                        Q["summarized_blocks"].sql,
                        {
                            "per_range": per_range,
                            "tli": since.timeline,
                            "start": a,
                            "end": b,
                            "database": since.database_oid,
                        },
                    )
                )
            return ranges.touched_by_relation(rows)
    except WedsyncDBError as exc:
        log.debug("backup: the WAL summaries cannot tell what changed: %s", exc)
        return None


def fingerprint_differences(
    expected: tuple[TableFingerprint, ...], got: tuple[TableFingerprint, ...]
) -> list[str]:
    """The tables whose rows differ, readable (pure)."""
    want = {f.table: f for f in expected}
    have = {f.table: f for f in got}
    out = []
    for table in sorted(set(want) | set(have)):
        a, b = want.get(table), have.get(table)
        if a is None:
            out.append(f"{table}: not in the backup's fingerprint")
        elif b is None:
            out.append(f"{table}: missing from the restored copy")
        elif (a.rows, a.hash_sum) != (b.rows, b.hash_sum):
            out.append(f"{table}: {a.rows} rows expected, {b.rows} restored (or different rows)")
    return out


@contextlib.asynccontextmanager
async def _snapshot(dsn: str) -> AsyncIterator[Session]:
    async with _positioned_snapshot(dsn, position=False) as (s, _position):
        yield s


@contextlib.asynccontextmanager
async def _positioned_snapshot(
    dsn: str, *, position: bool = True
) -> AsyncIterator[tuple[Session, ranges.Position | None]]:
    """A REPEATABLE READ transaction (its snapshot taken by its first statement) and, when
    asked, the WAL position read just before it began (see ranges.py)."""
    async with direct.connect(dsn, application_name="wedsync:backup") as s:
        before = await position_now(s) if position else None
        # one moment for every table (not read only: the restore point is written in it)
        await s.execute("begin isolation level repeatable read")
        try:
            yield s, before
        finally:
            await s.execute("rollback")


def previous_layout(repo: Repository, database: str) -> tuple[str, ranges.Layout] | None:
    """The newest complete physical backup of ``database`` with a fingerprint layout."""
    for meta in reversed(repo.all()):
        data = meta.details.get("fingerprint_layout")
        if not (meta.good and meta.kind != "logical" and meta.database == database and data):
            continue
        try:
            return meta.id, ranges.Layout.from_dict(data)
        except (KeyError, TypeError, ValueError) as exc:
            log.debug("backup %s: its fingerprint layout is unreadable: %s", meta.id, exc)
    return None


# --- create -----------------------------------------------------------------------------------
async def create(
    ctx: BackupContext, *, incremental: bool = False, logical: bool = False
) -> BackupMeta:
    """Take a backup: physical (full or incremental) or a logical export."""
    since = time.monotonic()
    settings = await archive_settings(ctx.dsn)
    backups = ctx.repo.all()
    parent: BackupMeta | None = None
    kind: Kind = "logical" if logical else "full"
    if not logical:
        problems = settings.problems(ctx.repo)
        if problems:
            raise BackupError("cannot take a physical backup: " + "; ".join(problems))
        if incremental:
            if not settings.incremental_possible:
                raise BackupError(
                    "incremental backups need PostgreSQL 17 or later with summarize_wal = on "
                    f"(this server: {settings.server_version // 10000}, summarize_wal = "
                    f"{settings.summarize_wal or 'unavailable'}); take a full backup"
                )
            physical = [b for b in backups if b.good and b.kind != "logical"]
            if not physical:
                raise BackupError("an incremental backup needs a complete earlier backup")
            parent = physical[-1]
            kind = "incremental"
    ctx.repo.ensure()
    started = datetime.now(UTC)
    meta = BackupMeta(
        id=new_backup_id(started),
        kind=kind,
        status="running",
        started_at=started,
        database=settings.database,
        server_version=settings.server_version,
        parent=parent.id if parent else None,
        pid=os.getpid(),
        actor=ctx.actor,
    )
    try:
        async with _locked(ctx.repo, exclusive=False):
            ctx.repo.save(meta)
            if logical:
                meta = await _logical_export(ctx, meta)
            else:
                meta = await _base_backup(
                    ctx, meta, parent, since, ranged=settings.incremental_possible
                )
    except BaseException as exc:
        failed = replace(meta, status="failed", finished_at=datetime.now(UTC), error=str(exc))
        with contextlib.suppress(Exception):
            ctx.repo.save(failed)
            await _record(ctx, failed, "backup", "failed", started, {"error": str(exc)})
        raise
    ctx.repo.save(meta)
    await _record(ctx, meta, "backup", "ok", started, {"size_bytes": meta.size_bytes})
    return meta


async def _base_backup(
    ctx: BackupContext,
    meta: BackupMeta,
    parent: BackupMeta | None,
    since: float,
    *,
    ranged: bool = False,
) -> BackupMeta:
    target = ctx.repo.backup_path(meta)
    dsn, env = psql_target(ctx.dsn)
    args = [
        "-D",
        str(target),
        "-d",
        dsn,
        "-Fp",
        "-X",
        "stream",
        "-c",
        "fast",
        # CRC32C, pg_basebackup's default: catches corruption; a tamperer could rewrite the
        # manifest as easily as a SHA-256 in it
        "--manifest-checksums=CRC32C",
        "--no-password",
        # flushed to disk as soon as the copy ends, beside the hashing (never marked complete
        # before)
        "--no-sync",
        "-l",
        f"wedsync {meta.id}",
    ]
    if parent is not None:
        args.append(f"--incremental={ctx.repo.backup_path(parent) / 'backup_manifest'}")
    clock = time.monotonic()
    prepare_s = clock - since
    # WAL summaries tell which blocks were written since the previous backup's fingerprint
    previous = previous_layout(ctx.repo, meta.database) if ranged else None
    early = await _copy_beside_fingerprint(
        ctx, args, env, target, ranged=ranged, previous=previous[1] if previous else None
    )
    copy_s = time.monotonic() - clock
    manifest = json.loads((target / "backup_manifest").read_text())
    wal_ranges = manifest.get("WAL-Ranges") or [{}]
    start_lsn, end_lsn = wal_ranges[0].get("Start-LSN"), wal_ranges[-1].get("End-LSN")
    timeline = wal_ranges[0].get("Timeline")
    point = f"wedsync-{meta.id}"
    async with _snapshot(ctx.dsn) as s:
        # the restore point in the statement that takes the snapshot, while writers are held
        # off for those milliseconds: the fingerprint then reads exactly what a restore to
        # that point holds, however long it takes
        clock = time.monotonic()
        async with _writers_paused(ctx.dsn) as paused:
            _lsn, snapshot = (await s.fetch_tuples(Q["restore_point"].sql, (point,)))[0]
        pause_s = time.monotonic() - clock
        clock = time.monotonic()
        by_range = early.ranged
        if early.prints is not None and early.snapshot == snapshot:
            # nothing committed or aborted since the hashing beside the copy began: the
            # restore point's snapshot sees exactly the rows it read
            prints, read = early.prints, "beside the copy"
        else:
            # whole tables, in parallel workers now that the copy is done (a TID range scan
            # has none): no layout, and the next backup takes over from an older one
            by_range = None
            prints, read = await fingerprint(s), "after the copy"
        fingerprint_s = time.monotonic() - clock
        start_wal = await s.fetch_val(Q["walfile_name"].sql, (start_lsn,)) if start_lsn else None
    size = await asyncio.to_thread(_size, target)
    timings = {
        # the archive checks and the repository before the copy
        "prepare_s": round(prepare_s, 3),
        # pg_basebackup and the flush of its files, with the hashing beside them
        "copy_s": round(copy_s, 3),
        # the restore point with writers paused
        "pause_s": round(pause_s, 3),
        # the hashing after the copy (none when the rows read beside it are still the rows)
        "fingerprint_s": round(fingerprint_s, 3),
    }
    return replace(
        meta,
        status="complete",
        finished_at=datetime.now(UTC),
        start_lsn=start_lsn,
        end_lsn=end_lsn,
        timeline=timeline,
        start_wal=start_wal,
        restore_point=point,
        fingerprint=prints,
        size_bytes=size,
        details={
            **meta.details,
            "fingerprint_method": FINGERPRINT_COLUMNS,
            "fingerprint_read": read,
            # the parts of copy_s, side by side
            "beside_copy": {
                "pg_basebackup_s": round(early.copy_s, 3),
                "flush_s": round(early.flush_s, 3),
                # None: stopped, as the server changed during the copy
                "fingerprint_s": None if early.seconds is None else round(early.seconds, 3),
                # the hashing ran at the lowest CPU priority (a server on this machine)
                "fingerprint_niced": early.niced,
            },
            "timings": timings,
            **({} if paused.ok else {"fingerprint_window": paused.reason}),
            **_range_details(by_range, previous[0] if previous else None),
        },
    )


# how often the hashing beside the copy checks that nothing has committed since it began
WATCH_INTERVAL = 0.25


def _range_details(by_range: RangedPrints | None, previous_id: str | None) -> dict[str, Any]:
    """What a backup records of a fingerprint read by range."""
    if by_range is None:
        return {}
    out: dict[str, Any] = {
        "fingerprint_ranges": {
            "read": by_range.ranges_read,
            "taken_over": by_range.ranges_reused,
            "blocks_taken_over": by_range.blocks_reused,
            "from": previous_id if by_range.ranges_reused else None,
        }
    }
    if by_range.layout is not None:
        out["fingerprint_layout"] = by_range.layout.to_dict()
    return out


@dataclass(frozen=True)
class _Early:
    """The copy's times, and the fingerprint read beside it in a snapshot taken as it began
    (None when a transaction committed or aborted meanwhile: those hashes could not stand)."""

    snapshot: str
    prints: tuple[TableFingerprint, ...] | None
    # None when stopped
    seconds: float | None
    copy_s: float
    flush_s: float
    niced: bool = False
    # the same read by range (on a server with WAL summaries)
    ranged: RangedPrints | None = None


async def _copy_beside_fingerprint(
    ctx: BackupContext,
    args: list[str],
    env: dict[str, str],
    target: Path,
    *,
    ranged: bool = False,
    previous: ranges.Layout | None = None,
) -> _Early:
    """Run pg_basebackup, then flush its files to disk, while the fingerprint is read in a
    snapshot taken as the copy starts.

    A restore cannot stop before the copy's end, so these hashes stand for the backup only if
    the restore point's snapshot, taken after the copy, equals this one: then no transaction
    committed or aborted in between, and both see the same rows (the caller compares). So the
    hashing stops as soon as another connection's snapshot differs from it (checked every
    WATCH_INTERVAL): on a busy server it leaves the cores to the copy within that time, and
    the caller reads the fingerprint after the copy. The hashing is reads only; a failed copy
    stops it at once."""
    parts: dict[str, float] = {}
    niced: list[bool] = []

    def copy_and_flush() -> None:
        started = time.monotonic()
        ctx.tools.run("pg_basebackup", args, env=env)
        parts["copy_s"] = time.monotonic() - started
        started = time.monotonic()
        _fsync_tree(target)
        parts["flush_s"] = time.monotonic() - started

    by_range: list[RangedPrints] = []
    async with _positioned_snapshot(ctx.dsn, position=ranged) as (s, position):
        snapshot, high = (str(v) for v in (await s.fetch_tuples(Q["snapshot_position"].sql))[0])
        clock = time.monotonic()

        async def hash_rows() -> tuple[TableFingerprint, ...]:
            # one process: the copy's reads, sends and writes need the other cores (measured
            # on two cores, parallel workers beside it slowed the copy more than they gained)
            await s.execute(Q["serial_reads"].sql)
            niced.append(await _lowest_cpu_priority(s))
            if position is None:
                prints = await fingerprint(s)
            else:
                # (off the copy's path: these hashes stand only if nothing completes before
                # the restore point, which would also show a transaction running now)
                quiet = await nothing_in_progress(s, ctx.dsn, snapshot)
                # the copy's checkpoint ends a WAL summary past this snapshot
                written = (
                    await written_since(ctx.dsn, previous.position, high)
                    if previous is not None
                    else None
                )
                result = await fingerprint_by_range(
                    s, position, quiet, previous=previous, written=written
                )
                by_range.append(result)
                prints = result.prints
            parts["fingerprint_s"] = time.monotonic() - clock
            return prints

        async def changed() -> None:
            async with direct.connect(ctx.dsn, application_name="wedsync:backup watch") as w:
                while True:
                    if str(await w.fetch_val(Q["current_snapshot"].sql)) != snapshot:
                        return
                    await asyncio.sleep(WATCH_INTERVAL)

        copying = asyncio.create_task(asyncio.to_thread(copy_and_flush))
        hashing = asyncio.create_task(hash_rows())
        # done when the server has changed (or the watch failed: then it cannot tell)
        watching = asyncio.create_task(changed())
        tasks = (copying, hashing, watching)
        try:
            while not (copying.done() and hashing.done()):
                running = {t for t in tasks if not t.done()}
                await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                failed = copying.exception() if copying.done() else None
                if failed is not None:
                    raise failed
                if watching.done() and not hashing.done():
                    hashing.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await hashing
        finally:
            for task in (hashing, watching):
                if not task.done():
                    task.cancel()
            # a copy is never left running behind an error
            await asyncio.wait(tasks)
            if not watching.cancelled() and watching.exception() is not None:
                log.debug("backup watch: %s", watching.exception())
        prints = None if hashing.cancelled() else hashing.result()
    return _Early(
        snapshot,
        prints,
        parts.get("fingerprint_s"),
        parts["copy_s"],
        parts["flush_s"],
        niced=any(niced),
        ranged=by_range[0] if by_range and prints is not None else None,
    )


async def _lowest_cpu_priority(s: Session) -> bool:
    """Run this session's server process at the lowest CPU priority, when the server runs on
    this machine and its process may be reniced from here: the copy beside it then never
    waits for the cores, the hashing takes what the copy leaves. False when not possible."""
    row = (await s.fetch_tuples(Q["backend_process"].sql))[0]
    return row[1] is not None and renice_server_process(int(row[0]), str(row[1]))


def renice_server_process(pid: int, data_directory: str) -> bool:
    """Lowest CPU priority for process ``pid`` if it is a process of the server whose data
    directory is ``data_directory`` (a server process's working directory) on this machine."""
    try:
        if os.path.realpath(os.readlink(f"/proc/{pid}/cwd")) != os.path.realpath(data_directory):
            return False
        os.setpriority(os.PRIO_PROCESS, pid, 19)
    except OSError:
        return False
    return True


async def _logical_export(ctx: BackupContext, meta: BackupMeta) -> BackupMeta:
    target = ctx.repo.backup_path(meta)
    dsn, env = psql_target(ctx.dsn)
    async with _snapshot(ctx.dsn) as s:
        snapshot = await s.fetch_val(Q["export_snapshot"].sql)
        prints = await fingerprint(s)
        # the export runs while the snapshot's transaction stays open: the same rows
        await asyncio.to_thread(
            ctx.tools.run,
            "pg_dump",
            ["-Fc", "-f", str(target), "--snapshot", str(snapshot), "--no-password", "-d", dsn],
            env=env,
        )
    os.chmod(target, 0o600)
    return replace(
        meta,
        status="complete",
        finished_at=datetime.now(UTC),
        fingerprint=prints,
        size_bytes=target.stat().st_size,
        details={**meta.details, "fingerprint_method": FINGERPRINT_COLUMNS},
    )


def _method_of(meta: BackupMeta) -> str:
    """How the backup's fingerprint was hashed (backups recorded before the method was
    stored hashed the rows' text)."""
    return str(meta.details.get("fingerprint_method", FINGERPRINT_TEXT))


# Writers are held off with SHARE locks (readers are not): each try waits this long for
# running writers (long enough that an autovacuum in the way is cancelled, after
# deadlock_timeout), at most this many times.
PAUSE_LOCK_TIMEOUT = "1500ms"
PAUSE_TRIES = 4


@dataclass
class _Pause:
    ok: bool = False
    reason: str = ""


@contextlib.asynccontextmanager
async def _writers_paused(dsn: str) -> AsyncIterator[_Pause]:
    """Hold off every writer of the fingerprinted tables while the body runs (a snapshot
    and a restore point taken in one statement see the same commits only if none lands
    between them). When the locks cannot be had, the body runs anyway and the reason is
    returned: a commit in that instant would show as a difference in verify."""
    pause = _Pause()
    async with direct.connect(dsn, application_name="wedsync:backup pause") as s:
        tables = [
            ident(schema, name) for schema, name, _ in await s.fetch_tuples(Q["user_tables"].sql)
        ]
        statement = compose(Q["pause_writers"].sql, tables=joined(tables))
        for attempt in range(PAUSE_TRIES):
            await s.execute("begin")
            try:
                await s.execute(f"set local lock_timeout = '{PAUSE_LOCK_TIMEOUT}'")
                if tables:
                    await s.execute(statement)
                pause.ok = True
                break
            except QueryError as exc:
                await s.execute("rollback")
                pause.reason = (
                    f"writers could not be paused ({exc}); a commit in the instant between "
                    "the snapshot and the restore point would show as a difference in verify"
                )
                await asyncio.sleep(0.2 * (attempt + 1))
        try:
            yield pause
        finally:
            if pause.ok:
                await s.execute("commit")
    if not pause.ok:
        log.warning("backup fingerprint: %s", pause.reason)


# fsyncs in flight at once: the file system commits them together (one after the other, a
# backup of a thousand small files waits for a thousand journal commits)
FSYNC_THREADS = 8


def _fsync_tree(root: Path) -> None:
    """Flush every file and directory of a copied backup to disk (what pg_basebackup does
    itself without --no-sync), several at a time."""
    files: list[str] = []
    directories: list[str] = []
    for directory, _dirs, names in os.walk(root):
        files.extend(os.path.join(directory, name) for name in names)
        directories.append(directory)
    with ThreadPoolExecutor(FSYNC_THREADS) as pool:
        list(pool.map(_fsync, files))
        # the entries once the files are down
        list(pool.map(_fsync, directories))


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# --- restore ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Restored:
    """A server started from a backup: where, on which port, and up to what."""

    data_dir: Path
    port: int
    backup: BackupMeta
    target: str
    pg_ctl: Path | None = None
    run_as: str | None = None

    @property
    def stop_command(self) -> str:
        """How to stop it (as the account it runs as)."""
        command = f"{self.pg_ctl or 'pg_ctl'} -D {self.data_dir} stop -m fast"
        return f"su -s /bin/sh {self.run_as} -c '{command}'" if self.run_as else command

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.backup.database}"


async def restore(
    ctx: BackupContext,
    *,
    into: Path,
    to: datetime | None = None,
    restore_point: str | None = None,
    backup: BackupMeta | None = None,
    port: int | None = None,
    start_timeout: float = 300.0,
) -> Restored:
    """Rebuild a data directory from the backup (chain) before ``to`` and the WAL archive,
    then start it on 127.0.0.1 and wait until it has recovered and been promoted.

    ``to`` None (and no restore point): replay every archived segment (latest)."""
    async with _locked(ctx.repo, exclusive=False):
        return await _restore(ctx, into, to, restore_point, backup, port, start_timeout)


async def _restore(
    ctx: BackupContext,
    into: Path,
    to: datetime | None,
    restore_point: str | None,
    backup: BackupMeta | None,
    port: int | None,
    start_timeout: float,
) -> Restored:
    backups = ctx.repo.all()
    chosen = backup or backup_for(backups, to)
    links = chain(backups, chosen)
    await _archive_current_wal(ctx)
    port = port or free_port()
    data_dir, target = await asyncio.to_thread(
        _build_data_dir, ctx, into, links, to, restore_point, port
    )
    await asyncio.to_thread(
        ctx.tools.run,
        "pg_ctl",
        [
            "-D",
            str(data_dir),
            "-l",
            str(data_dir / "restore.log"),
            "-w",
            "-t",
            str(int(start_timeout)),
            "start",
        ],
        as_server=True,
        timeout=start_timeout + 10,
    )
    restored = Restored(data_dir, port, chosen, target, ctx.tools.path("pg_ctl"), ctx.tools.run_as)
    try:
        await _wait_promoted(restored, start_timeout)
    except BaseException:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(stop_restored, ctx, restored)
        raise
    return restored


def _build_data_dir(
    ctx: BackupContext,
    into: Path,
    links: list[BackupMeta],
    to: datetime | None,
    restore_point: str | None,
    port: int,
) -> tuple[Path, str]:
    """The data directory of a restore: the backup (or the combined chain) and the recovery
    settings that replay the archive up to the target (blocking file work)."""
    into = into.expanduser().absolute()
    if into.exists() and any(into.iterdir()):
        raise BackupError(f"{into} is not empty: restore into a new or empty directory")
    chosen = links[-1]
    into.parent.mkdir(parents=True, exist_ok=True)
    if into.exists():
        into.rmdir()
    if len(links) == 1:
        shutil.copytree(ctx.repo.backup_path(chosen), into, symlinks=True)
    else:
        ctx.tools.run(
            "pg_combinebackup",
            ["-o", str(into), *(str(ctx.repo.backup_path(b)) for b in links)],
        )
    if restore_point is not None:
        target_conf = [f"recovery_target_name = '{restore_point}'"]
        target = f"restore point {restore_point}"
    elif to is not None:
        target_conf = [f"recovery_target_time = '{to.isoformat()}'"]
        target = to.isoformat()
    else:
        target_conf, target = [], "latest"
    conf = [
        "# written by wedsync-db backup restore",
        f'restore_command = \'cp "{ctx.repo.wal_dir}/%f" "%p"\'',
        *target_conf,
        "recovery_target_action = 'promote'",
        f"port = {port}",
        "listen_addresses = '127.0.0.1'",
        f"unix_socket_directories = '{into}'",
        # a restored copy must never write into the live server's archive
        "archive_mode = 'off'",
    ]
    if chosen.server_version >= 170000:
        conf.append("summarize_wal = 'off'")
    with open(into / "postgresql.auto.conf", "a") as fh:
        fh.write("\n" + "\n".join(conf) + "\n")
    (into / "recovery.signal").touch()
    for stale in ("postmaster.pid", "postmaster.opts"):
        (into / stale).unlink(missing_ok=True)
    _own(into, ctx.tools.run_as)
    return into, target


def stop_restored(ctx: BackupContext, restored: Restored) -> None:
    """Stop a server started by :func:`restore` (fast shutdown)."""
    ctx.tools.run(
        "pg_ctl",
        ["-D", str(restored.data_dir), "-m", "fast", "-w", "-t", "60", "stop"],
        as_server=True,
        timeout=70,
    )


async def _wait_promoted(restored: Restored, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "not yet accepting connections"
    while time.monotonic() < deadline:
        try:
            async with direct.connect(restored.dsn, connect_timeout=5) as s:
                if not await s.fetch_val(Q["in_recovery"].sql):
                    return
                last = "still replaying WAL"
        except WedsyncDBError as exc:
            last = str(exc)
        await asyncio.sleep(0.2)
    log = restored.data_dir / "restore.log"
    tail = log.read_text(errors="replace").splitlines()[-15:] if log.exists() else []
    raise BackupError(
        f"the restored server did not finish recovery within {timeout:g}s ({last})\n"
        + "\n".join(tail)
    )


def _log_tail(path: Path) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-15:]
    except OSError:
        return []


async def _archive_current_wal(ctx: BackupContext) -> None:
    """Close and archive the live server's current segment, so a restore sees the newest WAL
    (skipped when the live server cannot be reached: the archive is what it is)."""
    try:
        async with direct.connect(ctx.dsn, connect_timeout=5) as s:
            segment = await s.fetch_val(Q["switch_wal"].sql)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                row = (await s.fetch_dicts(Q["archiver"].sql))[0]
                last = row["last_archived_wal"]
                if last is not None and last >= segment:
                    return
                await asyncio.sleep(0.2)
            log.warning(
                "WAL segment %s was not archived within 30 s: a restore to the latest point "
                "ends before it (is the archiver failing? `wedsync-db inspect backups`)",
                segment,
            )
    except WedsyncDBError:
        return


def _own(path: Path, run_as: str | None) -> None:
    path.chmod(DIR_MODE)
    if run_as is None:
        return
    import pwd

    entry = pwd.getpwnam(run_as)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            with contextlib.suppress(FileNotFoundError):
                os.chown(
                    os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False
                )


@contextlib.asynccontextmanager
async def _locked(repo: Repository, *, exclusive: bool) -> AsyncIterator[None]:
    """The repository lock, waited for off the event loop."""
    held = repo.lock(exclusive=exclusive)
    await asyncio.to_thread(held.__enter__)
    try:
        yield
    finally:
        held.__exit__(None, None, None)


# --- verify -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verification:
    """The outcome of one verification."""

    backup: BackupMeta
    ok: bool
    steps: tuple[str, ...]
    problems: tuple[str, ...]
    duration_s: float
    rpo_seconds: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "backup": self.backup.id,
            "ok": self.ok,
            "steps": list(self.steps),
            "problems": list(self.problems),
            "duration_s": round(self.duration_s, 3),
            "rpo_seconds": self.rpo_seconds,
        }


async def verify(ctx: BackupContext, backup_id: str) -> Verification:
    """Check a backup end to end: manifests, a restore into a scratch directory on a free
    loopback port, pg_amcheck, and the fingerprint; recorded in ops.backup_events. The scratch
    server is stopped and its directory removed whatever happens."""
    async with _locked(ctx.repo, exclusive=False):
        return await _verify(ctx, backup_id)


async def _verify(ctx: BackupContext, backup_id: str) -> Verification:
    meta = ctx.repo.load(backup_id)
    if not meta.good:
        raise BackupError(f"backup {meta.id} is {meta.status}: there is nothing to verify")
    started_at = datetime.now(UTC)
    clock = time.monotonic()
    steps: list[str] = []
    problems: list[str] = []
    scratch = await asyncio.to_thread(_scratch_dir, meta.id, ctx.tools.run_as)
    restored: Restored | None = None
    try:
        if meta.kind == "logical":
            got = await _verify_logical(ctx, meta, scratch, steps)
        else:
            for link in chain(ctx.repo.all(), meta):
                path = ctx.repo.backup_path(link)
                try:
                    await asyncio.to_thread(
                        ctx.tools.run, "pg_verifybackup", ["-n", "-q", str(path)]
                    )
                except BackupError as exc:
                    problems.append(f"{link.id}: {exc}")
            steps.append("pg_verifybackup: manifests and checksums")
            if problems:
                raise BackupVerificationFailed("; ".join(problems))
            restored = await restore(
                ctx, into=scratch / "data", restore_point=meta.restore_point, backup=meta
            )
            steps.append(f"restored to {restored.target} on 127.0.0.1:{restored.port}")
            await asyncio.to_thread(
                ctx.tools.run,
                "pg_amcheck",
                [
                    "--all",
                    "--install-missing",
                    "--no-password",
                    "--host=127.0.0.1",
                    f"--port={restored.port}",
                    "--username=postgres",
                ],
            )
            steps.append("pg_amcheck: heap and B-tree indexes of every database")
            async with _snapshot(restored.dsn) as s:
                got = await fingerprint(s, _method_of(meta))
        differences = fingerprint_differences(meta.fingerprint, got)
        steps.append(f"fingerprint: {len(got)} tables compared")
        problems.extend(differences)
    except BackupVerificationFailed:
        pass
    except BackupError as exc:
        problems.append(str(exc))
    finally:
        if restored is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(stop_restored, ctx, restored)
        await asyncio.to_thread(_remove_scratch, scratch)
    rpo = await _rpo_seconds(ctx)
    result = Verification(
        meta, not problems, tuple(steps), tuple(problems), time.monotonic() - clock, rpo
    )
    details = result.to_dict()
    ctx.repo.save(
        replace(
            meta,
            details={
                **meta.details,
                "last_verification": {
                    "at": datetime.now(UTC).isoformat(),
                    "ok": result.ok,
                    "problems": list(problems),
                },
            },
        )
    )
    await _record(ctx, meta, "verify", "ok" if result.ok else "failed", started_at, details, rpo)
    return result


async def _verify_logical(
    ctx: BackupContext, meta: BackupMeta, scratch: Path, steps: list[str]
) -> tuple[TableFingerprint, ...]:
    """Restore a logical export into a scratch embedded server and fingerprint it."""
    from wedsync_db.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(scratch / "server", port=free_port(), fast=True)
    try:
        status, _ = await asyncio.to_thread(server.ensure_running)
        admin = status.dsn("postgres")
        async with direct.connect(admin) as s:
            for role in STANDARD_ROLES:
                await s.execute(
                    "do $$ begin create role " + role + " nologin; exception when "
                    "duplicate_object then null; end $$"
                )
            await s.execute(f'create database "{meta.database}_verify"')
        target = status.dsn(f"{meta.database}_verify")
        from wedsync_db.embedded import bin_dir

        embedded_tools = Toolbox(bin_dir(), run_as=None)
        await asyncio.to_thread(
            embedded_tools.run,
            "pg_restore",
            ["--no-owner", "--exit-on-error", "-d", target, str(ctx.repo.backup_path(meta))],
        )
        steps.append("pg_restore into a scratch server")
        async with _snapshot(target) as s:
            return await fingerprint(s, _method_of(meta))
    finally:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(server.stop)


def _scratch_dir(backup_id: str, run_as: str | None) -> Path:
    path = Path(tempfile.mkdtemp(prefix=f"wedsync-verify-{backup_id}-"))
    if run_as is not None:
        # the scratch server's account must reach its data directory inside
        path.chmod(0o711)
    return path


def _remove_scratch(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


async def _rpo_seconds(ctx: BackupContext) -> float | None:
    """Seconds since the newest WAL segment was archived: what a failure now would lose."""
    try:
        async with direct.connect(ctx.dsn, connect_timeout=5) as s:
            row = (await s.fetch_dicts(Q["archiver"].sql))[0]
    except WedsyncDBError:
        return None
    last = row.get("last_archived_time")
    return None if last is None else max(0.0, (datetime.now(UTC) - last).total_seconds())


async def _record(
    ctx: BackupContext,
    meta: BackupMeta,
    action: str,
    status: str,
    started_at: datetime,
    details: dict[str, Any],
    rpo: float | None = None,
) -> None:
    """Tell the database (best effort: a backup of an unreachable database is still a backup)."""
    with contextlib.suppress(WedsyncDBError):
        async with direct.connect(ctx.dsn, connect_timeout=5) as s:
            if not await s.fetch_val(Q["events_table_exists"].sql):
                return
            await s.execute(
                Q["record_event"].sql,
                {
                    "backup_id": meta.id,
                    "action": action,
                    "status": status,
                    "kind": meta.kind,
                    "started_at": started_at,
                    "finished_at": datetime.now(UTC),
                    "actor": ctx.actor,
                    "rpo_seconds": rpo,
                    "details": json.dumps(details, default=str),
                },
            )


# --- prune ------------------------------------------------------------------------------------
async def prune(ctx: BackupContext, *, retention_days: int, dry_run: bool = False) -> PrunePlan:
    """Remove backups older than the retention window that no kept point in time needs, and
    the WAL segments before the oldest kept backup (pg_archivecleanup)."""
    if dry_run:
        return prune_plan(
            ctx.repo.all(),
            ctx.repo.wal_segments(),
            now=datetime.now(UTC),
            retention_days=retention_days,
        )
    async with _locked(ctx.repo, exclusive=True):
        return await _prune(ctx, retention_days)


async def _prune(ctx: BackupContext, retention_days: int) -> PrunePlan:
    plan = prune_plan(
        ctx.repo.all(),
        ctx.repo.wal_segments(),
        now=datetime.now(UTC),
        retention_days=retention_days,
    )
    for meta in plan.remove:
        await asyncio.to_thread(ctx.repo.remove, meta)
    if plan.oldest_wal_needed is not None and plan.wal_remove:
        await asyncio.to_thread(
            ctx.tools.run,
            "pg_archivecleanup",
            [str(ctx.repo.wal_dir), plan.oldest_wal_needed],
        )
    return plan


__all__ = [
    "ArchiveSettings",
    "BackupContext",
    "Restored",
    "Verification",
    "archive_settings",
    "create",
    "default_actor",
    "prune",
    "restore",
    "setup",
    "stop_restored",
    "toolbox_for",
    "verify",
]
