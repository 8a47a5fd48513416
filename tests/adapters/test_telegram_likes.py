"""Telegram likes and menus that follow the person (issue 22, the gaps left open), over
real HTTP against the fake Bot API: a 👍 taken back unlikes; a like shows on every copy
of the post the bot delivered, photo posts too (their caption edited); a channel's
anonymous 👍 (message_reaction_count) count; `pinwall people grant` gives the person's
chat its menu through the outbox."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.cli import main
from store.db import Database
from store.models import Reaction
from tests.adapters.conftest import BOSS, FRANZ, GRETA, TelegramPinwall, running
from tests.adapters.test_telegram_native import data_of, edited, invite, labels
from tests.fakes.telegram import FakeTelegram, TgChat, png_bytes


def likes_stored(db: Database) -> int:
    with db.uow() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(Reaction)) or 0)


async def _marketing_with(tg: TelegramPinwall, fake: FakeTelegram, *people: object) -> None:
    """Marketing with partners on Telegram who get its posts instantly."""
    await tg.on_console("admin", "/group create marketing Marketing --externals")
    for user in people:
        fake.user_starts(user, await invite(tg, "/invite partner marketing"))  # type: ignore[arg-type]
        await tg.bot_said(user.id, "Marketing")  # type: ignore[attr-defined]
        fake.user_sends_text(user, None, "/notify marketing instant")  # type: ignore[arg-type]
        await tg.bot_said(user.id, "Marketing:")  # type: ignore[attr-defined]


async def test_taking_the_like_reaction_back_unlikes_in_place(
    fake: FakeTelegram, sqlite_db: Database, tmp_path: Path
) -> None:
    async with running(sqlite_db, fake, tmp_path) as tg:
        await _marketing_with(tg, fake, GRETA)
        await tg.on_console("alice", "/join marketing", "/share marketing Spring flyer")
        post = await tg.bot_said(GRETA.id, "Spring flyer")
        sent = len(fake.sent)

        fake.user_reacts(GRETA, None, post.message_id, "👍")
        await edited(fake, GRETA.id, post.message_id, "👍 1")
        assert likes_stored(sqlite_db) == 1
        # the reaction taken back (message_reaction with old_reaction 👍, new none)
        fake.user_reacts(GRETA, None, post.message_id)
        await fake.wait_for_async(
            lambda: labels(fake.message(GRETA.id, post.message_id) or {}) == ["Comment", "👍"],
            what="the counter back to no likes",
        )
        assert likes_stored(sqlite_db) == 0
        # swapped for another reaction: the like goes, the 🔥 stays a reaction
        fake.user_reacts(GRETA, None, post.message_id, "👍")
        await edited(fake, GRETA.id, post.message_id, "👍 1")
        fake.user_reacts(GRETA, None, post.message_id, "🔥")
        await fake.wait_for_async(
            lambda: labels(fake.message(GRETA.id, post.message_id) or {}) == ["Comment", "👍"],
            what="the like swapped for 🔥",
        )
        with sqlite_db.uow() as uow:
            assert list(uow.session.scalars(select(Reaction.emoji))) == ["🔥"]
        await tg.on_console("alice", "/items marketing")
        assert "👍" not in tg.printed("alice")[-1]
        assert len(fake.sent) == sent  # not one message for any of it


async def test_a_like_shows_on_every_copy_photo_posts_by_their_caption(
    fake: FakeTelegram, sqlite_db: Database, tmp_path: Path
) -> None:
    branch = TgChat.supergroup("Filiale Nord")
    fake.add_chat(branch)
    admins = frozenset({("telegram", str(BOSS.id))})
    async with running(sqlite_db, fake, tmp_path, admins=admins) as tg:
        await _marketing_with(tg, fake, GRETA, FRANZ)
        fake.bot_added_to_group(BOSS, branch, administrator=True)
        fake.user_sends_command(BOSS, branch, "bridge", "marketing", mention="pinwall_test_bot")
        await tg.bot_said(branch.id, "verbunden")

        # Franz shares a photo; Greta and the branch get it as a photo with its caption
        fake.user_sends_photo(FRANZ, None, png_bytes(64, 48), caption="Schaufenster Nord")
        question = await tg.bot_said(FRANZ.id, "In welcher Gruppe")
        fake.user_presses(FRANZ, None, question.message_id, data_of(question, "Marketing"))
        greta_copy = await tg.bot_said(GRETA.id, "Schaufenster Nord")
        room_copy = await tg.bot_said(branch.id, "Schaufenster Nord")
        assert greta_copy.caption  # photos, not text messages
        assert room_copy.caption
        sent = len(fake.sent)

        # Greta likes her copy: hers and the branch's show "👍 1", captions edited
        fake.user_reacts(GRETA, None, greta_copy.message_id, "👍")
        await edited(fake, GRETA.id, greta_copy.message_id, "👍 1")
        shown = await edited(fake, branch.id, room_copy.message_id, "👍 1")
        assert labels(shown) == ["Comment", "👍 1"]  # the room's copy in its language
        assert "Schaufenster Nord" in str(shown.get("caption"))
        methods = {e.method for e in fake.edits if e.message_id == room_copy.message_id}
        assert methods == {"editMessageCaption"}

        # the branch is a place of anonymous reactions (message_reaction_count): its
        # 👍 count on its copy, added to the people's, on every copy
        fake.anonymous_reacts(branch, room_copy.message_id, "👍", 2)
        await edited(fake, GRETA.id, greta_copy.message_id, "👍 3")
        await edited(fake, branch.id, room_copy.message_id, "👍 3")
        fake.anonymous_reacts(branch, room_copy.message_id, "👍", -1)
        await edited(fake, GRETA.id, greta_copy.message_id, "👍 2")
        # a total on a message that is no post's copy changes nothing
        fake.anonymous_reacts(branch, question.message_id + 10_000, "👍")
        await fake.wait_for_async(lambda: not fake.pending_updates())
        assert len(fake.sent) == sent  # all of it in place


async def test_a_channels_anonymous_likes_count_in_lists_posts_and_digests(
    fake: FakeTelegram, sqlite_db: Database, tmp_path: Path
) -> None:
    """A channel's anonymous 👍 (message_reaction_count) count wherever likes are shown:
    the cards, /items, /show and the digest (its line and its ranking), all alike."""
    branch = TgChat.supergroup("Filiale Nord")
    fake.add_chat(branch)
    admins = frozenset({("telegram", str(BOSS.id))})
    async with running(sqlite_db, fake, tmp_path, admins=admins) as tg:
        await _marketing_with(tg, fake, GRETA)
        fake.bot_added_to_group(BOSS, branch, administrator=True)
        fake.user_sends_command(BOSS, branch, "bridge", "marketing", mention="pinwall_test_bot")
        await tg.bot_said(branch.id, "verbunden")
        await tg.on_console("alice", "/join marketing", "/share marketing Older post")
        await tg.on_console("alice", "/share marketing Spring flyer")
        room_copy = await tg.bot_said(branch.id, "Spring flyer")
        greta_copy = await tg.bot_said(GRETA.id, "Older post")

        # two anonymous 👍 on the room's copy of #2, Greta's own 👍 on #1
        fake.anonymous_reacts(branch, room_copy.message_id, "👍", 2)
        await edited(fake, branch.id, room_copy.message_id, "👍 2")
        fake.user_reacts(GRETA, None, greta_copy.message_id, "👍")
        await edited(fake, GRETA.id, greta_copy.message_id, "👍 1")

        await tg.on_console("alice", "/items marketing")
        listed = tg.printed("alice")[-1]
        assert "#1" in listed
        assert "#2" in listed
        older, newer = listed.split("#1")[1], listed.split("#2")[1].split("#1")[0]
        assert "👍 2" in newer  # the anonymous ones
        assert "👍 1" in older  # Greta's
        await tg.on_console("alice", "/show 2")
        assert "Reactions: 👍 2" in tg.printed("alice")[-1]
        await tg.on_console("admin", "/join marketing", "/digest now")
        digest = await tg.printed_eventually("admin", "Spring flyer")
        assert "2 reactions" in digest
        # ranked by them too: #2 (two likes) above #1 (one)
        assert digest.index("Spring flyer") < digest.index("Older post")


@pytest.fixture
def cli(sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.setenv("PINWALL_DATABASE_URL", sqlite_db.url)
    monkeypatch.setenv("PINWALL_DATA_DIR", str(tmp_path / "cli-data"))
    monkeypatch.setenv("PINWALL_CONFIG", str(tmp_path / "none.toml"))
    return main


async def test_a_role_granted_by_the_cli_changes_the_persons_menu(
    fake: FakeTelegram, sqlite_db: Database, tmp_path: Path, cli: object
) -> None:
    async with running(sqlite_db, fake, tmp_path) as tg:
        await tg.on_console("admin", "/group create general General")
        fake.user_starts(GRETA, await invite(tg, "/invite member general"))
        await tg.bot_said(GRETA.id, "Welcome")
        # Greta works on the console, but her Telegram chat has a menu to change
        sent = len(fake.sent)
        assert main(["people", "grant", "greta", "gatekeeper"]) == 0
        tg.hub.wake()
        await fake.wait_for_async(  # English first, then German
            lambda: "freigeben" in fake.commands_for(f"chat:{GRETA.id}", "de"), what="her menu"
        )
        assert "approve" in fake.commands_for(f"chat:{GRETA.id}")
        assert main(["people", "revoke", "greta", "gatekeeper"]) == 0
        tg.hub.wake()
        await fake.wait_for_async(
            lambda: not fake.commands_for(f"chat:{GRETA.id}", "de"), what="everyone's again"
        )
        assert not fake.commands_for(f"chat:{GRETA.id}")
        assert len(fake.sent) == sent  # a menu, no message
