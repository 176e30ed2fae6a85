"""The background task every service loop runs in: started once, restarted after it ended,
stopped by cancellation."""

from __future__ import annotations

import asyncio

from wedsync_db.background import BackgroundTask


async def test_start_is_idempotent_and_stop_cancels() -> None:
    runs: list[int] = []
    cancelled = asyncio.Event()

    async def loop() -> None:
        runs.append(1)
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    task = BackgroundTask(loop, "test-loop")
    task.start()
    task.start()
    await asyncio.sleep(0)
    assert task.running and runs == [1]
    await task.stop()
    assert cancelled.is_set() and not task.running
    await task.stop()  # stopping twice is harmless


async def test_a_task_that_ended_is_started_again() -> None:
    runs: list[int] = []

    async def once() -> None:
        runs.append(1)

    task = BackgroundTask(once, "test-once")
    task.start()
    await asyncio.sleep(0)
    assert not task.running
    task.start()
    await asyncio.sleep(0)
    assert runs == [1, 1]
    await task.stop()
