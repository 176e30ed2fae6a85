"""Bulk import of clients vs a raw COPY of the same rows vs psycopg executemany of the inserts.

One CSV file of N clients (names, partner, email, wedding date, venue, status, external ref,
notes), interleaved round by round in one process, each into a fresh target:

* import       `run_import` as an organization's owner: the file read and checked, COPYed into
               the staging area, validated in SQL, written into `clients` by INSERT … SELECT in
               the user's scope (RLS, the version trigger, the plan counters, the indexes);
* copy         the same file's bytes through `COPY … FROM STDIN (FORMAT csv, HEADER)` into a
               plain table without indexes, as the superuser: the baseline;
* executemany  psycopg `executemany` of one INSERT per row into `clients`, in one user scope
               (what application code writing rows one by one does). It is timed on a sample of
               the rows (--sample) and its rate scaled to N.

Also: "200 clients in X s" (a 200-row file through the import path, the same run), and the
import's peak RSS (sampled every 5 ms; growth over the RSS when the import started).
`--rss-rows 1000000` additionally imports a file of that many rows and reports its peak RSS.
Last line: `import/copy ratio: X.XX  import/executemany ratio: Y.YY` (targets ≥ 0.5, ≥ 20).
"""

from __future__ import annotations

import asyncio
import csv
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import psycopg
from psycopg import sql

from _common import benchmark_database, migrate, sizes
from wedsync_db.db.client import Database, user_dsn_for
from wedsync_db.imports.service import run_import

HEADER = "Name,Partner 2,Email,Wedding Date,Venue,Status,External ID,Notes\n"
COLUMNS = (
    "partner1_name",
    "partner2_name",
    "email",
    "wedding_date",
    "venue",
    "status",
    "external_ref",
    "notes",
)
STATUSES = ("lead", "booked", "completed", "cancelled")


def row(i: int) -> tuple[str, ...]:
    return (
        f"Client {i} Smith",
        f"Partner {i} Jones" if i % 3 else "",
        f"client{i}@example.com",
        f"2027-{1 + i % 12:02d}-{1 + i % 28:02d}",
        f"Venue {i % 500}",
        STATUSES[i % 4],
        f"CRM-{i:07d}",
        "" if i % 5 else f"note {i}, with a comma",
    )


def write_file(path: Path, rows: int) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(HEADER)
        out = csv.writer(f, lineterminator="\n")
        for i in range(rows):
            out.writerow(row(i))
    return path


@contextmanager
def peak_rss() -> Iterator[list[int]]:
    """Sample this process's RSS every 5 ms; yields [start, peak] (bytes), filled on exit."""
    process = psutil.Process()
    result = [process.memory_info().rss, 0]
    stop = threading.Event()
    peak = result[0]

    def sample() -> None:
        nonlocal peak
        while not stop.wait(0.005):
            peak = max(peak, process.memory_info().rss)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join()
        result[1] = max(peak, process.memory_info().rss)


async def new_organization(db: Database) -> tuple[uuid.UUID, uuid.UUID]:
    """An enterprise organization (no plan limit) and its owner."""
    org, owner = uuid.uuid4(), uuid.uuid4()
    async with db.service(reason="benchmark setup") as s:
        await s.execute(
            "insert into organizations (id, name, slug, tier) values (%s, 'Import benchmark',"
            " %s, 'enterprise')",
            (org, f"import-bench-{org.hex[:12]}"),
        )
        await s.execute("insert into organization_members values (%s, %s, 'owner')", (org, owner))
    return org, owner


async def timed_import(db: Database, path: Path, expected: int) -> tuple[float, int]:
    """Seconds to import the file into a fresh organization, and the peak RSS growth."""
    org, owner = await new_organization(db)
    claims = {"sub": str(owner), "aud": "vendor"}
    with path.open("rb") as binary, peak_rss() as rss:
        t0 = time.perf_counter()
        report = await run_import(db, claims, "clients", org, binary)
        elapsed = time.perf_counter() - t0
    assert report.status == "imported" and report.inserted == expected, report.message
    return elapsed, rss[1] - rss[0]


async def timed_copy(
    db: Database, dsn: str, path: Path, expected: int
) -> tuple[float, float, float]:
    """Seconds for the raw COPY into a plain table, then for INSERT … SELECT of those rows
    into `clients` as the superuser (the table's own cost: indexes, foreign key, triggers;
    no RLS, no validation): the floor any import into clients stands on; then into a copy of
    clients with its indexes only."""
    table = sql.Identifier(f"bench_copy_{uuid.uuid4().hex[:8]}")
    names = sql.SQL(", ").join(sql.Identifier(c) for c in COLUMNS)
    org, _ = await new_organization(db)
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        plain = sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(c)) for c in COLUMNS)
        await conn.execute(sql.SQL("create table {} ({})").format(table, plain))
        try:
            t0 = time.perf_counter()
            copy_sql = sql.SQL("copy {} ({}) from stdin (format csv, header)").format(table, names)
            async with conn.cursor() as cur, cur.copy(copy_sql) as copy:
                with path.open("rb") as f:
                    while block := f.read(1 << 20):
                        await copy.write(block)
            copied = time.perf_counter() - t0
            cur = await conn.execute(sql.SQL("select count(*) from {}").format(table))
            counted = await cur.fetchone()
            assert counted is not None and counted[0] == expected
            t0 = time.perf_counter()
            await conn.execute(
                sql.SQL(
                    "insert into clients (organization_id, {names}) select %s, partner1_name,"
                    " nullif(partner2_name, ''), email, wedding_date::date, venue, status,"
                    " external_ref, nullif(notes, '') from {table}"
                ).format(names=names, table=table),
                [org],
            )
            floor = time.perf_counter() - t0
            # the same rows into a table with clients' columns, defaults, checks and indexes
            # but no trigger, foreign key or policy: what the indexes alone cost
            clone = sql.Identifier(f"bench_clone_{uuid.uuid4().hex[:8]}")
            await conn.execute(
                sql.SQL(
                    "create table {} (like clients including defaults including constraints"
                    " including indexes)"
                ).format(clone)
            )
            try:
                t0 = time.perf_counter()
                await conn.execute(
                    sql.SQL(
                        "insert into {clone} (organization_id, {names}) select %s, partner1_name,"
                        " nullif(partner2_name, ''), email, wedding_date::date, venue, status,"
                        " external_ref, nullif(notes, '') from {table}"
                    ).format(clone=clone, names=names, table=table),
                    [org],
                )
                indexes = time.perf_counter() - t0
            finally:
                await conn.execute(sql.SQL("drop table {}").format(clone))
        finally:
            await conn.execute(sql.SQL("drop table {}").format(table))
    return copied, floor, indexes


async def timed_executemany(db: Database, rows: int) -> float:
    """Seconds for executemany of ``rows`` inserts into clients in one user scope."""
    org, owner = await new_organization(db)
    values = [(org, *(v or None for v in row(i))) for i in range(rows)]
    insert = sql.SQL("insert into clients (organization_id, {}) values ({})").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in COLUMNS),
        sql.SQL(", ").join(sql.Placeholder() * (len(COLUMNS) + 1)),
    )
    t0 = time.perf_counter()
    claims = {"sub": str(owner), "aud": "vendor"}
    async with db.as_user(claims) as s, s.connection.cursor() as cur:
        await cur.executemany(insert, values)
    return time.perf_counter() - t0


async def cleanup(db: Database) -> None:
    async with db.service(reason="benchmark cleanup") as s:
        await s.execute("delete from organizations where slug like 'import-bench-%%'")


async def main(rows: int, sample: int, rounds: int, rss_rows: int) -> None:
    with benchmark_database() as dsn, tempfile.TemporaryDirectory() as tmp:
        await migrate(dsn)
        big = write_file(Path(tmp) / "clients.csv", rows)
        small = write_file(Path(tmp) / "clients-200.csv", 200)
        db = Database(
            user_dsn=user_dsn_for(dsn),
            service_dsn=dsn,
            user_pool_size=2,
            service_pool_size=2,
            query_timeout=600.0,
        )
        await db.open()
        times: dict[str, list[float]] = {
            "import": [],
            "copy": [],
            "floor": [],
            "indexes": [],
            "executemany": [],
            "200": [],
        }
        growth: list[int] = []
        try:
            await timed_import(db, small, 200)  # warm-up: statements prepared, pools full
            await timed_copy(db, dsn, small, 200)
            for r in range(rounds):
                steps = ["import", "copy", "executemany"]
                for name in steps[r % 3 :] + steps[: r % 3]:
                    if name == "import":
                        seconds, grew = await timed_import(db, big, rows)
                        times["import"].append(seconds)
                        growth.append(grew)
                    elif name == "copy":
                        copied, floor, indexes = await timed_copy(db, dsn, big, rows)
                        times["copy"].append(copied)
                        times["floor"].append(floor)
                        times["indexes"].append(indexes)
                    else:
                        times["executemany"].append(await timed_executemany(db, sample))
                times["200"].append((await timed_import(db, small, 200))[0])
                await cleanup(db)
            big_rss: tuple[int, float, int] | None = None
            if rss_rows:
                million = write_file(Path(tmp) / "clients-many.csv", rss_rows)
                seconds, grew = await timed_import(db, million, rss_rows)
                big_rss = (rss_rows, seconds, grew)
                million.unlink()
                await cleanup(db)
        finally:
            await cleanup(db)
            await db.close()

    median = {name: statistics.median(values) for name, values in times.items()}
    import_rate = rows / median["import"]
    copy_rate = rows / median["copy"]
    exec_rate = sample / median["executemany"]
    mib = 1024 * 1024
    print(f"rows: {rows:,} in {rounds} interleaved rounds; executemany timed on {sample:,} rows")
    print(f"import       {import_rate:>10,.0f} rows/s  (median {median['import']:.2f} s)")
    print(f"copy         {copy_rate:>10,.0f} rows/s  (median {median['copy']:.2f} s)")
    print(
        f"executemany  {exec_rate:>10,.0f} rows/s  (median {median['executemany']:.2f} s for "
        f"{sample:,} rows; {rows / exec_rate:.1f} s scaled to {rows:,})"
    )
    print(
        f"clients floor {rows / median['floor']:>9,.0f} rows/s  (INSERT … SELECT from the plain "
        f"table as superuser, median {median['floor']:.2f} s; not in the ratios)"
    )
    print(
        f"clients' indexes {rows / median['indexes']:>7,.0f} rows/s  (the same INSERT … SELECT into"
        f" a table with clients' indexes only, median {median['indexes']:.2f} s: an import/copy"
        f" ratio above {median['copy'] / median['indexes']:.2f} is out of reach of any writer of"
        " clients)"
    )
    print(f"import peak RSS growth: {max(growth) / mib:.1f} MiB (process RSS sampled every 5 ms)")
    print(f"200 clients in {median['200']:.2f} s (import path, median of {rounds})")
    if big_rss is not None:
        n, seconds, grew = big_rss
        print(
            f"{n:,}-row file: imported in {seconds:.1f} s ({n / seconds:,.0f} rows/s), "
            f"peak RSS growth {grew / mib:.1f} MiB"
        )
    print(
        f"import/copy ratio: {import_rate / copy_rate:.2f}  "
        f"import/executemany ratio: {import_rate / exec_rate:.2f}"
    )


if __name__ == "__main__":
    args = sizes(
        __doc__,
        rows=(100_000, 2_000, "clients in the file"),
        sample=(5_000, 300, "rows executemany is timed on"),
        rounds=(3, 1),
        rss_rows=(0, 0, "also import a file of this many rows and report its peak RSS"),
    )
    asyncio.run(main(args.rows, args.sample, args.rounds, args.rss_rows))
