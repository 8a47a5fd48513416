"""Telegram's own ways (issue 22), over real HTTP against the fake Bot API: command menus
by scope and language, the bot's description, the first contact by deep link, ForceReply
prompts, reactions as likes and approvals, one preview per link."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from adapters.telegram import menus
from bot import grammar, words
from bot.i18n import Translator
from bot.markup import to_plain
from bot.message import Message, Target
from store.db import Database
from store.models import Comment, Item, Proposal
from tests.adapters.conftest import BOSS, FRANZ, GRETA, TelegramPinwall, running
from tests.fakes.telegram import FakeTelegram, TgChat


def keyboard(shown: Any) -> list[dict[str, str]]:
    markup = shown.get("reply_markup") if isinstance(shown, dict) else shown.reply_markup
    return [b for row in (markup or {}).get("inline_keyboard", []) for b in row]


def labels(shown: Any) -> list[str]:
    return [b["text"] for b in keyboard(shown)]


def data_of(shown: Any, label: str) -> str:
    for b in keyboard(shown):
        if b["text"] == label:
            return str(b["callback_data"])
    raise AssertionError(f"no button {label!r} in {labels(shown)}")


async def invite(tg: TelegramPinwall, line: str) -> str:
    await tg.on_console("admin", line)
    link = re.search(r"https://t\.me/pinwall_test_bot\?start=(\w{10})", tg.printed("admin")[-1])
    assert link, tg.printed("admin")[-1]
    return link.group(1)


async def edited(fake: FakeTelegram, chat_id: int, message_id: int, needle: str) -> dict[str, Any]:
    """The message as it is once an edit made it show `needle` (text or a button)."""

    def shows() -> bool:
        now = fake.message(chat_id, message_id)
        return now is not None and (needle in str(now.get("text")) or needle in labels(now))

    await fake.wait_for_async(shows, what=f"message {message_id} edited to show {needle!r}")
    found = fake.message(chat_id, message_id)
    assert found is not None
    return found


# --- menus and description ------------------------------------------------------------


def _menu(fake: FakeTelegram, scope: str, language: str) -> dict[str, str]:
    return {c["command"]: c["description"] for c in fake.commands.get((scope, language), [])}


def _check_against_grammar(entries: dict[str, str], language: str) -> None:
    """Every entry is a command of the grammar, named as people write it in that
    language, described as help describes it there."""
    t = Translator(language)
    keys = {s.name: s.key for s in grammar.SPECS}
    for name, description in entries.items():
        assert re.fullmatch(r"[a-z0-9_]{1,32}", name), name
        command = grammar.canonical_name(name)
        assert command in keys, f"/{name} is no command"
        german = words.german_name(command)
        expected = words.fold(german) if language == "de" and german else command
        assert name == expected, f"/{name} in {language}: people write /{expected}"
        assert description == to_plain(t(f"help.{keys[command]}")).strip(), name


async def test_menus_by_scope_in_english_and_german_checked_against_the_grammar(
    fake: FakeTelegram, sqlite_db: Database, tmp_path: Path
) -> None:
    admins = frozenset({("telegram", str(BOSS.id))})
    async with running(sqlite_db, fake, tmp_path, admins=admins) as tg:
        everyone = _menu(fake, "default", "")
        assert list(everyone) == list(menus.EVERYONE)
        assert len(everyone) <= 8
        german = _menu(fake, "default", "de")
        assert list(german) == [
            "teilen",
            "gruppen",
            "beitreten",
            "beitraege",
            "benachrichtigung",
            "suchen",
            "hilfe",
            "abbrechen",
        ]
        assert _menu(fake, "all_private_chats", "") == everyone
        assert _menu(fake, "all_private_chats", "de") == german
        assert list(_menu(fake, "all_group_chats", "")) == ["share", "items", "bridge", "help"]
        # nothing of a gatekeeper's or admin's for everyone
        assert not set(everyone) & {"approve", "reject", "pending", "role", "audit", "invite"}
        # the admin named by PINWALL_ADMINS gets theirs in their private chat as soon as
        # Telegram lets the bot set it there: when they open it
        assert not _menu(fake, f"chat:{BOSS.id}", "de")
        fake.user_starts(BOSS)
        await fake.wait_for_async(lambda: bool(_menu(fake, f"chat:{BOSS.id}", "de")))
        boss = _menu(fake, f"chat:{BOSS.id}", "de")
        assert {"freigeben", "ablehnen", "offen", "rolle", "protokoll", "einladen"} <= set(boss)
        for (_, language), commands in fake.commands.items():
            _check_against_grammar({c["command"]: c["description"] for c in commands}, language)

        # Greta becomes a gatekeeper: her chat gets the gatekeeper's menu, not the admin's
        await tg.on_console("admin", "/group create general General")
        fake.user_starts(GRETA, await invite(tg, "/invite member general"))
        await tg.bot_said(GRETA.id, "Welcome")
        await tg.on_console("admin", "/role greta gatekeeper")
        await fake.wait_for_async(lambda: bool(_menu(fake, f"chat:{GRETA.id}", "")))
        greta = _menu(fake, f"chat:{GRETA.id}", "")
        assert list(greta) == [*menus.EVERYONE, "pending", "approve", "reject"]
        _check_against_grammar(greta, "en")
        # and back to member: everyone's menu again
        await tg.on_console("admin", "/role greta member")
        await fake.wait_for_async(lambda: not _menu(fake, f"chat:{GRETA.id}", ""))
        assert not _menu(fake, f"chat:{GRETA.id}", "de")


async def test_the_bot_describes_itself_with_the_companys_name(
    fake: FakeTelegram, sqlite_db: Database, tmp_path: Path
) -> None:
    tg = TelegramPinwall(sqlite_db, fake, tmp_path)
    tg.adapter.company = "Bäckerei Nord"
    await tg.start()
    try:
        english, german = fake.descriptions[""], fake.descriptions["de"]
        assert "Bäckerei Nord" in english
        assert "invite link" in english
        assert "Bäckerei Nord" in german
        assert "Einladungslink" in german
        short = fake.short_descriptions
        assert "Bäckerei Nord" in short[""]
        assert "Bäckerei Nord" in short["de"]
        assert len(short[""]) <= 120
        assert len(short["de"]) <= 120
        assert [c for c in fake.calls if c.startswith("setMy") and "Description" in c] == [
            "setMyDescription",
            "setMyShortDescription",
        ] * 2
    finally:
        await tg.close()
    # a very long company name is shortened with "…", never refused by Telegram
    for language in menus.MENU_LANGUAGES:
        long, short_text = menus.descriptions(language, "Ä<&>_*[]" * 8)
        assert len(long) <= 512
        assert len(short_text) <= 120
        assert short_text.endswith("…")


# --- first contact ----------------------------------------------------------------------


async def test_first_contact_by_deep_link_is_one_welcome_with_buttons(
    fake: FakeTelegram, sqlite_db: Database, tmp_path: Path
) -> None:
    async with running(sqlite_db, fake, tmp_path) as tg:
        await tg.on_console("admin", "/group create marketing Marketing --externals")
        await tg.on_console("admin", "/group create aktionen Aktionen")
        await tg.on_console("admin", "/group create events Events")

        code = await invite(tg, "/invite member marketing")

        # someone who opens the bot without an invite learns how to get one
        fake.user_starts(GRETA)
        told = await tg.bot_said(GRETA.id, "invite")
        assert "contact person" in (told.text or "")

        before = len(fake.sent_to(FRANZ.id))
        fake.user_starts(FRANZ, code)
        welcome = await tg.bot_said(FRANZ.id, "Willkommen bei Pinwall, @franz_nord!")
        assert "Marketing (marketing)" in (welcome.text or "")
        assert labels(welcome) == ["Aktionen", "Events", "Was kann ich hier tun?", "English"]
        await fake.wait_for_async(lambda: not fake.pending_updates())
        assert len(fake.sent_to(FRANZ.id)) == before + 1  # one message, not three

        fake.user_presses(FRANZ, None, welcome.message_id, data_of(welcome, "Aktionen"))
        await tg.bot_said(FRANZ.id, "Du bist Aktionen beigetreten.")
        fake.user_presses(
            FRANZ, None, welcome.message_id, data_of(welcome, "Was kann ich hier tun?")
        )
        await tg.bot_said(FRANZ.id, "Das kannst du tun")
        fake.user_presses(FRANZ, None, welcome.message_id, data_of(welcome, "English"))
        await tg.bot_said(FRANZ.id, "English")
        fake.user_sends_command(FRANZ, None, "groups")
        await tg.bot_said(FRANZ.id, "Aktionen")  # in English now


async def test_a_partners_invite_made_on_the_console_leads_with_the_deep_link(
    fake: FakeTelegram, sqlite_db: Database, tmp_path: Path
) -> None:
    async with running(sqlite_db, fake, tmp_path) as tg:
        await tg.on_console("admin", "/group create marketing Marketing --externals")
        await tg.on_console("admin", "/invite partner marketing")
        lines = tg.printed("admin")[-1].splitlines()
        assert "https://t.me/pinwall_test_bot?start=" in lines[2]
        assert "/redeem" in lines[-1]
        assert "/redeem" not in "".join(lines[:-1])


# --- prompts ------------------------------------------------------------------------------


async def test_prompts_force_a_reply_and_a_reply_in_a_group_is_the_answer(
    fake: FakeTelegram, sqlite_db: Database, tmp_path: Path
) -> None:
    branch = TgChat.supergroup("Filiale Nord")
    fake.add_chat(branch)
    admins = frozenset({("telegram", str(BOSS.id))})
    async with running(sqlite_db, fake, tmp_path, admins=admins) as tg:
        await tg.on_console("admin", "/group create marketing Marketing --externals")
        fake.user_starts(FRANZ, await invite(tg, "/invite partner marketing"))
        await tg.bot_said(FRANZ.id, "Willkommen")

        # in his private chat: the comment question opens the reply to it
        await tg.on_console("alice", "/join marketing", "/share marketing Neuer Flyer")
        fake.user_sends_text(FRANZ, None, "/zeigen 1")
        post = await tg.bot_said(FRANZ.id, "Neuer Flyer")
        fake.user_presses(FRANZ, None, post.message_id, data_of(post, "Kommentieren"))
        prompt = await tg.bot_said(FRANZ.id, "Schreib deinen Kommentar zu #1")
        assert prompt.force_reply == {"force_reply": True, "selective": True}
        said = fake.user_sends_text(FRANZ, None, "Schön!", reply_to=prompt.message_id)
        await tg.bot_reacted(FRANZ.id, said.message["message_id"])  # 👌: saved
        # a question with choices has its inline keyboard instead
        fake.user_sends_command(FRANZ, None, "benachrichtigung")
        question = await tg.bot_said(FRANZ.id, "Für welche Gruppe")
        assert question.force_reply is None
        assert labels(question) == ["Marketing"]
        fake.user_sends_text(FRANZ, None, "abbrechen")
        await tg.bot_said(FRANZ.id, "Abgebrochen")

        # in a bridged group: the reply to the question is his comment, not a post
        fake.user_sends_command(BOSS, branch, "bridge", "marketing", mention="pinwall_test_bot")
        await tg.bot_said(branch.id, "verbunden")
        await tg.on_console("alice", "/share marketing Plakat für die Filialen")
        relayed = await tg.bot_said(branch.id, "Plakat für die Filialen")
        fake.user_presses(FRANZ, branch, relayed.message_id, data_of(relayed, "Comment"))
        asked = await tg.bot_said(branch.id, "#2")
        # selective: for him alone, whom it mentions
        assert (asked.raw_text or "").startswith(f'<a href="tg://user?id={FRANZ.id}">')
        assert any(e["type"] == "text_mention" for e in asked.entities)
        assert asked.force_reply is not None
        assert asked.force_reply["selective"] is True
        fake.user_sends_text(FRANZ, branch, "Hängt ab Montag", reply_to=asked.message_id)
        await tg.printed_eventually("alice", "Hängt ab Montag")
    with sqlite_db.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Item)) == 2
        comments = uow.session.scalars(select(Comment.text).order_by(Comment.id)).all()
    assert list(comments) == ["Schön!", "Hängt ab Montag"]


# --- reactions ------------------------------------------------------------------------------


async def test_a_like_changes_the_counter_on_the_post_and_sends_nothing(
    fake: FakeTelegram, sqlite_db: Database, tmp_path: Path
) -> None:
    async with running(sqlite_db, fake, tmp_path) as tg:
        await tg.on_console("admin", "/group create marketing Marketing --externals")
        fake.user_starts(FRANZ, await invite(tg, "/invite partner marketing"))
        await tg.bot_said(FRANZ.id, "Willkommen")
        fake.user_sends_text(FRANZ, None, "/benachrichtigung marketing sofort")
        await tg.bot_said(FRANZ.id, "sofort")
        await tg.on_console("alice", "/join marketing", "/share marketing Neues Angebot")
        post = await tg.bot_said(FRANZ.id, "Neues Angebot")
        assert labels(post) == ["Kommentieren", "👍"]
        sent = len(fake.sent)

        # a 👍 reaction (message_reaction) counts, and the post's button says so
        fake.user_reacts(FRANZ, None, post.message_id, "👍")
        shown = await edited(fake, FRANZ.id, post.message_id, "👍 1")
        assert labels(shown) == ["Kommentieren", "👍 1"]
        # the 👍 button is the same like: pressed again it is taken back, in place
        fake.user_presses(FRANZ, None, post.message_id, data_of(shown, "👍 1"))
        await fake.wait_for_async(
            lambda: labels(fake.message(FRANZ.id, post.message_id) or {}) == ["Kommentieren", "👍"]
        )
        shown = await edited(fake, FRANZ.id, post.message_id, "👍")
        fake.user_presses(FRANZ, None, post.message_id, data_of(shown, "👍"))
        await edited(fake, FRANZ.id, post.message_id, "👍 1")
        await tg.on_console("alice", "/items marketing")
        assert "👍 1" in tg.printed("alice")[-1]
        assert len(fake.sent) == sent  # not one new message for all of it
        assert {e.message_id for e in fake.edits} == {post.message_id}

        # anonymous totals (message_reaction_count) are Telegram's own to show
        group = TgChat.supergroup("Kanal")
        fake.add_chat(group)
        fake.bot_added_to_group(BOSS, group, administrator=True)
        fake.anonymous_reacts(group, 1, "🔥")
        await fake.wait_for_async(lambda: not fake.pending_updates())
        assert len(fake.sent) == sent


async def test_a_gatekeepers_ok_reaction_approves_the_card(
    fake: FakeTelegram, sqlite_db: Database, tmp_path: Path
) -> None:
    async with running(sqlite_db, fake, tmp_path) as tg:
        await tg.on_console("admin", "/group create general General")
        fake.user_starts(GRETA, await invite(tg, "/invite member general"))
        await tg.bot_said(GRETA.id, "Welcome")
        await tg.on_console("admin", "/role greta gatekeeper")
        await tg.on_console("alice", "/propose newsroom Unser neues Angebot")
        card = await tg.bot_said(GRETA.id, "P1")
        sent = len(fake.sent)
        with pytest.raises(ValueError, match="REACTION_INVALID"):  # no ✅ on Telegram
            fake.user_reacts(GRETA, None, card.message_id, "✅")
        fake.user_reacts(GRETA, None, card.message_id, "👌")
        shown = await edited(fake, GRETA.id, card.message_id, "Approved by")
        assert labels(shown) == []
        await tg.printed_eventually("alice", "approved")
        assert len(fake.sent) - sent <= 1  # the card in place; at most a line to her
    with sqlite_db.uow() as uow:
        assert uow.session.scalar(select(Proposal.status)) in ("approved", "published")


# --- previews ---------------------------------------------------------------------------------


async def test_one_preview_per_link(tg: TelegramPinwall, fake: FakeTelegram) -> None:
    fake.user_starts(FRANZ)
    await tg.bot_said(FRANZ.id, "Einladung")
    dm = Target("telegram", "dm", str(FRANZ.id))
    card = "[Plakat](https://example.com/plakat)\nDas neue Plakat, ab Montag in allen Filialen"
    await tg.adapter.send(dm, Message(text=card, meta={"item": 1, "preview": True}))
    bare = "[example.com/plakat](https://example.com/plakat)"
    await tg.adapter.send(dm, Message(text=bare, meta={"item": 2, "preview": False}))
    await tg.adapter.send(dm, Message(text="Open https://t.me/pinwall_test_bot"))
    options = [s.message.get("link_preview_options") for s in fake.sent_to(FRANZ.id)[-3:]]
    # the card shows its preview: Telegram's is off; a card without one lets Telegram's
    # show; the bot's own lines never get one
    assert options == [{"is_disabled": True}, {"is_disabled": False}, {"is_disabled": True}]


async def test_reactions_are_asked_for_by_polling_and_by_the_webhook(
    fake: FakeTelegram, sqlite_db: Database, tmp_path: Path
) -> None:
    for mode in ("polling", "webhook"):
        async with running(sqlite_db, fake, tmp_path, mode=mode):
            method = "getUpdates" if mode == "polling" else "setWebhook"
            await fake.wait_for_async(lambda m=method: m in fake.calls, what=method)
            asked = [r.params["allowed_updates"] for r in fake.requests if r.method == method]
            assert "message_reaction" in asked[-1]
            assert "message_reaction_count" in asked[-1]


async def test_a_like_in_a_bridged_group_changes_the_rooms_copy(
    fake: FakeTelegram, sqlite_db: Database, tmp_path: Path
) -> None:
    """In a group Telegram sends reactions only to a bot that is an administrator there."""
    branch = TgChat.supergroup("Filiale Nord")
    fake.add_chat(branch)
    admins = frozenset({("telegram", str(BOSS.id))})
    async with running(sqlite_db, fake, tmp_path, admins=admins) as tg:
        await tg.on_console("admin", "/group create marketing Marketing --externals")
        fake.bot_added_to_group(BOSS, branch, administrator=True)
        fake.user_sends_command(BOSS, branch, "bridge", "marketing", mention="pinwall_test_bot")
        await tg.bot_said(branch.id, "verbunden")
        await tg.on_console("alice", "/join marketing", "/share marketing Neuer Aufsteller")
        relayed = await tg.bot_said(branch.id, "Neuer Aufsteller")
        sent = len(fake.sent)
        fake.user_reacts(BOSS, branch, relayed.message_id, "👍")
        shown = await edited(fake, branch.id, relayed.message_id, "👍 1")
        assert labels(shown) == ["Comment", "👍 1"]  # the room's copy, in its language
        assert len(fake.sent) == sent
