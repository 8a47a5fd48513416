"""Groups bridged across messengers: rooms, threads, reactions, files, failed deliveries."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from adapters.memory import MemoryAdapter
from bot.events import Actor, Conversation, InboundFile, MessageReceived, MessageRefIn, Meta
from bot.message import DeliveryFailed
from store.blobs import BlobStore
from store.models import ItemFile, OutboxMessage
from tests.bot.conversation import en, other_messenger, say_on
from tests.harness import Said, World

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def room_message(
    adapter: MemoryAdapter,
    who: str,
    room: str,
    text: str,
    now: datetime,
    *,
    message_id: str | None = None,
    reply_to: MessageRefIn | None = None,
    files: tuple[InboundFile, ...] = (),
    direct: bool = False,
) -> MessageReceived:
    return MessageReceived(
        meta=Meta(
            platform=adapter.platform,
            event_id=adapter.new_event_id(),
            actor=Actor(
                platform=adapter.platform, external_id=who, username=who, trust=adapter.trust
            ),
            conversation=Conversation(external_id=who if direct else room, direct=direct),
            time=now,
        ),
        text=text,
        message_id=message_id,
        reply_to=reply_to,
        attachments=files,
    )


async def send(world: World, event: MessageReceived) -> Said:
    before = len(world.adapter.sent)
    await world.hub.submit(event)
    await world.worker.drain()
    return Said(world.adapter.sent[before:])


async def marketing_with_two_rooms(world: World) -> MemoryAdapter:
    """marketing, bridged to memory room "lobby" and to telegram group "tg-marketing"."""
    telegram = other_messenger(world, "telegram")
    await world.say("admin", "/group create marketing Marketing")
    await world.say("admin", "/bridge marketing", room="lobby")
    await world.hub.submit(telegram.event("admin-tg", "/link", world.clock.now()))
    await world.say("alice", "/join marketing")
    await world.say("alice", "/notify marketing instant")
    await world.say("bob", "/join marketing")
    await world.say("carol", "/join marketing")  # daily: nothing now
    await world.say("admin", "/bridge marketing", room="tg-marketing-via-memory")
    return telegram


async def test_a_share_reaches_every_bridged_room_and_instant_member_once(world: World) -> None:
    await marketing_with_two_rooms(world)
    out = await world.say("bob", "/share marketing https://example.com/p Poster")
    assert sorted(out.addresses) == ["alice", "bob", "lobby", "tg-marketing-via-memory"]
    assert "bob in Marketing" in out.text("lobby")
    assert "carol" not in out.addresses


async def test_a_message_in_a_bridged_room_is_a_post_and_not_echoed_back(world: World) -> None:
    await marketing_with_two_rooms(world)
    out = await send(
        world,
        room_message(
            world.adapter,
            "bob",
            "lobby",
            "Hello from the lobby",
            world.clock.now(),
            message_id="lobby-1",
        ),
    )
    assert sorted(out.addresses) == ["alice", "tg-marketing-via-memory"]
    assert "Hello from the lobby" in out.text("alice")


async def test_replies_thread_onto_the_post_everywhere_it_shows(world: World) -> None:
    await marketing_with_two_rooms(world)
    posted = await send(
        world,
        room_message(
            world.adapter,
            "bob",
            "lobby",
            "Poster at the station",
            world.clock.now(),
            message_id="lobby-1",
        ),
    )
    copy = posted.to("tg-marketing-via-memory")[0]
    # alice replies to the bridged copy in the other room: a comment, shown in the lobby
    # threaded under the original message, and not repeated where it was said.
    out = await send(
        world,
        room_message(
            world.adapter,
            "alice",
            "tg-marketing-via-memory",
            "Seen it too!",
            world.clock.now(),
            reply_to=MessageRefIn(conversation=copy.target.address, message_id=copy.message_id),
        ),
    )
    lobby = out.to("lobby")
    assert len(lobby) == 1
    assert lobby[0].message.thread == "lobby-1"
    assert "@alice on #1: Seen it too!" in out.text("lobby")
    assert "tg-marketing-via-memory" not in [
        s.target.address for s in out.sent if "@alice on" in out.text(s.target.address)
    ]
    assert "@alice commented on your post #1" in out.text("bob")
    # and a reply to the original in the lobby threads under the copy in the other room
    out = await send(
        world,
        room_message(
            world.adapter,
            "carol",
            "lobby",
            "Nice",
            world.clock.now(),
            reply_to=MessageRefIn(conversation="lobby", message_id="lobby-1"),
        ),
    )
    other = out.to("tg-marketing-via-memory")
    assert [s.message.thread for s in other] == [copy.message_id]


async def test_a_reaction_on_a_bridged_copy_counts_on_the_post(world: World) -> None:
    await marketing_with_two_rooms(world)
    out = await world.say("bob", "/share marketing A note")
    copy = out.to("lobby")[0]
    await world.react("carol", copy, "🔥", room="lobby")
    items = await world.say("bob", "/items marketing")
    assert "🔥 1" in items.text("bob")  # issue 21: as itself (it was counted as 👍 1)


async def test_files_are_stored_once_and_shown_with_the_post(world: World, tmp_path: Path) -> None:
    await marketing_with_two_rooms(world)
    blobs = BlobStore(tmp_path)
    stored = blobs.put(PNG)
    photo = InboundFile(
        name="poster.png", blob_id=stored.id, mime_type=stored.mime_type, size=stored.size
    )
    # a photo sent to the bot in a direct chat starts the share flow
    out = await send(
        world,
        room_message(
            world.adapter,
            "bob",
            "",
            "Competitor poster",
            world.clock.now(),
            files=(photo,),
            direct=True,
        ),
    )
    ask = out.to("bob")[0]
    assert [b.label for b in ask.message.buttons] == ["Marketing"]
    out = await world.press("bob", ask, 0)
    delivered = out.to("alice")[0].message
    assert [(f.name, f.mime_type, f.image) for f in delivered.files] == [
        ("poster.png", "image/png", True)
    ]
    # the same file again is the same blob
    await send(
        world, room_message(world.adapter, "bob", "lobby", "", world.clock.now(), files=(photo,))
    )
    with world.db.uow() as uow:
        rows = uow.session.scalars(select(ItemFile)).all()
        assert {r.blob_id for r in rows} == {stored.id}
        assert len(rows) == 2


async def test_admins_list_and_retry_failed_deliveries(world: World) -> None:
    telegram = other_messenger(world, "telegram")
    await world.say("admin", "/group create marketing Marketing")
    await say_on(world, telegram, "alice", "/join marketing")
    await say_on(world, telegram, "alice", "/notify marketing instant")
    await world.say("bob", "/join marketing")
    telegram.results.append(DeliveryFailed("bot was blocked", permanent=True))
    out = await world.say("bob", "/share marketing Hello")
    assert out.addresses == ["bob", "admin"]  # the admin is told of the dead letter at once
    assert out.text("admin").startswith("A delivery failed for good:")
    assert telegram.to("alice")[-1].message.text != "Hello"  # that send failed for good
    failed = await world.say("admin", "/outbox failed")
    assert "1 delivery failed for good:" in failed.text("admin")
    assert "telegram:alice" in failed.text("admin")
    assert "bot was blocked" in failed.text("admin")
    refused = await world.say("bob", "/outbox failed")
    assert "Only admins can do that." in refused.text("bob")
    again = await world.say("admin", "/outbox retry")
    assert "1 delivery is queued again." in again.text("admin")
    assert telegram.to("alice")[-1].message.text == "Hello"
    with world.db.uow() as uow:
        statuses = set(uow.session.scalars(select(OutboxMessage.status)))
    assert statuses == {"sent"}


async def test_a_bridged_room_is_moved_to_another_group_only_by_its_moderators(
    world: World,
) -> None:
    """Anyone may make a group (and moderate it), but not take another group's room for
    it: in the secret board's room, `/bridge leaks` is refused without naming the board,
    and what the board says there stays the board's."""
    await world.say("bob", "/help")
    await world.say("admin", "/group create board Board --secret")
    await world.say("admin", "/add bob board")
    await world.say("admin", "/bridge board", room="boardroom")
    await world.say("mallory", "/group create leaks Leaks")
    out = await world.say("mallory", "/bridge leaks", room="boardroom")
    refused = out.text("boardroom") + out.text("mallory")
    assert en("error.bridged_elsewhere") in refused
    assert "Board" not in refused
    await world.say("bob", "Signing is on Friday", room="boardroom")
    assert "Signing is on Friday" not in (await world.say("mallory", "/items leaks")).text(
        "mallory"
    )
    out = await world.say("admin", "/share board Second board note")
    assert "boardroom" in out.addresses
    # The board's moderator (here the admin) may move it.
    out = await world.say("admin", "/bridge leaks", room="boardroom")
    assert "Leaks" in out.text("boardroom") + out.text("admin")
