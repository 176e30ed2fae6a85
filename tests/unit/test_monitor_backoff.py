"""The monitor's failure handling: API traffic must not pile captures on a failing database."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from pydantic import SecretStr

from wedsync_db.errors import DatabaseUnavailable
from wedsync_db.monitor import state as monitor_state
from wedsync_db.monitor.state import MonitorState
from wedsync_db.settings import Settings


@pytest.fixture
def failing_monitor(monkeypatch: pytest.MonkeyPatch) -> tuple[MonitorState, list[int]]:
    calls: list[int] = []

    async def collect(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        await asyncio.sleep(0.01)
        raise DatabaseUnavailable("database unavailable: connection refused")

    async def no_baseline(*args: Any, **kwargs: Any) -> None:
        return None

    monkeypatch.setattr(monitor_state, "collect", collect)
    monkeypatch.setattr(monitor_state.history, "load_query_baseline", no_baseline)
    settings = Settings(_env_file=None, service_key=SecretStr("k" * 40))  # type: ignore[call-arg]
    monitor = MonitorState(settings, database=object(), store_history=False)  # type: ignore[arg-type]
    return monitor, calls


async def test_concurrent_api_callers_share_one_failed_capture(
    failing_monitor: tuple[MonitorState, list[int]],
) -> None:
    monitor, calls = failing_monitor
    results = await asyncio.gather(
        *(monitor.ensure_full(120) for _ in range(10)), return_exceptions=True
    )
    assert all(isinstance(r, DatabaseUnavailable) for r in results)
    assert len(calls) == 1  # one capture, then the backoff answered everyone else


async def test_scrape_failures_do_not_stretch_the_sampler_backoff(
    failing_monitor: tuple[MonitorState, list[int]],
) -> None:
    monitor, _ = failing_monitor
    with pytest.raises(DatabaseUnavailable):
        await monitor.capture()
    sampler_delay = monitor.next_delay()
    for _ in range(8):
        monitor._retry_at = 0.0  # let each scrape try again, as after SCRAPE_RETRY_SECONDS
        await monitor.snapshot_for_scrape(max_age=0.0)
    assert monitor.scrape_failures == 8
    assert monitor.consecutive_failures == 1
    assert monitor.next_delay() == sampler_delay


async def test_a_sampler_outage_is_logged_when_it_starts_and_when_it_ends(
    failing_monitor: tuple[MonitorState, list[int]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monitor, _ = failing_monitor
    outcomes = [DatabaseUnavailable("database unavailable: connection refused")] * 5 + [None]
    done = asyncio.Event()

    async def capture(*, source: str = "sampler") -> Any:
        outcome = outcomes.pop(0) if outcomes else None
        if not outcomes:
            done.set()
        if outcome is not None:
            raise outcome

    monkeypatch.setattr(monitor, "capture", capture)
    monkeypatch.setattr(monitor, "next_delay", lambda: 0.0)
    with caplog.at_level(logging.INFO, logger=monitor_state.log.name):
        monitor.start_sampler()
        await asyncio.wait_for(done.wait(), 10)
        await asyncio.sleep(0)  # let the loop record the success
        await monitor.stop_sampler()
    lines = [r.getMessage() for r in caplog.records if r.name == monitor_state.log.name]
    assert len(lines) == 2, lines
    assert lines[0].startswith("monitor samples failing since ")
    assert lines[0].endswith(
        ": database unavailable: connection refused (further failures are counted, not "
        "logged, until a sample succeeds)"
    )
    assert lines[1].startswith("monitor samples succeeding again after ")
    assert lines[1].endswith(" s (5 failed samples)")
