"""The scheduler tick: APScheduler calls each job at once and then every interval, on one
instance only; a failing job runs again at its next tick; stopping waits for jobs in flight."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

import pytest

from bot.clock import FakeClock
from jobs.scheduler import LOCK_NAME, Tick, Ticker
from store.db import Database
from store.locks import Singleton


class Calls:
    def __init__(self, *, fail_first: bool = False, hold: float = 0.0) -> None:
        self.at: list[datetime] = []
        self.fail_first = fail_first
        self.hold = hold
        self.finished = 0
        self.changed = asyncio.Event()

    async def __call__(self, now: datetime) -> None:
        self.at.append(now)
        self.changed.set()
        if self.fail_first and len(self.at) == 1:
            raise RuntimeError("boom")
        await asyncio.sleep(self.hold)
        self.finished += 1
        self.changed.set()

    async def until(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(5):
            while True:
                self.changed.clear()
                if condition():
                    return
                await self.changed.wait()


async def test_each_tick_runs_at_once_and_then_every_interval(sqlite_db: Database) -> None:
    clock = FakeClock()
    fast, slow = Calls(), Calls()
    ticker = Ticker(sqlite_db, clock, [Tick("fast", 0.1, fast), Tick("slow", 60, slow)])
    stop = asyncio.Event()
    task = asyncio.create_task(ticker.run(stop))
    await fast.until(lambda: len(fast.at) >= 3)
    stop.set()
    await task
    assert len(slow.at) == 1  # at start: what fell due while Pinwall was down
    assert fast.at[0] == clock.now()  # jobs get the clock's time, so tests can drive it


async def test_a_failing_job_is_logged_and_runs_again(
    sqlite_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = Calls(fail_first=True)
    ticker = Ticker(sqlite_db, FakeClock(), [Tick("flaky", 0.05, flaky)])
    stop = asyncio.Event()
    with caplog.at_level(logging.ERROR, logger="jobs.scheduler"):
        task = asyncio.create_task(ticker.run(stop))
        await flaky.until(lambda: flaky.finished >= 1)
        stop.set()
        await task
    assert "scheduled job flaky failed" in caplog.text


async def test_stopping_waits_for_the_job_in_flight(sqlite_db: Database) -> None:
    slow = Calls(hold=0.3)
    ticker = Ticker(sqlite_db, FakeClock(), [Tick("slow", 60, slow)])
    stop = asyncio.Event()
    task = asyncio.create_task(ticker.run(stop))
    await slow.until(lambda: len(slow.at) == 1)
    stop.set()
    await task
    assert slow.finished == 1


async def test_run_once_runs_every_tick_in_order(sqlite_db: Database) -> None:
    order: list[str] = []

    def named(name: str) -> Tick:
        async def run(now: datetime) -> None:
            order.append(name)

        return Tick(name, 60, run)

    await Ticker(sqlite_db, FakeClock(), [named("a"), named("b")]).run_once()
    assert order == ["a", "b"]


@pytest.mark.postgres
async def test_only_the_instance_holding_the_lock_ticks(postgres_url: str) -> None:
    holder_db, other_db = Database(postgres_url), Database(postgres_url)
    holder = Singleton(holder_db, LOCK_NAME)
    assert holder.try_acquire()  # another instance is ticking
    calls = Calls()
    ticker = Ticker(other_db, FakeClock(), [Tick("digests", 0.05, calls)])
    stop = asyncio.Event()
    task = asyncio.create_task(ticker.run(stop))
    try:
        await asyncio.sleep(0.3)
        assert calls.at == []
        stop.set()
        await asyncio.wait_for(task, 5)  # gives up waiting for the lock when stopped
    finally:
        holder.release()
        holder_db.dispose()
        other_db.dispose()
