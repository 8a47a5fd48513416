"""Singletons survive a PostgreSQL restart (issue 19): on a throwaway server of the test's
own, restarted between two instances, each scheduled due time runs once.

The advisory lock that makes the scheduler (and Telegram polling, Matrix sync) single
dies with its connection when PostgreSQL restarts. Before, the holder went on as if it
held it, a second instance took it, and both ran every job.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.clock import SystemClock
from jobs.scheduler import Tick, Ticker
from store.db import Database, normalize_url
from store.locks import Singleton
from tests.adapters.conftest import TelegramPinwall
from tests.fakes.telegram import FakeTelegram
from tests.pgcluster import Cluster, throwaway_cluster

PERIOD = 0.5  # seconds between due times of the job
TICK = 0.1  # seconds between ticks of the scheduler
WORK = 0.15  # seconds a run of the job takes


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    yield from throwaway_cluster()


def test_a_holder_notices_the_lock_it_lost_in_a_restart(cluster: Cluster) -> None:
    one, two = Database(cluster.url), Database(cluster.url)
    try:
        a, b = Singleton(one, "telegram-polling"), Singleton(two, "telegram-polling")
        assert a.try_acquire()
        assert a.try_acquire()  # checked, still its own: not taken anew
        assert a.acquisitions == 1
        assert not b.try_acquire()

        away = cluster.restart()  # the lock dies with a's connection
        assert b.try_acquire()  # so another instance takes it
        assert a.held  # a still believes it holds it ...
        assert not a.try_acquire()  # ... until it looks, before its next unit of work
        assert not a.held
        b.release()
        assert a.try_acquire()  # and it is a's again once free
        assert a.acquisitions == 2  # newly taken: a knows it had lost it meanwhile
        a.release()
        print(f"\n[lock after a restart] PostgreSQL away {away:.2f} s")
    finally:
        one.dispose()
        two.dispose()


def restart_and_take(cluster: Cluster, taker: Ticker | Singleton) -> tuple[float, bool]:
    """Restarts the server and has `taker` take its lock right after."""
    away = cluster.restart()
    lock = taker.singleton if isinstance(taker, Ticker) else taker
    return away, lock.try_acquire()


class DueJob:
    """A scheduled job that keeps its due time in the database, as Pinwall's jobs do, and
    takes a moment to run. Two instances running it at once would both run a due time."""

    def __init__(self, url: str, name: str) -> None:
        self.engine = create_engine(normalize_url(url), pool_pre_ping=True)
        self.name = name

    async def __call__(self, now: datetime) -> None:
        await asyncio.to_thread(self._run)

    def _run(self) -> None:
        with self.engine.begin() as conn:
            due = conn.execute(text("SELECT due FROM schedule")).scalar_one()
        if due > time.time():
            return
        time.sleep(WORK)
        with self.engine.begin() as conn:
            conn.execute(
                text("INSERT INTO runs (due, instance) VALUES (:due, :me)"),
                {"due": due, "me": self.name},
            )
            conn.execute(text("UPDATE schedule SET due = :next"), {"next": due + PERIOD})


async def test_two_instances_with_a_restart_between_them_run_each_due_time_once(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    """Instance a ticks; PostgreSQL restarts; instance b takes the scheduler's lock at
    once (a's died with its connection) and ticks; a must notice before its next tick and
    stop. Every due time of the job runs once, before, during and after the restart."""
    admin = create_engine(normalize_url(cluster.url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("DROP TABLE IF EXISTS schedule, runs"))
        conn.execute(text("CREATE TABLE schedule (due double precision NOT NULL)"))
        conn.execute(text("CREATE TABLE runs (due double precision, instance text)"))
        conn.execute(text("INSERT INTO schedule VALUES (:now)"), {"now": time.time()})
    admin.dispose()
    db_a, db_b = Database(cluster.url), Database(cluster.url)
    job_a, job_b = DueJob(cluster.url, "a"), DueJob(cluster.url, "b")
    a = Ticker(db_a, SystemClock(), [Tick("job", TICK, job_a)])
    b = Ticker(db_b, SystemClock(), [Tick("job", TICK, job_b)])
    stop_a, stop_b = asyncio.Event(), asyncio.Event()
    started = time.monotonic()
    task_a = asyncio.create_task(a.run(stop_a))
    task_b: asyncio.Task[None] | None = None
    try:
        with caplog.at_level(logging.CRITICAL, logger="jobs.scheduler"):  # failing runs
            await asyncio.sleep(1.6)  # about three due times on a
            # On the event loop's own thread, on purpose: a's ticks wait meanwhile, so b
            # is the first to ask for the lock that died with a's connection (as in the
            # issue), and a must find out by itself.
            away, taken = restart_and_take(cluster, b)
            assert taken
            task_b = asyncio.create_task(b.run(stop_b))
            await asyncio.sleep(3.0)
    finally:
        stop_a.set()
        stop_b.set()
        await asyncio.wait_for(task_a, 10)
        if task_b is not None:
            await asyncio.wait_for(task_b, 10)
        elapsed = time.monotonic() - started
        db_a.dispose()
        db_b.dispose()
    reader = create_engine(normalize_url(cluster.url))
    with reader.connect() as conn:
        runs = conn.execute(text("SELECT due, instance FROM runs ORDER BY due")).all()
    reader.dispose()
    job_a.engine.dispose()
    job_b.engine.dispose()

    per_due = Counter(due for due, _ in runs)
    twice = {due: n for due, n in per_due.items() if n > 1}
    by_instance = Counter(instance for _, instance in runs)
    print(
        f"\n[scheduler across a PostgreSQL restart] away {away:.2f} s; {len(runs)} runs of "
        f"{len(per_due)} due times in {elapsed:.1f} s (one every {PERIOD} s); runs per due "
        f"time: max {max(per_due.values())}; by instance {dict(by_instance)}"
    )
    assert not twice, f"due times run more than once: {twice}"
    assert by_instance["b"] > 0  # b ticks after the restart; a stopped
    dues = sorted(per_due)
    assert all(abs(later - earlier - PERIOD) < 1e-6 for earlier, later in itertools.pairwise(dues))
    assert len(dues) >= (elapsed - away) / PERIOD - 4  # none skipped: it kept up


async def test_telegram_polling_stops_while_another_instance_holds_its_lock(
    cluster: Cluster, tmp_path: Path
) -> None:
    """The Telegram adapter polls; PostgreSQL restarts and another instance takes the
    polling lock: the adapter finishes the poll under way and polls no more (two pollers
    would fight over getUpdates); once the lock is free again, it polls again."""
    admin = create_engine(normalize_url(cluster.url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("DROP DATABASE IF EXISTS pinwall_telegram WITH (FORCE)"))
        conn.execute(text("CREATE DATABASE pinwall_telegram"))
    admin.dispose()
    url = make_url(cluster.url).set(database="pinwall_telegram").render_as_string(False)
    db, other_db = Database(url), Database(url)
    db.upgrade()
    with FakeTelegram() as fake:
        pinwall = TelegramPinwall(db, fake, tmp_path)  # polls with a 1 s long poll
        await pinwall.start()
        try:
            await fake.wait_for_async(lambda: fake.polling == 1, 10, "the first poll")
            other = Singleton(other_db, "telegram-polling")
            away, taken = restart_and_take(cluster, other)
            assert taken
            await asyncio.sleep(1.5)  # the poll under way ends (1 s)
            polls = fake.calls.count("getUpdates")
            await asyncio.sleep(2.0)
            assert fake.calls.count("getUpdates") == polls  # not one more
            assert fake.polling == 0

            await asyncio.to_thread(other.release)  # the other instance stops
            await fake.wait_for_async(lambda: fake.polling == 1, 10, "polling again")
        finally:
            await pinwall.close()
            db.dispose()
            other_db.dispose()
    print(f"\n[telegram polling across a restart] PostgreSQL away {away:.2f} s")
