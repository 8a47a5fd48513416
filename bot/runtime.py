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
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

from bot.core import Core
from bot.delivery import Renderer
from bot.events import Event
from bot.metrics import Metrics
from bot.ports import MessengerAdapter
from bot.signing import UrlSigner
from store.blobs import BlobStore

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


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
        self.signer = signer  # signs /files/... links
        self.db = core.db
        self.clock = core.clock
        self.renderer = Renderer(core)
        self.metrics = Metrics()
        self.adapters: dict[str, MessengerAdapter] = {}
        self._executor = DatabaseThreads(1 if self.db.is_sqlite else 4, "pinwall-db")
        self._wakers: set[asyncio.Event] = set()

    def register(self, adapter: MessengerAdapter) -> None:
        self.adapters[adapter.platform] = adapter

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
        fresh = await self.call(self.core.record, event)
        if not fresh:
            self.metrics.events.labels(event.meta.platform, "duplicate").inc()
        return fresh

    async def apply_recorded(self, received_before: datetime | None = None) -> int:
        done = await self.call(self.core.apply_recorded, 100, received_before)
        if done:
            self.metrics.events.labels("all", "applied").inc(done)
            self.wake()
        return done

    def close(self) -> None:
        self._executor.shutdown(wait=True)
