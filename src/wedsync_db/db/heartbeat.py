"""Per-pool heartbeat: rolling latency percentiles and failure counts, read by the health API;
and the outage log, which tells an outage once when it starts and once when it ends."""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list (pure)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(pct / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass
class HeartbeatState:
    """Rolling window of probe results for one pool."""

    pool: str
    window: int = 120
    samples_ms: deque[float] = field(default_factory=deque)
    consecutive_failures: int = 0
    total_failures: int = 0
    total_probes: int = 0
    last_error: str | None = None
    last_success: datetime | None = None
    last_probe: datetime | None = None
    # when the probe now running started (None: none is running)
    in_flight_since: datetime | None = None

    def probe_started(self, at: datetime | None = None) -> None:
        """A probe began: a hung one shows as in flight for ever longer."""
        self.in_flight_since = at or datetime.now(UTC)

    def record_success(self, latency_ms: float, at: datetime | None = None) -> None:
        """Add a latency sample and clear the failure streak."""
        self.samples_ms.append(latency_ms)
        while len(self.samples_ms) > self.window:
            self.samples_ms.popleft()
        self.consecutive_failures = 0
        self.total_probes += 1
        self.last_success = self.last_probe = at or datetime.now(UTC)
        self.in_flight_since = None

    def record_failure(self, error: str, at: datetime | None = None) -> None:
        """Count a failed probe; the error text must already be free of secrets."""
        self.consecutive_failures += 1
        self.total_failures += 1
        self.total_probes += 1
        self.last_error = error
        self.last_probe = at or datetime.now(UTC)
        self.in_flight_since = None

    @property
    def healthy(self) -> bool:
        """True when the latest probe succeeded."""
        return self.last_probe is not None and self.consecutive_failures == 0

    def snapshot(self) -> HeartbeatSnapshot:
        """Immutable summary for readers in other tasks."""
        values = sorted(self.samples_ms)
        return HeartbeatSnapshot(
            pool=self.pool,
            samples=len(values),
            p50_ms=percentile(values, 50),
            p95_ms=percentile(values, 95),
            p99_ms=percentile(values, 99),
            last_ms=self.samples_ms[-1] if self.samples_ms else math.nan,
            consecutive_failures=self.consecutive_failures,
            total_failures=self.total_failures,
            total_probes=self.total_probes,
            last_error=self.last_error,
            last_success=self.last_success,
            last_probe=self.last_probe,
            in_flight_since=self.in_flight_since,
        )


@dataclass(frozen=True)
class HeartbeatSnapshot:
    """What the health endpoint reads: no I/O needed."""

    pool: str
    samples: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    last_ms: float
    consecutive_failures: int
    total_failures: int
    total_probes: int
    last_error: str | None
    last_success: datetime | None
    last_probe: datetime | None
    in_flight_since: datetime | None = None

    @property
    def healthy(self) -> bool:
        """The latest probe succeeded."""
        return self.last_probe is not None and self.consecutive_failures == 0

    def age(self, now: datetime) -> float | None:
        """Seconds since the latest successful probe (None: never succeeded)."""
        if self.last_success is None:
            return None
        return max(0.0, (now - self.last_success).total_seconds())

    def stale(self, now: datetime, after: float) -> str | None:
        """Why the pool must count as failing although the latest probe succeeded, if it must:
        no success for ``after`` seconds, or a probe running for that long (a hung server)."""
        if self.in_flight_since is not None:
            running = (now - self.in_flight_since).total_seconds()
            if running > after:
                return f"a probe has had no answer for {running:.0f} s"
        age = self.age(now)
        if age is not None and age > after:
            return f"no successful probe for {age:.0f} s (limit {after:g} s)"
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (NaN becomes None)."""

        def num(v: float) -> float | None:
            return None if math.isnan(v) else round(v, 3)

        return {
            "pool": self.pool,
            "healthy": self.healthy,
            "samples": self.samples,
            "p50_ms": num(self.p50_ms),
            "p95_ms": num(self.p95_ms),
            "p99_ms": num(self.p99_ms),
            "last_ms": num(self.last_ms),
            "consecutive_failures": self.consecutive_failures,
            "total_failures": self.total_failures,
            "total_probes": self.total_probes,
            "last_error": self.last_error,
            "last_success": self.last_success.isoformat() if self.last_success else None,
            "last_probe": self.last_probe.isoformat() if self.last_probe else None,
            "in_flight_since": self.in_flight_since.isoformat() if self.in_flight_since else None,
        }


class OutageLog:
    """Logs a pool's outage as two lines however many attempts fail in between: the first
    failure ("database unreachable ... since T: reason") and the recovery, with a summary
    ("database reachable again ... after 61 s (27 failed attempts)"). Failures in between are
    counted, not logged. ``down``, ``up``, ``until`` and ``unit`` word the lines for something
    other than a pool (the monitor's sampler)."""

    def __init__(
        self,
        pool: str,
        logger: logging.Logger,
        *,
        down: str | None = None,
        up: str | None = None,
        until: str = "it connects again",
        unit: str = "failed attempts",
    ) -> None:
        self.pool = pool
        self._log = logger
        self._down = down or f"database unreachable from the {pool} pool"
        self._up = up or f"database reachable again from the {pool} pool"
        self._until = until
        self._unit = unit
        self.since: datetime | None = None
        self.failures = 0

    def failed(self, reason: str, at: datetime | None = None) -> None:
        """One failed attempt (connection or probe); the reason must be free of secrets."""
        self.failures += 1
        if self.since is None:
            self.since = at or datetime.now(UTC)
            self._log.warning(
                "%s since %s: %s (further failures are counted, not logged, until %s)",
                self._down,
                self.since.strftime("%Y-%m-%d %H:%M:%S UTC"),
                " ".join(reason.split()),
                self._until,
            )

    def recovered(self, at: datetime | None = None) -> None:
        """A connection or probe succeeded: ends the outage, if there is one."""
        since = self.since
        if since is None:
            return
        seconds = ((at or datetime.now(UTC)) - since).total_seconds()
        self._log.info("%s after %.0f s (%d %s)", self._up, seconds, self.failures, self._unit)
        self.since, self.failures = None, 0
