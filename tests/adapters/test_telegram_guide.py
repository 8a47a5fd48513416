"""Guided commands on Telegram, over real HTTP against the fake Bot API: a bare command
from the menu asks with an inline keyboard, each press shows the next step in place of
the question, `abbrechen` ends it with nothing stored, and "Danke!" gets one line."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from store.db import Database
from store.models import MAIL_PLATFORM, Item, Membership
from tests.adapters.conftest import FRANZ, TelegramPinwall, running
from tests.fakes.telegram import FakeTelegram


def _keyboard(shown: object) -> list[dict[str, str]]:
    """The inline buttons of a sent message (SentMessage) or of one as it is now (dict)."""
    if isinstance(shown, dict):
        markup = shown.get("reply_markup")
    else:
        markup = getattr(shown, "reply_markup", None)
    return [b for row in (markup or {}).get("inline_keyboard", []) for b in row]


def labels(shown: object) -> list[str]:
    return [b["text"] for b in _keyboard(shown)]


def data_of(shown: object, label: str) -> str:
    for b in _keyboard(shown):
        if b["text"] == label:
            return str(b["callback_data"])
    raise AssertionError(f"no button {label!r} in {shown}")


async def member_on_telegram(tg: TelegramPinwall) -> None:
    await tg.on_console("admin", "/invite member marketing")
    link = re.search(r"https://t\.me/pinwall_test_bot\?start=(\w{10})", tg.printed("admin")[-1])
    assert link
    tg.fake.user_starts(FRANZ, link.group(1))
    await tg.bot_said(FRANZ.id, "Willkommen")


async def edited_to(tg: TelegramPinwall, message_id: int, needle: str) -> dict[str, Any]:
    """The question `message_id`, once it was edited to show `needle`."""

    def shown() -> bool:
        found = tg.fake.message(FRANZ.id, message_id)
        return found is not None and needle in str(found.get("text", ""))

    await tg.fake.wait_for_async(shown, what=f"the question edited to {needle!r}")
    found = tg.fake.message(FRANZ.id, message_id)
    assert found is not None
    return found


async def test_a_german_franchisee_joins_switches_to_taeglich_and_cancels_by_buttons(
    db: Database, fake: FakeTelegram, tmp_path: Path
) -> None:
    async with running(db, fake, tmp_path) as tg:
        await tg.on_console("admin", "/group create marketing Marketing")
        await tg.on_console("admin", "/group create events Events")
        await member_on_telegram(tg)

        # /join from the menu: the open groups he is not in, as buttons
        fake.user_sends_command(FRANZ, None, "join", "")
        question = await tg.bot_said(FRANZ.id, "Welcher Gruppe möchtest du beitreten?")
        assert "abbrechen" in (question.text or "")
        assert labels(fake.message(FRANZ.id, question.message_id)) == ["Events"]
        fake.user_presses(FRANZ, None, question.message_id, data_of(question, "Events"))
        shown = await edited_to(tg, question.message_id, "Du bist Events beigetreten.")
        assert labels(shown) == []  # the buttons are gone

        # /notify: his groups, then the modes in German, each in place of the question
        fake.user_sends_command(FRANZ, None, "notify", "")
        question = await tg.bot_said(FRANZ.id, "Für welche Gruppe")
        assert labels(question) == ["Events", "Marketing"]
        fake.user_presses(FRANZ, None, question.message_id, data_of(question, "Events"))
        shown = await edited_to(tg, question.message_id, "Wie soll ich dir neue Beiträge")
        assert labels(shown) == ["sofort", "täglich", "wöchentlich", "stumm"]
        fake.user_presses(FRANZ, None, question.message_id, data_of(shown, "täglich"))
        await edited_to(tg, question.message_id, "Events: Du bekommst die Beiträge jetzt")

        # /share, a group pressed, then abbrechen: nothing is stored
        fake.user_sends_command(FRANZ, None, "share", "")
        question = await tg.bot_said(FRANZ.id, "In welcher Gruppe möchtest du teilen?")
        fake.user_presses(FRANZ, None, question.message_id, data_of(question, "Events"))
        await edited_to(tg, question.message_id, "Was möchtest du teilen?")
        fake.user_sends_text(FRANZ, None, "abbrechen")
        await tg.bot_said(FRANZ.id, "Abgebrochen. Es wurde nichts gespeichert.")

        # thanks get one friendly line, not a share question
        before = len(fake.sent_to(FRANZ.id))
        fake.user_sends_text(FRANZ, None, "Danke!")
        thanks = await tg.bot_said(FRANZ.id, "Gern geschehen, Franz")
        assert labels(thanks) == []
        assert len(fake.sent_to(FRANZ.id)) == before + 1

    with db.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Item)) == 0
        modes = uow.session.execute(select(Membership.notify)).scalars().all()
    assert [str(m) for m in modes].count("daily") >= 1


async def test_the_franchisee_story_in_german_without_one_usage_error(
    db: Database, fake: FakeTelegram, tmp_path: Path
) -> None:
    """Issue 21's acceptance on Telegram, in German, with no README: redeem an invite,
    join a group from the offered buttons, share a link, open the post and comment on it,
    switch a group to täglich, cancel a question — and never a usage error."""
    async with running(db, fake, tmp_path) as tg:
        await tg.on_console("admin", "/group create marketing Marketing")
        await tg.on_console("admin", "/group create aktionen Aktionen")
        await member_on_telegram(tg)

        fake.user_sends_command(FRANZ, None, "beitreten", "")
        question = await tg.bot_said(FRANZ.id, "Welcher Gruppe möchtest du beitreten?")
        fake.user_presses(FRANZ, None, question.message_id, data_of(question, "Aktionen"))
        await edited_to(tg, question.message_id, "Du bist Aktionen beigetreten.")

        fake.user_sends_text(
            FRANZ, None, "/teilen aktionen https://example.com/plakat Neues Plakat"
        )
        await tg.bot_said(FRANZ.id, "Geteilt als #1 in Aktionen.")

        fake.user_sends_text(FRANZ, None, "/zeigen 1")
        post = await tg.bot_said(FRANZ.id, "Neues Plakat")
        assert "Noch keine Kommentare." in (post.text or "")
        fake.user_presses(FRANZ, None, post.message_id, data_of(post, "Kommentieren"))
        await tg.bot_said(FRANZ.id, "Schreib deinen Kommentar zu #1")
        said = fake.user_sends_text(FRANZ, None, "Hängt ab Montag in allen Filialen")
        await tg.bot_reacted(FRANZ.id, said.message["message_id"])  # 👌: saved

        fake.user_sends_text(FRANZ, None, "/benachrichtigung aktionen täglich")
        await tg.bot_said(FRANZ.id, "Aktionen: Du bekommst die Beiträge jetzt")

        fake.user_sends_command(FRANZ, None, "teilen", "")
        question = await tg.bot_said(FRANZ.id, "In welcher Gruppe möchtest du teilen?")
        fake.user_sends_text(FRANZ, None, "abbrechen")
        await tg.bot_said(FRANZ.id, "Abgebrochen. Es wurde nichts gespeichert.")

        said = [m.text or "" for m in fake.sent_to(FRANZ.id)]
    assert not [line for line in said if "So geht's" in line or "Es fehlt" in line], said
    with db.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Item)) == 1


def _franz(tg: TelegramPinwall) -> Any:
    with tg.db.uow() as uow:
        account = uow.people.account("telegram", str(FRANZ.id))
        assert account is not None
        person = uow.people.get(account.person_id)
        assert person is not None
        schedule = uow.digests.schedule(person.id)
        return (
            person.language,
            person.digest_by_mail,
            schedule.daily_minute if schedule else None,
        )


async def test_bare_settings_shows_a_menu_with_a_button_for_each_change(
    db: Database, fake: FakeTelegram, tmp_path: Path
) -> None:
    async with running(db, fake, tmp_path) as tg:
        await tg.on_console("admin", "/group create marketing Marketing")
        await member_on_telegram(tg)

        # no address yet (and mail not running): language, zone and digest times only
        fake.user_sends_command(FRANZ, None, "settings", "")
        menu = await tg.bot_said(FRANZ.id, "Deine Einstellungen")
        assert "Sprache: Deutsch" in (menu.text or "")
        assert "Zusammenfassungen: täglich um 08:00, wöchentlich am Montag um 08:00" in (
            menu.text or ""
        )
        assert labels(menu) == [
            "English",
            "Zeitzone …",
            "Tägliche Zusammenfassung …",
            "Wöchentliche Zusammenfassung …",
            "Zusammenfassungen pausieren",
        ]

        # the daily time: the guide asks for it, his answer sets it
        fake.user_presses(FRANZ, None, menu.message_id, data_of(menu, "Tägliche Zusammenfassung …"))
        await tg.bot_said(FRANZ.id, "Um wie viel Uhr?")
        fake.user_sends_text(FRANZ, None, "7:30")
        await tg.bot_said(FRANZ.id, "07:30")
        assert _franz(tg)[2] == 7 * 60 + 30

        # mail runs and Franz has a verified address: digests by mail is offered
        tg.core.settings.running.add(MAIL_PLATFORM)
        with tg.db.uow() as uow:
            account = uow.people.account("telegram", str(FRANZ.id))
            assert account is not None
            person = uow.people.get(account.person_id)
            assert person is not None
            uow.people.add_account(
                person,
                platform=MAIL_PLATFORM,
                external_id="franz@firma.test",
                now=tg.core.clock.now(),
            )
            uow.commit()
        fake.user_sends_command(FRANZ, None, "settings", "")
        menu = await tg.bot_said(FRANZ.id, "nicht per Mail an franz@firma.test")
        assert labels(menu)[-1] == "Zusammenfassungen per Mail"
        fake.user_presses(FRANZ, None, menu.message_id, data_of(menu, "Zusammenfassungen per Mail"))
        await tg.bot_said(
            FRANZ.id, "Deine Zusammenfassungen gehen jetzt per Mail an franz@firma.test"
        )
        assert _franz(tg)[1] is True

        # and the language, by one press
        fake.user_presses(FRANZ, None, menu.message_id, data_of(menu, "English"))
        await tg.bot_said(FRANZ.id, "From now on I'll talk to you in English.")
        assert _franz(tg)[0] == "en"
