"""A psycopg_pool pool that hands out the most recently returned connection first.

psycopg_pool keeps idle connections in a deque and takes them from the front, so consecutive
scopes rotate through every idle connection (and server process), each with colder caches.
Taking the newest one keeps a quiet pool on one warm connection; the idle ones at the front
still age out through the pool's own shrinking, which closes from the front.

This overrides a private method of psycopg_pool (bounded ``<3.4`` in pyproject.toml); a test
fails if the hook stops being called.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout, TooManyRequests


class LifoConnectionPool(AsyncConnectionPool[AsyncConnection[Any]]):
    """AsyncConnectionPool with last-in, first-out checkout."""

    async def _get_ready_connection(self, timeout: float | None) -> AsyncConnection[Any] | None:
        # the same as psycopg_pool's, but pop() instead of popleft()
        if timeout is not None and timeout <= 0.0:
            raise PoolTimeout()
        conn: AsyncConnection[Any] | None = None
        if self._pool:
            conn = self._pool.pop()
            if len(self._pool) < self._nconns_min:
                self._nconns_min = len(self._pool)
        elif self.max_waiting and len(self._waiting) >= self.max_waiting:
            self._stats[self._REQUESTS_ERRORS] += 1
            raise TooManyRequests(
                f"the pool {self.name!r} has already {len(self._waiting)} requests waiting"
            )
        return conn
