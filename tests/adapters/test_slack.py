"""The Slack adapter in HTTP mode over real HTTP: signed requests into Pinwall's
/slack/events, the Web API answered by FakeSlack, a console member beside it."""

from __future__ import annotations

import asyncio
import io
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select

from adapters.console.adapter import ConsoleAdapter
from adapters.slack.adapter import SlackAdapter
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
from store.models import Account, InboxEvent, Item, ItemFile, OutboxMessage, Proposal
from tests.e2e.test_console import lines_to
from tests.fakes.slack import APP_TOKEN, BOT_TOKEN, FakeSlack, SlackRequests

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


class SlackPinwall:
    def __init__(
        self, db: Database, fake: FakeSlack, data: Path, *, mode: Literal["http", "socket"] = "http"
    ) -> None:
        self.db, self.fake = db, fake
        self.core = make_core(
            db,
            SystemClock(),
            CoreSettings(
                admins=frozenset({("console", "admin")}),
            ),
        )
        self.hub = Hub(self.core, blobs=BlobStore(data / "blobs"), signer=UrlSigner("k"))
        self.adapter = SlackAdapter(
            self.hub,
            bot_token=BOT_TOKEN,
            app_token=APP_TOKEN,
            signing_secret=SECRET,
            mode=mode,
            api_url=fake.api_url,
        )
        self.out = io.StringIO()
        self.console = ConsoleAdapter(
            self.hub, stdin=io.StringIO(), stdout=self.out, interactive=False
        )
        self.hub.register(self.adapter)
        self.hub.register(self.console)
        limits = {"slack": PlatformLimits(), "console": PlatformLimits()}
        self.worker = DeliveryWorker(
            self.hub, DeliveryPolicy(idle_poll=0.05, base_backoff=0.1), RateLimiter(limits)
        )
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self.server: uvicorn.Server | None = None
        self.slack: SlackRequests | None = None

    async def start(self) -> None:
        await self.adapter.start()
        self._tasks.append(asyncio.create_task(self.worker.run(self._stop)))
        if self.adapter.mode == "socket":
            return
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
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/slack/events"
        self.slack = SlackRequests(url, SECRET, fake=self.fake)

    async def close(self) -> None:
        self._stop.set()
        if self.server is not None:
            self.server.should_exit = True
        for task in self._tasks:
            await task
        await self.adapter.stop()
        self.hub.close()

    async def on_console(self, who: str, *lines: str) -> None:
        self.console.person, self.console.room = who, None
        for line in lines:
            await self.console.handle_line(line)
            await self.worker.drain()

    def printed(self, who: str) -> list[str]:
        return lines_to(self.out.getvalue(), who)

    async def printed_eventually(self, who: str, needle: str, within: float = 5.0) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            found = [m for m in self.printed(who) if needle in m]
            if found:
                return found[-1]
            if loop.time() > deadline:
                raise AssertionError(f"no [{who}] line with {needle!r} in:\n{self.out.getvalue()}")
            await asyncio.sleep(0.02)

    async def settled(self) -> None:
        """Everything recorded is applied and delivered."""
        for _ in range(3):
            await self.hub.apply_recorded()
            await self.worker.drain()

    async def channel_bridged(self, create: str = "group create marketing Marketing") -> None:
        """Alice creates Marketing in her channel (so she moderates it) and connects the
        channel to it; the console's admin joins."""
        assert self.slack is not None
        await self.slack.slash_command("U1ALICE", "C1MARKET", create, channel_name="marketing")
        await self.settled()
        await self.slack.slash_command(
            "U1ALICE", "C1MARKET", "bridge marketing", channel_name="marketing"
        )
        await self.on_console("admin", "/join marketing")
        await self.settled()

    def count(self, model: Any) -> int:
        with self.db.uow() as uow:
            return int(uow.session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def fake() -> Any:
    with FakeSlack() as server:
        server.add_user("U1ALICE", "alice", real_name="Alice Meier", locale="de-DE")
        server.add_user("U2BOB", "bob", real_name="Bob", locale="en-US")
        server.add_user("U3GUEST", "gus", real_name="Gus Agency", is_restricted=True)
        server.add_channel("C1MARKET", "marketing", members=["U1ALICE", "U2BOB", "UBOT"])
        yield server
        assert server.errors == []


@pytest.fixture
async def sp(sqlite_db: Database, fake: FakeSlack, tmp_path: Path) -> AsyncIterator[SlackPinwall]:
    pinwall = SlackPinwall(sqlite_db, fake, tmp_path)
    await pinwall.start()
    try:
        yield pinwall
    finally:
        await pinwall.close()


def texts(posted: list[Any]) -> str:
    return "\n".join(str(p.text) + str(p.blocks) for p in posted)


async def test_a_share_from_slack_reaches_a_console_member(
    sp: SlackPinwall, fake: FakeSlack
) -> None:
    assert sp.slack is not None
    await sp.on_console("admin", "/group create marketing Marketing")
    await sp.on_console("carla", "/join marketing", "/notify marketing instant")
    answer = await sp.slack.slash_command("U1ALICE", "D0ALICE", "join marketing")
    assert answer.status_code == 200
    answer = await sp.slack.slash_command(
        "U1ALICE", "D0ALICE", "share marketing https://example.com/poster Plakat am Bahnhof"
    )
    assert answer.status_code == 200
    post = await sp.printed_eventually("carla", "Plakat am Bahnhof")
    assert post.startswith("[carla] alice via Slack in Marketing:")
    await fake.wait_for_async(lambda: "Geteilt als #1" in texts(fake.posted), what="the answer")


async def test_bad_signature_and_stale_timestamp_change_nothing(
    sp: SlackPinwall, fake: FakeSlack
) -> None:
    assert sp.slack is not None
    bad = await sp.slack.slash_command(
        "U1ALICE", "D0ALICE", "group create evil Evil", bad_signature=True
    )
    stale = await sp.slack.slash_command(
        "U1ALICE", "D0ALICE", "group create evil Evil", timestamp_offset=-400
    )
    event = sp.slack.message_event("U1ALICE", "D0ALICE", "hello")
    forged = await sp.slack.event(event, bad_signature=True)
    assert (bad.status_code, stale.status_code, forged.status_code) == (401, 401, 401)
    await sp.settled()
    assert sp.count(InboxEvent) == 0
    assert sp.count(OutboxMessage) == 0
    assert "chat.postMessage" not in fake.calls


async def test_a_retried_event_takes_effect_once(sp: SlackPinwall, fake: FakeSlack) -> None:
    assert sp.slack is not None
    await sp.on_console("admin", "/group create marketing Marketing")
    await sp.slack.slash_command("U1ALICE", "D0ALICE", "join marketing")
    event = sp.slack.message_event("U1ALICE", "D0ALICE", "Preisliste https://example.com/prices")
    answers = [await sp.slack.event(event, event_id="Ev0RETRY1", retry_num=n) for n in (None, 1, 2)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    await sp.settled()
    await fake.wait_for_async(lambda: "In welcher Gruppe" in texts(fake.posted))
    await sp.settled()
    questions = [p for p in fake.posted if "In welcher Gruppe" in texts([p])]
    assert len(questions) == 1
    with sp.db.uow() as uow:
        ids = uow.session.scalars(
            select(InboxEvent.event_id).where(InboxEvent.platform == "slack")
        ).all()
    assert [i for i in ids if not i.startswith("cmd:")] == ["Ev0RETRY1"]


async def test_the_ack_returns_before_slow_work_finishes(
    sp: SlackPinwall, fake: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert sp.slack is not None
    applied = asyncio.Event()
    real = sp.hub.apply_recorded

    async def slow_apply() -> int:
        await asyncio.sleep(2.0)  # the work after the ack takes long
        done = await real()
        applied.set()
        return done

    monkeypatch.setattr(sp.hub, "apply_recorded", slow_apply)
    loop = asyncio.get_running_loop()
    started = loop.time()
    answer = await sp.slack.slash_command("U1ALICE", "D0ALICE", "groups")
    took = loop.time() - started
    assert answer.status_code == 200
    assert took < 1.0  # acknowledged at once ...
    assert sp.count(InboxEvent) == 1  # ... after the command was recorded
    await asyncio.wait_for(applied.wait(), 5)
    await sp.worker.drain()
    await fake.wait_for_async(lambda: "chat.postMessage" in fake.calls, what="the answer")


def button_of(posted: Any, label: str) -> tuple[str, str]:
    """(action_id, value) of the button labelled `label` in a posted message's blocks."""
    for block in posted.blocks or []:
        for element in block.get("elements", []):
            if element.get("type") == "button" and element["text"]["text"] == label:
                return str(element["action_id"]), str(element["value"])
    raise AssertionError(f"no button {label!r} in {posted.blocks}")


async def question_to(fake: FakeSlack, channel: str, needle: str) -> Any:
    await fake.wait_for_async(
        lambda: any(needle in texts([p]) for p in fake.messages_in(channel)), what=needle
    )
    return [p for p in fake.messages_in(channel) if needle in texts([p])][-1]


async def test_a_file_sent_to_the_bot_is_shared_by_button_and_the_question_shows_the_outcome(
    sp: SlackPinwall, fake: FakeSlack
) -> None:
    assert sp.slack is not None
    dm = fake.dm_channel("U1ALICE")
    await sp.on_console("admin", "/group create marketing Marketing")
    await sp.on_console("carla", "/join marketing", "/notify marketing instant")
    await sp.slack.slash_command("U1ALICE", dm, "join marketing")
    flyer = b"%PDF-1.4 a flyer of the competition"
    shared = fake.user_uploads("U1ALICE", "flyer.pdf", flyer, "application/pdf")
    event = sp.slack.message_event("U1ALICE", dm, "Flyer der Konkurrenz", files=[shared])
    assert (await sp.slack.event(event)).status_code == 200
    question = await question_to(fake, dm, "In welcher Gruppe")
    action_id, value = button_of(question, "Marketing")
    pressed = await sp.slack.block_action("U1ALICE", dm, question.ts, action_id, value)
    assert pressed.status_code == 200
    await fake.wait_for_async(
        lambda: any("Geteilt als #1" in texts([u]) for u in fake.updates), what="the update"
    )
    [shown] = [p for p in fake.messages_in(dm) if p.ts == question.ts]
    assert "Geteilt als #1 in Marketing" in texts([shown])
    assert not any(b["type"] == "actions" for b in shown.blocks or [])
    post = await sp.printed_eventually("carla", "Flyer der Konkurrenz")
    assert "📎 flyer.pdf" in post
    assert "F" in shared["id"]
    assert any(d[1] for d in fake.downloads)
    with sp.db.uow() as uow:
        [blob_id] = uow.session.scalars(select(ItemFile.blob_id)).all()
    assert sp.hub.blobs is not None
    assert sp.hub.blobs.read(blob_id) == flyer


async def test_files_in_deliveries_are_uploaded_natively(sp: SlackPinwall, fake: FakeSlack) -> None:
    assert sp.slack is not None
    dm = fake.dm_channel("U1ALICE")
    await sp.on_console("admin", "/group create marketing Marketing")
    await sp.slack.slash_command("U1ALICE", dm, "join marketing")
    await sp.slack.slash_command("U1ALICE", dm, "notify marketing instant")
    # Bobby shares a picture on Slack; Alice, on instant, gets it uploaded to her DM.
    fake.add_user("U5BOBBY", "bobby", locale="en-US")
    await sp.slack.slash_command("U5BOBBY", fake.dm_channel("U5BOBBY"), "join marketing")
    data = b"\x89PNG\r\n\x1a\n" + b"0" * 64
    upload = fake.user_uploads("U5BOBBY", "poster.png", data, "image/png")
    event = sp.slack.message_event("U5BOBBY", fake.dm_channel("U5BOBBY"), "Poster", files=[upload])
    await sp.slack.event(event)
    question = await question_to(fake, fake.dm_channel("U5BOBBY"), "Which group")
    action_id, value = button_of(question, "Marketing")
    await sp.slack.block_action(
        "U5BOBBY", fake.dm_channel("U5BOBBY"), question.ts, action_id, value
    )
    await fake.wait_for_async(lambda: any(f.channel == dm for f in fake.uploaded), 5)
    [sent] = [f for f in fake.uploaded if f.channel == dm]
    assert (sent.name, sent.data) == ("poster.png", data)


async def test_command_errors_in_a_channel_are_ephemeral_and_mentions_work(
    sp: SlackPinwall, fake: FakeSlack
) -> None:
    assert sp.slack is not None
    await sp.slack.slash_command("U2BOB", "C1MARKET", "join nowhere", channel_name="marketing")
    await fake.wait_for_async(lambda: len(fake.ephemerals) == 1, what="the ephemeral error")
    [error] = fake.ephemerals
    assert (error.channel, error.user) == ("C1MARKET", "U2BOB")
    assert "There is no group" in texts([error])
    mention = sp.slack.app_mention("U2BOB", "C1MARKET", "groups")
    await sp.slack.event(mention)
    await fake.wait_for_async(lambda: len(fake.ephemerals) == 2, what="the answer to @Pinwall")
    assert not [p for p in fake.posted if p.channel == "C1MARKET" and p.kind == "message"]


async def test_personal_answers_in_a_channel_are_ephemeral(
    sp: SlackPinwall, fake: FakeSlack
) -> None:
    """Issue 18: a link or invite code asked for in a channel is seen by the asker alone."""
    assert sp.slack is not None
    await sp.on_console("admin", "/group create marketing Marketing")
    for line in ("link", "whoami", "invite member marketing", "invites", "settings language de"):
        await sp.slack.slash_command("U2BOB", "C1MARKET", line, channel_name="marketing")
    await fake.wait_for_async(lambda: len(fake.ephemerals) == 5, what="five ephemeral answers")
    assert {(e.channel, e.user) for e in fake.ephemerals} == {("C1MARKET", "U2BOB")}
    answers = texts(fake.ephemerals)
    link = re.search(r"Your link code: ([A-Za-z0-9]{10})", answers)
    assert link, answers
    await sp.settled()
    in_channel = texts([p for p in fake.posted if p.channel == "C1MARKET" and p.kind == "message"])
    assert in_channel == ""
    assert link.group(1) not in texts([p for p in fake.posted if p.kind == "message"])


async def test_guests_are_externals(sp: SlackPinwall, fake: FakeSlack) -> None:
    assert sp.slack is not None
    await sp.slack.slash_command("U3GUEST", fake.dm_channel("U3GUEST"), "group create ours Ours")
    await fake.wait_for_async(lambda: "Guests and partners" in texts(fake.posted))
    await sp.slack.slash_command("U3GUEST", fake.dm_channel("U3GUEST"), "whoami")
    await sp.settled()
    with sp.db.uow() as uow:
        guest = uow.people.by_handle("gus")
        assert guest is not None
        assert guest.role == "guest"


def home_element(fake: FakeSlack, user: str, action_id: str) -> dict[str, Any] | None:
    """The element `action_id` on the person's App Home as now published."""
    for block in fake.home_views.get(user, {}).get("blocks", []):
        for el in [*block.get("elements", []), block.get("accessory") or {}]:
            if el.get("action_id") == action_id:
                return dict(el)
    return None


def selected(fake: FakeSlack, user: str, action_id: str) -> str:
    el = home_element(fake, user, action_id) or {}
    return str((el.get("initial_option") or {}).get("value", ""))


async def test_app_home_has_selects_for_notify_and_digests_and_join_and_leave(
    sp: SlackPinwall, fake: FakeSlack
) -> None:
    assert sp.slack is not None
    await sp.on_console("admin", "/group create marketing Marketing", "/group create sales Sales")
    await sp.on_console("admin", "/share marketing https://example.com/a Erster Beitrag")
    await sp.slack.slash_command("U1ALICE", fake.dm_channel("U1ALICE"), "join marketing")
    await sp.slack.event(sp.slack.app_home_opened("U1ALICE"))
    await fake.wait_for_async(lambda: "U1ALICE" in fake.home_views, what="the home")
    home = str(fake.home_views["U1ALICE"])
    assert "Deine Gruppen" in home
    assert "Erster Beitrag" in home
    # Notify mode: a select per group, showing the mode the person has.
    notify = home_element(fake, "U1ALICE", "pw:notify:marketing")
    assert notify is not None
    assert notify["type"] == "static_select"
    assert [o["text"]["text"] for o in notify["options"]] == [
        "sofort",
        "täglich",
        "wöchentlich",
        "stumm",
    ]
    assert selected(fake, "U1ALICE", "pw:notify:marketing") == "notify.set|marketing:daily"
    answer = await sp.slack.home_select(
        "U1ALICE", "pw:notify:marketing", "notify.set|marketing:instant"
    )
    assert answer.status_code == 200
    await fake.wait_for_async(
        lambda: selected(fake, "U1ALICE", "pw:notify:marketing").endswith(":instant"),
        what="the home republished with the new mode",
    )
    # The digest's hour and day are chosen, not typed.
    assert selected(fake, "U1ALICE", "pw:digest:daily") == "cmd|digest daily 08:00"
    await sp.slack.home_select("U1ALICE", "pw:digest:daily", "cmd|digest daily 07:00")
    await fake.wait_for_async(
        lambda: selected(fake, "U1ALICE", "pw:digest:daily") == "cmd|digest daily 07:00",
        what="the daily digest at 07:00",
    )
    await sp.slack.home_select("U1ALICE", "pw:digest:weekly", "cmd|digest weekly friday 08:00")
    await fake.wait_for_async(
        lambda: selected(fake, "U1ALICE", "pw:digest:weekly").startswith(
            "cmd|digest weekly friday"
        ),
        what="the weekly digest on Friday",
    )
    # Sales can be joined from the home; Marketing left.
    join = home_element(fake, "U1ALICE", "pw:join:sales")
    assert join is not None
    await sp.slack.home_action("U1ALICE", "pw:join:sales", join["value"])
    await fake.wait_for_async(
        lambda: home_element(fake, "U1ALICE", "pw:leave:sales") is not None, what="joined"
    )
    leave = home_element(fake, "U1ALICE", "pw:leave:marketing")
    assert leave is not None
    await sp.slack.home_action("U1ALICE", "pw:leave:marketing", leave["value"])
    await fake.wait_for_async(
        lambda: home_element(fake, "U1ALICE", "pw:join:marketing") is not None, what="left"
    )
    with sp.db.uow() as uow:
        alice = uow.people.by_handle("alice")
        assert alice is not None
        slugs = {
            g.slug
            for g in uow.groups.by_ids(m.group_id for m in uow.groups.memberships_of(alice.id))
        }
    assert slugs == {"sales"}
    # A forged home value that is no home command changes nothing.
    await sp.slack.home_action("U1ALICE", "pw:x", "cmd|role alice admin")
    await sp.settled()
    with sp.db.uow() as uow:
        alice = uow.people.by_handle("alice")
        assert alice is not None
        assert str(alice.role) == "member"


async def test_reactions_on_a_relayed_post_count_and_429_is_honoured(
    sp: SlackPinwall, fake: FakeSlack
) -> None:
    assert sp.slack is not None
    await sp.channel_bridged()
    fake.rate_limit(seconds=1, count=2, method="chat.postMessage")
    await sp.on_console("admin", "/share marketing Neuer Katalog")
    await fake.wait_for_async(
        lambda: any("Neuer Katalog" in texts([p]) for p in fake.messages_in("C1MARKET")),
        10,
    )
    assert fake.early == []
    assert sum(r.status == 429 for r in fake.requests) == 2
    [relayed] = [p for p in fake.messages_in("C1MARKET") if "Neuer Katalog" in texts([p])]
    await sp.slack.event(sp.slack.reaction_added("U2BOB", "+1", "C1MARKET", relayed.ts))
    await sp.settled()
    with sp.db.uow() as uow:
        stats = uow.items.stats([1])
    assert stats[1].reactions == 1


async def test_a_slack_reaction_is_kept_as_its_emoji_and_counted_per_emoji(
    sp: SlackPinwall, fake: FakeSlack
) -> None:
    """Issue 21: :tada: is 🎉 (it was counted as 👍); a workspace's own emoji keeps its
    :name:."""
    assert sp.slack is not None
    await sp.channel_bridged("group create Marketing")
    await sp.on_console("admin", "/share marketing Neuer Katalog")
    await fake.wait_for_async(
        lambda: any("Neuer Katalog" in texts([p]) for p in fake.messages_in("C1MARKET")), 10
    )
    [relayed] = [p for p in fake.messages_in("C1MARKET") if "Neuer Katalog" in texts([p])]
    for user, name in (("U2BOB", "tada"), ("U1ALICE", "tada"), ("U2BOB", "partyparrot")):
        await sp.slack.event(sp.slack.reaction_added(user, name, "C1MARKET", relayed.ts))
    await sp.settled()
    with sp.db.uow() as uow:
        assert uow.items.reaction_counts([1]) == {1: [("🎉", 2), (":partyparrot:", 1)]}


async def test_a_deactivated_slack_user_gets_no_more_deliveries(
    sp: SlackPinwall, fake: FakeSlack
) -> None:
    assert sp.slack is not None
    await sp.slack.slash_command("U2BOB", fake.dm_channel("U2BOB"), "whoami")
    await sp.settled()
    gone = fake.update_user("U2BOB", deleted=True)
    await sp.slack.event(sp.slack.user_change(gone))
    with sp.db.uow() as uow:
        account = uow.people.account("slack", "U2BOB")
        assert account is not None
        assert not account.reachable
    assert sp.count(Account) == 1


async def test_share_to_pinwall_shortcut_opens_a_modal_with_the_persons_groups(
    sp: SlackPinwall, fake: FakeSlack
) -> None:
    assert sp.slack is not None
    await sp.on_console("admin", "/group create marketing Marketing", "/group create sales Sales")
    dm = fake.dm_channel("U2BOB")
    await sp.slack.slash_command("U2BOB", dm, "join marketing")
    await sp.slack.slash_command("U2BOB", dm, "join sales")
    await sp.settled()
    message = {
        "type": "message",
        "user": "U1ALICE",
        "ts": "1700000000.000900",
        "text": "Spannender Artikel <https://example.com/story> &amp; mehr",
    }
    posted_before = len(fake.posted)
    answer = await sp.slack.message_shortcut("U2BOB", "C1MARKET", message)
    assert answer.status_code == 200
    await fake.wait_for_async(lambda: bool(fake.views), what="views.open")
    [opened] = fake.views
    view = opened.view
    assert view["callback_id"] == "pw:share"
    groups = view["blocks"][0]["element"]
    assert groups["type"] == "static_select"
    assert [(o["text"]["text"], o["value"]) for o in groups["options"]] == [
        ("Marketing", "marketing"),
        ("Sales", "sales"),
    ]
    text = view["blocks"][1]["element"]
    assert text["initial_value"] == "Spannender Artikel https://example.com/story & mehr"
    assert len(fake.posted) == posted_before  # no question by DM: the modal asks

    # Nothing typed, or a text the grammar refuses: errors under the field, nothing saved.
    empty = await sp.slack.view_submission("U2BOB", {"group": "sales", "text": "   "})
    assert empty.json() == {
        "response_action": "errors",
        "errors": {"text": "Write something to share, or a link."},
    }
    unclosed = await sp.slack.view_submission("U2BOB", {"group": "sales", "text": 'Ein "Zitat'})
    assert unclosed.json()["response_action"] == "errors"
    await sp.settled()
    with sp.db.uow() as uow:
        assert uow.session.scalars(select(Item.url)).all() == []

    done = await sp.slack.view_submission(
        "U2BOB", {"group": "sales", "text": "Spannender Artikel https://example.com/story"}
    )
    assert done.status_code == 200
    assert not done.content
    await question_to(fake, dm, "Shared as #1 in Sales.")
    with sp.db.uow() as uow:
        [url] = uow.session.scalars(select(Item.url)).all()
    assert url == "https://example.com/story"


async def test_share_shortcut_without_groups_asks_by_direct_message(
    sp: SlackPinwall, fake: FakeSlack
) -> None:
    assert sp.slack is not None
    message = {"type": "message", "user": "U1ALICE", "ts": "1700000000.000901", "text": "x"}
    await sp.slack.message_shortcut("U2BOB", "C1MARKET", message)
    await sp.settled()
    assert fake.views == []  # in no group: the core says how to find one
    await question_to(fake, fake.dm_channel("U2BOB"), "groups")


async def test_socket_mode_records_then_acks_and_applies(
    sqlite_db: Database, fake: FakeSlack, tmp_path: Path
) -> None:
    pinwall = SlackPinwall(sqlite_db, fake, tmp_path, mode="socket")
    await pinwall.start()
    try:
        await fake.wait_for_async(lambda: fake.socket_connections == 1, what="the connection")
        await pinwall.on_console("admin", "/group create marketing Marketing")
        await pinwall.on_console("carla", "/join marketing", "/notify marketing instant")
        command = {
            "token": "x",
            "team_id": "T0PINWALL",
            "user_id": "U2BOB",
            "user_name": "bob",
            "channel_id": fake.dm_channel("U2BOB"),
            "channel_name": "directmessage",
            "command": "/pinwall",
            "api_app_id": "A0PINWALL",
            "response_url": f"{fake.url}/commands/1",
        }
        for n, text in enumerate(("join marketing", "share marketing Über Socket Mode")):
            envelope = fake.socket_push(
                "slash_commands", {**command, "text": text, "trigger_id": f"t{n}"}
            )
            await fake.wait_for_async(
                lambda e=envelope: e in [a.get("envelope_id") for a in fake.acks]
            )
        await pinwall.printed_eventually("carla", "Über Socket Mode")
        assert pinwall.adapter.healthy()
    finally:
        await pinwall.close()


async def test_healthz_says_why_slack_does_not_receive(
    sqlite_db: Database, fake: FakeSlack, tmp_path: Path
) -> None:
    """Socket Mode's connection dropped by Slack and not open again (a new one is refused
    meanwhile), and the task that applies what was recorded ended: each a 503 with the
    reason."""
    pinwall = SlackPinwall(sqlite_db, fake, tmp_path, mode="socket")
    await pinwall.start()
    try:
        await fake.wait_for_async(lambda: fake.socket_connections == 1, what="the connection")
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(pinwall.hub)), base_url="http://pinwall"
        ) as client:
            health = await client.get("/healthz")
            assert (health.status_code, health.json()["adapters"]["slack"]) == (200, True)

            fake.refuse_connections()
            assert fake.drop_sockets() == 1
            await fake.wait_for_async(lambda: not pinwall.adapter.healthy(), what="unhealthy")
            health = await client.get("/healthz")
            assert health.status_code == 503
            assert health.json()["problems"] == {"slack": "the Socket Mode connection is closed"}

            applier = pinwall.adapter._applier  # ended from outside, as an error would end it
            assert applier is not None
            applier.cancel()
            await asyncio.gather(applier, return_exceptions=True)
            health = await client.get("/healthz")
            assert health.json()["problems"] == {
                "slack": "Slack's applying of recorded events stopped (cancelled)"
            }
    finally:
        await pinwall.close()


async def test_signed_but_malformed_requests_get_400_are_logged_and_change_nothing(
    sp: SlackPinwall, fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    assert sp.slack is not None
    form = "application/x-www-form-urlencoded"
    bodies = [
        (b'{"type": "event_callback", "event": {', "application/json"),  # cut short
        (b'{"type": "event_callback"} trailing', "application/json"),
        (b"[1, 2, 3]", "application/json"),  # JSON, but no object
        (b"\xff\xfe{}", "application/json"),  # not UTF-8
        (b"payload=%7B%22type%22%3A+%22block_actions%22", form),  # interactivity, cut short
        (b"payload=%5B%5D", form),  # a payload that is no object
    ]

    def logged() -> list[str]:
        return [r.getMessage() for r in caplog.records if "signed Slack request" in r.getMessage()]

    with caplog.at_level("WARNING", logger="adapters.slack.adapter"):
        answers = [await sp.slack.post(body, kind) for body, kind in bodies]
        assert [a.status_code for a in answers] == [400] * len(bodies)
        assert len(logged()) == len(bodies)
        assert "malformed JSON" in logged()[0]
        assert "malformed form payload" in logged()[4]
        # Unsigned, the same bodies are refused as any forged request is: 401, unlogged.
        forged = [await sp.slack.post(body, kind, bad_signature=True) for body, kind in bodies]
        assert [a.status_code for a in forged] == [401] * len(bodies)
        assert len(logged()) == len(bodies)
    await sp.settled()
    assert sp.count(InboxEvent) == 0
    assert sp.count(OutboxMessage) == 0
    assert "chat.postMessage" not in fake.calls
    # ... and the endpoint still serves what is well formed.
    answer = await sp.slack.slash_command("U1ALICE", "D0ALICE", "groups")
    assert answer.status_code == 200


async def test_a_request_that_cannot_be_slacks_is_refused_before_its_body_is_read(
    sp: SlackPinwall, fake: FakeSlack
) -> None:
    """No signature or timestamp: 401 whatever follows (40 MB here); signed, but larger
    than anything Slack sends: 413, read no further."""
    assert sp.slack is not None
    async with httpx.AsyncClient(timeout=60) as http:
        unsigned = await http.post(sp.slack.url, content=b"{" + b" " * (40 * 1024 * 1024) + b"}")
    assert unsigned.status_code == 401
    huge = await sp.slack.post(
        b'{"type": "x", "pad": "' + b"x" * 1_100_000 + b'"}', "application/json"
    )
    assert huge.status_code == 413
    await sp.settled()
    assert sp.count(InboxEvent) == 0


async def test_bare_commands_ask_with_buttons_and_each_step_replaces_the_question(
    sp: SlackPinwall, fake: FakeSlack
) -> None:
    """Bob, in English on Slack: /pinwall join and /pinwall notify without arguments ask
    with Block Kit buttons; a press shows the next step or the outcome in place."""
    assert sp.slack is not None
    dm = fake.dm_channel("U2BOB")
    await sp.on_console("admin", "/group create marketing Marketing")

    await sp.slack.slash_command("U2BOB", dm, "join")
    question = await question_to(fake, dm, "Which group do you want to join?")
    assert "cancel" in texts([question])
    action_id, value = button_of(question, "Marketing")
    await sp.slack.block_action("U2BOB", dm, question.ts, action_id, value)
    await fake.wait_for_async(
        lambda: any("You joined Marketing" in texts([u]) for u in fake.updates), what="joined"
    )
    [shown] = [p for p in fake.messages_in(dm) if p.ts == question.ts]
    assert not any(b["type"] == "actions" for b in shown.blocks or [])

    await sp.slack.slash_command("U2BOB", dm, "notify")
    question = await question_to(fake, dm, "For which group do you want to change")
    action_id, value = button_of(question, "Marketing")
    await sp.slack.block_action("U2BOB", dm, question.ts, action_id, value)
    await fake.wait_for_async(
        lambda: any("How should I tell you" in texts([u]) for u in fake.updates), what="modes"
    )
    [shown] = [p for p in fake.messages_in(dm) if p.ts == question.ts]
    action_id, value = button_of(shown, "daily")
    await sp.slack.block_action("U2BOB", dm, question.ts, action_id, value)
    await fake.wait_for_async(
        lambda: any("daily digest" in texts([u]) for u in fake.updates), what="daily"
    )

    # a bare share cancelled midway stores nothing; thanks get one line, no question
    await sp.slack.slash_command("U2BOB", dm, "share")
    await question_to(fake, dm, "Which group do you want to share in?")
    await sp.slack.event(sp.slack.message_event("U2BOB", dm, "cancel"))
    await question_to(fake, dm, "Cancelled. Nothing was saved.")
    await sp.slack.event(sp.slack.message_event("U2BOB", dm, "Thanks!"))
    thanks = await question_to(fake, dm, "You're welcome")
    assert not any(b["type"] == "actions" for b in thanks.blocks or [])
    with sp.db.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Item)) == 0


async def test_the_story_in_english_on_slack_without_one_usage_error(
    sp: SlackPinwall, fake: FakeSlack
) -> None:
    """Issue 21's acceptance, in English on Slack: join from the offered buttons, share a
    link, open the post and comment by its button, daily, cancel a question — no usage
    error on the way."""
    assert sp.slack is not None
    dm = fake.dm_channel("U2BOB")
    await sp.on_console("admin", "/group create marketing Marketing")

    await sp.slack.slash_command("U2BOB", dm, "join")
    question = await question_to(fake, dm, "Which group do you want to join?")
    await sp.slack.block_action("U2BOB", dm, question.ts, *button_of(question, "Marketing"))
    await fake.wait_for_async(
        lambda: any("You joined Marketing" in texts([u]) for u in fake.updates), what="joined"
    )
    await sp.slack.slash_command("U2BOB", dm, "share marketing https://example.com/poster Poster")
    await question_to(fake, dm, "Shared as #1 in Marketing.")
    await sp.slack.slash_command("U2BOB", dm, "show 1")
    post = await question_to(fake, dm, "No comments yet.")
    await sp.slack.block_action("U2BOB", dm, post.ts, *button_of(post, "Comment"))
    await question_to(fake, dm, "as your next message")
    answer = sp.slack.message_event("U2BOB", dm, "Up in every branch from Monday")
    await sp.slack.event(answer)
    # saved: a ✅ under the answer, not a message
    await fake.wait_for_async(
        lambda: any((r.channel, r.ts) == (dm, answer["ts"]) for r in fake.reactions),
        what="the ✅ under the comment",
    )
    assert [r.name for r in fake.reactions if r.ts == answer["ts"]] == ["white_check_mark"]
    await sp.slack.slash_command("U2BOB", dm, "notify marketing daily")
    await fake.wait_for_async(
        lambda: any("daily digest" in texts([p]) for p in fake.messages_in(dm)), what="daily"
    )
    await sp.slack.slash_command("U2BOB", dm, "share")
    await question_to(fake, dm, "Which group do you want to share in?")
    await sp.slack.event(sp.slack.message_event("U2BOB", dm, "cancel"))
    await question_to(fake, dm, "Cancelled. Nothing was saved.")

    said = texts(fake.messages_in(dm)) + texts(list(fake.updates))
    assert "Usage:" not in said
    assert "Missing:" not in said
    with sp.db.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Item)) == 1


async def test_bare_propose_and_settings_open_modals_and_their_submissions_decide(
    sp: SlackPinwall, fake: FakeSlack
) -> None:
    assert sp.slack is not None
    dm = fake.dm_channel("U2BOB")
    await sp.slack.slash_command("U2BOB", dm, "whoami")
    await sp.settled()
    await sp.slack.slash_command("U2BOB", dm, "propose")
    await fake.wait_for_async(lambda: bool(fake.views), what="the propose modal")
    view = fake.views[-1].view
    assert view["callback_id"] == "pw:propose"
    outlet = view["blocks"][0]["element"]
    assert [o["value"] for o in outlet["options"]] == ["newsroom"]
    assert outlet["initial_option"]["value"] == "newsroom"  # the only one: preselected
    blank = await sp.slack.view_submission("U2BOB", {"outlet": "newsroom", "text": "  "})
    assert blank.json() == {
        "response_action": "errors",
        "errors": {"text": "Write something to share, or a link."},
    }
    await sp.settled()
    with sp.db.uow() as uow:
        assert uow.session.scalars(select(Proposal)).all() == []
    done = await sp.slack.view_submission(
        "U2BOB", {"outlet": "newsroom", "text": "Our new store opens on Monday"}
    )
    assert done.status_code == 200
    assert not done.content
    await question_to(fake, dm, "Proposal P1 for newsroom waits")

    # Settings: the language and time zone as selects, showing what Bob has.
    await sp.slack.slash_command("U2BOB", dm, "settings")
    await fake.wait_for_async(
        lambda: fake.views[-1].view["callback_id"] == "pw:settings", what="the settings modal"
    )
    view = fake.views[-1].view
    language, zone = (b["element"] for b in view["blocks"])
    assert language["initial_option"]["value"] == "en"
    assert zone["initial_option"]["value"] == "Europe/Berlin"
    await sp.slack.view_submission("U2BOB", {"language": "de", "timezone": "Europe/Vienna"})
    await question_to(fake, dm, "Europe/Vienna")
    await sp.settled()
    with sp.db.uow() as uow:
        bob = uow.people.by_handle("bob")
        assert bob is not None
        assert (bob.language, bob.timezone) == ("de", "Europe/Vienna")
    # A guest gets no modal: the core answers the bare command as it does elsewhere.
    opened = len(fake.views)
    await sp.slack.slash_command("U3GUEST", fake.dm_channel("U3GUEST"), "propose")
    await sp.settled()
    assert len(fake.views) == opened
