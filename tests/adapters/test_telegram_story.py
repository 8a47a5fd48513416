"""Issue 22's acceptance on Telegram: the whole story — invited, joins, shares, likes,
comments, gets a digest, a gatekeeper approves by reaction — over real HTTP against the
fake Bot API, counting the bot's messages (sendMessage and sendPhoto calls).

On main before issue 22 the same story took 11 messages (Franz 9, Greta 2): a join
question, "You liked #2", and "You approved P1" besides the card were messages of their
own, and the gatekeeper had to press Approve (reactions never reached Pinwall)."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select

from store.db import Database
from store.models import Proposal
from tests.adapters.conftest import FRANZ, GRETA, TelegramPinwall, running
from tests.adapters.test_telegram_native import data_of, edited
from tests.fakes.telegram import FakeTelegram

SENDS = ("sendMessage", "sendPhoto")


def sends(fake: FakeTelegram) -> int:
    return sum(1 for c in fake.calls if c in SENDS)


async def invite(tg: TelegramPinwall, line: str) -> str:
    await tg.on_console("admin", line)
    link = re.search(r"https://t\.me/pinwall_test_bot\?start=(\w{10})", tg.printed("admin")[-1])
    assert link
    return link.group(1)


async def test_the_story_on_telegram_counts_the_bots_messages(
    db: Database, fake: FakeTelegram, tmp_path: Path
) -> None:
    async with running(db, fake, tmp_path) as tg:
        await tg.on_console("admin", "/group create marketing Marketing --externals")
        await tg.on_console("admin", "/group create aktionen Aktionen --externals")
        # Greta, the gatekeeper, on Telegram
        fake.user_starts(GRETA, await invite(tg, "/invite member marketing"))
        await tg.bot_said(GRETA.id, "Welcome")
        await tg.on_console("admin", "/role greta gatekeeper")
        await tg.bot_said(GRETA.id, "gatekeeper")
        await tg.on_console("alice", "/join aktionen", "/join marketing")
        await tg.worker.drain()
        start = sends(fake)

        # invited: Franz opens the deep link
        fake.user_starts(FRANZ, await invite(tg, "/invite member marketing"))

        # joins a group from the buttons of the welcome
        welcome = await tg.bot_said(FRANZ.id, "Willkommen")
        fake.user_presses(FRANZ, None, welcome.message_id, data_of(welcome, "Aktionen"))
        await tg.bot_said(FRANZ.id, "Du bist Aktionen beigetreten.")
        fake.user_sends_text(FRANZ, None, "/benachrichtigung aktionen sofort")
        await tg.bot_said(FRANZ.id, "Aktionen: Du bekommst")

        # shares a link
        fake.user_sends_text(FRANZ, None, "/teilen aktionen https://example.com/plakat Plakat")
        await tg.bot_said(FRANZ.id, "Geteilt als #1 in Aktionen.")

        # likes alice's post, which came to him at once
        await tg.on_console("alice", "/share aktionen Neues Angebot ab Montag")
        post = await tg.bot_said(FRANZ.id, "Neues Angebot ab Montag")
        fake.user_reacts(FRANZ, None, post.message_id, "👍")
        await edited(fake, FRANZ.id, post.message_id, "👍 1")

        # comments on it
        fake.user_presses(FRANZ, None, post.message_id, data_of(post, "Kommentieren"))
        await tg.bot_said(FRANZ.id, "Schreib deinen Kommentar zu #2")
        said = fake.user_sends_text(FRANZ, None, "Super, hängt bei uns ab Montag")
        await tg.bot_reacted(FRANZ.id, said.message["message_id"])  # 👌: saved

        # gets a digest (marketing is on daily)
        await tg.on_console("alice", "/share marketing Neue Broschüre ist da")
        fake.user_sends_text(FRANZ, None, "/zusammenfassung jetzt")
        await tg.bot_said(FRANZ.id, "Neue Broschüre ist da")
        await tg.worker.drain()  # nothing still on its way
        franz = sends(fake) - start

        # a gatekeeper approves by reaction (👌: Telegram offers no ✅)
        gate = sends(fake)
        await tg.on_console("alice", "/propose newsroom Unser neues Angebot")
        card = await tg.bot_said(GRETA.id, "P1")
        fake.user_reacts(GRETA, None, card.message_id, "👌")
        await edited(fake, GRETA.id, card.message_id, "Approved by @greta")  # in place
        await tg.printed_eventually("alice", "approved")
        await fake.wait_for_async(lambda: not fake.pending_updates())
        await tg.worker.drain()
        greta = sends(fake) - gate
    # 8 in all: 11 before issue 22, 9 while a comment's "saved" was a message
    assert (franz, greta) == (7, 1)
    with db.uow() as uow:
        assert uow.session.scalar(select(Proposal.status)) in ("approved", "published")
