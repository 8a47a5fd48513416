"""The hub: where async adapters meet the synchronous core and store.

The core and the store are plain synchronous code (fast on SQLite, simple to test);
the hub runs them on a small thread pool so that adapters, the HTTP server and the
delivery worker share one asyncio loop without blocking it. On SQLite the pool has
one thread: writes never contend inside the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import threading
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar

from bot.adapter_state import AdapterState, BatchChange, write_change
from bot.core import Core
from bot.delivery import Renderer
from bot.events import Event, dump_event
from bot.ports import MessengerAdapter
from bot.signing import UrlSigner
from store.blobs import BlobStore
from store.locks import Singleton

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


def event_loop_factory(
    kind: Literal["auto", "uvloop", "asyncio"] = "auto",
) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """What makes the event loop of a running Pinwall: uvloop's where it is installed (a
    dependency on Linux and macOS) unless asyncio's own is asked for; None: asyncio's.

    Every command crosses from the loop to the database thread and back, and uvloop does
    the loop's part of that (the wake-up, the callbacks, the task's step) in C: a round
    trip takes 125-165 us instead of 155-198 us on a 2-core VM, a few percent of a command
    (its HTTP serving and clients gain as well)."""
    if kind == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if kind == "uvloop":  # the setting's check refuses it
            raise
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run_event_loop(
    main: Coroutine[Any, Any, R], kind: Literal["auto", "uvloop", "asyncio"] = "auto"
) -> R:
    """asyncio.run() on the event loop `kind` names (see event_loop_factory)."""
    with asyncio.Runner(loop_factory=event_loop_factory(kind)) as runner:
        return runner.run(main)


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """ "uvloop" or "asyncio": whose event loop this is (for logs and figures)."""
    return type(loop).__module__.split(".")[0]


@dataclass(frozen=True)
class Pinned:
    """Where keep_on_one_cpu() put the event loop's thread, and where it was free to run."""

    cpu: int
    free: frozenset[int]

    def free_executor(self) -> ThreadPoolExecutor:
        """An executor for the loop's blocking helpers (asyncio.to_thread: hashing an
        upload, parsing a feed) whose threads run on every CPU again, beside the loop."""
        return ThreadPoolExecutor(
            thread_name_prefix="pinwall-free", initializer=_run_on, initargs=(self.free,)
        )


def _run_on(cpus: frozenset[int]) -> None:
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, cpus)


def keep_on_one_cpu(setting: str, *, sqlite: bool) -> Pinned | None:
    """Keeps the calling thread (the event loop's) and the threads it starts from now on
    (the database thread among them) on one CPU; None: left free, as it was.

    The loop hands every command to the database thread and takes the outcome back: two
    wake-ups of a sleeping thread. Across CPUs each is the wake-up of an idle CPU, which on
    a virtual machine takes the hypervisor 0.1-0.3 ms; on one CPU it is a context switch
    of microseconds. On SQLite little is given up for that: its work runs on the one
    database thread anyway, and Python's GIL runs one thread at a time (bench/commands.py:
    about a sixth more commands a second on a 2-core VM). Threads started before (the WAL
    checkpointer, started by the migrations' commit) stay free; the caller gives the loop
    `Pinned.free_executor()` for its blocking helpers.

    `setting` is PINWALL_CPU_AFFINITY: `auto` does so on SQLite (on Linux, when the
    process may use two CPUs or more), on the CPU the thread runs on at the moment (which
    one is the scheduler's choice: give two Pinwalls on one machine a number each to keep
    them apart); `off` never; a number pins to that CPU on any backend. Where the system
    refuses (a sandbox that forbids the call), Pinwall says so in the log and runs free."""
    if setting == "off" or not hasattr(os, "sched_setaffinity"):
        return None
    try:
        free = frozenset(os.sched_getaffinity(0))
        if setting == "auto":
            if not sqlite or len(free) < 2:
                return None
            cpu = _current_cpu()
            if cpu not in free:
                cpu = max(free)
        else:
            cpu = int(setting)
        os.sched_setaffinity(0, {cpu})  # on Linux, 0 is the calling thread
    except OSError as exc:
        log.warning("PINWALL_CPU_AFFINITY=%s: not applied (%s); running free", setting, exc)
        return None
    return Pinned(cpu, free)


def _current_cpu() -> int | None:
    """The CPU the calling thread last ran on (Linux: field 39 of its stat)."""
    try:
        stat = Path("/proc/thread-self/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[36])  # fields 3... after "pid (comm)"
    except (OSError, IndexError, ValueError):
        return None


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if not future.done():  # else: the caller was cancelled meanwhile
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


class DatabaseThreads:
    """A few threads that run store-touching code for the event loop, first come first
    served.

    What `loop.run_in_executor` does, with less on the way: the loop hands a job to the
    threads through one queue, and the thread hands the outcome back with a single
    `call_soon_threadsafe` (no concurrent Future and its locks, no chained callbacks).
    A command crosses over a few times, so this is a good part of its cost.
    """

    def __init__(self, workers: int, name: str) -> None:
        self._workers = workers
        self._name = name
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Callable[[bool, Any], None]] | None]
        self._jobs = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False

    def _put(self, fn: Callable[[], Any], done: Callable[[bool, Any], None]) -> None:
        if not self._threads or self._closed:
            self._start()
        self._jobs.put((fn, done))

    def _start(self) -> None:
        """The threads, at the first job (all of them: an idle one costs nothing)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the database threads are shut down")
            while len(self._threads) < self._workers:
                thread = threading.Thread(
                    target=self._run, name=f"{self._name}_{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, done = job
            try:
                result = fn()
            except BaseException as exc:  # handed to the caller, as an executor does
                done(False, exc)
            else:
                done(True, result)
            del job, fn, done

    async def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()

        def done(ok: bool, value: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
                loop.call_soon_threadsafe(_settle, future, ok, value)

        self._put(lambda: fn(*args, **kwargs), done)
        return await future

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        """From any thread, with a concurrent Future (what an executor's submit gives)."""
        future: Future[R] = Future()
        future.set_running_or_notify_cancel()

        def done(ok: bool, value: Any) -> None:
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

        self._put(lambda: fn(*args, **kwargs), done)
        return future

    def shutdown(self, wait: bool = True) -> None:
        """Runs what was handed over already, then stops the threads."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            self._jobs.put(None)
        if wait:
            for thread in threads:
                thread.join()


class Hub:
    def __init__(
        self, core: Core, *, blobs: BlobStore | None = None, signer: UrlSigner | None = None
    ) -> None:
        self.core = core
        self.blobs = blobs  # file bytes; adapters store what they download here
        if blobs is not None and core.blobs is None:
            core.blobs = blobs  # and the core what it sends as a file (an export)
        self.signer = signer  # signs /files/... links
        self.db = core.db
        self.clock = core.clock
        self.renderer = Renderer(core)
        self.metrics = core.metrics
        self.adapters: dict[str, MessengerAdapter] = {}
        self._executor = DatabaseThreads(1 if self.db.is_sqlite else 4, "pinwall-db")
        self._wakers: set[asyncio.Event] = set()
        # What adapters keep in the store besides events (cursors, button prompts, ...).
        self.state = AdapterState(core, self._executor)

    def register(self, adapter: MessengerAdapter) -> None:
        self.adapters[adapter.platform] = adapter
        self.core.settings.running.add(adapter.platform)

    def singleton(self, name: str) -> Singleton:
        """The lock of work that runs on one instance only (an adapter's receiving loop);
        its methods touch the store: run them with `call`."""
        return Singleton(self.db, name)

    async def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Runs store-touching code off the event loop."""
        return await self._executor.call(fn, *args, **kwargs)

    def add_waker(self, event: asyncio.Event) -> None:
        self._wakers.add(event)

    def remove_waker(self, event: asyncio.Event) -> None:
        self._wakers.discard(event)

    def wake(self) -> None:
        """Tells the delivery worker's lanes that new messages wait."""
        for event in self._wakers:
            event.set()

    async def submit(self, event: Event) -> bool:
        """Records and applies an event at once (console, tests). False for a redelivery."""
        applied = await self.call(self.core.handle, event)
        self.metrics.events.labels(event.meta.platform, "applied" if applied else "duplicate").inc()
        self.wake()
        return applied

    async def record(self, event: Event) -> bool:
        """Records an event durably; the adapter acknowledges the platform after this."""
        return await self.record_batch([event]) == 1

    async def record_batch(
        self, events: Sequence[Event], changes: Sequence[BatchChange] = ()
    ) -> int:
        """Records a batch of events durably together with the `changes` that go with it
        (the cursor that moves past the batch), in one transaction, and returns how many
        events were new (a redelivered one is recorded once). Only after this may the
        messenger learn that the batch arrived (an acknowledgement, the next offset);
        `apply_recorded` then applies them."""
        fresh, told = await self.call(self._record_batch, events, changes)
        for event, new in zip(events, fresh, strict=True):
            if not new:
                self.metrics.events.labels(event.meta.platform, "duplicate").inc()
        if told:
            self.wake()
        return sum(fresh)

    def _record_batch(
        self, events: Sequence[Event], changes: Sequence[BatchChange]
    ) -> tuple[list[bool], bool]:
        now = self.clock.now()
        told = False
        with self.db.uow() as uow:
            fresh = [
                uow.inbox.record(e.meta.platform, e.meta.event_id, dump_event(e), now) is not None
                for e in events
            ]
            for change in changes:
                told = write_change(self.core, uow, change, now) or told
            uow.commit()
        return fresh, told

    async def apply_recorded(self, received_before: datetime | None = None) -> int:
        done = await self.call(self.core.apply_recorded, 100, received_before)
        if done:
            self.metrics.events.labels("all", "applied").inc(done)
            self.wake()
        return done

    def close(self) -> None:
        self._executor.shutdown(wait=True)
