"""The hub: where async adapters meet the synchronous core and store.

The core and the store are plain synchronous code (fast on SQLite, simple to test);
the hub runs them on a small thread pool so that adapters, the HTTP server and the
delivery worker share one asyncio loop without blocking it. On SQLite the pool has
one thread: writes never contend inside the process.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

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
        self._executor = ThreadPoolExecutor(
            max_workers=1 if self.db.is_sqlite else 4, thread_name_prefix="pinwall-db"
        )
        self._wakers: set[asyncio.Event] = set()

    def register(self, adapter: MessengerAdapter) -> None:
        self.adapters[adapter.platform] = adapter

    async def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Runs store-touching code off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

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

    async def apply_recorded(self) -> int:
        done = await self.call(self.core.apply_recorded)
        if done:
            self.metrics.events.labels("all", "applied").inc(done)
            self.wake()
        return done

    def close(self) -> None:
        self._executor.shutdown(wait=True)
