"""The hub's database threads: store-touching code runs off the event loop, in order."""

from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import dataclass

import pytest

from bot.runtime import DatabaseThreads, Pinned, keep_on_one_cpu, run_event_loop


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

    try:
        import uvloop  # noqa: F401  (a dependency on Linux and macOS)
    except ImportError:
        pass
    else:
        assert run_event_loop(_loop_module()) == "uvloop"
        assert run_event_loop(_loop_module(), "uvloop") == "uvloop"
    assert run_event_loop(_loop_module(), "asyncio") == "asyncio"
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as if not installed
    assert run_event_loop(_loop_module()) == "asyncio"


linux_only = pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity"), reason="CPU affinity is set on Linux only"
)


@dataclass
class _Seen:
    pinned: Pinned | None
    loop_cpus: set[int]  # of the thread that called keep_on_one_cpu()
    db_cpus: set[int]  # of a database thread it started afterwards
    helper_cpus: set[int]  # of a thread of Pinned.free_executor()


def _in_a_new_thread(setting: str, *, sqlite: bool) -> _Seen:
    """keep_on_one_cpu() in a thread of its own (the test process stays free)."""
    seen: list[_Seen] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            pinned = keep_on_one_cpu(setting, sqlite=sqlite)
            threads = DatabaseThreads(1, "pinwall-db")
            try:
                of_db_thread = threads.submit(os.sched_getaffinity, 0).result(timeout=10)
            finally:
                threads.shutdown()
            helper = os.sched_getaffinity(0)
            if pinned is not None:
                with pinned.free_executor() as executor:
                    helper = executor.submit(os.sched_getaffinity, 0).result(timeout=10)
            seen.append(_Seen(pinned, os.sched_getaffinity(0), of_db_thread, helper))
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=10)
    if failed:
        raise failed[0]
    return seen[0]


@linux_only
def test_on_sqlite_the_loop_and_database_threads_share_one_cpu_and_helpers_run_free() -> None:
    allowed = os.sched_getaffinity(0)
    seen = _in_a_new_thread("auto", sqlite=True)
    if len(allowed) < 2:  # nothing to choose between
        assert seen == _Seen(None, allowed, allowed, allowed)
    else:
        assert seen.pinned is not None
        assert seen.pinned.cpu in allowed
        assert seen.pinned.free == allowed
        assert seen.loop_cpus == seen.db_cpus == {seen.pinned.cpu}
        assert seen.helper_cpus == allowed
    assert os.sched_getaffinity(0) == allowed  # the caller's thread is left as it was


@linux_only
def test_postgresql_and_off_leave_the_threads_free_and_a_number_pins_anywhere() -> None:
    allowed = os.sched_getaffinity(0)
    assert _in_a_new_thread("auto", sqlite=False) == _Seen(None, allowed, allowed, allowed)
    assert _in_a_new_thread("off", sqlite=True) == _Seen(None, allowed, allowed, allowed)
    first = min(allowed)
    seen = _in_a_new_thread(str(first), sqlite=False)
    assert seen == _Seen(Pinned(first, frozenset(allowed)), {first}, {first}, allowed)


@linux_only
def test_a_system_that_refuses_pinning_gets_a_warning_and_a_free_pinwall(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(pid: int, cpus: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setaffinity", refuse)
    allowed = os.sched_getaffinity(0)
    assert keep_on_one_cpu(str(min(allowed)), sqlite=True) is None
    assert "PINWALL_CPU_AFFINITY" in caplog.text
    assert "Operation not permitted" in caplog.text
    assert os.sched_getaffinity(0) == allowed
