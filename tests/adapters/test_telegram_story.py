"""Issue 22's acceptance on Telegram: the whole story — invited, joins, shares, likes,
comments, gets a digest, a gatekeeper approves by reaction — over real HTTP against the
fake Bot API, counting the bot's messages (sendMessage and sendPhoto calls)."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select

from store.db import Database
from store.models import Proposal
from tests.adapters.conftest import FRANZ, GRETA, TelegramPinwall, running
from tests.adapters.test_telegram_guide import data_of, edited_to
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
        start = sends(fake)

        # invited: Franz opens the deep link
        fake.user_starts(FRANZ, await invite(tg, "/invite member marketing"))
        await tg.bot_said(FRANZ.id, "Willkommen")

        # joins a group from the offered buttons
        fake.user_sends_command(FRANZ, None, "beitreten", "")
        question = await tg.bot_said(FRANZ.id, "Welcher Gruppe möchtest du beitreten?")
        fake.user_presses(FRANZ, None, question.message_id, data_of(question, "Aktionen"))
        await edited_to(tg, question.message_id, "Du bist Aktionen beigetreten.")
        fake.user_sends_text(FRANZ, None, "/benachrichtigung aktionen sofort")
        await tg.bot_said(FRANZ.id, "Aktionen: Du bekommst")

        # shares a link
        fake.user_sends_text(FRANZ, None, "/teilen aktionen https://example.com/plakat Plakat")
        await tg.bot_said(FRANZ.id, "Geteilt als #1 in Aktionen.")

        # likes alice's post, which came to him at once
        await tg.on_console("alice", "/share aktionen Neues Angebot ab Montag")
        post = await tg.bot_said(FRANZ.id, "Neues Angebot ab Montag")
        fake.user_presses(FRANZ, None, post.message_id, data_of(post, "👍"))
        await tg.bot_said(FRANZ.id, "Dir gefällt #2")

        # comments on it
        fake.user_presses(FRANZ, None, post.message_id, data_of(post, "Kommentieren"))
        await tg.bot_said(FRANZ.id, "Schreib deinen Kommentar zu #2")
        fake.user_sends_text(FRANZ, None, "Super, hängt bei uns ab Montag")
        await tg.bot_said(FRANZ.id, "Dein Kommentar zu #2 ist gespeichert.")

        # gets a digest (marketing is on daily)
        await tg.on_console("alice", "/share marketing Neue Broschüre ist da")
        fake.user_sends_text(FRANZ, None, "/zusammenfassung jetzt")
        await tg.bot_said(FRANZ.id, "Neue Broschüre ist da")
        franz = sends(fake) - start

        # a gatekeeper approves (before this issue: by the button, reactions never came)
        gate = sends(fake)
        await tg.on_console("alice", "/propose newsroom Unser neues Angebot")
        card = await tg.bot_said(GRETA.id, "P1")
        fake.user_presses(GRETA, None, card.message_id, data_of(card, "Approve"))
        await tg.printed_eventually("alice", "approved")
        greta = sends(fake) - gate
    print(f"STORY franz={franz} greta={greta} total={franz + greta}")
    for s in fake.sent[-(franz + greta):]:
        print("SENT", s.chat_id, (s.text or s.caption or "")[:70].replace("\n", " "))
    with db.uow() as uow:
        assert uow.session.scalar(select(Proposal.status)) in ("approved", "published")
