"""One background asyncio task of a long-lived object (a loop that runs until stopped)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any


class Background:
    """A named task started at most once at a time, cancelled and awaited on ``stop``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The task last started (None before the first start and after ``stop``)."""
        return self._task

    def start(self, loop: Callable[[], Coroutine[Any, Any, None]]) -> bool:
        """Run ``loop()`` unless it is already running; True when it was started now."""
        if self.running:
            return False
        self._task = asyncio.create_task(loop(), name=self.name)
        return True

    async def stop(self) -> None:
        """Cancel the task and wait until it has ended (no-op when none runs)."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
