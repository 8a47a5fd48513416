"""Issue 18 on Telegram: what a group chat sees of personal answers, a stranger with a
link code said in the group, and code guessing — over real HTTP against the fake Bot API."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select

from bot.i18n import Translator
from bot.markup import to_plain
from store.db import Database
from store.models import Account
from tests.adapters.conftest import BOSS, FRANZ, GRETA, TelegramPinwall, running
from tests.adapters.test_telegram import button
from tests.fakes.telegram import FakeTelegram, TgChat

DE = Translator("de")
EN = Translator("en")
BOT_LINK = "https://t.me/pinwall_test_bot"


def pointer(name: str, t: Translator = DE, *, opened: bool = True) -> str:
    """The one line a group gets when an answer went to the asker privately; with the
    way to open the private chat while nothing has reached the asker there yet."""
    if opened:
        return to_plain(t("private.sent", name=name))
    return to_plain(t("private.sent_open", name=name, url=BOT_LINK))


def telegram_account(db: Database, user_id: int) -> Account | None:
    with db.uow() as uow:
        found = uow.session.scalars(
            select(Account).where(
                Account.platform == "telegram", Account.external_id == str(user_id)
            )
        ).first()
        if found is not None:
            uow.session.expunge(found)
        return found


async def started(tg: TelegramPinwall, fake: FakeTelegram, user: object) -> None:
    """The user opened the bot's private chat once (so the bot may write there)."""
    fake.user_starts(user)  # type: ignore[arg-type]
    await fake.wait_for_async(lambda: len(fake.sent_to(user.id)) >= 1)  # type: ignore[attr-defined]


async def test_a_stranger_cannot_take_over_an_admin_with_a_code_said_in_a_group(
    fake: FakeTelegram, sqlite_db: Database, tmp_path: Path
) -> None:
    branch = TgChat.supergroup("Filiale Nord")
    fake.add_chat(branch)
    admins = frozenset({("telegram", str(BOSS.id))})
    async with running(sqlite_db, fake, tmp_path, admins=admins) as tg:
        await started(tg, fake, BOSS)
        fake.user_sends_command(BOSS, branch, "link")
        await tg.bot_said(branch.id, "privaten Chat")
        answer = await tg.bot_said(BOSS.id, "Verknüpfungscode")
        found = re.search(r"Verknüpfungscode: ([A-Za-z0-9]{10})", answer.text or "")
        assert found, answer.text
        code = found.group(1)
        assert [m.text for m in fake.sent_to(branch.id)] == [pointer("Bettina")]

        # Greta, never invited, tries the code in the group (as she would have seen it).
        fake.user_sends_command(GRETA, branch, "link", code)
        await tg.bot_said(branch.id, "Greta, I've answered you")
        question = await tg.bot_said(BOSS.id, "Gehört es dir?")
        assert "Greta (@greta)" in (question.text or "")
        assert telegram_account(sqlite_db, GRETA.id) is None
        # ... she has no rights meanwhile ...
        fake.user_sends_command(GRETA, branch, "audit")
        explained = await tg.bot_said(branch.id, "invite")
        assert "audit" not in (explained.text or "")
        # ... and the boss says no.
        fake.user_presses(BOSS, None, question.message_id, button(question, "Nein"))
        await fake.wait_for_async(
            lambda: any("Nicht verknüpft" in (e.text or "") for e in fake.edits), 5.0
        )
        assert telegram_account(sqlite_db, GRETA.id) is None
        fake.user_sends_command(GRETA, branch, "audit")
        await fake.wait_for_async(
            lambda: sum("invite" in (m.text or "") for m in fake.sent_to(branch.id)) == 2
        )
        # Nothing the group saw carries the code.
        assert all(code not in (m.text or "") for m in fake.sent_to(branch.id))


async def test_the_way_to_open_the_private_chat_is_said_until_a_message_got_there(
    fake: FakeTelegram, sqlite_db: Database, tmp_path: Path
) -> None:
    branch = TgChat.supergroup("Filiale Nord")
    fake.add_chat(branch)
    admins = frozenset({("telegram", str(BOSS.id))})
    async with running(sqlite_db, fake, tmp_path, admins=admins) as tg:
        fake.user_sends_command(BOSS, branch, "whoami")
        await tg.bot_said(branch.id, "privaten Chat")
        # Telegram refused the answer (she never started the bot): the line says how.
        assert [m.text for m in fake.sent_to(branch.id)] == [pointer("Bettina", opened=False)]
        await started(tg, fake, BOSS)
        fake.user_sends_command(BOSS, branch, "whoami")
        await fake.wait_for_async(lambda: len(fake.sent_to(branch.id)) == 2)
        assert fake.sent_to(branch.id)[1].text == pointer("Bettina")


async def test_personal_answers_said_in_a_group_go_to_the_private_chat(
    fake: FakeTelegram, sqlite_db: Database, tmp_path: Path
) -> None:
    branch = TgChat.supergroup("Filiale Nord")
    fake.add_chat(branch)
    admins = frozenset({("telegram", str(BOSS.id))})
    async with running(sqlite_db, fake, tmp_path, admins=admins) as tg:
        await tg.on_console("admin", "/group create geheim Geheim --secret --externals")
        await started(tg, fake, BOSS)
        await tg.on_console("admin", "/add boss geheim")
        private_before = len(fake.sent_to(BOSS.id))
        lines = [
            ("whoami", ""),
            ("invite", "partner geheim"),
            ("invites", ""),
            ("link", ""),
            ("groups", ""),
            ("items", "geheim"),
            ("members", "geheim"),
            ("search", "geheim"),
            ("audit", ""),
            ("notify", "geheim instant"),
            ("settings", "timezone Europe/Vienna"),
        ]
        for command, args in lines:
            fake.user_sends_command(BOSS, branch, command, args)
        await fake.wait_for_async(
            lambda: len(fake.sent_to(BOSS.id)) == private_before + len(lines), 10.0
        )
        await fake.wait_for_async(lambda: len(fake.sent_to(branch.id)) == len(lines), 5.0)
        # The group got one line per command, saying where the answer went ...
        assert {m.text for m in fake.sent_to(branch.id)} == {pointer("Bettina")}
        # ... and the answers, with their secrets, went to the boss alone.
        private = "\n".join(m.text or "" for m in fake.sent_to(BOSS.id)[private_before:])
        invite = re.search(r"start=([A-Za-z0-9]{10})", private)
        link = re.search(r"Verknüpfungscode: ([A-Za-z0-9]{10})", private)
        assert invite, private
        assert link, private
        group_text = "\n".join(m.text or "" for m in fake.sent_to(branch.id))
        for secret in (invite.group(1), link.group(1), "geheim", "Geheim", "Europe/Vienna"):
            assert secret not in group_text
        assert "Europe/Vienna" in private


async def test_code_guessing_is_throttled_on_telegram(
    fake: FakeTelegram, sqlite_db: Database, tmp_path: Path
) -> None:
    async with running(sqlite_db, fake, tmp_path) as tg:
        await tg.on_console("admin", "/group create nord Nord --externals")
        await tg.on_console("admin", "/invite partner nord")
        found = re.search(r"start=([A-Za-z0-9]{10})", tg.printed("admin")[-1])
        assert found
        for n in range(5):
            fake.user_starts(FRANZ, f"Wrong{n:05d}")
        await fake.wait_for_async(lambda: len(fake.sent_to(FRANZ.id)) == 5, 10.0)
        assert all("ungültig" in (m.text or "") for m in fake.sent_to(FRANZ.id))
        fake.user_starts(FRANZ, found.group(1))  # the right code, but the sixth try
        answer = await tg.bot_said(FRANZ.id, "falscher Code zu viel")
        assert "10 Min." in (answer.text or "")
        assert telegram_account(sqlite_db, FRANZ.id) is None
        # Another person is not held up.
        fake.user_starts(GRETA, found.group(1))
        await tg.bot_said(GRETA.id, "Welcome")
        metrics = tg.hub.metrics.render().decode()
        assert 'pinwall_code_failures_total{kind="invite"} 5.0' in metrics
