"""What adapters write and keep through the hub: a batch of events with its cursor in one
transaction (Hub.record_batch), and what they keep besides (hub.state)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from adapters.memory import MemoryAdapter
from app.wiring import make_core
from bot.adapter_state import ButtonPromptView, ForgetDirectChat, SetCursor, TellOnce
from bot.clock import FakeClock
from bot.core import CoreSettings
from bot.events import Event
from bot.message import Target
from bot.runtime import Hub
from store.blobs import StoredBlob
from store.db import Database
from store.models import InboxEvent, InboxStatus, OutboxMessage, Role


@pytest.fixture
async def hub(db: Database) -> AsyncIterator[Hub]:
    core = make_core(db, FakeClock(), CoreSettings(admins=frozenset({("matrix", "@ops:x.org")})))
    hub = Hub(core)
    try:
        yield hub
    finally:
        hub.close()


def said(*lines: str) -> list[Event]:
    adapter = MemoryAdapter()
    now = FakeClock().now()
    return [adapter.event("alice", line, now) for line in lines]


def inbox(db: Database) -> list[tuple[str, str]]:
    with db.uow() as uow:
        rows = uow.session.scalars(select(InboxEvent).order_by(InboxEvent.id)).all()
        return [(row.event_id, row.status) for row in rows]


def outbox(db: Database) -> list[tuple[str, str]]:
    with db.uow() as uow:
        rows = uow.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        return [(row.target, row.payload["m"]["text"]) for row in rows]


def person(db: Database, platform: str, external_id: str, *, language: str = "en") -> None:
    now = FakeClock().now()
    with db.uow() as uow:
        found = uow.people.create(name=external_id.strip("@"), role=Role.MEMBER, now=now)
        found.language = language
        uow.people.add_account(found, platform=platform, external_id=external_id, now=now)
        uow.commit()


async def test_a_batch_is_recorded_with_its_cursor_and_a_redelivery_records_nothing(
    hub: Hub, db: Database
) -> None:
    events = said("/groups", "/whoami")
    assert await hub.record_batch(events, [SetCursor("matrix:since:@bot:x.org", "s1")]) == 2
    assert await hub.state.cursor("matrix:since:@bot:x.org") == "s1"
    # The same batch again (synced again after a crash), with a later token: nothing new.
    assert await hub.record_batch(events, [SetCursor("matrix:since:@bot:x.org", "s2")]) == 0
    assert await hub.state.cursor("matrix:since:@bot:x.org") == "s2"
    ids = [e.meta.event_id for e in events]
    assert inbox(db) == [(i, InboxStatus.RECEIVED) for i in ids]
    # Recorded, not applied: that is apply_recorded's.
    assert await hub.apply_recorded() == 2
    assert [status for _, status in inbox(db)] == [InboxStatus.APPLIED] * 2
    # Hub.record (Slack's) is a batch of one.
    assert await hub.record(events[0]) is False
    [fresh] = said("/help")
    assert await hub.record(fresh) is True


async def test_a_batch_whose_changes_cannot_be_written_records_nothing(
    hub: Hub, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events, cursor and notices commit together or not at all: the batch is synced
    again from the old token, not lost."""
    await hub.state.set_cursor("matrix:since:@bot:x.org", "s1")

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the outbox is away")

    monkeypatch.setattr(hub.core, "enqueue", broken)
    notice = TellOnce(
        "matrix:encrypted-told:!r", Target("matrix", "room", "!r"), "matrix.encrypted"
    )
    with pytest.raises(RuntimeError, match="the outbox is away"):
        await hub.record_batch(
            said("/groups"), [notice, SetCursor("matrix:since:@bot:x.org", "s2")]
        )
    assert inbox(db) == []
    assert await hub.state.cursor("matrix:since:@bot:x.org") == "s1"
    assert await hub.state.cursor(notice.mark) is None


async def test_a_notice_goes_once_in_the_readers_language(hub: Hub, db: Database) -> None:
    person(db, "matrix", "@franz:x.org", language="de")
    german = TellOnce(
        "matrix:encrypted-told:!dm",
        Target("matrix", "room", "!dm"),
        "matrix.encrypted",
        reader="@franz:x.org",
    )
    shared = TellOnce(
        "matrix:encrypted-told:!r", Target("matrix", "room", "!r"), "matrix.encrypted"
    )
    await hub.record_batch([], [german, shared])
    await hub.record_batch([], [german, shared])  # the same rooms in the next batch
    told = outbox(db)
    assert [target for target, _ in told] == ["!dm", "!r"]
    assert told[0][1].startswith("Dieser Raum ist verschlüsselt")
    assert told[1][1].startswith("This room is encrypted")


async def test_a_forgotten_direct_chat_is_no_direct_chat_any_more(hub: Hub) -> None:
    state = hub.state
    await state.add_direct_chat("matrix", "!old", "@anna:x.org")
    await state.add_direct_chat("matrix", "!shared", "@ben:x.org")
    assert await state.direct_chats("matrix", ["!old", "!shared", "!other"]) == {
        "!old": "@anna:x.org",
        "!shared": "@ben:x.org",
    }
    assert await state.newest_direct_chat("matrix", "@anna:x.org") == "!old"
    await hub.record_batch([], [ForgetDirectChat("matrix", "!old")])
    assert await state.direct_chats("matrix", ["!old", "!shared"]) == {"!shared": "@ben:x.org"}
    assert await state.newest_direct_chat("matrix", "@anna:x.org") is None
    assert await state.newest_direct_chat("slack", "@ben:x.org") is None  # per platform


async def test_cursors_are_set_or_kept(hub: Hub) -> None:
    state = hub.state
    assert await state.cursor("matrix:txn-salt:@bot:x.org") is None
    assert await state.set_cursor("matrix:txn-salt:@bot:x.org", "aaaa", keep=True) == "aaaa"
    assert await state.set_cursor("matrix:txn-salt:@bot:x.org", "bbbb", keep=True) == "aaaa"
    assert await state.set_cursor("matrix:txn-salt:@bot:x.org", "cccc") == "cccc"
    assert await state.cursor("matrix:txn-salt:@bot:x.org") == "cccc"


async def test_button_prompts_are_kept_replaced_dropped_and_pruned(hub: Hub) -> None:
    state, clock = hub.state, hub.clock
    assert isinstance(clock, FakeClock)
    yes = {"action": "test.yes", "value": "1", "label": "Yes", "key": "1️⃣"}
    card = ButtonPromptView("!room", "$card", [yes], post=False)
    await state.save_button_prompt("matrix", card)
    assert await state.button_prompt("matrix", "!room", "$card") == card
    assert await state.button_prompt("slack", "!room", "$card") is None
    shown = ButtonPromptView("!room", "$card", [{**yes, "reaction": "$r1"}], post=False)
    await state.save_button_prompt("matrix", shown)  # with the bot's reaction under it
    assert await state.button_prompt("matrix", "!room", "$card") == shown
    clock.advance(days=30)
    post = ButtonPromptView("!room", "$post", [yes], post=True)
    await state.save_button_prompt("matrix", post)
    assert await state.newest_button_prompt("matrix", "!room") == post
    await state.drop_button_prompt("matrix", "!room", "$post")
    await state.drop_button_prompt("matrix", "!room", "$gone")  # nothing to drop: no error
    assert await state.newest_button_prompt("matrix", "!room") == shown
    await state.save_button_prompt("matrix", post)
    await state.prune_button_prompts("matrix", timedelta(days=20))
    assert await state.button_prompt("matrix", "!room", "$card") is None
    assert await state.button_prompt("matrix", "!room", "$post") == post


async def test_uploads_are_remembered_per_server(hub: Hub, db: Database) -> None:
    with db.uow() as uow:
        uow.blobs.record(StoredBlob("blob1", 3, "image/png"), hub.clock.now())
        uow.commit()
    state = hub.state
    assert await state.uploaded("matrix", "https://a.example", "blob1") is None
    await state.remember_upload("matrix", "https://a.example", "blob1", "mxc://a/1")
    await state.remember_upload("matrix", "https://a.example", "blob1", "mxc://a/2")
    assert await state.uploaded("matrix", "https://a.example", "blob1") == "mxc://a/2"
    assert await state.uploaded("matrix", "https://b.example", "blob1") is None


async def test_who_is_a_person_of_this_pinwall_and_in_which_language(
    hub: Hub, db: Database
) -> None:
    person(db, "matrix", "@anna:x.org")
    person(db, "matrix", "@gone:x.org", language="de")
    with db.uow() as uow:
        account = uow.people.account("matrix", "@gone:x.org")
        assert account is not None
        gone = uow.people.get(account.person_id)
        assert gone is not None
        gone.active = False
        uow.commit()
    state = hub.state
    assert await state.is_person("matrix", "@anna:x.org")
    assert await state.is_person("matrix", "@ops:x.org")  # an admin, before first contact
    assert not await state.is_person("matrix", "@gone:x.org")
    assert not await state.is_person("matrix", "@stranger:y.org")
    assert not await state.is_person("telegram", "@anna:x.org")
    assert await state.language_of("matrix", "@anna:x.org") == "en"
    assert await state.language_of("matrix", "@stranger:y.org") is None
    assert await state.language_of("matrix", "@gone:x.org") == "de"
