"""The one retry policy of the package: how long to wait before the next attempt.

Used by the pools' heartbeat and the monitor's sampler. psycopg_pool's own reconnection
(1 s doubling, ±10 % jitter, given up after ``reconnect_timeout``) keeps its policy: changing
it would need a private hook of psycopg_pool.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """``steady`` seconds between attempts while they succeed; after ``n`` consecutive
    failures ``first * factor ** (n - 1)``, never more than ``cap`` (pure)."""

    steady: float
    first: float
    factor: float = 2.0
    cap: float = math.inf

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` consecutive failed attempts."""
        if failures <= 0:
            return self.steady
        return float(min(self.first * self.factor ** (failures - 1), self.cap))
