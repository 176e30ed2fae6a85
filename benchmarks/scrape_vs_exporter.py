"""Our `GET /metrics` vs prometheus-postgres-exporter on the same database.

Creates a scratch database with a few hundred tables, starts our API (`wedsync-db up` in a
subprocess, 127.0.0.1) with WEDSYNC_METRICS_MAX_AGE=0 so that every scrape refreshes the cheap
collectors (the case of a real Prometheus scraping every 15 s), and the exporter (Debian package
`prometheus-postgres-exporter`, installed with apt-get when missing and possible). Scrapes are
interleaved, alternating which side goes first, for a bounded count and time.

Prints the median and p90 scrape time of each side, the metric families each exposes and which
of the exporter's families ours covers. Last line: `scrape ours/exporter time ratio: X.XX`
(target ≤ 1.0), or `n/a` with the reason when the exporter cannot be run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from _common import arguments, benchmark_database, migrate, stop_process
from wedsync_db.embedded import free_port

SCRATCH_DB = "wedsync_bench_scrape"
EXPORTER_BINARIES = ("prometheus-postgres-exporter", "postgres_exporter")
# apt-get may need a while on a cold cache; never hang a CI job on it
APT_TIMEOUT_SECONDS = 300
START_TIMEOUT_SECONDS = 60
# the exporter's own families (its process, build and Go runtime) are not database metrics
EXPORTER_SELF = re.compile(r"^(go_|process_|promhttp_|postgres_exporter_)")

# exporter family (or prefix ending in _) → our family
COVERAGE = {
    "pg_up": "wedsync_db_up",
    "pg_static": "wedsync_db_server_info",
    "pg_postmaster_start_time_seconds": "wedsync_db_start_time_seconds",
    "pg_database_size_bytes": "wedsync_db_database_size_bytes",
    "pg_locks_count": "wedsync_db_locks",
    "pg_stat_activity_count": "wedsync_db_connections",
    "pg_stat_activity_max_tx_duration": "wedsync_db_longest_transaction_seconds",
    "pg_stat_archiver_archived_count": "wedsync_db_wal_archived",
    "pg_stat_archiver_failed_count": "wedsync_db_wal_archive_failed",
    "pg_stat_archiver_last_archive_age": "wedsync_db_wal_last_archive_age_seconds",
    "pg_stat_database_numbackends": "wedsync_db_backends",
    "pg_stat_database_xact_commit": "wedsync_db_transactions_committed",
    "pg_stat_database_xact_rollback": "wedsync_db_transactions_rolled_back",
    "pg_stat_database_blks_read": "wedsync_db_blocks_read",
    "pg_stat_database_blks_hit": "wedsync_db_blocks_hit",
    "pg_stat_database_tup_": "wedsync_db_rows",
    "pg_stat_database_conflicts": "wedsync_db_conflicts",
    "pg_stat_database_conflicts_confl_": "wedsync_db_conflicts",
    "pg_stat_database_temp_files": "wedsync_db_temp_files",
    "pg_stat_database_temp_bytes": "wedsync_db_temp_bytes",
    "pg_stat_database_deadlocks": "wedsync_db_deadlocks",
    "pg_stat_database_blk_": "wedsync_db_block_io_seconds",
    "pg_stat_database_checksum_failures": "wedsync_db_checksum_failures",
    "pg_stat_database_checksum_last_failure": "wedsync_db_checksum_last_failure_timestamp_seconds",
    "pg_stat_database_stats_reset": "wedsync_db_stats_reset_timestamp_seconds",
    "pg_stat_database_session_time": "wedsync_db_session_time_seconds",
    "pg_stat_database_active_time": "wedsync_db_session_time_seconds",
    "pg_stat_database_idle_in_transaction_time": "wedsync_db_session_time_seconds",
    "pg_stat_database_sessions": "wedsync_db_sessions",
    "pg_stat_database_sessions_": "wedsync_db_sessions_ended",
    "pg_stat_database_parallel_workers_": "wedsync_db_parallel_workers",
    "pg_stat_bgwriter_checkpoints_": "wedsync_db_checkpoints",
    "pg_stat_bgwriter_checkpoint_": "wedsync_db_checkpoint_time_seconds",
    "pg_stat_bgwriter_buffers_alloc": "wedsync_db_buffers_allocated",
    "pg_stat_bgwriter_buffers_backend_fsync": "wedsync_db_buffers_backend_fsync",
    "pg_stat_bgwriter_buffers_": "wedsync_db_buffers_written",
    "pg_stat_bgwriter_maxwritten_clean": "wedsync_db_bgwriter_maxwritten_clean",
    "pg_stat_bgwriter_stats_reset": "wedsync_db_stats_reset_timestamp_seconds",
    "pg_replication_lag": "wedsync_db_replication_lag_seconds",
    "pg_replication_is_replica": "wedsync_db_in_recovery",
    "pg_stat_replication_": "wedsync_db_replica_lag_bytes",
    "pg_replication_slots_": "wedsync_db_replication_slot_active",
    "pg_settings_max_connections": "wedsync_db_max_connections",
    "pg_settings_superuser_reserved_connections": "wedsync_db_reserved_connections",
    "pg_exporter_last_scrape_duration_seconds": "wedsync_db_scrape_duration_seconds",
    "pg_exporter_last_scrape_error": "wedsync_db_scrape_errors",
    "pg_exporter_scrapes": "wedsync_db_scrapes",
    "pg_scrape_collector_": "wedsync_db_scrape_errors",
}


def log(message: str) -> None:
    print(message, flush=True)


# --- the exporter -----------------------------------------------------------------------------
def find_exporter() -> str | None:
    for name in EXPORTER_BINARIES:
        path = shutil.which(name)
        if path:
            return path
    return None


def install_exporter() -> tuple[str | None, str]:
    """The exporter's path, installing the Debian package when missing; else why not."""
    found = find_exporter()
    if found:
        return found, "already installed"
    if shutil.which("apt-get") is None:
        return None, "apt-get is not available on this system"
    if os.geteuid() != 0:
        return None, "installing prometheus-postgres-exporter needs root (apt-get)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (
        ["apt-get", "update", "-qq"],
        [
            "apt-get",
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "prometheus-postgres-exporter",
        ],
    ):
        try:
            done = subprocess.run(
                argv, env=env, capture_output=True, text=True, timeout=APT_TIMEOUT_SECONDS
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"{' '.join(argv)} failed: {exc}"
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
            return None, f"{' '.join(argv)} failed: {' '.join(tail)}"
    found = find_exporter()
    return (found, "installed with apt-get") if found else (None, "package has no binary")


def exporter_dsn(dsn: str) -> str:
    """A postgresql:// URL for the exporter (lib/pq), TLS off on the loopback."""
    p = conninfo_to_dict(dsn)
    user = p.get("user") or "postgres"
    password = f":{p['password']}" if p.get("password") else ""
    host = p.get("host") or "127.0.0.1"
    port = p.get("port") or "5432"
    return f"postgresql://{user}{password}@{host}:{port}/{p['dbname']}?sslmode=disable"


# --- the scratch database ---------------------------------------------------------------------
def create_scratch(admin_dsn: str, tables: int) -> str:
    """A fresh database with ``tables`` small tables (and an index each) next to our schema."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(SCRATCH_DB))
        )
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(SCRATCH_DB)))
    dsn = make_conninfo(admin_dsn, dbname=SCRATCH_DB)
    with psycopg.connect(dsn, autocommit=True) as conn:
        with contextlib.suppress(psycopg.Error):
            conn.execute("create extension if not exists pg_stat_statements")
        conn.execute("create schema bench")
        with conn.transaction():
            for i in range(tables):
                name = sql.Identifier("bench", f"t{i:04d}")
                conn.execute(
                    sql.SQL(
                        "create table {} (id bigint generated always as identity primary key, "
                        "organization_id uuid not null, payload text, "
                        "created_at timestamptz not null default now())"
                    ).format(name)
                )
                conn.execute(sql.SQL("create index on {} (organization_id)").format(name))
                conn.execute(
                    sql.SQL(
                        "insert into {} (organization_id, payload) "
                        "select gen_random_uuid(), repeat('x', 50) from generate_series(1, 20)"
                    ).format(name)
                )
        conn.execute("analyze")
    asyncio.run(migrate(dsn))
    return dsn


def drop_scratch(admin_dsn: str) -> None:
    with contextlib.suppress(psycopg.Error), psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(SCRATCH_DB))
        )


# --- processes ----------------------------------------------------------------------------------
@contextlib.contextmanager
def process(
    argv: list[str], env: dict[str, str], logfile: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with logfile.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        stop_process(proc)


def wait_ready(client: httpx.Client, url: str, proc: subprocess.Popen[bytes], ready: str) -> None:
    """Poll ``url`` until its body contains ``ready``."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            r = client.get(url)
            if r.status_code == 200 and ready in r.text:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready within {START_TIMEOUT_SECONDS}s")


def families_of(text: str) -> set[str]:
    return {f.name for f in text_string_to_metric_families(text)}


def equivalent(family: str, ours: set[str]) -> str | None:
    """Our family for one of the exporter's, if we expose one."""
    target = next(
        (
            v
            for k, v in COVERAGE.items()
            if family == k or (k.endswith("_") and family.startswith(k))
        ),
        None,
    )
    if target is None and family.startswith("pg_settings_"):
        # a chosen subset of settings, with the unit in the name
        stem = "wedsync_db_settings_" + family.removeprefix("pg_settings_")
        target = next((o for o in ours if o in (stem, stem + "_bytes", stem + "_seconds")), None)
    return target if target in ours else None


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))]


def main() -> int:
    parser = arguments(__doc__)
    parser.add_argument("--tables", type=int, default=None, help="tables in the scratch database")
    parser.add_argument("--scrapes", type=int, default=None, help="scrapes per side")
    parser.add_argument("--max-seconds", type=float, default=None, help="time bound")
    args = parser.parse_args()
    tables = args.tables or (30 if args.smoke else 300)
    scrapes = args.scrapes or (20 if args.smoke else 200)
    max_seconds = args.max_seconds or (20.0 if args.smoke else 120.0)

    exporter, why = install_exporter()
    log(f"exporter: {exporter or 'unavailable'} ({why})")
    if exporter is None:
        log(f"cannot compare without prometheus-postgres-exporter: {why}")
        log("scrape ours/exporter time ratio: n/a")
        return 0 if args.smoke else 1

    with benchmark_database() as admin_dsn, tempfile.TemporaryDirectory() as tmp:
        log(f"creating {SCRATCH_DB} with {tables} tables …")
        dsn = create_scratch(admin_dsn, tables)
        try:
            return run(dsn, exporter, Path(tmp), scrapes, max_seconds)
        finally:
            drop_scratch(admin_dsn)


def run(dsn: str, exporter: str, tmp: Path, scrapes: int, max_seconds: float) -> int:
    ours_port, exporter_port = free_port(), free_port()
    key = secrets.token_urlsafe(32)
    ours_env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "WEDSYNC_ENV": "development",
        "WEDSYNC_SERVICE_KEY": key,
        "WEDSYNC_DATA_DIR": str(tmp / "data"),
        # every scrape refreshes the cheap collectors, as with a real 15 s scrape interval
        "WEDSYNC_METRICS_MAX_AGE": "0",
        # one full sample at start-up, none during the measurement
        "WEDSYNC_SAMPLE_INTERVAL": "3600",
    }
    ours_argv = [
        sys.executable,
        "-c",
        "from wedsync_db.cli.main import main; main()",
        "up",
        "--no-migrate",
        "--host",
        "127.0.0.1",
        "--port",
        str(ours_port),
    ]
    exporter_env = {**os.environ, "DATA_SOURCE_NAME": exporter_dsn(dsn)}
    exporter_argv = [
        exporter,
        f"--web.listen-address=127.0.0.1:{exporter_port}",
        "--log.level=error",
    ]
    src = str(Path(__file__).resolve().parents[1] / "src")
    ours_env["PYTHONPATH"] = src + os.pathsep + ours_env.get("PYTHONPATH", "")
    ours_url = f"http://127.0.0.1:{ours_port}/metrics"
    exporter_url = f"http://127.0.0.1:{exporter_port}/metrics"
    with (
        process(ours_argv, ours_env, tmp / "ours.log") as ours_proc,
        process(exporter_argv, exporter_env, tmp / "exporter.log") as exporter_proc,
        httpx.Client(timeout=30.0) as client,
    ):
        try:
            # ready once the start-up sample (tables, sizes) is in
            wait_ready(client, ours_url, ours_proc, "wedsync_db_tables ")
            wait_ready(client, exporter_url, exporter_proc, "pg_up 1")
        except RuntimeError as exc:
            for name in ("ours.log", "exporter.log"):
                log(f"--- {name}\n{(tmp / name).read_text(errors='replace')[-2000:]}")
            log(f"could not start both sides: {exc}")
            log("scrape ours/exporter time ratio: n/a")
            return 1
        # warm both (connections, prepared statements, plan caches)
        for _ in range(3):
            client.get(ours_url)
            client.get(exporter_url)
        ours_times: list[float] = []
        exporter_times: list[float] = []
        ours_text = exporter_text = ""
        deadline = time.monotonic() + max_seconds
        for i in range(scrapes):
            if time.monotonic() > deadline:
                break
            order = [(ours_url, ours_times), (exporter_url, exporter_times)]
            if i % 2:
                order.reverse()
            for url, times in order:
                started = time.perf_counter()
                r = client.get(url)
                times.append(time.perf_counter() - started)
                r.raise_for_status()
                if url == ours_url:
                    ours_text = r.text
                else:
                    exporter_text = r.text
    ours_families = families_of(ours_text)
    exporter_families = {f for f in families_of(exporter_text) if not EXPORTER_SELF.match(f)}
    settings = sorted(f for f in exporter_families if f.startswith("pg_settings_"))
    mapped = {f: equivalent(f, ours_families) for f in sorted(exporter_families)}
    covered = [f"{f} -> {t}" for f, t in mapped.items() if t and f not in settings]
    missing = [f for f, t in mapped.items() if t is None and f not in settings]
    settings_covered = [f"{f} -> {mapped[f]}" for f in settings if mapped[f]]
    med_ours, med_exp = statistics.median(ours_times), statistics.median(exporter_times)
    p90_ours, p90_exp = percentile(ours_times, 90), percentile(exporter_times, 90)
    log(f"scrapes per side: {len(ours_times)} (interleaved)")
    log(
        f"ours     median {med_ours * 1000:7.2f} ms  p90 {p90_ours * 1000:7.2f} ms  "
        f"{len(ours_text):>7} bytes  {len(ours_families)} families"
    )
    log(
        f"exporter median {med_exp * 1000:7.2f} ms  p90 {p90_exp * 1000:7.2f} ms  "
        f"{len(exporter_text):>7} bytes  {len(exporter_families)} families "
        f"({len(settings)} of them pg_settings_*)"
    )
    log("\nour families:")
    log("  " + "\n  ".join(sorted(ours_families)))
    log("\nexporter families (without pg_settings_*, Go runtime and process):")
    log("  " + "\n  ".join(sorted(exporter_families - set(settings))))
    others = len(exporter_families) - len(settings)
    log(f"\nexporter families covered by ours, pg_settings_* aside ({len(covered)} of {others}):")
    log("  " + "\n  ".join(covered))
    if missing:
        log("exporter families without an equivalent: " + ", ".join(missing))
    if settings:
        log(
            f"pg_settings_* ({len(settings)} families, one per numeric setting): "
            f"{len(settings_covered)} chosen ones exposed as wedsync_db_settings_* / "
            "wedsync_db_max_connections:"
        )
        log("  " + "\n  ".join(settings_covered))
    log(f"\nscrape ours/exporter time ratio: {med_ours / med_exp:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
