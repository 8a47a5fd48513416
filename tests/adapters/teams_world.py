"""A running Pinwall with the Teams adapter against FakeTeams over real HTTP (Pinwall's
own Starlette app on uvicorn at /teams/messages), a console and, where a test wants a
bridge, the Telegram adapter against FakeTelegram; and the Teams tests' fixtures (`teams`,
`tp`, `tp_any`), which a test module takes with `pytest_plugins = [TEAMS_WORLD]`."""

from __future__ import annotations

import asyncio
import io
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
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
from tests.adapters.conftest import BOSS
from tests.e2e.test_console import lines_to
from tests.fakes.synapse import MatrixUser, Synapse
from tests.fakes.teams import APP_ID, PASSWORD, TENANT, FakeTeams, Sent, TeamsUser, wait_until
from tests.fakes.telegram import FakeTelegram, TgChat

PUBLIC_URL = "https://pinwall.example.com"
TEAMS_WORLD = "tests.adapters.teams_world"  # for a test module's pytest_plugins
ALICE, BOB = "29:alice-id", "29:bob-id"  # Alice is an admin in `tp`
MARKET = "19:market@thread.tacv2"  # a channel


def personal(user: str) -> str:
    """The personal chat FakeTeams keeps with `user`."""
    return "a:personal-" + user


def updated(teams: FakeTeams, sent: Sent, needle: str) -> bool:
    """Whether the activity `sent` was updated in place (PUT) to a text with `needle`."""
    return any(
        s.method == "PUT" and s.activity_id == sent.activity_id and needle in s.text
        for s in teams.sent
    )


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
        self.telegram_fake = telegram
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

    async def __aenter__(self) -> TeamsPinwall:
        await self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

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

    async def known(self, user: str, name: str, *, locale: str = "en-US") -> TeamsUser:
        """A Teams user who has written to Pinwall once (`whoami`): a person with a handle."""
        person = self.user(user, name, locale=locale)
        await person.says("whoami")
        await self.said_to(personal(user), "@" + name.lower())
        return person

    async def group_joined(
        self, slug: str, title: str, *people: TeamsUser, reader: str | None = None
    ) -> None:
        """The console's admin creates the group; each of `people` joins it in Teams, and
        `reader` on the console, who hears of every post at once."""
        await self.on_console("admin", f"/group create {slug} {title}")
        if reader is not None:
            await self.on_console(reader, f"/join {slug}", f"/notify {slug} instant")
        for person in people:
            await person.says(f"join {slug}")

    async def channel_bridged(self, slug: str = "marketing", title: str = "Marketing") -> TeamsUser:
        """The console's admin creates the group; Alice (an admin in Teams, German) bridges
        the channel MARKET to it. Returns Alice."""
        await self.on_console("admin", f"/group create {slug} {title}")
        alice = self.user(ALICE, "Alice")
        await alice.mentions(MARKET, f"bridge {slug}")
        await self.said_to(MARKET, "verbunden")
        return alice

    async def telegram_group_bridged(self, title: str, slug: str = "marketing") -> TgChat:
        """A Telegram group whose every message the bot sees, bridged to `slug` by BOSS
        (who must be an admin)."""
        telegram = self.telegram_fake
        assert telegram is not None, "a TeamsPinwall with telegram="
        telegram.privacy_mode = False
        branch = TgChat.supergroup(title)
        telegram.add_chat(branch)
        telegram.user_sends_command(BOSS, branch, "bridge", slug, mention="pinwall_test_bot")
        await telegram.wait_for_async(
            lambda: any("verbunden" in (s.text or "") for s in telegram.sent_to(branch.id))
        )
        return branch

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


@pytest.fixture
def teams() -> Iterator[FakeTeams]:
    with FakeTeams() as server:
        yield server
        assert server.errors == []


@pytest.fixture
def teams_options() -> dict[str, Any]:
    """What `tp` and `tp_any` are built with; a test module overrides it for its needs."""
    return {"admins": frozenset({("teams", ALICE)})}


@pytest.fixture
async def tp(
    sqlite_db: Database, teams: FakeTeams, tmp_path: Path, teams_options: dict[str, Any]
) -> AsyncIterator[TeamsPinwall]:
    async with TeamsPinwall(sqlite_db, teams, tmp_path, **teams_options) as pinwall:
        yield pinwall


@pytest.fixture
async def tp_any(
    db: Database, teams: FakeTeams, tmp_path: Path, teams_options: dict[str, Any]
) -> AsyncIterator[TeamsPinwall]:
    """On SQLite and on PostgreSQL."""
    async with TeamsPinwall(db, teams, tmp_path, **teams_options) as pinwall:
        yield pinwall
