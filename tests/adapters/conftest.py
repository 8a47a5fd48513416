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

from adapters.console.adapter import ConsoleAdapter
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
from tests.fakes.telegram import FakeTelegram, TgUser

NO_LIMITS = {"telegram": PlatformLimits(), "console": PlatformLimits()}
WEBHOOK_SECRET = "s3cret-Token_1"
PUBLIC_URL = "https://pinwall.example.com"

# The Teams tests take their fixtures from teams_world as a plugin (pytest_plugins): its
# asserts are rewritten like a conftest's only if pytest knows before the first import.
pytest.register_assert_rewrite("tests.adapters.teams_world")


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
        self.core = make_core(
            db,
            SystemClock(),
            CoreSettings(
                admins=frozenset({("console", "admin")}) | admins,
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
        return lines_to(self.out.getvalue(), who)

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

    async def bot_reacted(self, chat_id: int, message_id: int, emoji: str = "👌") -> None:
        """The bot's reaction on a message (a comment's "saved": 👌 under it)."""
        await self.fake.wait_for_async(
            lambda: self.fake.bot_reactions(chat_id, message_id) == [emoji],
            what=f"the bot's {emoji} on message {message_id} in {chat_id}",
        )


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


# --- Matrix: a real Synapse homeserver, a Pinwall with the Matrix adapter, and humans ---

import os  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

from nio import AsyncClient, AsyncClientConfig, RoomCreateResponse, RoomPreset  # noqa: E402

from adapters.matrix.adapter import MatrixAdapter  # noqa: E402
from adapters.matrix.client import expect  # noqa: E402
from tests.fakes.synapse import MatrixUser, Synapse, SynapseUnavailable  # noqa: E402

MATRIX_NO_LIMITS = {**NO_LIMITS, "matrix": PlatformLimits()}


def _homeserver(tmp_path_factory: pytest.TempPathFactory, *, relaxed: bool) -> Iterator[Synapse]:
    """A Synapse for the session; skipped with one line where it cannot start (failed
    under CI=true, as a missing PostgreSQL is)."""
    import shutil
    import tempfile

    # Synapse's SQLite in memory-backed /dev/shm where there is one: fsyncs are its cost.
    shm = Path("/dev/shm")
    workdir = (
        Path(tempfile.mkdtemp(prefix="pinwall-synapse-", dir=shm))
        if shm.is_dir() and os.access(shm, os.W_OK)
        else tmp_path_factory.mktemp("synapse")
    )
    server = Synapse(workdir, relaxed=relaxed)
    try:
        server.start()
    except SynapseUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but Synapse cannot start: {exc}")
        pytest.skip(f"Synapse cannot start here, Matrix tests skipped: {exc}")
    try:
        yield server
    finally:
        server.stop()
        if workdir.is_relative_to(shm):
            shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synapse]:
    """Synapse with every rate limit out of the way."""
    yield from _homeserver(tmp_path_factory, relaxed=True)


@pytest.fixture(scope="session")
def synapse_default_limits(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synapse]:
    """A second Synapse with its default rate limits (rc_message: 0.2/s, burst 10)."""
    yield from _homeserver(tmp_path_factory, relaxed=False)


class Human:
    """A person in Element, played by a second nio client: every event it syncs is kept."""

    def __init__(self, synapse: Synapse, user: MatrixUser) -> None:
        self.synapse = synapse
        self.user = user
        self.client = AsyncClient(
            synapse.url,
            user.user_id,
            config=AsyncClientConfig(max_limit_exceeded=0, max_timeouts=0),
        )
        self.client.access_token = user.access_token
        self.client.user_id = user.user_id
        self.client.device_id = user.device_id
        self.events: dict[str, list[dict[str, Any]]] = {}
        self._since: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._txn = 0
        # Join the rooms one is invited to (the bot opening a direct chat), as Element
        # does when the person accepts.
        self.accept_invites = False
        self.invited_to: list[str] = []

    @property
    def user_id(self) -> str:
        return self.user.user_id

    async def start(self) -> None:
        await self._sync(0)
        self._task = asyncio.create_task(self._loop())

    async def _sync(self, timeout_ms: int) -> None:
        resp = await self.client.sync(timeout=timeout_ms, since=self._since)
        if not hasattr(resp, "next_batch"):
            raise AssertionError(f"the human's sync failed: {resp}")
        for room_id, info in resp.rooms.join.items():
            self.events.setdefault(room_id, []).extend(e.source for e in info.timeline.events)
        if self.accept_invites:
            for room_id in resp.rooms.invite:
                await self.client.join(room_id)
                self.invited_to.append(room_id)
        self._since = resp.next_batch

    async def _loop(self) -> None:
        while True:
            await self._sync(500)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.client.close()

    def _next_txn(self) -> str:
        self._txn += 1
        return f"human-{time.monotonic_ns()}-{self._txn}"

    # --- acting ---------------------------------------------------------------------

    async def create_room(
        self,
        *,
        invite: list[str],
        direct: bool = False,
        name: str | None = None,
        encrypted: bool = False,
    ) -> str:
        state = (
            [
                {
                    "type": "m.room.encryption",
                    "state_key": "",
                    "content": {"algorithm": "m.megolm.v1.aes-sha2"},
                }
            ]
            if encrypted
            else []
        )
        resp = expect(
            await self.client.room_create(
                name=name,
                is_direct=direct,
                invite=invite,
                preset=RoomPreset.trusted_private_chat if direct else RoomPreset.private_chat,
                initial_state=state,
            ),
            RoomCreateResponse,
        )
        self.events.setdefault(resp.room_id, [])
        return str(resp.room_id)

    async def dm(self, bot: str) -> str:
        """A direct chat with the bot, once the bot has joined it."""
        room = await self.create_room(invite=[bot], direct=True)
        await self.joined(room, bot)
        return room

    async def room(self, bot: str, name: str = "Team room") -> str:
        room = await self.create_room(invite=[bot], name=name)
        await self.joined(room, bot)
        return room

    async def joined(self, room: str, user: str, within: float = 10.0) -> None:
        await self.wait_for(
            room,
            lambda e: (
                e.get("type") == "m.room.member"
                and e.get("state_key") == user
                and e["content"].get("membership") == "join"
            ),
            within,
            what=f"{user} joining {room}",
        )

    async def send(self, room: str, kind: str, content: dict[str, Any]) -> str:
        resp = await self.client.room_send(room, kind, content, tx_id=self._next_txn())
        if not hasattr(resp, "event_id"):
            raise AssertionError(f"the human's send failed: {resp}")
        return str(resp.event_id)

    async def say(self, room: str, text: str, *, reply_to: str | None = None) -> str:
        content: dict[str, Any] = {"msgtype": "m.text", "body": text}
        if reply_to is not None:
            content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
        return await self.send(room, "m.room.message", content)

    async def react(self, room: str, event_id: str, key: str) -> str:
        content = {"m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": key}}
        return await self.send(room, "m.reaction", content)

    async def redact(self, room: str, event_id: str) -> str:
        """Takes one's own event back (a reaction: the 👍 taken back)."""
        from nio import RoomRedactResponse

        resp = await self.client.room_redact(room, event_id, tx_id=self._next_txn())
        if not isinstance(resp, RoomRedactResponse):
            raise AssertionError(f"the human's redaction failed: {resp}")
        return str(resp.event_id)

    async def send_image(self, room: str, data: bytes, name: str, mime: str = "image/png") -> str:
        import io

        from nio import UploadResponse

        uploaded, _ = await self.client.upload(
            io.BytesIO(data), content_type=mime, filename=name, filesize=len(data)
        )
        uri = expect(uploaded, UploadResponse).content_uri
        content = {
            "msgtype": "m.image",
            "body": name,
            "url": uri,
            "info": {"mimetype": mime, "size": len(data)},
        }
        return await self.send(room, "m.room.message", content)

    async def download(self, mxc: str) -> bytes:
        from nio import MemoryDownloadResponse

        resp = expect(await self.client.download(mxc=mxc), MemoryDownloadResponse)
        return bytes(resp.body)

    # --- watching -------------------------------------------------------------------

    async def wait_for(
        self,
        room: str,
        predicate: Callable[[dict[str, Any]], bool],
        within: float = 10.0,
        *,
        what: str = "an event",
    ) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + within
        while True:
            found = [e for e in self.events.get(room, []) if predicate(e)]
            if found:
                return found[-1]
            if asyncio.get_running_loop().time() > deadline:
                seen = [
                    (e.get("type"), e.get("content", {}).get("body"))
                    for e in self.events.get(room, [])
                ]
                raise AssertionError(f"no {what} in {room}; seen: {seen}")
            await asyncio.sleep(0.02)

    async def caught_up(self, room: str, within: float = 10.0) -> None:
        """Until this person has synced every event the room has now (none newer on the
        server than where their sync stands), so that counting what they saw is exact."""
        from nio import MessageDirection, RoomMessagesResponse

        deadline = asyncio.get_running_loop().time() + within
        while True:
            since = self._since
            assert since is not None
            resp = await self.client.room_messages(
                room, start=since, direction=MessageDirection.front, limit=1
            )
            if not isinstance(resp, RoomMessagesResponse):
                raise AssertionError(f"the human's /messages failed: {resp}")
            if not resp.chunk:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{self.user_id} did not catch up in {room}")
            await asyncio.sleep(0.02)

    def from_bot(self, room: str, bot: str, kind: str = "m.room.message") -> list[dict[str, Any]]:
        return [
            e for e in self.events.get(room, []) if e.get("sender") == bot and e.get("type") == kind
        ]

    async def bot_said(
        self, room: str, bot: str, needle: str, within: float = 10.0
    ) -> dict[str, Any]:
        """The newest message of the bot in `room` whose body contains `needle`."""
        return await self.wait_for(
            room,
            lambda e: (
                e.get("sender") == bot
                and e.get("type") == "m.room.message"
                and needle in str(e.get("content", {}).get("body", ""))
            ),
            within,
            what=f"a message of the bot with {needle!r}",
        )


class MatrixPinwall:
    """Core, hub, delivery worker, the Matrix adapter (against Synapse) and a console."""

    def __init__(
        self,
        db: Database,
        synapse: Synapse,
        bot: MatrixUser,
        data: Path,
        *,
        admins: frozenset[tuple[str, str]] = frozenset(),
        member_servers: tuple[str, ...] = (),
        timeline_limit: int = 50,
        password: bool = False,
    ) -> None:
        self.db = db
        self.synapse = synapse
        self.bot = bot
        self.core = make_core(
            db,
            SystemClock(),
            CoreSettings(
                admins=frozenset({("console", "admin")}) | admins,
            ),
        )
        self.hub = Hub(self.core, blobs=BlobStore(data / "blobs"), signer=UrlSigner("test-key"))
        self.adapter = MatrixAdapter(
            self.hub,
            homeserver=synapse.url,
            user_id=bot.user_id,
            access_token=None if password else bot.access_token,
            password=bot.password if password else None,
            member_servers=member_servers,
            sync_timeout=5.0,
            timeline_limit=timeline_limit,
        )
        self.out = io.StringIO()
        console = ConsoleAdapter(self.hub, stdin=io.StringIO(), stdout=self.out, interactive=False)
        self.hub.register(self.adapter)
        self.hub.register(console)
        self.worker = DeliveryWorker(
            self.hub,
            DeliveryPolicy(idle_poll=0.05, base_backoff=0.1),
            RateLimiter(MATRIX_NO_LIMITS),
        )
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []

    async def start(self) -> None:
        await self.adapter.start()
        self._tasks.append(asyncio.create_task(self.worker.run(self._stop)))

    async def close(self) -> None:
        self._stop.set()
        for task in self._tasks:
            await task
        await self.adapter.stop()
        self.hub.close()

    async def on_console(self, who: str, *lines: str, room: str | None = None) -> None:
        console: ConsoleAdapter = self.hub.adapters["console"]  # type: ignore[assignment]
        console.person, console.room = who, room
        for line in lines:
            await console.handle_line(line)
            await self.worker.drain()

    def printed(self, who: str) -> list[str]:
        return lines_to(self.out.getvalue(), who)

    async def printed_eventually(self, who: str, needle: str, within: float = 10.0) -> str:
        deadline = asyncio.get_running_loop().time() + within
        while True:
            found = [m for m in self.printed(who) if needle in m]
            if found:
                return found[-1]
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no [{who}] line with {needle!r} in:\n{self.out.getvalue()}")
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def matrix_running(
    db: Database, synapse: Synapse, bot: MatrixUser, data: Path, **options: Any
) -> AsyncIterator[MatrixPinwall]:
    pinwall = MatrixPinwall(db, synapse, bot, data, **options)
    await pinwall.start()
    try:
        yield pinwall
    finally:
        await pinwall.close()


@contextlib.asynccontextmanager
async def humans(synapse: Synapse, *names: str) -> AsyncIterator[list[Human]]:
    """People on the homeserver (registered through the admin API), syncing."""
    people = [Human(synapse, synapse.register(name)) for name in names]
    try:
        for person in people:
            await person.start()
        yield people
    finally:
        for person in people:
            await person.close()
