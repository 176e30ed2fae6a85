"""Request rate limits of the data API: token buckets, in this process.

Each key (a user, an organization) has a bucket of ``burst`` tokens refilled at ``rate`` per
second; a request takes one token from every bucket it is charged to, or none when any of them
is empty, and is then told how long to wait. With several API workers each keeps its own
buckets, so the limits a client meets are the configured ones times the number of workers.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

# the buckets kept (least recently used go first; a forgotten key starts with a full bucket)
MAX_KEYS = 100_000


class RateLimiter:
    """Token buckets for many keys with one rate and burst; not thread-safe (one event loop)."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        if rate < 0 or burst < 1:
            raise ValueError("rate must be >= 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._max_keys = max_keys
        # key -> (tokens, when they were counted)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def _level(self, key: str, now: float) -> float:
        tokens, then = self._buckets.get(key, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - then) * self.rate)

    def wait_time(self, key: str) -> float:
        """Seconds until ``key`` has a token (0 when it has one now)."""
        if not self.enabled:
            return 0.0
        level = self._level(key, self._clock())
        return 0.0 if level >= 1 else (1 - level) / self.rate

    def take(self, key: str) -> None:
        """Take one token from ``key``'s bucket (call after :meth:`wait_time` said 0)."""
        if not self.enabled:
            return
        now = self._clock()
        self._buckets[key] = (self._level(key, now) - 1, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)


def charge(charges: Sequence[tuple[RateLimiter, str]]) -> int | None:
    """Take a token from each (limiter, key), all or none: None when taken, else the whole
    seconds to wait (for ``Retry-After``, at least 1)."""
    wait = max((limiter.wait_time(key) for limiter, key in charges), default=0.0)
    if wait > 0:
        return max(1, math.ceil(wait))
    for limiter, key in charges:
        limiter.take(key)
    return None
