"""The Telegram adapter over real HTTP against a faithful fake Bot API, with a console
member beside it: invites by deep link, sharing from the phone, buttons, bridged groups,
webhooks, redeliveries, flood control, blocked bots, big files."""

from __future__ import annotations

import asyncio
import contextlib
import re
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from telegram import Update

from app.http import create_app
from bot.message import Delivered, Message, Target
from store.db import Database
from store.models import Account, InboxEvent, Item, ItemFile, OutboxMessage
from tests.adapters.conftest import (
    BOSS,
    FRANZ,
    GRETA,
    WEBHOOK_SECRET,
    TelegramPinwall,
    running,
)
from tests.fakes.telegram import FakeTelegram, Injected, TgChat, TgUser, png_bytes


def button(sent: object, label: str) -> str:
    """The callback data of the inline button labelled `label` on a sent message."""
    markup = getattr(sent, "reply_markup", None) or {}
    for row in markup.get("inline_keyboard", []):
        for b in row:
            if b["text"] == label:
                return str(b["callback_data"])
    raise AssertionError(f"no button {label!r} in {markup}")


async def invite_code(tg: TelegramPinwall, line: str) -> str:
    await tg.on_console("admin", line)
    invite = tg.printed("admin")[-1]
    link = re.search(r"https://t\.me/pinwall_test_bot\?start=(\w{10})", invite)
    assert link, invite
    return link.group(1)


async def franchisee(tg: TelegramPinwall, group: str, *, instant: bool = False) -> None:
    """Franz, a franchisee, redeems a partner invite to `group` on Telegram."""
    code = await invite_code(tg, f"/invite partner {group}")
    tg.fake.user_starts(FRANZ, code)
    await tg.bot_said(FRANZ.id, "Willkommen")
    if instant:
        tg.fake.user_sends_command(FRANZ, None, "notify", f"{group} instant")
        await tg.bot_said(FRANZ.id, "sofort")


async def test_franchisee_joins_by_deep_link_and_shares_a_photo_from_the_phone(
    db: Database, fake: FakeTelegram, tmp_path: Path
) -> None:
    async with running(db, fake, tmp_path) as tg:
        await tg.on_console("admin", "/group create marketing Marketing --externals")
        code = await invite_code(tg, "/invite partner marketing")
        await tg.on_console("alice", "/join marketing", "/notify marketing instant")

        fake.user_starts(FRANZ, code)
        welcome = await tg.bot_said(FRANZ.id, "Willkommen bei Pinwall")  # his language: de
        assert "Marketing (marketing)" in (welcome.text or "")

        photo = png_bytes(64, 48)
        fake.user_sends_photo(FRANZ, None, photo, caption="Neues Plakat der Konkurrenz am Bahnhof")
        question = await tg.bot_said(FRANZ.id, "In welcher Gruppe")
        fake.user_presses(FRANZ, None, question.message_id, button(question, "Marketing"))

        # The press is answered, and the question shows the outcome in its place.
        await fake.wait_for_async(lambda: len(fake.answered_callbacks) == 1, what="the answer")
        await fake.wait_for_async(
            lambda: any(e.message_id == question.message_id for e in fake.edits), what="the edit"
        )
        shown = fake.message(FRANZ.id, question.message_id)
        assert shown is not None
        assert shown["text"] == "Geteilt als #1 in Marketing."
        assert "reply_markup" not in shown  # the buttons are gone

        post = await tg.printed_eventually("alice", "in Marketing")
        assert post.startswith("[alice] franz_nord via Telegram in Marketing:")
        assert "Neues Plakat der Konkurrenz am Bahnhof" in post
        assert "📎 photo-" in post

    with db.uow() as uow:
        [text] = uow.session.scalars(select(Item.text)).all()
        [(name, blob_id)] = uow.session.execute(select(ItemFile.name, ItemFile.blob_id)).all()
    assert text == "Neues Plakat der Konkurrenz am Bahnhof"
    assert name.endswith(".jpg")
    assert tg.hub.blobs is not None
    assert tg.hub.blobs.read(blob_id) == photo


async def test_an_album_of_photos_is_one_question_and_one_post(
    db: Database, fake: FakeTelegram, tmp_path: Path
) -> None:
    async with running(db, fake, tmp_path) as tg:
        await tg.on_console("admin", "/group create marketing Marketing --externals")
        code = await invite_code(tg, "/invite partner marketing")
        fake.user_starts(FRANZ, code)
        await tg.bot_said(FRANZ.id, "Willkommen bei Pinwall")

        photos = [png_bytes(64, 48), png_bytes(32, 32), png_bytes(16, 24)]
        fake.user_sends_album(FRANZ, None, photos, caption="Schaufenster Filiale Nord")
        question = await tg.bot_said(FRANZ.id, "In welcher Gruppe")
        # Every photo was taken in before the press (each had its own update).
        await fake.wait_for_async(lambda: not fake.pending_updates(), what="all taken")
        fake.user_presses(FRANZ, None, question.message_id, button(question, "Marketing"))
        await fake.wait_for_async(
            lambda: any(e.message_id == question.message_id for e in fake.edits), what="the edit"
        )
        shown = fake.message(FRANZ.id, question.message_id)
        assert shown is not None
        assert shown["text"] == "Geteilt als #1 in Marketing."
        asked = [m for m in fake.sent_to(FRANZ.id) if "In welcher Gruppe" in (m.text or "")]
        assert len(asked) == 1  # one question for the album, not one per photo

    with db.uow() as uow:
        [text] = uow.session.scalars(select(Item.text)).all()
        blobs = uow.session.scalars(select(ItemFile.blob_id).order_by(ItemFile.position)).all()
    assert text == "Schaufenster Filiale Nord"
    assert tg.hub.blobs is not None
    assert [tg.hub.blobs.read(b) for b in blobs] == photos


async def test_strangers_get_only_the_explanation(tg: TelegramPinwall, fake: FakeTelegram) -> None:
    fake.user_sends_text(GRETA, None, "hello, what is this?")
    explained = await tg.bot_said(GRETA.id, "invite")
    assert "/redeem CODE" in (explained.text or "")
    fake.user_starts(GRETA)
    await fake.wait_for_async(lambda: len(fake.sent_to(GRETA.id)) == 2)
    fake.user_sends_command(GRETA, None, "groups")
    await fake.wait_for_async(lambda: len(fake.sent_to(GRETA.id)) == 3)
    assert all("invite" in (s.text or "") for s in fake.sent_to(GRETA.id))
    with tg.db.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Account)) == 0


async def test_a_wrong_invite_code_is_explained_in_the_persons_language(
    tg: TelegramPinwall, fake: FakeTelegram
) -> None:
    fake.user_starts(FRANZ, "NotAValid1")
    answer = await tg.bot_said(FRANZ.id, "Einladung")
    assert "ungültig" in (answer.text or "")


async def test_a_bridged_telegram_group(
    fake: FakeTelegram, sqlite_db: Database, tmp_path: Path
) -> None:
    fake.privacy_mode = False  # BotFather /setprivacy: Disable — the bot sees every message
    branch = TgChat.supergroup("Filiale Nord")
    fake.add_chat(branch)
    admins = frozenset({("telegram", str(BOSS.id))})
    async with running(sqlite_db, fake, tmp_path, admins=admins) as tg:
        await tg.on_console("admin", "/group create marketing Marketing --externals")
        await tg.on_console("alice", "/join marketing", "/notify marketing instant")
        await franchisee(tg, "marketing")

        fake.user_sends_command(BOSS, branch, "bridge", "marketing", mention="pinwall_test_bot")
        await tg.bot_said(branch.id, "verbunden")  # the answer to the admin, in German
        # A post from the console shows in the Telegram group...
        await tg.on_console("alice", "/share marketing https://example.com/flyer Der neue Flyer")
        relayed = await tg.bot_said(branch.id, "Der neue Flyer")
        assert relayed.parse_mode == "HTML"
        assert '<a href="https://example.com/flyer">' in (relayed.raw_text or "")
        # ... a reply to it there is a comment on the post ...
        fake.user_sends_text(FRANZ, branch, "Hängt bei uns schon!", reply_to=relayed.message_id)
        await tg.printed_eventually("alice", "Hängt bei uns schon!")
        # ... and a message in the group is a post of the group.
        fake.user_sends_text(FRANZ, branch, "Unser Schaufenster https://example.com/window")
        post = await tg.printed_eventually("alice", "Unser Schaufenster")
        assert "franz_nord via Telegram in Marketing" in post
        # A command for another bot in the group is none of Pinwall's business.
        before = len(fake.sent_to(branch.id))
        fake.user_sends_command(FRANZ, branch, "help", mention="other_bot")
        fake.user_sends_command(FRANZ, branch, "help", mention="pinwall_test_bot")
        await fake.wait_for_async(lambda: len(fake.sent_to(branch.id)) == before + 1)
        assert fake.sent_to(branch.id)[-1].text.startswith("Hallo @franz_nord! Das kannst du tun:")
        # Updates are taken in order: the other bot's command, sent first, was dropped.
    with sqlite_db.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Item)) == 2


async def test_an_edit_only_message_is_dropped_where_its_original_cannot_be_edited(
    fake: FakeTelegram, sqlite_db: Database, tmp_path: Path
) -> None:
    """A card's running vote count is shown in place or not at all; an outcome that
    cannot replace its message is sent as a new one."""
    async with running(sqlite_db, fake, tmp_path) as tg:
        fake.user_starts(FRANZ)
        await tg.bot_said(FRANZ.id, "Einladung")
        dm = Target("telegram", "dm", str(FRANZ.id))
        before = len(fake.sent_to(FRANZ.id))
        gone = "987654"  # no such message in the chat
        count = Message(text="Approvals: 1 of 2", replaces=gone, edit_only=True)
        assert await tg.adapter.send(dm, count) == Delivered(conversation=str(FRANZ.id))
        assert len(fake.sent_to(FRANZ.id)) == before
        outcome = await tg.adapter.send(dm, Message(text="Approved", replaces=gone))
        assert isinstance(outcome, Delivered)
        assert outcome.message_id is not None
        assert [s.text for s in fake.sent_to(FRANZ.id)[before:]] == ["Approved"]


async def test_long_posts_are_split_within_telegrams_limit(
    fake: FakeTelegram, sqlite_db: Database, tmp_path: Path
) -> None:
    async with running(sqlite_db, fake, tmp_path) as tg:
        await tg.on_console("admin", "/group create press Press --externals")
        await franchisee(tg, "press", instant=True)
        words = " ".join(f"Absatz{i} <&> lorem ipsum dolor sit amet" for i in range(150))
        await tg.on_console("admin", f"/share press {words}")
        await fake.wait_for_async(
            lambda: any("Absatz149" in (s.text or "") for s in fake.sent_to(FRANZ.id))
        )
    parts = [s for s in fake.sent_to(FRANZ.id) if "Absatz" in (s.text or "")]
    assert len(parts) == 2
    assert all(len(p.text or "") <= 4096 for p in parts)
    assert "<&>" in (parts[0].text or "")
    assert parts[-1].reply_markup is not None  # the buttons under the last part


async def test_webhook_refuses_a_wrong_secret_and_takes_each_update_once(
    fake: FakeTelegram, sqlite_db: Database, tmp_path: Path
) -> None:
    async with running(sqlite_db, fake, tmp_path, mode="webhook") as tg:
        assert fake.webhook_url == "https://pinwall.example.com/telegram/webhook"
        injected = fake.user_sends_text(GRETA, None, "hello")
        _url, headers, body = fake.webhook_request(injected.update)
        async with httpx.AsyncClient() as client:
            for wrong in ({}, {"X-Telegram-Bot-Api-Secret-Token": "guess"}):
                answer = await client.post(
                    tg.webhook_url,
                    content=body,
                    headers={"Content-Type": "application/json", **wrong},
                )
                assert answer.status_code == 403
            with tg.db.uow() as uow:
                assert uow.session.scalar(select(func.count()).select_from(InboxEvent)) == 0
                assert uow.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
            assert headers["X-Telegram-Bot-Api-Secret-Token"] == WEBHOOK_SECRET
            for _ in range(3):  # Telegram redelivers when it misses the answer
                answer = await client.post(tg.webhook_url, content=body, headers=headers)
                assert answer.status_code == 200
            bad = await client.post(tg.webhook_url, content=b"{nope", headers=headers)
            assert bad.status_code == 400
        await tg.bot_said(GRETA.id, "invite")
        await tg.worker.drain()
    assert len(fake.sent_to(GRETA.id)) == 1
    with sqlite_db.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(InboxEvent)) == 1


async def test_an_update_taken_before_a_crash_is_not_taken_again(
    fake: FakeTelegram, sqlite_db: Database, tmp_path: Path
) -> None:
    """The update was recorded and applied, then Pinwall died before confirming its
    offset: Telegram sends it again, and it has no second effect."""
    async with running(sqlite_db, fake, tmp_path) as tg:
        await tg.on_console("admin", "/group create marketing Marketing --externals")
        code = await invite_code(tg, "/invite partner marketing --uses 5")
        fake.user_starts(FRANZ, code)
        await tg.bot_said(FRANZ.id, "Willkommen")
    confirmed = fake.confirmed_offset
    # The next Pinwall takes an update, and "crashes" before its next getUpdates.
    injected = fake.user_sends_text(FRANZ, None, "Preisliste https://example.com/prices")

    async with running(sqlite_db, fake, tmp_path) as tg:
        await tg.adapter.process(Update.de_json(injected.update, tg.adapter.bot))
        # ...its polling loop, started with it, gets the same update from Telegram too
        await fake.wait_for_async(lambda: fake.confirmed_offset > injected.update_id)
        await tg.worker.drain()
    assert confirmed <= injected.update_id
    questions = [s for s in fake.sent_to(FRANZ.id) if "In welcher Gruppe" in (s.text or "")]
    assert len(questions) == 1
    with sqlite_db.uow() as uow:
        ids = uow.session.scalars(select(InboxEvent.event_id)).all()
    assert ids.count(f"{fake.bot_user.id}:{injected.update_id}") == 1


async def test_a_429_storm_loses_nothing_and_comes_back_after_retry_after(
    fake: FakeTelegram, sqlite_db: Database, tmp_path: Path
) -> None:
    async with running(sqlite_db, fake, tmp_path) as tg:
        await tg.on_console("admin", "/group create news News --externals")
        await franchisee(tg, "news", instant=True)
        fake.flood(0.3, count=15)
        for i in range(12):
            await tg.console_adapter.handle_line(f"/share news Meldung {i}")
        await fake.wait_for_async(
            lambda: sum("Meldung" in (s.text or "") for s in fake.sent_to(FRANZ.id)) == 12,
            timeout=15,
        )
        await tg.worker.drain()
    texts = [s.text or "" for s in fake.sent_to(FRANZ.id) if "Meldung" in (s.text or "")]
    assert sorted(texts) == sorted(set(texts))  # each once
    assert fake.early == []  # never before the retry_after Telegram gave
    assert sum(r.status == 429 for r in fake.requests) == 15


async def test_a_person_who_blocked_the_bot_is_unreachable_until_they_write(
    fake: FakeTelegram, sqlite_db: Database, tmp_path: Path
) -> None:
    async with running(sqlite_db, fake, tmp_path) as tg:
        await tg.on_console("admin", "/group create news News --externals")
        await franchisee(tg, "news")
        fake.block(FRANZ.id)
        await tg.on_console("admin", "/group create events Events --externals")
        await tg.on_console("admin", "/add franz_nord events")  # telling him fails: 403
        with tg.db.uow() as uow:
            account = uow.people.account("telegram", str(FRANZ.id))
            assert account is not None
            assert not account.reachable
            rows = uow.session.scalars(
                select(OutboxMessage).where(OutboxMessage.platform == "telegram")
            ).all()
            assert [r.status for r in rows if r.last_error] == ["dead"]
            assert all(r.attempts <= 1 for r in rows)
        fake.unblock(FRANZ.id)
        before = len(fake.sent_to(FRANZ.id))
        fake.user_sends_command(FRANZ, None, "whoami")
        await fake.wait_for_async(lambda: len(fake.sent_to(FRANZ.id)) > before)
        with tg.db.uow() as uow:
            account = uow.people.account("telegram", str(FRANZ.id))
            assert account is not None
            assert account.reachable


async def test_a_file_over_the_bot_download_limit_gets_a_clear_answer(
    fake: FakeTelegram, sqlite_db: Database, tmp_path: Path
) -> None:
    async with running(sqlite_db, fake, tmp_path, max_download=1000) as tg:
        await tg.on_console("admin", "/group create news News --externals")
        await franchisee(tg, "news")
        fake.user_sends_document(FRANZ, None, b"x" * 5000, "katalog.pdf", "application/pdf")
        answer = await tg.bot_said(FRANZ.id, "katalog.pdf")
        assert "zu groß" in (answer.text or "")
        fake.user_sends_document(FRANZ, None, b"%PDF-1.4 small", "flyer.pdf", "application/pdf")
        await tg.bot_said(FRANZ.id, "In welcher Gruppe")
    with sqlite_db.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Item)) == 0
    assert "katalog" not in " ".join(fake.downloads)


async def test_a_forwarded_message_starts_the_share_flow(
    fake: FakeTelegram, sqlite_db: Database, tmp_path: Path
) -> None:
    async with running(sqlite_db, fake, tmp_path) as tg:
        assert tg.adapter.healthy()
        await tg.on_console("admin", "/group create press Press --externals")
        await tg.on_console("alice", "/join press", "/notify press instant")
        await franchisee(tg, "press")
        fake.user_forwards(
            FRANZ, None, "Zeitungsartikel über uns https://example.com/artikel", origin="Lokalblatt"
        )
        question = await tg.bot_said(FRANZ.id, "In welcher Gruppe")
        fake.user_presses(FRANZ, None, question.message_id, button(question, "Press"))
        post = await tg.printed_eventually("alice", "Zeitungsartikel über uns")
        assert "https://example.com/artikel" in post


# --- updates python-telegram-bot cannot read; /healthz ------------------------------------


def unreadable_press(fake: FakeTelegram, user: TgUser) -> Injected:
    """A button press whose message lacks its date: python-telegram-bot's Update.de_json
    raises KeyError('date') for it (get_updates raises for its whole batch)."""
    injected = fake.inject_update(
        "callback_query",
        {
            "id": "4382000000000000001",
            "from": user.to_api(),
            "chat_instance": "-1",
            "data": "x",
            "message": {"message_id": 1, "chat": {"id": user.id, "type": "private"}},
        },
    )
    with pytest.raises(KeyError):
        Update.de_json(injected.update, None)
    return injected


async def test_an_update_that_cannot_be_read_is_skipped_and_polling_goes_on(
    fake: FakeTelegram, db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(db, fake, tmp_path) as tg:
        bad = unreadable_press(fake, GRETA)
        fake.user_sends_text(GRETA, None, "hello")  # in the same batch, after it
        await tg.bot_said(GRETA.id, "invite")
        last = unreadable_press(fake, GRETA)  # the last of its batch
        assert last.update_id is not None
        await fake.wait_for_async(lambda: fake.confirmed_offset > last.update_id)
        fake.user_sends_text(GRETA, None, "still there?")
        await fake.wait_for_async(lambda: len(fake.sent_to(GRETA.id)) == 2)
        assert tg.adapter.healthy()
        metrics = tg.hub.metrics.render().decode()
    assert 'pinwall_inbound_events_total{platform="telegram",result="undecodable"} 2.0' in metrics
    skipped = [r for r in caplog.records if "cannot be read" in r.getMessage()]
    assert [r.levelname for r in skipped] == ["WARNING", "WARNING"]
    assert f"update {bad.update_id} (callback_query)" in skipped[0].getMessage()
    assert "KeyError" in skipped[0].getMessage()
    with db.uow() as uow:  # only the two readable ones were recorded
        assert uow.session.scalar(select(func.count()).select_from(InboxEvent)) == 2


async def test_a_webhook_update_that_cannot_be_read_is_acknowledged_and_skipped(
    fake: FakeTelegram, db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Answered 200, so Telegram does not send it again and again (it would hold back
    every update behind it); logged; the next one is taken."""
    async with running(db, fake, tmp_path, mode="webhook") as tg:
        bad = unreadable_press(fake, GRETA)
        assert await fake.post_webhook_async(bad, tg.webhook_url) == 200
        good = fake.user_sends_text(GRETA, None, "hello")
        assert await fake.post_webhook_async(good, tg.webhook_url) == 200
        await tg.bot_said(GRETA.id, "invite")
    assert fake.pending_updates() == []
    assert any(
        f"update {bad.update_id} (callback_query) cannot be read" in r.getMessage()
        for r in caplog.records
    )


async def test_healthz_says_why_telegram_does_not_receive(
    fake: FakeTelegram, sqlite_db: Database, tmp_path: Path
) -> None:
    """A failing getUpdates (a webhook set by someone else: 409) and a polling loop that
    ended are each a 503 with the reason; the first heals when getUpdates works again."""
    async with (
        running(sqlite_db, fake, tmp_path) as tg,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(tg.hub)), base_url="http://pinwall"
        ) as client,
    ):
        health = await client.get("/healthz")
        assert (health.status_code, health.json()["adapters"]) == (
            200,
            {"telegram": True, "console": True},
        )
        api = f"{fake.base_url}{fake.token}"
        async with httpx.AsyncClient() as bot_api:  # another program takes the bot over
            await bot_api.post(f"{api}/setWebhook", json={"url": "https://elsewhere.example/hook"})
            await fake.wait_for_async(lambda: not tg.adapter.healthy(), timeout=10)
            health = await client.get("/healthz")
            assert health.status_code == 503
            assert health.json()["status"] == "degraded"
            assert health.json()["adapters"]["telegram"] is False
            reason = health.json()["problems"]["telegram"]
            assert reason.startswith("Telegram polling fails: Conflict"), reason
            await bot_api.post(f"{api}/deleteWebhook")
        await fake.wait_for_async(tg.adapter.healthy, timeout=10)
        assert (await client.get("/healthz")).status_code == 200

        poller = tg.adapter._poller  # ended from outside, as an error nothing expects would
        assert poller is not None
        poller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poller
        health = await client.get("/healthz")
        assert health.status_code == 503
        assert health.json()["problems"] == {"telegram": "Telegram polling stopped (cancelled)"}


async def test_polling_goes_on_when_its_lock_cannot_be_asked_for_a_while(
    fake: FakeTelegram, sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database is away for a moment when the loop asks for the polling lock: the loop
    says so in /healthz, waits and goes on; it does not end."""
    async with running(sqlite_db, fake, tmp_path) as tg:
        await fake.wait_for_async(lambda: fake.polling == 1)
        real = tg.adapter._singleton.try_acquire
        failures = iter(range(2))

        def away() -> bool:
            if next(failures, None) is not None:
                raise OperationalError("SELECT pg_try_advisory_lock", {}, OSError("gone"))
            return real()

        monkeypatch.setattr(tg.adapter._singleton, "try_acquire", away)
        fake.user_sends_text(GRETA, None, "hello")  # ends the waiting getUpdates
        await fake.wait_for_async(lambda: not tg.adapter.healthy())
        assert (tg.adapter.problem() or "").startswith("Telegram polling fails: OperationalError")
        fake.user_sends_text(GRETA, None, "anyone?")
        await fake.wait_for_async(lambda: len(fake.sent_to(GRETA.id)) == 2, timeout=15)
        assert tg.adapter.healthy()


async def test_an_update_recorded_while_applying_fails_is_confirmed_and_applied_later(
    tg: TelegramPinwall, fake: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recorded is safe: its offset is confirmed (Telegram does not send it again, its
    files are not fetched again), and it is applied once the store lets it."""
    real = tg.hub.apply_recorded
    failures = iter(range(1))

    async def away(received_before: datetime | None = None) -> int:
        if next(failures, None) is not None:
            raise OperationalError("SELECT inbox_events", {}, OSError("gone"))
        return await real(received_before)

    monkeypatch.setattr(tg.hub, "apply_recorded", away)
    first = fake.user_sends_text(GRETA, None, "hello")
    await fake.wait_for_async(lambda: fake.confirmed_offset > first.update_id)
    assert fake.sent_to(GRETA.id) == []
    with tg.db.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(InboxEvent)) == 1
    fake.user_sends_text(GRETA, None, "anyone?")
    await fake.wait_for_async(lambda: len(fake.sent_to(GRETA.id)) == 2)
    assert all("invite" in (s.text or "") for s in fake.sent_to(GRETA.id))


async def test_a_closed_group_is_members_only_and_its_moderator_lets_people_in_by_button(
    tg: TelegramPinwall, fake: FakeTelegram
) -> None:
    await tg.on_console("admin", "/group create marketing Marketing")
    for user in (BOSS, GRETA):  # two employees on Telegram
        fake.user_starts(user, await invite_code(tg, "/invite member marketing"))
    await tg.bot_said(BOSS.id, "Willkommen")
    await tg.bot_said(GRETA.id, "Welcome")
    fake.user_sends_command(BOSS, None, "group", "create sales Sales --closed")
    await tg.bot_said(BOSS.id, "Gruppe sales")
    fake.user_sends_command(BOSS, None, "share", "sales Q4 pipeline review")
    await tg.bot_said(BOSS.id, "#1")

    closed = "Sales is a closed group: its posts and members are for its members only."
    for command, args in [("items", "sales"), ("members", "sales"), ("comment", "#1 me too")]:
        before = len(fake.sent_to(GRETA.id))
        fake.user_sends_command(GRETA, None, command, args)
        await fake.wait_for_async(lambda b=before: len(fake.sent_to(GRETA.id)) > b)
        answer = fake.sent_to(GRETA.id)[-1].text or ""
        assert answer.startswith(closed), (command, answer)
        assert "Its moderators: @boss. To ask them to let you in, send: /join sales" in answer
    fake.user_sends_command(GRETA, None, "search", "pipeline")
    await tg.bot_said(GRETA.id, "Nothing found for “pipeline”")

    fake.user_sends_command(GRETA, None, "join", "sales")
    await tg.bot_said(GRETA.id, "I asked its moderators (@boss)")
    card = await tg.bot_said(BOSS.id, "möchte Sales beitreten")
    fake.user_presses(BOSS, None, card.message_id, button(card, "Aufnehmen"))
    await fake.wait_for_async(
        lambda: "ist jetzt Mitglied von Sales" in str(fake.message(BOSS.id, card.message_id)),
        what="the card showing the outcome",
    )
    await tg.bot_said(GRETA.id, "@boss let you into Sales")
    fake.user_sends_command(GRETA, None, "items", "sales")
    await tg.bot_said(GRETA.id, "Q4 pipeline review")
