"""A service's background task: started once (again after it ended), cancelled on shutdown.

The heartbeat, the change feed's listener and reader, and the backup schedule each run one
loop beside the API; they differ in what the loop does, not in how it is started or stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any


class BackgroundTask:
    """One named asyncio task running ``run()``; ``start`` does nothing while it runs."""

    def __init__(self, run: Callable[[], Coroutine[Any, Any, None]], name: str) -> None:
        self._run = run
        self.name = name
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """True while the task is started and has not ended."""
        return self._task is not None and not self._task.done()

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The task last started (None before the first start and after ``stop``)."""
        return self._task

    def start(self) -> None:
        """Start the task unless it runs already (idempotent)."""
        if not self.running:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Cancel the task and wait until it has ended."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
