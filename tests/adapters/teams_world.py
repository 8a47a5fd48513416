"""A running Pinwall with the Teams adapter against FakeTeams over real HTTP (Pinwall's
own Starlette app on uvicorn at /teams/messages), a console and, where a test wants a
bridge, the Telegram adapter against FakeTelegram."""

from __future__ import annotations

import asyncio
import io
import socket
from pathlib import Path
from typing import Any

import uvicorn

from adapters.console.adapter import ConsoleAdapter
from adapters.matrix.adapter import MatrixAdapter
from adapters.teams.adapter import TeamsAdapter
from adapters.telegram.adapter import TelegramAdapter
from app.http import create_app
from app.wiring import make_core
from bot.clock import SystemClock
from bot.core import CoreSettings
from bot.runtime import Hub
from bot.signing import UrlSigner
from jobs.delivery import DeliveryPolicy, DeliveryWorker
from jobs.ratelimit import PlatformLimits, RateLimiter
from store.blobs import BlobStore
from store.db import Database
from tests.e2e.test_console import lines_to
from tests.fakes.synapse import MatrixUser, Synapse
from tests.fakes.teams import APP_ID, PASSWORD, TENANT, FakeTeams, TeamsUser, wait_until
from tests.fakes.telegram import FakeTelegram

PUBLIC_URL = "https://pinwall.example.com"


class TeamsPinwall:
    def __init__(
        self,
        db: Database,
        fake: FakeTeams,
        data: Path,
        *,
        admins: frozenset[tuple[str, str]] = frozenset(),
        telegram: FakeTelegram | None = None,
        matrix: tuple[Synapse, MatrixUser] | None = None,
        max_bytes: int = 5 * 1024 * 1024,
    ) -> None:
        self.db, self.fake = db, fake
        self.core = make_core(
            db,
            SystemClock(),
            CoreSettings(admins=frozenset({("console", "admin")}) | admins, public_url=PUBLIC_URL),
        )
        self.hub = Hub(
            self.core,
            blobs=BlobStore(data / "blobs", max_bytes=max_bytes),
            signer=UrlSigner("k"),
        )
        self.adapter = TeamsAdapter(
            self.hub,
            app_id=APP_ID,
            password=PASSWORD,
            tenant_id=TENANT,
            openid_url=fake.openid_url,
            token_url=fake.token_url.replace("{tenant}", TENANT),
        )
        self.out = io.StringIO()
        self.console = ConsoleAdapter(
            self.hub, stdin=io.StringIO(), stdout=self.out, interactive=False
        )
        self.hub.register(self.adapter)
        self.hub.register(self.console)
        limits = {"teams": PlatformLimits(), "console": PlatformLimits()}
        self.telegram: TelegramAdapter | None = None
        if telegram is not None:
            self.telegram = TelegramAdapter(
                self.hub,
                token=telegram.token,
                secret_key="test-key",
                base_url=telegram.base_url,
                poll_timeout=1.0,
            )
            self.hub.register(self.telegram)
            limits["telegram"] = PlatformLimits()
        self.matrix: MatrixAdapter | None = None
        if matrix is not None:
            synapse, bot = matrix
            self.matrix = MatrixAdapter(
                self.hub,
                homeserver=synapse.url,
                user_id=bot.user_id,
                access_token=bot.access_token,
                sync_timeout=1.0,
            )
            self.hub.register(self.matrix)
            limits["matrix"] = PlatformLimits()
        self.worker = DeliveryWorker(
            self.hub, DeliveryPolicy(idle_poll=0.05, base_backoff=0.1), RateLimiter(limits)
        )
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self.server: uvicorn.Server | None = None
        self.endpoint = ""

    async def start(self) -> None:
        await self.adapter.start()
        if self.telegram is not None:
            await self.telegram.start()
        if self.matrix is not None:
            await self.matrix.start()
        self._tasks.append(asyncio.create_task(self.worker.run(self._stop)))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        config = uvicorn.Config(
            create_app(self.hub, self.adapter.routes()), log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self._tasks.append(asyncio.create_task(self.server.serve(sockets=[sock])))
        while not self.server.started:  # noqa: ASYNC110 - uvicorn has no event for it
            await asyncio.sleep(0.01)
        self.endpoint = f"http://127.0.0.1:{sock.getsockname()[1]}/teams/messages"

    async def close(self) -> None:
        self._stop.set()
        if self.server is not None:
            self.server.should_exit = True
        for task in self._tasks:
            await task
        if self.telegram is not None:
            await self.telegram.stop()
        if self.matrix is not None:
            await self.matrix.stop()
        await self.adapter.stop()
        self.hub.close()

    def user(
        self, user: str, name: str, *, locale: str = "de-DE", tenant: str = TENANT
    ) -> TeamsUser:
        return TeamsUser(self.fake, self.endpoint, user, name, locale=locale, tenant=tenant)

    async def on_console(self, who: str, *lines: str) -> None:
        self.console.person, self.console.room = who, None
        for line in lines:
            await self.console.handle_line(line)
            await self.worker.drain()

    def printed(self, who: str) -> list[str]:
        return lines_to(self.out.getvalue(), who)

    async def printed_eventually(self, who: str, needle: str, within: float = 8.0) -> str:
        await wait_until(
            lambda: any(needle in m for m in self.printed(who)),
            f"[{who}] {needle!r} in:\n{self.out.getvalue()}",
            within,
        )
        return [m for m in self.printed(who) if needle in m][-1]

    async def said_to(self, conversation: str, needle: str, within: float = 8.0) -> Any:
        """The newest activity Pinwall sent (or updated) in `conversation` with `needle`."""

        def found() -> list[Any]:
            return [s for s in self.fake.to(conversation) if needle in s.text]

        await wait_until(
            lambda: bool(found()),
            f"{needle!r} to {conversation}; sent: {[s.text[:200] for s in self.fake.sent][-6:]}",
            within,
        )
        return found()[-1]
