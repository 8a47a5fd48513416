"""The scheduler tick: APScheduler calls each periodic job; the jobs keep their own due times.

Digests, feed polls and the other scheduled work keep when they are next due in
Pinwall's tables. APScheduler only ticks: every `Tick.every` seconds it calls the
tick's function with the current time, which finds what is due and does it. So one
tick serves a thousand people, a restart loses nothing (what fell due while Pinwall
was down is found by the first tick), and tests call the same function with a fake
clock instead of waiting.

On PostgreSQL the ticks run only where the advisory lock "scheduler" is held, so
several instances never send a digest twice; another instance takes over when the
holder stops. The holder checks that it still holds the lock before every tick (the
lock dies with its connection when PostgreSQL restarts, and another instance may have
taken it since): a tick where it does not is skipped, and ticking resumes when the lock
is its own again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.clock import Clock
from store.db import Database
from store.locks import Singleton

log = logging.getLogger(__name__)

LOCK_NAME = "scheduler"
LOCK_RETRY = 10.0  # seconds between attempts to become the instance that ticks


@dataclass(frozen=True)
class Tick:
    """A periodic job: `run(now)` does what is due at `now` and returns (anything)."""

    name: str
    every: float  # seconds
    run: Callable[[datetime], Awaitable[object]]


class Ticker:
    def __init__(self, db: Database, clock: Clock, ticks: Sequence[Tick]) -> None:
        self.db = db
        self.clock = clock
        self.ticks = tuple(ticks)
        self.singleton = Singleton(db, LOCK_NAME)
        self._running: set[asyncio.Task[None]] = set()
        self._in_charge = True  # as far as the last check knew

    async def _holds_lock(self) -> bool:
        """Whether this instance still holds (or holds again) the scheduler's lock."""
        if self.db.is_sqlite:
            return True
        held = await asyncio.to_thread(self.singleton.try_acquire)
        if held != self._in_charge:
            self._in_charge = held
            if held:
                log.info("scheduler: this instance holds the lock again; ticking")
            else:
                log.warning("scheduler: another instance holds the lock; not ticking here")
        return held

    async def _call(self, tick: Tick, *, locked: bool = False) -> None:
        """Runs one tick; `locked`: only while this instance holds the scheduler's lock."""
        task = asyncio.current_task()
        assert task is not None
        self._running.add(task)
        try:
            if locked and not await self._holds_lock():
                return  # the instance that holds it runs this tick
            await tick.run(self.clock.now())
        except Exception:
            log.exception("scheduled job %s failed; it runs again at its next tick", tick.name)
        finally:
            self._running.discard(task)

    async def run_once(self) -> None:
        """Every tick once, one after the other (tests, and `pinwall` commands)."""
        for tick in self.ticks:
            await self._call(tick)

    async def run(self, stop: asyncio.Event) -> None:
        if not self.ticks:
            return
        while not await asyncio.to_thread(self.singleton.try_acquire):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), LOCK_RETRY)
            if stop.is_set():
                return
        scheduler = AsyncIOScheduler(timezone="UTC")
        for tick in self.ticks:
            scheduler.add_job(
                self._call,
                IntervalTrigger(seconds=tick.every),
                args=[tick],
                kwargs={"locked": True},
                id=tick.name,
                name=tick.name,
                next_run_time=datetime.now().astimezone(),  # at once: what fell due while down
                max_instances=1,  # a slow tick is never overlapped by the next
                coalesce=True,  # ticks missed while busy run once, not in a burst
                misfire_grace_time=None,
            )
        scheduler.start()
        log.info("scheduler ticking: %s", ", ".join(f"{t.name}/{t.every:g}s" for t in self.ticks))
        try:
            await stop.wait()
        finally:
            scheduler.pause()  # no new runs; shutdown would cancel the ones in flight
            if self._running:
                await asyncio.gather(*self._running, return_exceptions=True)
            scheduler.shutdown(wait=False)
            await asyncio.to_thread(self.singleton.release)
