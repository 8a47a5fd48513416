"""Issue 24 in one Pinwall with every messenger at once: Telegram (FakeTelegram over HTTP),
Slack (FakeSlack over HTTP, its events signed into Pinwall's own HTTP app), Matrix (a real
Synapse) and the console. An announcement to two overlapping groups reaches each person
once; the Read ✓ of Telegram, Slack and Matrix add up on the author's one card; a poll
voted on the three messengers has one tally, shown live on each member's copy."""

from __future__ import annotations

import asyncio
import io
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import uvicorn

from adapters.console.adapter import ConsoleAdapter
from adapters.matrix import polls as native
from adapters.matrix.adapter import MatrixAdapter
from adapters.slack.adapter import SlackAdapter
from adapters.telegram.adapter import TelegramAdapter
from app.http import create_app
from app.wiring import make_core
from bot.clock import SystemClock
from bot.core import CoreSettings
from bot.runtime import Hub
from bot.signing import UrlSigner
from jobs.delivery import DeliveryPolicy, DeliveryWorker
from jobs.ratelimit import PlatformLimits, RateLimiter
from store.db import Database
from tests.adapters.conftest import FRANZ, humans
from tests.adapters.test_announcements import delivered
from tests.adapters.test_cards import card_in, has_buttons, updated
from tests.adapters.test_polls_native import answer, edit_of
from tests.adapters.test_slack import SECRET, button_of, texts
from tests.adapters.test_telegram import button
from tests.e2e.test_console import lines_to
from tests.fakes.slack import APP_TOKEN, BOT_TOKEN, FakeSlack, SlackRequests
from tests.fakes.synapse import MatrixUser, Synapse
from tests.fakes.telegram import FakeTelegram

LIMITS = {p: PlatformLimits() for p in ("telegram", "slack", "matrix", "console")}


class EveryPinwall:
    """One core and hub; the Telegram, Slack and Matrix adapters and a console on it."""

    def __init__(
        self, db: Database, tg: FakeTelegram, slack: FakeSlack, synapse: Synapse, bot: MatrixUser
    ) -> None:
        self.db, self.tg, self.slack_fake, self.synapse = db, tg, slack, synapse
        self.core = make_core(
            db, SystemClock(), CoreSettings(admins=frozenset({("console", "admin")}))
        )
        self.hub = Hub(self.core, blobs=None, signer=UrlSigner("test-key"))
        self.telegram = TelegramAdapter(
            self.hub,
            token=tg.token,
            secret_key="test-key",
            base_url=tg.base_url,
            mode="polling",
            poll_timeout=1.0,
        )
        self.slack = SlackAdapter(
            self.hub,
            bot_token=BOT_TOKEN,
            app_token=APP_TOKEN,
            signing_secret=SECRET,
            mode="http",
            api_url=slack.api_url,
        )
        self.matrix = MatrixAdapter(
            self.hub,
            homeserver=synapse.url,
            user_id=bot.user_id,
            access_token=bot.access_token,
            sync_timeout=5.0,
        )
        self.out = io.StringIO()
        self.console = ConsoleAdapter(
            self.hub, stdin=io.StringIO(), stdout=self.out, interactive=False
        )
        for adapter in (self.telegram, self.slack, self.matrix, self.console):
            self.hub.register(adapter)
        self.worker = DeliveryWorker(
            self.hub, DeliveryPolicy(idle_poll=0.05, base_backoff=0.1), RateLimiter(LIMITS)
        )
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self.server: uvicorn.Server | None = None
        self.requests: SlackRequests | None = None

    async def start(self) -> None:
        for adapter in (self.telegram, self.slack, self.matrix):
            await adapter.start()
        self._tasks.append(asyncio.create_task(self.worker.run(self._stop)))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        app = create_app(self.hub, self.slack.routes())
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self._tasks.append(asyncio.create_task(self.server.serve(sockets=[sock])))
        while not self.server.started:  # noqa: ASYNC110 - uvicorn has no event for it
            await asyncio.sleep(0.01)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/slack/events"
        self.requests = SlackRequests(url, SECRET, fake=self.slack_fake)

    async def close(self) -> None:
        self._stop.set()
        if self.server is not None:
            self.server.should_exit = True
        for task in self._tasks:
            await task
        for adapter in (self.telegram, self.slack, self.matrix):
            await adapter.stop()
        self.hub.close()

    async def on_console(self, who: str, *lines: str) -> None:
        self.console.person, self.console.room = who, None
        for line in lines:
            await self.console.handle_line(line)
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

    async def telegram_said(self, chat_id: int, needle: str) -> Any:
        def found() -> list[Any]:
            return [s for s in self.tg.sent_to(chat_id) if needle in (s.text or "")]

        await self.tg.wait_for_async(lambda: bool(found()), what=f"{needle!r} to {chat_id}")
        return found()[-1]


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        server.add_user("U2BOB", "bob", real_name="Bob", locale="en-US")
        yield server
        assert server.errors == []


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server
        assert server.errors == []


@pytest.fixture
async def everyone(
    sqlite_db: Database, telegram: FakeTelegram, slack: FakeSlack, synapse: Synapse
) -> AsyncIterator[tuple[EveryPinwall, MatrixUser]]:
    bot = synapse.register("pinwall")
    pinwall = EveryPinwall(sqlite_db, telegram, slack, synapse, bot)
    await pinwall.start()
    try:
        yield pinwall, bot
    finally:
        await pinwall.close()


async def test_an_announcement_and_a_poll_across_telegram_slack_matrix_and_the_console(
    everyone: tuple[EveryPinwall, MatrixUser], telegram: FakeTelegram, slack: FakeSlack
) -> None:
    pw, bot = everyone
    async with humans(pw.synapse, "mara") as [mara]:
        # Filialen (Franz on Telegram, Bob on Slack, Mara on Matrix) and Vertrieb (the same
        # three and Alice on the console): everyone but Alice is in both.
        await pw.on_console("admin", "/group create filialen Filialen --externals")
        await pw.on_console("admin", "/group create vertrieb Vertrieb --externals")
        await pw.on_console("admin", "/invite partner filialen")
        code = pw.printed("admin")[-1].split("start=")[1][:10]
        telegram.user_starts(FRANZ, code)
        await pw.telegram_said(FRANZ.id, "Willkommen")
        assert pw.requests is not None
        bob_dm = slack.dm_channel("U2BOB")
        await pw.requests.slash_command("U2BOB", bob_dm, "whoami")
        dm = await mara.dm(bot.user_id)
        await mara.say(dm, "join filialen")
        await mara.bot_said(dm, bot.user_id, "Filialen")
        await pw.on_console("alice", "/join vertrieb")
        for who in ("franz_nord", "bob", "mara"):
            await pw.on_console("admin", f"/add {who} vertrieb", f"/add {who} filialen")

        await pw.on_console(
            "admin", "/announce filialen,vertrieb Neue Hygieneregeln ab Montag --confirm"
        )
        await pw.printed_eventually("admin", "Read ✓: 0/4")
        note_tg = await pw.telegram_said(FRANZ.id, "Hygieneregeln")
        note_slack = await card_in(slack, bob_dm, "Hygieneregeln")
        note_mx = await mara.bot_said(dm, bot.user_id, "Hygieneregeln")
        await pw.printed_eventually("alice", "Hygieneregeln")
        # Once each, however many of the groups and messengers.
        assert len([s for s in telegram.sent_to(FRANZ.id) if "Hygiene" in (s.text or "")]) == 1
        assert len([p for p in slack.messages_in(bob_dm) if "Hygiene" in texts([p])]) == 1
        assert len([e for e in mara.from_bot(dm, bot.user_id) if "Hygiene" in str(e)]) == 1
        assert len([m for m in pw.printed("alice") if "Hygiene" in m]) == 1

        telegram.user_presses(FRANZ, None, note_tg.message_id, button(note_tg, "Gelesen ✓"))
        action_id, value = button_of(note_slack, "Read ✓")
        await pw.requests.block_action("U2BOB", bob_dm, note_slack.ts, action_id, value)
        await delivered(pw.db, note_mx["event_id"])
        await mara.react(dm, note_mx["event_id"], "1️⃣")
        await pw.printed_eventually("admin", "Read ✓: 3/4")
        await pw.on_console("admin", "/announcement A1")
        status = pw.printed("admin")[-1]
        assert "@alice" in status
        assert "@mara" not in status
        with pw.db.uow() as uow:
            confirmed_on = {r.confirmed_on for r in uow.announcements.recipients(1)}
        assert confirmed_on == {"telegram", "slack", "matrix", None}

        # A poll voted on the three messengers: one tally, live on each copy.
        await pw.on_console("admin", "/poll filialen Welcher Termin? | 12.1. | 19.1.")
        card_tg = await pw.telegram_said(FRANZ.id, "Welcher Termin?")
        card_slack = await card_in(slack, bob_dm, "Welcher Termin?")
        start = await mara.wait_for(
            dm, lambda e: e.get("type") == native.START_TYPE, what="the native poll"
        )
        card_mx = await mara.bot_said(dm, bot.user_id, "Welcher Termin?")
        telegram.user_presses(FRANZ, None, card_tg.message_id, button(card_tg, "1. 12.1."))
        action_id, value = button_of(card_slack, "2. 19.1.")
        await pw.requests.block_action("U2BOB", bob_dm, card_slack.ts, action_id, value)
        await delivered(pw.db, card_mx["event_id"])
        await answer(mara, dm, start["event_id"], "1")
        await telegram.wait_for_async(
            lambda: "3 Personen" in str(telegram.message(FRANZ.id, card_tg.message_id)),
            what="Franz's copy with all three votes",
        )
        await updated(slack, bob_dm, card_slack.ts, "3 people voted")
        await mara.wait_for(dm, edit_of(card_mx["event_id"], "3 people voted"), what="her copy")
        with pw.db.uow() as uow:
            assert uow.announcements.tally(1) == ({0: 2, 1: 1}, 3)

        # Closed: every member's copy becomes the result, without buttons.
        await pw.on_console("admin", "/poll close V1")
        await telegram.wait_for_async(
            lambda: "Beendet." in str(telegram.message(FRANZ.id, card_tg.message_id)),
            what="Franz's copy closed",
        )
        assert "reply_markup" not in (telegram.message(FRANZ.id, card_tg.message_id) or {})
        closed = await updated(slack, bob_dm, card_slack.ts, "Closed.")
        assert not has_buttons(closed)
        final = await mara.wait_for(dm, edit_of(card_mx["event_id"], "Closed."), what="closed")
        assert "🏆 ✓ 1. 12.1.: 2" in final["content"]["m.new_content"]["body"]
        await mara.wait_for(dm, lambda e: e.get("type") == native.END_TYPE, what="the poll end")
