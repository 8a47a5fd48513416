"""The hub's database threads: store-touching code runs off the event loop, in order."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from bot.runtime import DatabaseThreads, keep_on_one_cpu, run_event_loop


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


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


def test_pinwall_runs_on_uvloop_where_installed_unless_asyncio_is_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    assert run_event_loop(_loop_module()) == "uvloop"
    assert run_event_loop(_loop_module(), "uvloop") == "uvloop"
    assert run_event_loop(_loop_module(), "asyncio") == "asyncio"
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as if not installed
    assert run_event_loop(_loop_module()) == "asyncio"


def _in_a_new_thread(setting: str, *, sqlite: bool) -> tuple[int | None, set[int], set[int]]:
    """keep_on_one_cpu() in a thread of its own (the test process stays free): what it
    returned, and the CPUs of that thread and of a database thread it started after."""
    found: list[tuple[int | None, set[int], set[int]]] = []

    def run() -> None:
        cpu = keep_on_one_cpu(setting, sqlite=sqlite)
        threads = DatabaseThreads(1, "pinwall-db")
        try:
            of_db_thread = threads.submit(os.sched_getaffinity, 0).result(timeout=10)
        finally:
            threads.shutdown()
        found.append((cpu, os.sched_getaffinity(0), of_db_thread))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=10)
    return found[0]


def test_on_sqlite_the_loop_and_database_threads_share_one_cpu() -> None:
    allowed = os.sched_getaffinity(0)
    cpu, loop_cpus, db_cpus = _in_a_new_thread("auto", sqlite=True)
    if len(allowed) < 2:
        assert (cpu, loop_cpus, db_cpus) == (None, allowed, allowed)
    else:
        assert cpu in allowed
        assert loop_cpus == db_cpus == {cpu}
    assert os.sched_getaffinity(0) == allowed  # the caller's thread is left as it was


def test_postgresql_and_off_leave_the_threads_free_and_a_number_pins_anywhere() -> None:
    allowed = os.sched_getaffinity(0)
    assert _in_a_new_thread("auto", sqlite=False) == (None, allowed, allowed)
    assert _in_a_new_thread("off", sqlite=True) == (None, allowed, allowed)
    first = min(allowed)
    assert _in_a_new_thread(str(first), sqlite=False) == (first, {first}, {first})
