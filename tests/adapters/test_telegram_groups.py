"""Telegram group chats (issue 22, point 4 and the comment's "saved"), over real HTTP
against the fake Bot API: every question whose answer is typed comes as a new message
with ForceReply (selective), never by an edit, and the reply to it is the answer; the
guided share and propose move to the private chat, where steps change in place; a
comment is "saved" with 👌 under it, in words where the chat takes no reactions."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bot.message import Message, Target
from store.db import Database
from store.models import Comment, Item, Proposal
from tests.adapters.conftest import BOSS, FRANZ, GRETA, TelegramPinwall, running
from tests.adapters.test_telegram_native import data_of, edited, invite, labels
from tests.fakes.telegram import FakeTelegram, TgChat, TgUser

BRANCH = TgChat.supergroup("Filiale Nord", id=-1009000000001)
ADMINS = frozenset({("telegram", str(BOSS.id))})


def forced(sent: Any) -> bool:
    return sent.force_reply == {"force_reply": True, "selective": True}


async def _branch_bridged(tg: TelegramPinwall, fake: FakeTelegram) -> None:
    """Marketing, bridged to the branch's group (the bot an admin there: it sees
    reactions), Franz a member on Telegram, Greta its gatekeeper."""
    await tg.on_console("admin", "/group create marketing Marketing --externals")
    fake.user_starts(FRANZ, await invite(tg, "/invite member marketing"))
    await tg.bot_said(FRANZ.id, "Willkommen")
    fake.user_starts(GRETA, await invite(tg, "/invite member marketing"))
    await tg.bot_said(GRETA.id, "Welcome")
    await tg.on_console("admin", "/role greta gatekeeper")
    await tg.bot_said(GRETA.id, "gatekeeper")
    fake.add_chat(BRANCH)
    fake.bot_added_to_group(BOSS, BRANCH, administrator=True)
    fake.user_sends_command(BOSS, BRANCH, "bridge", "marketing")
    await tg.bot_said(BRANCH.id, "verbunden")


async def test_the_guided_flows_in_a_group_tie_every_typed_answer_to_its_question(
    fake: FakeTelegram, sqlite_db: Database, tmp_path: Path
) -> None:
    async with running(sqlite_db, fake, tmp_path, admins=ADMINS) as tg:
        await _branch_bridged(tg, fake)

        # comment: the button on the room's copy asks in the room, for him alone (he is
        # mentioned: selective), and his reply to it is the comment, saved with 👌
        await tg.on_console("alice", "/join marketing", "/share marketing Plakat für die Filialen")
        copy = await tg.bot_said(BRANCH.id, "Plakat für die Filialen")
        fake.user_presses(FRANZ, BRANCH, copy.message_id, data_of(copy, "Comment"))
        asked = await tg.bot_said(
            BRANCH.id, "Antworte auf diese Nachricht mit deinem Kommentar zu #1"
        )
        assert forced(asked)
        assert (asked.raw_text or "").startswith(f'<a href="tg://user?id={FRANZ.id}">')
        said = fake.user_sends_text(FRANZ, BRANCH, "Hängt ab Montag", reply_to=asked.message_id)
        await tg.bot_reacted(BRANCH.id, said.message["message_id"])
        await tg.printed_eventually("alice", "Hängt ab Montag")

        # share, guided: the questions go to his private chat (a quiet room: one line
        # there says so); there a step may change in place, its typed answer is his text
        fake.user_sends_command(FRANZ, BRANCH, "teilen")
        await tg.bot_said(BRANCH.id, "privaten Chat")
        question = await tg.bot_said(FRANZ.id, "In welcher Gruppe")
        fake.user_presses(FRANZ, None, question.message_id, data_of(question, "Marketing"))
        await edited(fake, FRANZ.id, question.message_id, "Was möchtest du teilen")
        fake.user_sends_text(FRANZ, None, "Neue Schaufensterdeko")
        await tg.bot_said(FRANZ.id, "Geteilt als #2")

        # propose, guided, the same way
        fake.user_sends_command(FRANZ, BRANCH, "vorschlagen")
        question = await tg.bot_said(FRANZ.id, "In welchen Kanal")
        fake.user_presses(FRANZ, None, question.message_id, data_of(question, "newsroom"))
        await edited(fake, FRANZ.id, question.message_id, "?")
        fake.user_sends_text(FRANZ, None, "Unser neues Angebot ab Montag")
        await tg.bot_said(FRANZ.id, "Vorschlag P1")

        # the gatekeeper asks for changes: the reason question forces the reply
        card = await tg.bot_said(GRETA.id, "P1")
        fake.user_presses(GRETA, None, card.message_id, data_of(card, "Request changes"))
        reason = await tg.bot_said(GRETA.id, "What should change in P1?")
        assert reason.message_id != card.message_id
        assert forced(reason)
        fake.user_sends_text(GRETA, None, "Bitte mit Preis", reply_to=reason.message_id)
        await tg.bot_said(FRANZ.id, "Bitte mit Preis")

        # not one text question in the room without ForceReply, none shown by an edit
        in_room = [s for s in fake.sent_to(BRANCH.id) if "Kommentar zu" in (s.text or "")]
        assert in_room
        assert all(forced(s) for s in in_room)
        edits = [e for e in fake.edits if e.chat_id == BRANCH.id]
        assert not [e for e in edits if "Kommentar zu" in (e.text or "")]
        # nothing of it said "saved" in words in the room
        assert not [s for s in fake.sent_to(BRANCH.id) if "gespeichert" in (s.text or "")]
    with sqlite_db.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Item)) == 2
        assert list(uow.session.scalars(select(Comment.text))) == ["Hängt ab Montag"]
        assert uow.session.scalar(select(Proposal.status)) == "changes"


async def test_a_question_that_follows_a_card_in_a_group_comes_new_with_force_reply(
    fake: FakeTelegram, sqlite_db: Database, tmp_path: Path
) -> None:
    """A question shown in place of a card would lose its ForceReply (an edit carries only
    inline keyboards): in a group it comes new, under the card, whose buttons go. In a
    private chat it changes in place."""
    async with running(sqlite_db, fake, tmp_path, admins=ADMINS) as tg:
        await _branch_bridged(tg, fake)
        await tg.on_console("alice", "/join marketing", "/share marketing Plakat")
        card = await tg.bot_said(BRANCH.id, "Plakat")
        room = Target("telegram", "room", str(BRANCH.id))
        question = Message(
            text="What should the poster say?",
            replaces=str(card.message_id),
            meta={"prompt": "comment", "audience": str(FRANZ.id)},
        )
        result = await tg.adapter.send(room, question)
        asked = await tg.bot_said(BRANCH.id, "What should the poster say?")
        assert result.message_id == str(asked.message_id)  # type: ignore[union-attr]
        assert forced(asked)
        assert asked.reply_to_message_id == card.message_id
        assert f"tg://user?id={FRANZ.id}" in (asked.raw_text or "")
        now = fake.message(BRANCH.id, card.message_id)
        assert now is not None
        assert labels(now) == []  # answered: its buttons are gone
        assert "Plakat" in str(now.get("text"))  # the card itself stays

        # in his private chat the same question changes the card in place
        await tg.on_console("alice", "/share marketing Flyer")
        fake.user_sends_text(FRANZ, None, "/zeigen 2")
        post = await tg.bot_said(FRANZ.id, "Flyer")
        sent = len(fake.sent)
        direct = Target("telegram", "dm", str(FRANZ.id))
        await tg.adapter.send(direct, replace(question, replaces=str(post.message_id)))
        await edited(fake, FRANZ.id, post.message_id, "What should the poster say?")
        assert len(fake.sent) == sent


async def test_a_comment_is_saved_with_a_reaction_or_in_words_where_reactions_are_off(
    fake: FakeTelegram, sqlite_db: Database, tmp_path: Path
) -> None:
    async with running(sqlite_db, fake, tmp_path, admins=ADMINS) as tg:
        await _branch_bridged(tg, fake)
        await tg.on_console("alice", "/join marketing", "/share marketing Plakat")
        copy = await tg.bot_said(BRANCH.id, "Plakat")
        sent = len(fake.sent)
        # a reply to the room's copy is a comment: 👌 under it, no message
        said = fake.user_sends_text(FRANZ, BRANCH, "Schön!", reply_to=copy.message_id)
        await tg.bot_reacted(BRANCH.id, said.message["message_id"])
        await tg.printed_eventually("alice", "Schön!")
        await tg.worker.drain()
        assert len(fake.sent) == sent
        assert "setMessageReaction" in fake.calls
        # the branch's admins turn reactions off: "saved" comes in words instead
        fake.set_available_reactions(BRANCH, [])
        said = fake.user_sends_text(FRANZ, BRANCH, "Noch was", reply_to=copy.message_id)
        saved = await tg.bot_said(BRANCH.id, "Dein Kommentar zu #1 ist gespeichert.")
        assert saved.reply_to_message_id in (None, said.message["message_id"])
        assert fake.bot_reactions(BRANCH.id, said.message["message_id"]) == []


async def test_a_stranger_pressing_a_button_in_a_group_is_told_alone_how_to_take_part(
    fake: FakeTelegram, sqlite_db: Database, tmp_path: Path
) -> None:
    nina = TgUser(id=6001, first_name="Nina", language_code="de")
    async with running(sqlite_db, fake, tmp_path, admins=ADMINS) as tg:
        await _branch_bridged(tg, fake)
        await tg.on_console("alice", "/join marketing", "/share marketing Plakat")
        copy = await tg.bot_said(BRANCH.id, "Plakat")
        sent = len(fake.sent)
        fake.user_presses(nina, BRANCH, copy.message_id, data_of(copy, "Comment"))
        await fake.wait_for_async(
            lambda: any(a.text for a in fake.answered_callbacks), what="the answer to her press"
        )
        [told] = [a for a in fake.answered_callbacks if a.text]
        assert told.show_alert  # to her alone, until she closes it
        assert told.text is not None
        assert told.text.startswith("Das ist Pinwall, das interne Netzwerk von deiner Firma.")
        assert "Einladung" in told.text
        # a member's press is answered as always, without a word
        fake.user_presses(FRANZ, BRANCH, copy.message_id, data_of(copy, "Comment"))
        await tg.bot_said(BRANCH.id, "Antworte auf diese Nachricht mit deinem Kommentar zu #1")
        await fake.wait_for_async(lambda: len(fake.answered_callbacks) == 2, what="his answer")
        assert fake.answered_callbacks[-1].text is None
        assert len(fake.sent) == sent + 1  # the room got only his question
