"""The Matrix adapter against a real Synapse on loopback, with a console member beside it:
commands in rooms and direct chats, bridged rooms both ways, reactions as buttons and as
counted reactions, files through the media repository, restarts without replay or loss,
idempotent sends, rate limits through the outbox, encrypted rooms, invites."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from adapters.matrix.adapter import MatrixAdapter
from app.http import create_app
from bot.errors import ConfigError
from bot.message import Button, Delivered, Message, RateLimited, SendResult, Target
from store.db import Database
from store.locks import Singleton
from store.models import InboxEvent, Item, ItemFile, OutboxMessage, Reaction, Upload
from tests.adapters.conftest import Human, MatrixPinwall, humans, matrix_running
from tests.fakes.synapse import Synapse
from tests.fakes.telegram import png_bytes

HTML = "org.matrix.custom.html"


def relates(event: dict[str, Any]) -> dict[str, Any]:
    return dict(event.get("content", {}).get("m.relates_to") or {})


async def bridged_room(mx: MatrixPinwall, boss: Human, group: str = "marketing") -> str:
    """A Matrix room the boss (a Pinwall admin) connects to `group`."""
    room = await boss.room(mx.bot.user_id, name=group.title())
    await boss.say(room, f"!pw bridge {group}")
    await boss.bot_said(room, mx.bot.user_id, "now connected")
    return room


async def test_a_command_in_a_room_gets_its_answer(
    synapse: Synapse, sqlite_db: Database, tmp_path: Path
) -> None:
    bot = synapse.register("pinwall")
    async with (
        humans(synapse, "boss") as [boss],
        matrix_running(sqlite_db, synapse, bot, tmp_path) as mx,
    ):
        assert mx.adapter.healthy()
        room = await boss.room(bot.user_id)
        await boss.say(room, "!pw help")
        answer = await boss.bot_said(room, bot.user_id, "!pw help all")
        assert answer["content"]["format"] == HTML
        assert answer["content"]["msgtype"] == "m.notice"
        # Chatter in a room is no command, and a bare command word there neither.
        await boss.say(room, "groups are great")
        # In a direct chat the prefix is not needed.
        dm = await boss.dm(bot.user_id)
        await boss.say(dm, "whoami")
        who = await boss.bot_said(dm, bot.user_id, f"@{boss.user.localpart}")
        assert f"<b>@{boss.user.localpart}</b>" in who["content"]["formatted_body"]
        await boss.say(dm, "!pw groups")
        await boss.bot_said(dm, bot.user_id, "There are no groups yet")
    assert len(boss.from_bot(room, bot.user_id)) == 1  # only the answer to the command


async def test_a_share_from_matrix_reaches_a_console_member_and_a_bridged_console_room(
    synapse: Synapse, db: Database, tmp_path: Path
) -> None:
    bot = synapse.register("pinwall")
    async with humans(synapse, "boss") as [boss]:
        admins = frozenset({("matrix", boss.user_id)})
        async with matrix_running(db, synapse, bot, tmp_path, admins=admins) as mx:
            await mx.on_console("admin", "/group create marketing Marketing")
            await mx.on_console("alice", "/join marketing", "/notify marketing instant")
            await mx.on_console("admin", "/bridge marketing", room="lobby")
            room = await bridged_room(mx, boss)

            # A message in the bridged Matrix room is a post of the group...
            said = await boss.say(
                room, "Competitor poster at the station https://example.com/poster"
            )
            post = await mx.printed_eventually("alice", "Competitor poster")
            assert post.startswith(f"[alice] {boss.user.localpart} via Matrix in Marketing:")
            assert "https://example.com/poster" in post
            await mx.printed_eventually("#lobby", "Competitor poster")

            # ... a console post shows in the Matrix room, as HTML with a plain fallback ...
            await mx.on_console("alice", "/share marketing https://example.com/flyer The new flyer")
            relayed = await boss.bot_said(room, bot.user_id, "The new flyer")
            content = relayed["content"]
            assert content["msgtype"] == "m.text"
            assert content["format"] == HTML
            assert '<a href="https://example.com/flyer">' in content["formatted_body"]
            assert "<b>alice via Console in Marketing</b>" in content["formatted_body"]
            assert content["body"].startswith("alice via Console in Marketing")
            # ... with no choices and no reactions of the bot under it (a quiet room) ...
            assert content["body"].endswith("https://example.com/flyer")
            assert "Comment" not in content["body"]
            await prompt_saved(mx, room, relayed["event_id"], post=True)
            # ... and a reply to it there is a comment, threaded in the console room too.
            await boss.say(room, "Looks good!", reply_to=relayed["event_id"])
            await mx.printed_eventually("#lobby", "Looks good!")
            await mx.printed_eventually("alice", "Looks good!")  # told as the post's author
    with db.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Item)) == 2
        refs = uow.outbox.find_ref("matrix", room, said)
        assert refs is not None  # replies to the original find the post


async def prompt_saved(
    mx: MatrixPinwall, room: str, event_id: str, *, post: bool = False, within: float = 10.0
) -> None:
    """Waits until the delivery of the bot's message is recorded: its choices (a prompt)
    or, for a post, where it shows (the reference replies and reactions find it by)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        if post:
            with mx.db.uow() as uow:
                if uow.outbox.find_ref("matrix", room, event_id) is not None:
                    return
        elif await mx.hub.state.button_prompt("matrix", room, event_id) is not None:
            return
        if loop.time() > deadline:
            raise AssertionError(f"the delivery of {event_id} was not recorded")
        await asyncio.sleep(0.02)


def bot_keys(human: Human, room: str, bot: str, event_id: str) -> list[str]:
    """The reaction keys the bot put under an event."""
    return [
        relates(e)["key"]
        for e in human.from_bot(room, bot, "m.reaction")
        if relates(e).get("event_id") == event_id
    ]


async def wait_keys(human: Human, room: str, bot: str, event_id: str, n: int) -> list[str]:
    """The reaction keys the bot put under an event, once there are n."""

    def mine() -> list[str]:
        return [
            relates(e)["key"]
            for e in human.from_bot(room, bot, "m.reaction")
            if relates(e).get("event_id") == event_id
        ]

    await human.wait_for(room, lambda _e: len(mine()) >= n, what=f"{n} reactions of the bot")
    return mine()


async def test_a_checkmark_reaction_on_a_relayed_post_is_counted(
    synapse: Synapse, sqlite_db: Database, tmp_path: Path
) -> None:
    bot = synapse.register("pinwall")
    async with humans(synapse, "boss") as [boss]:
        admins = frozenset({("matrix", boss.user_id)})
        async with matrix_running(sqlite_db, synapse, bot, tmp_path, admins=admins) as mx:
            await mx.on_console("admin", "/group create marketing Marketing")
            room = await bridged_room(mx, boss)
            await mx.on_console("admin", "/share marketing Spring campaign draft")
            relayed = await boss.bot_said(room, bot.user_id, "Spring campaign draft")
            await prompt_saved(mx, room, relayed["event_id"], post=True)
            await boss.react(room, relayed["event_id"], "✅")
            await boss.react(room, relayed["event_id"], "👍")  # a reaction on a post, no toggle

            def reactions() -> list[str]:
                with sqlite_db.uow() as uow:
                    return sorted(uow.session.scalars(select(Reaction.emoji)).all())

            for _ in range(200):
                if len(reactions()) == 2:
                    break
                await asyncio.sleep(0.05)
            assert reactions() == ["✅", "👍"]
            # Nobody was answered for a reaction: the room only has the bridge answer and
            # the post.
            await mx.worker.drain()
            assert [e["content"]["body"][:11] for e in boss.from_bot(room, bot.user_id)] == [
                "This room i",
                "admin via C",
            ]
            assert boss.from_bot(room, bot.user_id, "m.reaction") == []  # none seeded


async def test_an_image_round_trip(synapse: Synapse, sqlite_db: Database, tmp_path: Path) -> None:
    """A photo sent to the bot in a direct chat: fetched (authenticated media) into the
    blob store, shared by a reaction on the question, and delivered back as m.image —
    uploaded once, the same mxc:// URI in every room."""
    bot = synapse.register("pinwall")
    async with humans(synapse, "boss", "carla") as [boss, carla]:
        admins = frozenset({("matrix", boss.user_id)})
        async with matrix_running(sqlite_db, synapse, bot, tmp_path, admins=admins) as mx:
            await mx.on_console("admin", "/group create marketing Marketing")
            await mx.on_console("alice", "/join marketing", "/notify marketing instant")
            room = await bridged_room(mx, boss)
            carla_dm = await carla.dm(bot.user_id)
            await carla.say(carla_dm, "join marketing")
            await carla.bot_said(carla_dm, bot.user_id, "You joined Marketing")
            await carla.say(carla_dm, "notify marketing instant")
            await carla.bot_said(carla_dm, bot.user_id, "instantly")

            dm = await boss.dm(bot.user_id)
            await boss.say(dm, "join marketing")
            await boss.bot_said(dm, bot.user_id, "You joined Marketing")
            photo = png_bytes(40, 30)
            await boss.send_image(dm, photo, "poster.png")
            question = await boss.bot_said(dm, bot.user_id, "Which group")
            assert question["content"]["body"].endswith("[1] Marketing")
            await prompt_saved(mx, dm, question["event_id"])
            assert bot_keys(boss, dm, bot.user_id, question["event_id"]) == []  # no keycaps
            # A person's keycap still means its number.
            await boss.react(dm, question["event_id"], "1️⃣")

            # The question shows the outcome in its place; the bot had no reaction to take back.
            edit = await boss.wait_for(
                dm,
                lambda e: (
                    relates(e).get("rel_type") == "m.replace"
                    and relates(e).get("event_id") == question["event_id"]
                ),
                what="the edit of the question",
            )
            assert edit["content"]["m.new_content"]["body"] == "Shared as #1 in Marketing."
            assert not [e for e in boss.events[dm] if e.get("type") == "m.room.redaction"]

            # The console member sees the file; both Matrix rooms get it as m.image.
            await mx.printed_eventually("alice", "📎 poster.png")
            images = []
            for human, where in ((boss, room), (carla, carla_dm)):
                image = await human.wait_for(
                    where,
                    lambda e: (
                        e.get("sender") == bot.user_id
                        and e.get("content", {}).get("msgtype") == "m.image"
                    ),
                    what="the image",
                )
                images.append(image)
            urls = {i["content"]["url"] for i in images}
            assert len(urls) == 1
            [url] = urls
            assert url.startswith("mxc://localhost/")
            assert images[0]["content"]["info"]["mimetype"] == "image/png"
            assert await carla.download(url) == photo
    with sqlite_db.uow() as uow:
        [blob_id] = uow.session.scalars(select(ItemFile.blob_id)).all()
        assert uow.session.scalar(select(func.count()).select_from(Upload)) == 1
    assert mx.hub.blobs is not None
    assert mx.hub.blobs.read(blob_id) == photo


async def test_a_restart_neither_replays_nor_loses_events(
    synapse: Synapse, sqlite_db: Database, tmp_path: Path
) -> None:
    bot = synapse.register("pinwall")
    async with humans(synapse, "boss") as [boss]:
        admins = frozenset({("matrix", boss.user_id)})
        options: dict[str, Any] = {"admins": admins, "timeline_limit": 3}
        async with matrix_running(sqlite_db, synapse, bot, tmp_path, **options) as mx:
            await mx.on_console("admin", "/group create marketing Marketing")
            room = await bridged_room(mx, boss)
            dm = await boss.dm(bot.user_id)

            # Killed between the sync and the processing of its batch.
            synced = asyncio.Event()

            async def dies(resp: Any, since: str) -> None:
                synced.set()
                raise asyncio.CancelledError

            mx.adapter.sync._take = dies  # type: ignore[method-assign]
            await boss.say(dm, "whoami")
            await asyncio.wait_for(synced.wait(), 10)
        assert mx.adapter._syncer is None

        # While Pinwall is down, more is said than one sync's timeline holds.
        for i in range(7):
            await boss.say(room, f"Posting while you were away, number {i}")

        async with matrix_running(sqlite_db, synapse, bot, tmp_path, **options) as mx:
            await boss.bot_said(dm, bot.user_id, f"@{boss.user.localpart}")

            # Recorded, then killed before applying: applied after the next start.
            recorded = asyncio.Event()

            async def dies_before_applying() -> None:
                recorded.set()
                raise asyncio.CancelledError

            for _ in range(200):
                with sqlite_db.uow() as uow:
                    if uow.session.scalar(select(func.count()).select_from(Item)) == 7:
                        break
                await asyncio.sleep(0.05)
            mx.adapter.sync._apply = dies_before_applying  # type: ignore[method-assign]
            await boss.say(dm, "groups")
            await asyncio.wait_for(recorded.wait(), 10)

        async with matrix_running(sqlite_db, synapse, bot, tmp_path, **options) as mx:
            await boss.bot_said(dm, bot.user_id, "Marketing")
            await asyncio.sleep(0.5)  # time for a replay to show, if there were one
            await mx.worker.drain()

    answers = [e["content"]["body"] for e in boss.from_bot(dm, bot.user_id)]
    assert sum(a.startswith(f"You are @{boss.user.localpart}") for a in answers) == 1
    assert sum("Marketing" in a for a in answers) == 1
    with sqlite_db.uow() as uow:
        texts = uow.session.scalars(select(Item.text).order_by(Item.id)).all()
        assert texts == [f"Posting while you were away, number {i}" for i in range(7)]
        ids = uow.session.scalars(select(InboxEvent.event_id)).all()
        assert len(ids) == len(set(ids))


async def test_a_send_retried_with_the_same_transaction_id_appears_once(
    synapse: Synapse, sqlite_db: Database, tmp_path: Path
) -> None:
    bot = synapse.register("pinwall")
    async with (
        humans(synapse, "boss") as [boss],
        matrix_running(sqlite_db, synapse, bot, tmp_path) as mx,
    ):
        room = await boss.room(bot.user_id)
        target = Target("matrix", "room", room)
        message = Message(
            text="Approve this?",
            buttons=(
                Button(label="✅", action="test.yes", value="1"),
                Button(label="❌", action="test.no", value="1"),
            ),
        )
        first = await mx.adapter.send(target, message, key="pw42")
        again = await mx.adapter.send(target, message, key="pw42")  # after a "crash"
        other = await mx.adapter.send(target, message, key="pw43")
        assert isinstance(first, Delivered)
        assert isinstance(again, Delivered)
        assert isinstance(other, Delivered)
        assert again.message_id == first.message_id
        assert other.message_id != first.message_id
        await boss.bot_said(room, bot.user_id, "Approve this?")
        assert first.message_id is not None
        assert await wait_keys(boss, room, bot.user_id, first.message_id, 2) == ["✅", "❌"]
        await boss.wait_for(
            room,
            lambda e: e.get("event_id") == other.message_id,
            what="the other message",
        )
        await asyncio.sleep(0.3)
    texts = [e for e in boss.from_bot(room, bot.user_id) if "Approve" in e["content"]["body"]]
    assert len(texts) == 2  # pw42 once, pw43 once
    assert len(await wait_keys(boss, room, bot.user_id, first.message_id, 2)) == 2


async def test_m_limit_exceeded_goes_through_the_outbox_with_retry_after(
    synapse_default_limits: Synapse, sqlite_db: Database, tmp_path: Path
) -> None:
    """Synapse with its default limits (rc_message 0.2/s, burst 10; the bot's join takes
    one): the 429s come back
    to the outbox as RateLimited with Synapse's retry-after (nio does not sleep on them),
    and every message arrives once, in order."""
    synapse = synapse_default_limits
    bot = synapse.register("pinwall")
    results: list[SendResult] = []
    async with (
        humans(synapse, "boss") as [boss],
        matrix_running(sqlite_db, synapse, bot, tmp_path) as mx,
    ):
        room = await boss.room(bot.user_id)
        send = mx.adapter.send

        async def recording(target: Target, message: Message, *, key: str = "") -> SendResult:
            result = await send(target, message, key=key)
            results.append(result)
            return result

        mx.adapter.send = recording  # type: ignore[method-assign]
        with sqlite_db.uow() as uow:
            for i in range(10):
                mx.core.enqueue(
                    uow,
                    Target("matrix", "room", room),
                    Message(text=f"Notice {i:02d}"),
                    None,
                    mx.hub.clock.now(),
                )
            uow.commit()
        mx.hub.wake()
        await boss.bot_said(room, bot.user_id, "Notice 09", within=30)
        await mx.worker.drain()
    limited = [r for r in results if isinstance(r, RateLimited)]
    assert limited, results
    assert all(1.0 <= r.retry_after <= 10.0 and r.everywhere for r in limited)
    notices = [
        e["content"]["body"]
        for e in boss.from_bot(room, bot.user_id)
        if "Notice" in e["content"]["body"]
    ]
    assert notices == [f"Notice {i:02d}" for i in range(10)]
    with sqlite_db.uow() as uow:
        rows = uow.session.scalars(select(OutboxMessage)).all()
        assert all(r.status == "sent" for r in rows)
        assert all(r.attempts == 1 for r in rows)  # a 429 is no failed attempt


async def test_an_encrypted_room_is_told_once_that_the_bot_cannot_read_it(
    synapse: Synapse, sqlite_db: Database, tmp_path: Path
) -> None:
    bot = synapse.register("pinwall")
    async with humans(synapse, "boss") as [boss]:
        async with matrix_running(sqlite_db, synapse, bot, tmp_path):
            room = await boss.create_room(invite=[bot.user_id], name="Secret", encrypted=True)
            await boss.joined(room, bot.user_id)
            told = await boss.bot_said(room, bot.user_id, "can't read encrypted messages")
            assert "!pw bridge" in told["content"]["body"]
            for _ in range(2):  # what the bot cannot read, it says so no second time
                await boss.send(
                    room,
                    "m.room.encrypted",
                    {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AAAA", "session_id": "x"},
                )
        async with matrix_running(sqlite_db, synapse, bot, tmp_path):
            await boss.send(
                room,
                "m.room.encrypted",
                {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "BBBB", "session_id": "x"},
            )
            await boss.say(room, "!pw help")  # unencrypted, so readable: answered
            await boss.bot_said(room, bot.user_id, "!pw help all")
    assert sum("encrypted" in e["content"]["body"] for e in boss.from_bot(room, bot.user_id)) == 1


async def test_invites_from_strangers_are_refused_unless_they_bring_a_code(
    synapse: Synapse, sqlite_db: Database, tmp_path: Path
) -> None:
    """Only example.org is the company here: localhost users are strangers."""
    bot = synapse.register("pinwall")
    async with humans(synapse, "frank") as [frank]:
        options: dict[str, Any] = {"member_servers": ("example.org",)}
        async with matrix_running(sqlite_db, synapse, bot, tmp_path, **options) as mx:
            refused = await frank.create_room(invite=[bot.user_id], direct=True)
            leave = await frank.wait_for(
                refused,
                lambda e: (
                    e.get("type") == "m.room.member"
                    and e.get("state_key") == bot.user_id
                    and e["content"].get("membership") == "leave"
                ),
                what="the refusal",
            )
            assert "invite code" in leave["content"].get("reason", "")

            await mx.on_console("admin", "/group create franchise Franchise --externals")
            await mx.on_console("admin", "/invite partner franchise")
            [code] = re.findall(r"redeem ([A-Za-z0-9]{10})", mx.printed("admin")[-1])
            # Invited with the code as the reason (Element: /invite @bot CODE).
            dm = await frank.create_room(invite=[], direct=False)
            await asyncio.to_thread(
                synapse.request,
                "PUT",
                f"/_matrix/client/v3/rooms/{dm}/state/m.room.member/{bot.user_id}",
                {"membership": "invite", "is_direct": True, "reason": code},
                token=frank.user.access_token,
            )
            await frank.joined(dm, bot.user_id)
            await frank.bot_said(dm, bot.user_id, "Welcome to Pinwall")
            await frank.say(dm, "groups")
            await frank.bot_said(dm, bot.user_id, "Franchise")
            # Known now: a plain invite of his is accepted.
            room = await frank.room(bot.user_id, name="Franchise Nord")
            await frank.say(room, "!pw help")
            await frank.bot_said(room, bot.user_id, "!pw share")


async def test_login_with_a_password_keeps_one_device_and_a_wrong_token_is_named(
    synapse: Synapse, sqlite_db: Database, tmp_path: Path
) -> None:
    bot = synapse.register("pinwall")
    devices = []
    async with humans(synapse, "boss") as [boss]:
        for _ in range(2):
            async with matrix_running(sqlite_db, synapse, bot, tmp_path, password=True) as mx:
                devices.append(mx.adapter.client.device_id if mx.adapter.client else None)
                room = await boss.room(bot.user_id, name=f"Room {len(devices)}")
                await boss.say(room, "!pw help")
                await boss.bot_said(room, bot.user_id, "!pw")
    assert devices[0] == devices[1]
    assert devices[0] != bot.device_id  # its own device, not the registration's

    wrong = MatrixPinwall(sqlite_db, synapse, bot, tmp_path)
    wrong.adapter.access_token = "syt_not_a_token"
    with pytest.raises(ConfigError, match=r"^PINWALL_MATRIX_ACCESS_TOKEN: "):
        await wrong.adapter.start()
    wrong.hub.close()


def test_settings_name_what_is_missing() -> None:
    from app.config import load_settings

    with pytest.raises(ConfigError, match=r"^PINWALL_MATRIX_USER_ID: missing"):
        load_settings(matrix_homeserver="https://matrix.example.org")
    with pytest.raises(ConfigError, match=r"^PINWALL_MATRIX_ACCESS_TOKEN: missing"):
        load_settings(matrix_homeserver="https://matrix.example.org", matrix_user_id="@pw:x.org")
    with pytest.raises(ConfigError, match=r"^PINWALL_MATRIX_USER_ID: "):
        load_settings(
            matrix_homeserver="https://matrix.example.org",
            matrix_user_id="pinwall",
            matrix_password="x",
        )
    with pytest.raises(ConfigError, match=r"^PINWALL_MATRIX_HOMESERVER: "):
        load_settings(matrix_homeserver="matrix.example.org")
    settings = load_settings(
        matrix_homeserver="https://matrix.example.org",
        matrix_user_id="@pinwall:example.org",
        matrix_access_token="t",
        matrix_member_servers="example.org, Partner.example",
    )
    assert settings.matrix_member_server_list() == ["example.org", "partner.example"]
    assert "matrix" in settings.messengers


async def test_the_wiring_builds_the_matrix_adapter(tmp_path: Path) -> None:
    from app.config import load_settings
    from app.wiring import build

    settings = load_settings(
        database_url=f"sqlite:///{tmp_path / 'pinwall.db'}",
        data_dir=tmp_path / "data",
        matrix_homeserver="http://127.0.0.1:9",
        matrix_user_id="@pinwall:example.org",
        matrix_password="x",
    )
    program = build(settings)
    try:
        adapter = program.hub.adapters["matrix"]
        assert isinstance(adapter, MatrixAdapter)
        assert adapter.me.member_servers == frozenset({"example.org"})
        assert adapter.command_prefix == "!pw "
        with pytest.raises(ConfigError, match=r"^PINWALL_MATRIX_HOMESERVER: cannot reach"):
            await adapter.start()
    finally:
        program.hub.close()
        program.lock.release()
        program.db.dispose()


@pytest.mark.parametrize(
    "db", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
async def test_the_sync_waits_while_another_instance_holds_its_lock(
    synapse: Synapse, db: Database, tmp_path: Path
) -> None:
    """Several instances on PostgreSQL (SQLite serves one): only the one that holds the
    sync lock syncs (it is asked before every sync); another takes over once it is free."""
    other_db = Database(db.url)
    other = Singleton(other_db, "matrix-sync")
    bot = synapse.register("pinwall")
    try:
        assert await asyncio.to_thread(other.try_acquire)
        async with (
            humans(synapse, "boss") as [boss],
            matrix_running(db, synapse, bot, tmp_path) as mx,
        ):
            room = await boss.create_room(invite=[bot.user_id], name="Team room")
            await asyncio.sleep(1.5)
            assert mx.adapter.healthy()  # waiting for the lock is no failure
            with pytest.raises(AssertionError, match="joining"):
                await boss.joined(room, bot.user_id, within=0.5)  # nobody synced the invite
            await asyncio.to_thread(other.release)  # the other instance stops
            await boss.joined(room, bot.user_id, within=15.0)
            await boss.say(room, "!pw help")
            await boss.bot_said(room, bot.user_id, "!pw help all")
    finally:
        other.release()
        other_db.dispose()


async def test_healthz_says_why_matrix_does_not_receive(
    synapse: Synapse, sqlite_db: Database, tmp_path: Path
) -> None:
    """A sync the homeserver refuses (the bot's token was revoked) and a sync loop that
    ended are each a 503 with the reason."""
    bot = synapse.register("pinwall")
    async with (
        matrix_running(sqlite_db, synapse, bot, tmp_path) as mx,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(mx.hub)), base_url="http://pinwall"
        ) as client,
    ):
        health = await client.get("/healthz")
        assert (health.status_code, health.json()["adapters"]["matrix"]) == (200, True)
        synapse.request("POST", "/_matrix/client/v3/logout", {}, token=bot.access_token)
        deadline = asyncio.get_running_loop().time() + 20
        while mx.adapter.healthy():
            assert asyncio.get_running_loop().time() < deadline, "still healthy"
            await asyncio.sleep(0.05)
        health = await client.get("/healthz")
        assert health.status_code == 503
        reason = health.json()["problems"]["matrix"]
        assert reason.startswith("Matrix sync fails: "), reason
        assert "M_UNKNOWN_TOKEN" in reason, reason

        syncer = mx.adapter._syncer  # ended from outside, as an error nothing expects would
        assert syncer is not None
        syncer.cancel()
        await asyncio.gather(syncer, return_exceptions=True)
        health = await client.get("/healthz")
        assert health.status_code == 503
        assert health.json()["problems"]["matrix"] == "Matrix sync stopped (cancelled)"


async def test_a_closed_group_is_members_only_and_a_reaction_on_the_request_lets_in(
    synapse: Synapse, sqlite_db: Database, tmp_path: Path
) -> None:
    """Issue 18 on Matrix: a member of the homeserver reads nothing of a closed group she is
    not in, is told to ask with "!pw join", asks; the moderator's card comes to his direct
    chat with its buttons as numbered choices, and his "1" lets her in."""
    bot = synapse.register("pinwall")
    async with (
        humans(synapse, "boss", "mia") as [boss, mia],
        matrix_running(sqlite_db, synapse, bot, tmp_path) as mx,
    ):
        boss_dm, mia_dm = await boss.dm(bot.user_id), await mia.dm(bot.user_id)
        await boss.say(boss_dm, "group create sales Sales --closed")
        await boss.bot_said(boss_dm, bot.user_id, "Group sales (Sales) created")
        await boss.say(boss_dm, "share sales Q4 pipeline review")
        await boss.bot_said(boss_dm, bot.user_id, "Shared as #1")
        moderator = boss.user.localpart

        await mia.say(mia_dm, "items sales")
        closed = await mia.bot_said(mia_dm, bot.user_id, "Sales is a closed group")
        assert f"Its moderators: @{moderator}." in closed["content"]["body"]
        assert "send: !pw join sales" in closed["content"]["body"]
        await mia.say(mia_dm, "comment #1 me too")

        def refusals() -> int:
            bodies = [e["content"]["body"] for e in mia.from_bot(mia_dm, bot.user_id)]
            return sum("Sales is a closed group" in b for b in bodies)

        await mia.wait_for(mia_dm, lambda _e: refusals() == 2, what="a second refusal")

        await mia.say(mia_dm, "join sales")
        await mia.bot_said(mia_dm, bot.user_id, "I asked its moderators")
        card = await boss.bot_said(boss_dm, bot.user_id, "asks to join Sales")
        assert card["content"]["body"].endswith("[1] Let in   [2] Decline")
        await prompt_saved(mx, boss_dm, card["event_id"])
        await boss.say(boss_dm, "1")
        await boss.wait_for(
            boss_dm,
            lambda e: "is now a member of Sales" in str(e.get("content", {}).get("body", "")),
            what="the card showing the outcome",
        )
        await mia.bot_said(mia_dm, bot.user_id, f"@{moderator} let you into Sales")
        await mia.say(mia_dm, "items sales")
        await mia.bot_said(mia_dm, bot.user_id, "Q4 pipeline review")


async def test_comments_go_in_the_posts_thread_as_html_and_thread_answers_are_comments(
    synapse: Synapse, sqlite_db: Database, tmp_path: Path
) -> None:
    bot = synapse.register("pinwall")
    async with humans(synapse, "boss") as [boss]:
        admins = frozenset({("matrix", boss.user_id)})
        async with matrix_running(sqlite_db, synapse, bot, tmp_path, admins=admins) as mx:
            await mx.on_console("admin", "/group create marketing Marketing")
            await mx.on_console("alice", "/join marketing")
            room = await bridged_room(mx, boss)
            await mx.on_console("alice", "/share marketing Poster <b>draft</b> & more")
            post = await boss.bot_said(room, bot.user_id, "Poster")
            content = post["content"]
            assert content["msgtype"] == "m.text"
            assert "Poster &lt;b&gt;draft&lt;/b&gt; &amp; more" in content["formatted_body"]
            assert "Poster <b>draft</b> & more" in content["body"]  # the plain fallback
            await prompt_saved(mx, room, post["event_id"], post=True)
            # A comment from elsewhere shows in the post's thread, escaped.
            await mx.on_console("alice", "/comment 1 <script>x</script> looks good")
            comment = await boss.bot_said(room, bot.user_id, "looks good")
            assert relates(comment) == {
                "rel_type": "m.thread",
                "event_id": post["event_id"],
                "is_falling_back": True,
                "m.in_reply_to": {"event_id": post["event_id"]},
            }
            assert "<script>" not in comment["content"]["formatted_body"]
            assert comment["content"]["msgtype"] == "m.text"  # a person's words, relayed
            # An answer in that thread is a comment on the post, told to its author.
            answer = await boss.send(
                room,
                "m.room.message",
                {
                    "msgtype": "m.text",
                    "body": "Agreed, print it",
                    "m.relates_to": {
                        "rel_type": "m.thread",
                        "event_id": post["event_id"],
                        "is_falling_back": True,
                        "m.in_reply_to": {"event_id": comment["event_id"]},
                    },
                },
            )
            await mx.printed_eventually("alice", "Agreed, print it")
            await mx.worker.drain()
            await boss.wait_for(
                room,
                lambda e: e.get("type") == "m.reaction" and e.get("sender") == bot.user_id,
                what="the bot's ✅ under the answer",
            )
    # The bot seeded no reaction under the post; the thread answer made no new post, and
    # "saved" is the bot's ✅ under the answer (no message).
    reactions = boss.from_bot(room, bot.user_id, "m.reaction")
    assert [
        (r["content"]["m.relates_to"]["event_id"], r["content"]["m.relates_to"]["key"])
        for r in reactions
    ] == [(answer, "✅")]
    bodies = [str(e["content"].get("body")) for e in boss.from_bot(room, bot.user_id)]
    assert not any("is saved" in b for b in bodies)
    with sqlite_db.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Item)) == 1
