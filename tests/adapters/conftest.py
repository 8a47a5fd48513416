"""A running Pinwall with the Telegram adapter (against FakeTelegram over real HTTP) and a
console beside it, in the test's process."""

from __future__ import annotations

import asyncio
import contextlib
import io
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
import uvicorn

from adapters.console import ConsoleAdapter
from adapters.telegram import TelegramAdapter
from bot.clock import SystemClock
from bot.core import Core, CoreSettings
from bot.http import create_app
from bot.runtime import Hub
from bot.signing import UrlSigner
from bot.wiring import COMMAND_PREFIXES
from jobs.delivery import DeliveryPolicy, DeliveryWorker
from jobs.ratelimit import PlatformLimits, RateLimiter
from store.blobs import BlobStore
from store.db import Database
from tests.fakes.telegram import FakeTelegram, TgUser

NO_LIMITS = {"telegram": PlatformLimits(), "console": PlatformLimits()}
WEBHOOK_SECRET = "s3cret-Token_1"
PUBLIC_URL = "https://pinwall.example.com"


class TelegramPinwall:
    """Core, hub, delivery worker, the Telegram adapter and a console, all real."""

    def __init__(
        self,
        db: Database,
        fake: FakeTelegram,
        data: Path,
        *,
        mode: Literal["polling", "webhook"] = "polling",
        admins: frozenset[tuple[str, str]] = frozenset(),
        limits: dict[str, PlatformLimits] | None = None,
        max_download: int | None = None,
    ) -> None:
        self.db = db
        self.fake = fake
        self.core = Core(
            db,
            SystemClock(),
            CoreSettings(
                admins=frozenset({("console", "admin")}) | admins,
                command_prefixes=COMMAND_PREFIXES,
            ),
        )
        self.hub = Hub(self.core, blobs=BlobStore(data / "blobs"), signer=UrlSigner("test-key"))
        extra: dict[str, Any] = {} if max_download is None else {"max_download": max_download}
        self.adapter = TelegramAdapter(
            self.hub,
            token=fake.token,
            secret_key="test-key",
            base_url=fake.base_url,
            mode=mode,
            webhook_secret=WEBHOOK_SECRET if mode == "webhook" else None,
            public_url=PUBLIC_URL if mode == "webhook" else None,
            poll_timeout=1.0,
            **extra,
        )
        self.out = io.StringIO()
        console = ConsoleAdapter(self.hub, stdin=io.StringIO(), stdout=self.out, interactive=False)
        self.hub.register(self.adapter)
        self.hub.register(console)
        self.worker = DeliveryWorker(
            self.hub,
            DeliveryPolicy(idle_poll=0.05, base_backoff=0.1),
            RateLimiter(limits or NO_LIMITS),
        )
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._server: uvicorn.Server | None = None
        self.webhook_url = ""

    async def start(self) -> None:
        await self.adapter.start()
        self._tasks.append(asyncio.create_task(self.worker.run(self._stop)))
        if self.adapter.mode == "webhook":
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sock.listen(16)
            port = sock.getsockname()[1]
            config = uvicorn.Config(
                create_app(self.hub, self.adapter.routes()),
                log_level="warning",
                lifespan="off",
            )
            self._server = uvicorn.Server(config)
            self._tasks.append(asyncio.create_task(self._server.serve(sockets=[sock])))
            self.webhook_url = f"http://127.0.0.1:{port}/telegram/webhook"
            while not self._server.started:  # noqa: ASYNC110 - uvicorn has no event for it
                await asyncio.sleep(0.01)

    async def close(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.should_exit = True
        for task in self._tasks:
            await task
        await self.adapter.stop()
        self.hub.close()

    # --- the console side -------------------------------------------------------------

    async def on_console(self, who: str, *lines: str) -> None:
        """Lines typed on the console by `who`, each processed with its deliveries."""
        self.console_adapter_as(who)
        for line in lines:
            await self.console_adapter.handle_line(line)
            await self.worker.drain()

    @property
    def console_adapter(self) -> ConsoleAdapter:
        return self.hub.adapters["console"]  # type: ignore[return-value]

    def console_adapter_as(self, who: str) -> None:
        self.console_adapter.person = who
        self.console_adapter.room = None

    def printed(self, who: str) -> list[str]:
        """What the console printed to `[who]`, one entry per message."""
        messages: list[str] = []
        for line in self.out.getvalue().splitlines():
            if line.startswith("["):
                messages.append(line)
            elif line.startswith("  ") and messages:
                messages[-1] += "\n" + line
        return [m for m in messages if m.startswith(f"[{who}] ")]

    async def printed_eventually(self, who: str, needle: str, within: float = 5.0) -> str:
        deadline = asyncio.get_running_loop().time() + within
        while True:
            found = [m for m in self.printed(who) if needle in m]
            if found:
                return found[-1]
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no [{who}] line with {needle!r} in:\n{self.out.getvalue()}")
            await asyncio.sleep(0.02)

    # --- the Telegram side ------------------------------------------------------------

    async def bot_said(self, chat_id: int, needle: str, within: float = 5.0) -> Any:
        """The newest message the bot sent to `chat_id` that contains `needle`."""

        def found() -> list[Any]:
            return [s for s in self.fake.sent_to(chat_id) if needle in (s.text or s.caption or "")]

        await self.fake.wait_for_async(
            lambda: bool(found()), within, what=f"a message to {chat_id} with {needle!r}"
        )
        return found()[-1]


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server
        assert server.errors == []


@pytest.fixture
async def tg(
    sqlite_db: Database, fake: FakeTelegram, tmp_path: Path
) -> AsyncIterator[TelegramPinwall]:
    pinwall = TelegramPinwall(sqlite_db, fake, tmp_path)
    await pinwall.start()
    try:
        yield pinwall
    finally:
        await pinwall.close()


@contextlib.asynccontextmanager
async def running(
    db: Database, fake: FakeTelegram, data: Path, **options: Any
) -> AsyncIterator[TelegramPinwall]:
    pinwall = TelegramPinwall(db, fake, data, **options)
    await pinwall.start()
    try:
        yield pinwall
    finally:
        await pinwall.close()


FRANZ = TgUser(
    id=5001, first_name="Franz", last_name="Huber", username="franz_nord", language_code="de"
)
GRETA = TgUser(id=5002, first_name="Greta", username="greta", language_code="en")
BOSS = TgUser(id=7001, first_name="Bettina", username="boss", language_code="de")
