"""The hub's database threads: store-touching code runs off the event loop, in order."""

from __future__ import annotations

import asyncio
import threading

import pytest

from bot.runtime import DatabaseThreads


async def test_calls_run_on_the_database_thread_in_the_order_they_came() -> None:
    threads = DatabaseThreads(1, "pinwall-db-test")
    seen: list[tuple[int, str]] = []

    def work(n: int) -> int:
        seen.append((n, threading.current_thread().name))
        return n * n

    try:
        results = await asyncio.gather(*(threads.call(work, n) for n in range(20)))
    finally:
        threads.shutdown()
    assert results == [n * n for n in range(20)]
    assert [n for n, _ in seen] == list(range(20))
    assert {name for _, name in seen} == {"pinwall-db-test_0"}


async def test_an_exception_reaches_the_caller_and_the_thread_goes_on() -> None:
    threads = DatabaseThreads(1, "pinwall-db-test")

    def fail() -> None:
        raise LookupError("no such row")

    try:
        with pytest.raises(LookupError, match="no such row"):
            await threads.call(fail)
        assert await threads.call(lambda: "still here") == "still here"
    finally:
        threads.shutdown()


async def test_a_cancelled_caller_does_not_disturb_the_next_one() -> None:
    threads = DatabaseThreads(1, "pinwall-db-test")
    release = threading.Event()
    try:
        slow = asyncio.ensure_future(threads.call(release.wait, 5))
        await asyncio.sleep(0.01)
        slow.cancel()
        release.set()  # the job itself still runs to its end, as in an executor
        with pytest.raises(asyncio.CancelledError):
            await slow
        assert await threads.call(sum, [1, 2, 3]) == 6
    finally:
        threads.shutdown()


async def test_shutdown_runs_what_was_handed_over_then_refuses_more() -> None:
    threads = DatabaseThreads(2, "pinwall-db-test")
    done: list[int] = []
    futures = [threads.submit(done.append, n) for n in range(10)]  # from any thread
    threads.shutdown(wait=True)
    assert [f.result(timeout=1) for f in futures] == [None] * 10
    assert sorted(done) == list(range(10))
    with pytest.raises(RuntimeError, match="shut down"):
        await threads.call(len, "x")
