"""Named health limits per calendar context (SPEC §6); they tighten in peak season and on
wedding days, when a slow or saturated database costs the most. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from wedsync_db.calendar import ContextLevel
from wedsync_db.settings import Environment, Settings


@dataclass(frozen=True)
class Thresholds:
    """Every limit the assessment applies; ``level`` names the context they were chosen for."""

    level: ContextLevel = "normal"

    # Share of max_connections (minus reserved slots) in use: past these a traffic spike, a
    # deploy's second pool or a stuck batch job leaves nothing for vendors and couples.
    connection_warn_fraction: float = 0.80
    connection_fail_fraction: float = 0.95

    # Heartbeat round trip (p95): `select 1` is the floor of every request's database time.
    heartbeat_warn_ms: float = 200.0
    heartbeat_fail_ms: float = 500.0
    # A failed probe means the pool cannot reach the server at all right now.
    heartbeat_failures_fail: int = 1

    # Buffer cache hit ratio: an OLTP workload below 99 % reads from disk on hot paths.
    cache_hit_warn_ratio: float = 0.99
    # Below 94 % the working set clearly no longer fits in shared_buffers.
    cache_hit_fail_ratio: float = 0.94

    # A statement running this long holds its snapshot and locks while users wait.
    long_query_warn_s: float = 60.0
    # At this age it is almost certainly stuck or a missed index; cancel it.
    long_query_fail_s: float = 600.0

    # An idle open transaction keeps its locks and stops vacuum from reclaiming rows.
    idle_in_transaction_warn_s: float = 60.0
    idle_in_transaction_fail_s: float = 600.0

    # The oldest open transaction pins the xmin horizon for the whole cluster.
    transaction_age_warn_s: float = 300.0

    # A session blocked this long behind another's lock is a user staring at a spinner.
    lock_wait_warn_s: float = 120.0
    lock_wait_fail_s: float = 600.0

    # PostgreSQL docs (Routine Vacuuming): "it is necessary to vacuum every table in every
    # database at least once every two billion transactions" — with 1.5 B left, anti-wraparound
    # autovacuum (autovacuum_freeze_max_age, 200 M by default) is far behind.
    wraparound_warn_xids_left: int = 1_500_000_000
    # The server itself warns at 40 M left and refuses new XIDs at 3 M; page well before that.
    wraparound_fail_xids_left: int = 500_000_000

    # A sequence this used up will fail every INSERT once exhausted; converting to bigint
    # rewrites the table, which needs planning.
    sequence_warn_fraction: float = 0.90
    sequence_fail_fraction: float = 0.98

    # Replica lag: reads served from a replica are this stale.
    replication_lag_warn_s: float = 5.0
    replication_lag_fail_s: float = 60.0

    # Dead share above autovacuum's default scale factor (0.2) means autovacuum is behind.
    dead_tuple_warn_fraction: float = 0.20
    # Small tables vacuum in milliseconds whatever their dead share; ignore them.
    dead_tuple_min_rows: int = 10_000

    # Mean statement time: above this a query is a latency risk for the current context.
    query_mean_warn_ms: float = 500.0

    # Temporary files written between two samples: sorts and hashes spilling past work_mem.
    temp_bytes_warn: int = 1 << 30

    # Database size against the configured disk budget (None: no budget, no check).
    disk_budget_bytes: int | None = None
    disk_warn_fraction: float = 0.80
    disk_fail_fraction: float = 0.95

    # Backups are judged by the environment, not the calendar: the age of the newest backup
    # that a restore has proven good. Production verifies daily, so one missed run warns and
    # two fail; staging verifies daily too but may miss a weekend; development never fails
    # (None: no such limit).
    environment: Environment = "development"
    backup_verified_warn_hours: float | None = 8 * 24.0
    backup_verified_fail_hours: float | None = None
    # The change feed keeps changes this long (WEDSYNC_FEED_RETENTION_HOURS); changes older than
    # twice that mean the sampler's pruning is not running.
    feed_retention_hours: float = 24.0


NORMAL = Thresholds()

# Peak season (May–October by default): busier every day, so react sooner.
PEAK_SEASON = replace(
    NORMAL,
    level="peak-season",
    connection_warn_fraction=0.70,
    connection_fail_fraction=0.90,
    heartbeat_warn_ms=150.0,
    heartbeat_fail_ms=400.0,
    long_query_warn_s=45.0,
    long_query_fail_s=300.0,
    idle_in_transaction_warn_s=45.0,
    idle_in_transaction_fail_s=300.0,
    transaction_age_warn_s=180.0,
    lock_wait_fail_s=300.0,
    replication_lag_fail_s=30.0,
    query_mean_warn_ms=250.0,
)

# Wedding day (a Saturday or any day with weddings): guests, vendors and couples are live,
# there is no second chance, so keep the most headroom.
WEDDING_DAY = replace(
    NORMAL,
    level="wedding-day",
    connection_warn_fraction=0.60,
    connection_fail_fraction=0.85,
    heartbeat_warn_ms=100.0,
    heartbeat_fail_ms=300.0,
    long_query_warn_s=30.0,
    long_query_fail_s=120.0,
    idle_in_transaction_warn_s=30.0,
    idle_in_transaction_fail_s=120.0,
    transaction_age_warn_s=120.0,
    lock_wait_fail_s=300.0,
    replication_lag_fail_s=30.0,
    query_mean_warn_ms=100.0,
)

_BY_LEVEL: dict[ContextLevel, Thresholds] = {
    "normal": NORMAL,
    "peak-season": PEAK_SEASON,
    "wedding-day": WEDDING_DAY,
}


# environment → (warn, fail) hours for the age of the newest verified backup
BACKUP_VERIFIED_HOURS: dict[Environment, tuple[float | None, float | None]] = {
    "development": (8 * 24.0, None),
    "staging": (50.0, 8 * 24.0),
    "production": (26.0, 50.0),
}


def thresholds_for(
    level: ContextLevel,
    *,
    disk_budget_bytes: int | None = None,
    environment: Environment = "development",
    feed_retention_hours: float = 24.0,
) -> Thresholds:
    """The limits that apply in a calendar context (optionally with a disk budget), with the
    environment's backup limits."""
    warn, fail = BACKUP_VERIFIED_HOURS[environment]
    return replace(
        _BY_LEVEL[level],
        disk_budget_bytes=disk_budget_bytes,
        environment=environment,
        backup_verified_warn_hours=warn,
        backup_verified_fail_hours=fail,
        feed_retention_hours=feed_retention_hours,
    )


def thresholds_from_settings(level: ContextLevel, settings: Settings) -> Thresholds:
    """The limits of a calendar context with the disk budget and environment of ``settings``."""
    return thresholds_for(
        level,
        disk_budget_bytes=round(settings.disk_budget_gb * 2**30),
        environment=settings.env,
        feed_retention_hours=settings.effective_feed_retention_hours,
    )


def wedding_day_query_mean_ms() -> float:
    """Mean statement time above which a query is a risk on a wedding day."""
    return WEDDING_DAY.query_mean_warn_ms
