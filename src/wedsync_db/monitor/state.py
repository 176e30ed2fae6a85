"""The monitor kept by the API process: the latest snapshot and assessment, the background
sampler that refreshes them, and the cheap refresh behind Prometheus scrapes.

Whatever asks for data, at most one collection runs at a time; a sampler tick that finds one
running is skipped, and failures back off, so a struggling database never gets queries piled
on it by its own monitor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from wedsync_db.background import BackgroundTask
from wedsync_db.db.backoff import Backoff
from wedsync_db.db.client import Database
from wedsync_db.db.heartbeat import OutageLog
from wedsync_db.errors import DatabaseUnavailable, WedsyncDBError
from wedsync_db.feed import prune as prune_feed
from wedsync_db.imports.service import ABANDONED_AFTER
from wedsync_db.imports.service import clean_up as clean_up_imports
from wedsync_db.monitor import history
from wedsync_db.monitor.assess import Assessment, assess_sample
from wedsync_db.monitor.collectors import (
    FULL_PARTS,
    SCRAPE_OPTIONS,
    CollectOptions,
    collect,
    merge_scrape,
    scrape_parts,
)
from wedsync_db.monitor.prometheus import families
from wedsync_db.monitor.snapshot import (
    QueryBaseline,
    QueryStats,
    Snapshot,
    query_differences,
)
from wedsync_db.settings import Settings

log = logging.getLogger(__name__)

# Retention is counted in days; purging once an hour keeps every delete small.
PURGE_INTERVAL_SECONDS = 3600.0


def _purge_due(last: float | None, now: float) -> bool:
    """A once-per-interval clean-up is due: never done, or done PURGE_INTERVAL_SECONDS ago."""
    return last is None or now - last >= PURGE_INTERVAL_SECONDS


# After failures the sampler waits interval × 2^(failures-1), at most this long.
MAX_BACKOFF_SECONDS = 600.0
# A scrape that finds the server unreachable is not retried for this long (cached values
# and wedsync_db_up 0 are served meanwhile).
SCRAPE_RETRY_SECONDS = 5.0
# A scrape waits this long for a refresh before answering from the cache.
SCRAPE_WAIT_SECONDS = 2.0
# an API caller waits at most this long for a capture that is already running
ENSURE_WAIT_SECONDS = 15.0


class QueryTotals:
    """Monotonic statement counters for Prometheus, grown by differences between refreshes
    (the sums over pg_stat_statements entries shrink when entries are evicted)."""

    def __init__(self) -> None:
        self.calls = 0
        self.exec_ms = 0.0
        self.rows = 0
        self._last: QueryBaseline | None = None

    def observe(self, stats: QueryStats, at: datetime) -> None:
        """Fold in one reading of the counters."""
        if self._last is None:
            self.calls, self.exec_ms, self.rows = stats.calls, stats.total_ms, stats.rows
        else:
            diffs = query_differences(self._last, stats.counters, stats.stats_reset) or {}
            self.calls += sum(d.calls for d in diffs.values())
            self.exec_ms += sum(d.total_ms for d in diffs.values())
            self.rows += sum(d.rows for d in diffs.values())
        self._last = stats.baseline(at)


class MonitorState:
    """Latest snapshot + assessment, the sampler task, and scrape-time refreshes."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        *,
        options: CollectOptions | None = None,
        scrape_options: CollectOptions = SCRAPE_OPTIONS,
        store_history: bool = True,
    ) -> None:
        self.settings = settings
        self.database = database
        self.options = options or CollectOptions()
        self.scrape_options = scrape_options
        self.store_history = store_history
        self.latest: Snapshot | None = None
        self.full: Snapshot | None = None
        self.assessment: Assessment | None = None
        self.up = False
        self.last_error: str | None = None
        self.consecutive_failures = 0
        # an outage is logged when samples start failing and when they succeed again
        self.sample_outage = OutageLog(
            "monitor",
            log,
            down="monitor samples failing",
            up="monitor samples succeeding again",
            until="a sample succeeds",
            unit="failed samples",
        )
        # failed scrape refreshes, kept apart so that they never stretch the sampler's backoff
        self.scrape_failures = 0
        self.captures = 0
        # Prometheus scrapes served, and the refreshes they triggered
        self.scrapes = 0
        self.refreshes = 0
        self.collector_errors: Counter[str] = Counter()
        self.query_totals = QueryTotals()
        self._lock = asyncio.Lock()
        self._sampler = BackgroundTask(self._sampler_loop, "monitor-sampler")
        self._refresh = BackgroundTask(self._refresh_cheap, "metrics-refresh")
        self._retry_at = 0.0
        self._last_purge: float | None = None
        self._last_feed_prune: float | None = None
        self._last_import_clean_up: float | None = None
        # changes the sampler pruned from the feed's outbox
        self.feed_pruned = 0
        self._exporter: MetricsExporter | None = None
        # the current health status as the health endpoint computes it, when an API serves one
        self.health_status: Callable[[], str] | None = None

    # --- reading --------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """A collection is running."""
        return self._lock.locked()

    def age_seconds(self, now: datetime | None = None) -> float | None:
        """Seconds since the latest snapshot was taken."""
        if self.latest is None:
            return None
        return ((now or datetime.now(UTC)) - self.latest.captured_at).total_seconds()

    @property
    def exporter(self) -> MetricsExporter:
        """The Prometheus registry rendering this state (created on first use)."""
        if self._exporter is None:
            self._exporter = MetricsExporter(self)
        return self._exporter

    # --- full captures ----------------------------------------------------------------------
    async def capture(self, *, source: str = "sampler") -> Snapshot:
        """Run every collector, assess the result and record it in the history."""
        async with self._lock:
            return await self._capture_locked(source)

    async def ensure_full(self, max_age: float, wait: float = ENSURE_WAIT_SECONDS) -> Snapshot:
        """The latest full snapshot if younger than ``max_age`` seconds, else a new capture
        (waiting for one already running rather than starting a second). While the database
        is failing, callers get the last snapshot (or DatabaseUnavailable) instead of a new
        capture each: API traffic must not pile queries on a struggling database."""
        full = self.full
        if full is not None and _age(full) <= max_age:
            return full
        if time.monotonic() < self._retry_at:
            return self._cached_or_unavailable()
        try:
            await asyncio.wait_for(self._lock.acquire(), wait)
        except TimeoutError:
            return self._cached_or_unavailable()
        try:
            full = self.full
            if full is not None and _age(full) <= max_age:
                return full
            if time.monotonic() < self._retry_at:
                return self._cached_or_unavailable()
            return await self._capture_locked("sampler")
        finally:
            self._lock.release()

    def _cached_or_unavailable(self) -> Snapshot:
        if self.full is not None:
            return self.full
        raise DatabaseUnavailable(
            f"no metrics snapshot yet: {self.last_error or 'a capture is running'}; retry shortly"
        )

    async def _capture_locked(self, source: str) -> Snapshot:
        baseline = await self._query_baseline()
        today = datetime.now(ZoneInfo(self.settings.timezone)).date()
        try:
            snap = await collect(
                self.database,
                parts=FULL_PARTS,
                options=self.options,
                previous=self.full,
                query_baseline=baseline,
                today=today,
            )
        except WedsyncDBError as exc:
            self._failed(exc, scrape=False)
            raise
        self._succeeded(snap, scrape=False)
        self.full = self.latest = snap
        self.captures += 1
        try:
            self.assessment = self.assess(snap)
        except Exception:  # the assessment must never stop the sampler
            log.exception("assessment failed")
        if self.store_history:
            await self._record(snap, source)
            if snap.feed is not None:
                # only where the outbox exists (its collector read it), and so the imports
                await self._prune_feed()
                await self._clean_up_imports()
        return snap

    async def _prune_feed(self) -> None:
        """Delete the feed's changes older than the retention, once per purge interval."""
        now = time.monotonic()
        if not _purge_due(self._last_feed_prune, now):
            return
        hours = self.settings.effective_feed_retention_hours
        try:
            self.feed_pruned += await prune_feed(
                self.database, datetime.now(UTC) - timedelta(hours=hours)
            )
        except WedsyncDBError as exc:
            self.collector_errors["feed_prune"] += 1
            log.warning("could not prune the change feed: %s", exc)
            return
        self._last_feed_prune = now

    async def _clean_up_imports(self) -> None:
        """Fail abandoned imports and prune old row errors, once per purge interval."""
        now = time.monotonic()
        if not _purge_due(self._last_import_clean_up, now):
            return
        wall = datetime.now(UTC)
        days = self.settings.effective_history_retention_days
        try:
            done = await clean_up_imports(
                self.database,
                abandoned_before=wall - ABANDONED_AFTER,
                errors_before=wall - timedelta(days=days),
            )
        except WedsyncDBError as exc:
            self.collector_errors["import_clean_up"] += 1
            log.warning("could not clean up imports: %s", exc)
            return
        if done.abandoned:
            log.warning("%d abandoned import(s) marked failed", done.abandoned)
        self._last_import_clean_up = now

    async def _query_baseline(self) -> QueryBaseline | None:
        full = self.full
        if full is not None and full.queries is not None:
            return full.queries.baseline(full.captured_at)
        try:
            # the previous process (or `metrics capture`) left one behind
            return await history.load_query_baseline(self.database)
        except WedsyncDBError as exc:
            log.debug("no stored query baseline: %s", exc)
            return None

    async def _record(self, snap: Snapshot, source: str) -> None:
        now = time.monotonic()
        purge = _purge_due(self._last_purge, now)
        cutoff = (
            history.retention_cutoff(self.settings.effective_history_retention_days)
            if purge
            else None
        )
        try:
            await history.record(self.database, snap, source=source, purge_before=cutoff)
        except WedsyncDBError as exc:
            self.collector_errors["history"] += 1
            log.warning("could not store the snapshot: %s", exc)
            return
        if purge:
            self._last_purge = now

    def assess(self, snap: Snapshot) -> Assessment:
        """Judge a snapshot in the calendar context of its capture time."""
        return assess_sample(snap, self.settings)

    # --- bookkeeping ------------------------------------------------------------------------
    def _succeeded(self, snap: Snapshot, *, scrape: bool) -> None:
        self.up = True
        self.last_error = None
        if scrape:
            self.scrape_failures = 0
        else:
            self.consecutive_failures = 0
        self._retry_at = 0.0
        for e in snap.errors:
            self.collector_errors[e.collector] += 1
        if snap.queries is not None:
            self.query_totals.observe(snap.queries, snap.captured_at)

    def _failed(self, exc: BaseException, *, scrape: bool) -> None:
        self.up = False
        self.last_error = str(exc)
        if scrape:
            self.scrape_failures += 1
        else:
            self.consecutive_failures += 1
        self.collector_errors["connection"] += 1
        self._retry_at = time.monotonic() + SCRAPE_RETRY_SECONDS

    # --- scrapes ------------------------------------------------------------------------------
    async def snapshot_for_scrape(
        self, max_age: float, wait: float = SCRAPE_WAIT_SECONDS
    ) -> Snapshot | None:
        """The latest snapshot, refreshing its cheap parts first when older than ``max_age``
        seconds; never more than one refresh at a time, never longer than ``wait``."""
        self.scrapes += 1
        age = self.age_seconds()
        if age is not None and age <= max_age:
            return self.latest
        if time.monotonic() < self._retry_at:
            return self.latest
        if not self._refresh.running:
            if self.busy:
                # a full capture is running and will replace the snapshot
                return self.latest
            self._refresh.start()
        refresh = self._refresh.task
        assert refresh is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(refresh), wait)
        return self.latest

    async def _refresh_cheap(self) -> None:
        if self.busy:
            return
        async with self._lock:
            self.refreshes += 1
            # server facts come with the full sample; without one yet, collect them too
            parts = scrape_parts(self.full)
            try:
                fresh = await collect(self.database, parts=parts, options=self.scrape_options)
            except WedsyncDBError as exc:
                self._failed(exc, scrape=True)
                return
            except Exception as exc:  # a task nobody awaits must not die with a traceback
                log.exception("metrics refresh failed")
                self._failed(exc, scrape=True)
                return
            self._succeeded(fresh, scrape=True)
            self.latest = merge_scrape(fresh, self.full)

    # --- the sampler --------------------------------------------------------------------------
    def start_sampler(self) -> None:
        """Capture now and then every ``sample_interval`` seconds in the background."""
        self._sampler.start()

    async def stop_sampler(self) -> None:
        """Cancel the sampler and any scrape refresh."""
        await self._sampler.stop()
        await self._refresh.stop()

    def next_delay(self) -> float:
        """Seconds until the next sample: the interval, or a backoff after failures."""
        interval = self.settings.sample_interval
        return Backoff(interval, interval, cap=MAX_BACKOFF_SECONDS).delay(self.consecutive_failures)

    async def _sampler_loop(self) -> None:
        while True:
            # a running scrape refresh is short: wait for it rather than skip a whole interval
            try:
                await self.capture(source="sampler")
            except WedsyncDBError as exc:
                self.sample_outage.failed(str(exc))
            except Exception:
                log.exception("monitor sample failed")
                self.consecutive_failures += 1
            else:
                self.sample_outage.recovered()
            await asyncio.sleep(self.next_delay())

    def to_dict(self) -> dict[str, Any]:
        """State of the monitor itself (for the metrics API)."""
        return {
            "up": self.up,
            "captures": self.captures,
            "consecutive_failures": self.consecutive_failures,
            "last_error": self.last_error,
            "snapshot_age_seconds": self.age_seconds(),
            "full_captured_at": (
                self.full.captured_at.isoformat() if self.full is not None else None
            ),
        }


class SnapshotCollector(Collector):
    """A prometheus_client collector reading the monitor's in-memory state."""

    def __init__(self, state: MonitorState) -> None:
        self.state = state

    def describe(self) -> Iterable[Metric]:
        # no description at registration time: the families depend on what was collected
        return []

    def collect(self) -> Iterable[Metric]:
        st = self.state
        totals = st.query_totals
        if st.health_status is not None:
            # the status /api/database/health answers with (heartbeats included)
            health: str | None = st.health_status()
        else:
            health = st.assessment.status if st.assessment is not None else None
        return families(
            st.latest,
            up=st.up,
            scrapes=st.scrapes,
            scrape_errors=dict(st.collector_errors),
            query_totals=(totals.calls, totals.exec_ms, totals.rows),
            heartbeats=st.database.heartbeat_snapshots(),
            pool_stats=st.database.pool_stats(),
            health_status=health,
            heartbeat_stale_after=st.database.heartbeat_stale_after,
        )


class MetricsExporter:
    """A registry holding one :class:`SnapshotCollector`; renders the text format."""

    def __init__(self, state: MonitorState) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(SnapshotCollector(state))

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)


def _age(snap: Snapshot) -> float:
    return (datetime.now(UTC) - snap.captured_at).total_seconds()


__all__ = ["FULL_PARTS", "MetricsExporter", "MonitorState", "QueryTotals", "SnapshotCollector"]
