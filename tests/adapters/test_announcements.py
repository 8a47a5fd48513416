"""Issue 24's acceptance on the messengers' test servers: an admin on the console
announces to `filialen` with --confirm; three franchisees on Telegram (FakeTelegram over
HTTP) get it once with a Read ✓ button; two confirm, the third gets exactly one reminder;
the admin sees 2/3 and who is missing. A poll's tally is one across Telegram and the
console."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.announcements import remind_due
from store.db import Database
from store.models import Announcement, Blob, OutboxMessage
from tests.adapters.conftest import FRANZ, GRETA, TelegramPinwall, running
from tests.adapters.test_cards import card_in, has_buttons, updated
from tests.adapters.test_slack import SlackPinwall, button_of
from tests.adapters.test_telegram import button, invite_code
from tests.fakes.slack import FakeSlack
from tests.fakes.telegram import FakeTelegram, TgUser

HANNA = TgUser(id=5003, first_name="Hanna", username="hanna_sued", language_code="de")


async def franchisees(tg: TelegramPinwall) -> None:
    await tg.on_console("admin", "/group create filialen Filialen --externals")
    for user in (FRANZ, GRETA, HANNA):
        code = await invite_code(tg, "/invite partner filialen")
        tg.fake.user_starts(user, code)
        await tg.bot_said(user.id, "Pinwall")


async def test_an_admin_announces_to_franchisees_on_telegram_two_confirm_one_is_reminded(
    db: Database, fake: FakeTelegram, tmp_path: Path
) -> None:
    async with running(db, fake, tmp_path) as tg:
        await franchisees(tg)
        await tg.on_console("admin", "/announce filialen Neue Hygieneregeln ab Montag --confirm")
        card = await tg.printed_eventually("admin", "Read ✓: 0/3")
        assert "Neue Hygieneregeln ab Montag" in card
        got = {}
        for user, label in ((FRANZ, "Gelesen ✓"), (GRETA, "Read ✓"), (HANNA, "Gelesen ✓")):
            sent = await tg.bot_said(user.id, "Neue Hygieneregeln ab Montag")
            got[user.id] = (sent, button(sent, label))
            assert len([s for s in fake.sent_to(user.id) if "Hygiene" in (s.text or "")]) == 1
        for user in (FRANZ, GRETA):
            sent, data = got[user.id]
            fake.user_presses(user, None, sent.message_id, data)
            await fake.wait_for_async(
                lambda u=user, m=sent.message_id: (
                    "reply_markup" not in (fake.message(u.id, m) or {"reply_markup": 1})
                ),
                what="the copy confirmed in place",
            )
        await tg.printed_eventually("admin", "Read ✓: 2/3")

        # A day later (its due time moved back a day, the clock here is the real one): one
        # reminder, to Hanna alone, and never a second.
        with db.uow() as uow:
            announcement = uow.session.get(Announcement, 1)
            assert announcement is not None
            assert announcement.remind_at is not None
            announcement.remind_at -= timedelta(hours=25)
            uow.commit()
        now = tg.core.clock.now()
        assert await tg.hub.call(remind_due, tg.core, now) == 1
        assert await tg.hub.call(remind_due, tg.core, now + timedelta(hours=1)) == 0
        tg.hub.wake()
        reminder = await tg.bot_said(HANNA.id, "Erinnerung")
        button(reminder, "Gelesen ✓")
        for user in (FRANZ, GRETA):
            assert not [s for s in fake.sent_to(user.id) if "Erinnerung" in (s.text or "")]

        await tg.on_console("admin", "/announcement A1")
        status = tg.printed("admin")[-1]
        assert "2/3" in status
        assert "@hanna_sued" in status
        assert "@franz_nord" not in status

        # The export: a file, for the admin alone, stored once in the blob store.
        await tg.on_console("admin", "/announcement A1 csv")
        assert "📎 A1-confirmations.csv" in tg.printed("admin")[-1]
        with db.uow() as uow:
            (blob_id,) = uow.session.scalars(select(Blob.id).where(Blob.mime_type == "text/csv"))
        assert tg.hub.blobs is not None
        exported = tg.hub.blobs.read(blob_id).decode().splitlines()
        assert exported[0] == "handle,confirmed,confirmed_at,messenger"
        assert [line.split(",")[:2] for line in exported[1:]] == [
            ["franz_nord", "yes"],
            ["greta", "yes"],
            ["hanna_sued", "no"],
        ]
        assert exported[1].endswith(",telegram")


async def test_a_poll_has_one_tally_across_telegram_and_the_console(
    db: Database, fake: FakeTelegram, tmp_path: Path
) -> None:
    async with running(db, fake, tmp_path) as tg:
        await franchisees(tg)
        fake.user_sends_command(FRANZ, None, "notify", "filialen instant")
        await tg.bot_said(FRANZ.id, "sofort")
        await tg.on_console("alice", "/whoami")
        await tg.on_console("admin", "/add alice filialen")
        await tg.on_console("alice", "/notify filialen instant")
        await tg.on_console("admin", "/poll filialen Welcher Termin? | 12.1. | 19.1.")
        card = await tg.bot_said(FRANZ.id, "Welcher Termin?")
        fake.user_presses(FRANZ, None, card.message_id, button(card, "1. 12.1."))
        await fake.wait_for_async(
            lambda: "12.1.: 1" in str(fake.message(FRANZ.id, card.message_id)),
            what="Franz's card with his vote",
        )
        await tg.printed_eventually("alice", "Welcher Termin?")
        await tg.on_console("alice", "/press 1")
        shown = await tg.printed_eventually("alice", "2 people voted")
        assert "12.1.: 2" in shown
        with db.uow() as uow:
            assert uow.announcements.tally(1) == ({0: 2}, 2)


# --- Matrix (a real Synapse) ----------------------------------------------------------


async def delivered(db: Database, event_id: str, within: float = 10.0) -> None:
    """Waits until the send of this Matrix event is recorded (so a reaction finds it)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        with db.uow() as uow:
            found = uow.session.scalar(
                select(OutboxMessage.id).where(OutboxMessage.platform_message_id == event_id)
            )
        if found is not None:
            return
        if loop.time() > deadline:
            raise AssertionError(f"{event_id} was not recorded as delivered")
        await asyncio.sleep(0.02)


async def test_matrix_votes_by_keycap_reaction_and_confirms_by_reaction(
    synapse: Any, sqlite_db: Database, tmp_path: Path
) -> None:
    from tests.adapters.conftest import humans, matrix_running

    bot = synapse.register("pinwall")
    async with (
        humans(synapse, "mara") as [mara],
        matrix_running(sqlite_db, synapse, bot, tmp_path) as mx,
    ):
        dm = await mara.dm(bot.user_id)
        await mx.on_console("admin", "/group create filialen Filialen")
        await mara.say(dm, "join filialen")
        await mara.bot_said(dm, bot.user_id, "Filialen")
        await mara.say(dm, "notify filialen instant")
        await mara.bot_said(dm, bot.user_id, "instantly")
        await mx.on_console("alice", "/join filialen", "/notify filialen instant")

        await mx.on_console("admin", "/poll filialen Which date? | 12.1. | 19.1.")
        card = await mara.bot_said(dm, bot.user_id, "Which date?")
        await delivered(sqlite_db, card["event_id"])
        await mara.react(dm, card["event_id"], "2️⃣")
        edit = await mara.wait_for(
            dm,
            lambda e: (
                e.get("content", {}).get("m.relates_to", {}).get("rel_type") == "m.replace"
                and e["content"]["m.relates_to"].get("event_id") == card["event_id"]
            ),
            what="her card with her vote",
        )
        assert "19.1.: 1" in edit["content"]["m.new_content"]["body"]
        await mx.printed_eventually("alice", "Which date?")
        await mx.on_console("alice", "/press 2")
        await mx.printed_eventually("alice", "2 people voted")
        with sqlite_db.uow() as uow:
            assert uow.announcements.tally(1) == ({1: 2}, 2)

        await mx.on_console("admin", "/announce filialen Please read --confirm")
        note = await mara.bot_said(dm, bot.user_id, "Please read")
        await delivered(sqlite_db, note["event_id"])
        await mara.react(dm, note["event_id"], "1️⃣")
        await mx.printed_eventually("admin", "Read ✓: 1/2")


# --- Slack (FakeSlack over HTTP) ------------------------------------------------------


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        server.add_user("U2BOB", "bob", real_name="Bob", locale="en-US")
        yield server
        assert server.errors == []


@pytest.fixture
async def sp(sqlite_db: Database, slack: FakeSlack, tmp_path: Path) -> AsyncIterator[SlackPinwall]:
    pinwall = SlackPinwall(sqlite_db, slack, tmp_path)
    await pinwall.start()
    try:
        yield pinwall
    finally:
        await pinwall.close()


async def test_slack_read_button_confirms_in_place_and_votes_by_button(
    sp: SlackPinwall, slack: FakeSlack
) -> None:
    assert sp.slack is not None
    dm = slack.dm_channel("U2BOB")
    await sp.slack.slash_command("U2BOB", dm, "whoami")
    await sp.settled()
    await sp.on_console("admin", "/group create filialen Filialen", "/add bob filialen")
    await sp.on_console("admin", "/announce filialen Hygiene ab Montag --confirm")
    note = await card_in(slack, dm, "Hygiene ab Montag")
    action_id, value = button_of(note, "Read ✓")
    assert (await sp.slack.block_action("U2BOB", dm, note.ts, action_id, value)).status_code == 200
    shown = await updated(slack, dm, note.ts, "You confirmed it")
    assert not has_buttons(shown)
    await sp.printed_eventually("admin", "Read ✓: 1/1")

    await sp.on_console("admin", "/poll filialen Which date? | 12.1. | 19.1.")
    await sp.slack.slash_command("U2BOB", dm, "show #2")
    poll = await card_in(slack, dm, "Which date?")
    action_id, value = button_of(poll, "2. 19.1.")
    await sp.slack.block_action("U2BOB", dm, poll.ts, action_id, value)
    await updated(slack, dm, poll.ts, "19.1.: 1")
    with sp.db.uow() as uow:
        assert uow.announcements.tally(1) == ({1: 1}, 1)
