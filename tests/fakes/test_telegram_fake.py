"""The fake Telegram Bot API, driven by python-telegram-bot's real Bot over real HTTP."""

from __future__ import annotations

import asyncio
import datetime as dtm
import hashlib
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeChat,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Update,
)
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, RetryAfter
from telegram.request import HTTPXRequest

from tests.fakes.telegram import (
    BOT_USERNAME,
    TOKEN,
    FakeTelegram,
    TelegramLimits,
    TgChat,
    TgUser,
    find_entities,
    parse_html,
    png_bytes,
)

ALICE = TgUser(
    id=1001, first_name="Alice", last_name="Liddell", username="alice", language_code="en"
)
BOB = TgUser(id=1002, first_name="Bob", language_code="de")
TEAM = TgChat.supergroup("Team", id=-1001234567890)


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server
    assert server.errors == []


@pytest.fixture
def ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    # PTB 22.2+ warns (PTBDeprecationWarning, an error here) when retry_after is read as an
    # int; with PTB_TIMEDELTA it is a datetime.timedelta and nothing warns.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


def make_bot(fake: FakeTelegram, token: str = TOKEN) -> Bot:
    # verify=False: no TLS over http://127.0.0.1 anyway, and it spares loading the CA bundle
    # (0.14 s a Bot); otherwise PTB's own HTTPXRequest, as the adapter's.
    def request(pool: int) -> HTTPXRequest:
        return HTTPXRequest(connection_pool_size=pool, httpx_kwargs={"verify": False})

    return Bot(
        token,
        base_url=fake.base_url,
        base_file_url=fake.base_file_url,
        request=request(256),
        get_updates_request=request(1),
    )


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    async with make_bot(fake) as b:
        yield b


def raw(fake: FakeTelegram, method: str, **kwargs: Any) -> httpx.Response:
    with httpx.Client(base_url=fake.url, timeout=5, verify=False) as client:
        return client.post(f"/bot{fake.token}/{method}", **kwargs)


# --- basics ---------------------------------------------------------------------------------


async def test_get_me_is_the_bot(bot: Bot, fake: FakeTelegram) -> None:
    me = await bot.get_me()
    assert me.id == 123456
    assert me.is_bot
    assert me.username == BOT_USERNAME
    assert me.can_join_groups is True
    assert me.can_read_all_group_messages is False
    assert me.supports_inline_queries is False
    assert "getMe" in fake.calls


def test_wrong_token_unknown_method_and_answer_shapes(fake: FakeTelegram) -> None:
    with httpx.Client(base_url=fake.url, timeout=5, verify=False) as client:
        wrong = client.post("/bot123456:wrong/getMe")
        assert wrong.status_code == 401
        assert wrong.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
        malformed = client.post("/botnot-a-token/getMe")
        assert malformed.status_code == 404
        unknown = client.post(f"/bot{fake.token}/sendTelepathy")
        assert unknown.status_code == 404
        assert unknown.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        ok = client.get(f"/bot{fake.token}/getme")  # method names are case-insensitive
        assert ok.status_code == 200
        assert ok.json()["ok"] is True
        assert ok.json()["result"]["username"] == BOT_USERNAME


async def test_wrong_token_is_invalid_token_for_ptb(fake: FakeTelegram) -> None:
    with pytest.raises(InvalidToken):
        async with make_bot(fake, "123456:not-the-token"):  # initialize() calls getMe
            pass


def test_json_form_and_query_string_bodies_are_all_understood(fake: FakeTelegram) -> None:
    fake.add_chat(ALICE.chat)
    as_json = raw(
        fake, "sendMessage", json={"chat_id": ALICE.id, "text": "<b>json</b>", "parse_mode": "HTML"}
    )
    assert as_json.json()["result"]["entities"] == [{"offset": 0, "length": 4, "type": "bold"}]
    as_form = raw(fake, "sendMessage", data={"chat_id": str(ALICE.id), "text": "form"})
    assert as_form.json()["result"]["text"] == "form"
    as_query = raw(fake, "sendMessage", params={"chat_id": str(ALICE.id), "text": "query"})
    assert as_query.json()["result"]["text"] == "query"
    ids = [r.json()["result"]["message_id"] for r in (as_json, as_form, as_query)]
    assert ids == [1, 2, 3]
    markup = {"inline_keyboard": [[{"text": "x", "callback_data": "y" * 65}]]}
    refused = raw(
        fake, "sendMessage", json={"chat_id": ALICE.id, "text": "t", "reply_markup": markup}
    )
    assert refused.status_code == 400
    assert refused.json() == {
        "ok": False,
        "error_code": 400,
        "description": "Bad Request: BUTTON_DATA_INVALID",
    }


# --- sendMessage ------------------------------------------------------------------------------


async def test_send_message_html_comes_back_as_telegram_shows_it(
    bot: Bot, fake: FakeTelegram
) -> None:
    fake.user_starts(ALICE)
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Like", callback_data="like:1")]])
    msg = await bot.send_message(
        ALICE.id,
        "🎉 <b>New post</b> by <a href='https://pinwall.example/u/1'>Bob</a> &amp; co\n",
        parse_mode="HTML",
        reply_markup=keyboard,
    )
    assert msg.text == "🎉 New post by Bob & co"  # tags gone, entity decoded, trimmed
    assert msg.message_id == 2  # the user's /start was 1: ids count per chat
    assert msg.from_user is not None
    assert msg.from_user.id == fake.bot_user.id
    assert msg.chat.id == ALICE.id
    assert msg.chat.type == "private"
    bold, link = msg.entities
    assert (bold.type, bold.offset, bold.length) == ("bold", 3, 8)  # 🎉 is 2 UTF-16 units
    assert (link.type, link.offset, link.length) == ("text_link", 15, 3)
    assert link.url == "https://pinwall.example/u/1"
    assert msg.reply_markup == keyboard
    [sent] = fake.sent
    assert sent.chat_id == ALICE.id
    assert sent.kind == "text"
    assert sent.parse_mode == "HTML"
    assert sent.text == msg.text
    assert sent.raw_text is not None
    assert "<b>" in sent.raw_text
    assert sent.reply_markup == {"inline_keyboard": [[{"text": "Like", "callback_data": "like:1"}]]}
    assert [m["message_id"] for m in fake.messages_in(ALICE.id)] == [1, 2]


@pytest.mark.parametrize(
    ("html", "error"),
    [
        ("<b>bold", 'Can\'t find end tag corresponding to start tag "b"'),
        ("a <foo>b</foo>", 'Unsupported start tag "foo" at byte offset 2'),
        ("1 < 2", 'Unsupported start tag "" at byte offset 2'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<b", "Unclosed start tag at byte offset 0"),
        ('<span class="x">y</span>', 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
    ],
)
async def test_bad_html_is_refused(bot: Bot, fake: FakeTelegram, html: str, error: str) -> None:
    fake.add_chat(ALICE.chat)
    with pytest.raises(BadRequest) as caught:
        await bot.send_message(ALICE.id, html, parse_mode="HTML")
    assert caught.value.message.lower() == f"can't parse entities: {error}".lower()
    call = fake.requests[-1]
    assert call.method == "sendMessage"
    assert call.status == 400
    assert call.description == f"Bad Request: can't parse entities: {error}"
    assert fake.sent == []


def test_html_parser_follows_tdlib() -> None:
    text, entities = parse_html("🏟 🏟&lt;<i>a</i   >&unknown;&#33;")
    assert text == "🏟 🏟<a&unknown;!"
    assert entities == [{"offset": 6, "length": 1, "type": "italic"}]
    text, entities = parse_html('<pre><code class="language-python">x = 1</code></pre>')
    assert entities == [{"offset": 0, "length": 5, "type": "pre", "language": "python"}]
    _, entities = parse_html("<code><b>x</b></code><tg-spoiler>s</tg-spoiler>")
    assert [e["type"] for e in entities] == ["code", "spoiler"]
    _, entities = parse_html("<blockquote expandable>q</blockquote><s>s</s><u>u</u>")
    assert [e["type"] for e in entities] == ["expandable_blockquote", "strikethrough", "underline"]


def test_entities_a_client_detects() -> None:
    entities = find_entities("/post@pinwall_test_bot see https://x.example/a. #news @bob")
    assert [(e["type"], e["offset"], e["length"]) for e in entities] == [
        ("bot_command", 0, 22),
        ("url", 27, 19),
        ("hashtag", 48, 5),
        ("mention", 54, 4),
    ]
    assert find_entities("path/to/file and a/b") == []


async def test_message_length_is_counted_after_parsing(bot: Bot, fake: FakeTelegram) -> None:
    fake.add_chat(ALICE.chat)
    ok = await bot.send_message(ALICE.id, "&lt;" * 4096, parse_mode="HTML")
    assert ok.text == "<" * 4096
    await bot.send_message(ALICE.id, "😀" * 4096)  # characters, not UTF-16 units
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(ALICE.id, "x" * 4097)
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(ALICE.id, " \n ")
    assert len(fake.sent) == 2


async def test_unknown_chat_and_missing_chat_id(bot: Bot, fake: FakeTelegram) -> None:
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(424242, "hello")
    response = raw(fake, "sendMessage", json={"text": "hello"})
    assert response.json()["description"] == "Bad Request: chat_id is empty"


async def test_callback_data_longer_than_64_bytes_is_refused(bot: Bot, fake: FakeTelegram) -> None:
    fake.add_chat(ALICE.chat)
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="é" * 33)]])
    with pytest.raises(BadRequest, match="Button_data_invalid"):
        await bot.send_message(ALICE.id, "pick", reply_markup=markup)


async def test_reply_to_a_message(bot: Bot, fake: FakeTelegram) -> None:
    asked = fake.user_sends_text(ALICE, None, "what's new?")
    reply = await bot.send_message(ALICE.id, "this", reply_to_message_id=asked.message_id)
    assert reply.reply_to_message is not None
    assert reply.reply_to_message.text == "what's new?"
    assert fake.sent[0].reply_to_message_id == asked.message_id
    with pytest.raises(BadRequest, match="Message to be replied not found"):
        await bot.send_message(ALICE.id, "x", reply_to_message_id=99)


# --- 429 and 403 -----------------------------------------------------------------------------


async def test_flood_answers_retry_after(bot: Bot, fake: FakeTelegram, ptb_timedelta: None) -> None:
    fake.add_chat(ALICE.chat)
    fake.flood(7, count=1)
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(ALICE.id, "hi")
    assert caught.value.retry_after == dtm.timedelta(seconds=7)
    assert fake.requests[-1].description == "Too Many Requests: retry after 7"
    response = raw(fake, "sendMessage", json={"chat_id": ALICE.id, "text": "again"})
    assert response.status_code == 429
    body = response.json()
    assert body["error_code"] == 429
    assert 1 <= body["parameters"]["retry_after"] <= 7  # what is left, in whole seconds
    assert len(fake.early) == 1
    assert fake.sent == []


async def test_a_send_before_retry_after_has_passed_is_early(
    bot: Bot, fake: FakeTelegram, ptb_timedelta: None
) -> None:
    fake.add_chat(ALICE.chat)
    fake.flood(0.2, count=1)
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(ALICE.id, "hi")
    retry_after = caught.value.retry_after
    assert isinstance(retry_after, dtm.timedelta)
    with pytest.raises(RetryAfter):
        await bot.send_message(ALICE.id, "too soon")
    assert [e.chat_id for e in fake.early] == [ALICE.id]
    await asyncio.sleep(retry_after.total_seconds())
    await bot.send_message(ALICE.id, "in time")
    assert len(fake.early) == 1
    assert [s.text for s in fake.sent] == ["in time"]


async def test_real_limits_when_configured(ptb_timedelta: None) -> None:
    limits = TelegramLimits(per_chat_per_second=1, per_chat_burst=2, group_per_minute=3)
    with FakeTelegram(limits=limits) as fake:
        fake.add_chat(ALICE.chat)
        fake.add_chat(TEAM)
        async with make_bot(fake) as bot:
            await bot.send_message(ALICE.id, "1")
            await bot.send_message(ALICE.id, "2")
            with pytest.raises(RetryAfter) as caught:
                await bot.send_message(ALICE.id, "3")
            assert caught.value.retry_after == dtm.timedelta(seconds=1)
            await bot.send_message(TEAM.id, "a")  # other chats are not held up
            await bot.send_message(TEAM.id, "b")
        assert [s.text for s in fake.sent] == ["1", "2", "a", "b"]


async def test_blocked_user_is_forbidden(bot: Bot, fake: FakeTelegram) -> None:
    fake.user_starts(ALICE)
    fake.block(ALICE.id)
    with pytest.raises(Forbidden) as caught:
        await bot.send_message(ALICE.id, "hi")
    assert caught.value.message == "Forbidden: bot was blocked by the user"
    response = raw(fake, "sendMessage", json={"chat_id": ALICE.id, "text": "hi"})
    assert response.status_code == 403
    assert response.json() == {
        "ok": False,
        "error_code": 403,
        "description": "Forbidden: bot was blocked by the user",
    }
    fake.unblock(ALICE.id)
    await bot.send_message(ALICE.id, "back")


# --- getUpdates ------------------------------------------------------------------------------


async def test_get_updates_offset_semantics(bot: Bot, fake: FakeTelegram) -> None:
    first = fake.user_sends_text(ALICE, None, "one")
    second = fake.user_sends_text(ALICE, None, "two")
    assert first.update_id is not None
    assert second.update_id == first.update_id + 1

    got = await bot.get_updates()
    assert [u.update_id for u in got] == [first.update_id, second.update_id]
    again = await bot.get_updates()  # nothing confirmed: the same come again
    assert [u.update_id for u in again] == [first.update_id, second.update_id]

    confirmed = await bot.get_updates(offset=second.update_id)  # confirms the first
    assert [u.update_id for u in confirmed] == [second.update_id]
    assert fake.confirmed_offset == second.update_id
    third = fake.user_sends_text(ALICE, None, "three")
    assert third.update_id is not None
    assert [u.update_id for u in await bot.get_updates()] == [second.update_id, third.update_id]
    assert [u.update_id for u in await bot.get_updates(limit=1)] == [second.update_id]

    assert await bot.get_updates(offset=third.update_id + 1) == ()
    assert await bot.get_updates() == ()  # confirmed ones never come back
    assert fake.pending_updates() == []

    fourth = fake.user_sends_text(ALICE, None, "4")
    fifth = fake.user_sends_text(ALICE, None, "5")
    latest = await bot.get_updates(offset=-1)  # only the last one; the ones before forgotten
    assert [u.update_id for u in latest] == [fifth.update_id]
    assert fourth.update_id not in [u["update_id"] for u in fake.pending_updates()]


async def test_long_poll_wakes_when_an_update_is_injected(bot: Bot, fake: FakeTelegram) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=1) == ()
    assert 0.9 < time.monotonic() - started < 3

    poll = asyncio.create_task(bot.get_updates(timeout=10))
    await fake.wait_for_async(lambda: fake.polling == 1, what="the long poll")
    started = time.monotonic()
    threading.Timer(0.05, fake.user_sends_text, (ALICE, None, "wake up")).start()
    updates = await asyncio.wait_for(poll, timeout=5)
    assert time.monotonic() - started < 1
    assert [u.message.text for u in updates if u.message] == ["wake up"]


async def test_a_second_poller_ends_the_first_with_conflict(fake: FakeTelegram) -> None:
    async with make_bot(fake) as first, make_bot(fake) as second:
        older = asyncio.create_task(first.get_updates(timeout=5))
        await fake.wait_for_async(lambda: fake.polling == 1, what="the first long poll")
        newer = asyncio.create_task(second.get_updates(timeout=0))
        with pytest.raises(Conflict, match="terminated by other getUpdates request"):
            await asyncio.wait_for(older, timeout=5)
        assert await newer == ()


async def test_webhook_makes_get_updates_conflict(bot: Bot, fake: FakeTelegram) -> None:
    assert await bot.set_webhook("https://pinwall.example/telegram", secret_token="s3cr3t-_X")
    with pytest.raises(Conflict, match="can't use getUpdates method while webhook is active"):
        await bot.get_updates()
    info = await bot.get_webhook_info()
    assert info.url == "https://pinwall.example/telegram"
    assert info.pending_update_count == 0
    assert [r.description for r in fake.requests if r.method == "setWebhook"] == ["Webhook was set"]
    assert await bot.delete_webhook()
    assert await bot.get_updates() == ()
    assert (await bot.get_webhook_info()).url == ""


async def test_set_webhook_validation(bot: Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)An HTTPS URL must be provided for webhook"):
        await bot.set_webhook("http://pinwall.example/hook")
    with pytest.raises(BadRequest, match="ports 80, 88, 443 or 8443"):
        await bot.set_webhook("https://pinwall.example:8080/hook")
    with pytest.raises(BadRequest, match="Secret token contains unallowed characters"):
        await bot.set_webhook("https://pinwall.example/hook", secret_token="a:b")


class _Hook(BaseHTTPRequestHandler):
    received: list[tuple[str | None, dict[str, Any]]] = []  # noqa: RUF012 - a test's log

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(
            (self.headers.get("X-Telegram-Bot-Api-Secret-Token"), json.loads(body))
        )
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


def test_webhook_mode_is_driven_by_the_test(fake: FakeTelegram) -> None:
    hook = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=hook.serve_forever, args=(0.05,), daemon=True).start()
    try:
        response = raw(
            fake,
            "setWebhook",
            json={
                "url": "https://pinwall.example/hook",
                "secret_token": "tok-123",
                "drop_pending_updates": True,
            },
        )
        assert response.json() == {"ok": True, "result": True, "description": "Webhook was set"}
        injected = fake.user_sends_text(ALICE, None, "via webhook")
        info = raw(fake, "getWebhookInfo").json()["result"]
        assert info["pending_update_count"] == 1
        url, headers, _ = fake.webhook_request(injected)
        assert url == "https://pinwall.example/hook"
        assert headers["X-Telegram-Bot-Api-Secret-Token"] == "tok-123"
        local = f"http://127.0.0.1:{hook.server_address[1]}/hook"
        assert fake.post_webhook(injected, url=local) == 200
        assert _Hook.received == [("tok-123", injected.update)]
        assert raw(fake, "getWebhookInfo").json()["result"]["pending_update_count"] == 0
    finally:
        hook.shutdown()
        hook.server_close()


# --- files -----------------------------------------------------------------------------------


async def test_send_photo_then_get_file_downloads_the_same_bytes(
    bot: Bot, fake: FakeTelegram
) -> None:
    fake.user_starts(ALICE)
    image = png_bytes(400, 300)
    msg = await bot.send_photo(ALICE.id, image, caption="<i>Look</i>", parse_mode="HTML")
    assert msg.caption == "Look"
    assert [e.type for e in msg.caption_entities] == ["italic"]
    assert [(p.width, p.height) for p in msg.photo] == [(90, 68), (320, 240), (400, 300)]
    largest = msg.photo[-1]
    file = await bot.get_file(largest.file_id)
    assert file.file_size == len(image)
    assert file.file_path is not None
    assert file.file_path.startswith(fake.base_file_url)
    assert bytes(await file.download_as_bytearray()) == image
    [sent] = fake.sent
    assert sent.kind == "photo"
    assert sent.caption == "Look"
    assert sent.file_sha256 == hashlib.sha256(image).hexdigest()
    assert sent.file_id == largest.file_id

    again = await bot.send_photo(ALICE.id, largest.file_id)  # by file_id: nothing uploaded
    assert [p.file_id for p in again.photo] == [p.file_id for p in msg.photo]
    with pytest.raises(BadRequest, match="Image_process_failed"):
        await bot.send_photo(ALICE.id, b"not an image")
    with pytest.raises(BadRequest, match="Wrong file identifier/http url specified"):
        await bot.send_photo(ALICE.id, "AgACAgIAAxkBAAInvented")
    with pytest.raises(BadRequest, match="Message caption is too long"):
        await bot.send_photo(ALICE.id, image, caption="x" * 1025)


async def test_documents_both_ways(bot: Bot, fake: FakeTelegram) -> None:
    payload = b"%PDF-1.4 pinwall"
    incoming = fake.user_sends_document(
        ALICE, None, payload, "report.pdf", "application/pdf", caption="Q3"
    )
    document = incoming.message["document"]
    assert document["file_name"] == "report.pdf"
    assert document["file_size"] == len(payload)
    file = await bot.get_file(document["file_id"])
    assert bytes(await file.download_as_bytearray()) == payload

    msg = await bot.send_document(ALICE.id, b"a,b\n1,2\n", filename="data.csv", caption="csv")
    assert msg.document is not None
    assert msg.document.file_name == "data.csv"
    assert msg.document.mime_type == "text/csv"
    assert fake.sent[-1].kind == "document"
    assert fake.sent[-1].file_name == "data.csv"

    big = fake.user_sends_document(
        ALICE, None, bytes(20 * 1024 * 1024 + 1), "big.bin", "application/octet-stream"
    )
    with pytest.raises(BadRequest, match="File is too big"):
        await bot.get_file(big.message["document"]["file_id"])


# --- callbacks, edits ----------------------------------------------------------------------------


async def test_callback_query_answered_once(bot: Bot, fake: FakeTelegram) -> None:
    fake.user_starts(ALICE)
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("👍", callback_data="like:7")]])
    msg = await bot.send_message(ALICE.id, "post 7", reply_markup=keyboard)
    pressed = fake.user_presses(ALICE, None, msg.message_id, "like:7")
    update = Update.de_json(pressed.update, bot)
    assert update is not None
    query = update.callback_query
    assert isinstance(query, CallbackQuery)
    assert query.data == "like:7"
    assert query.from_user.id == ALICE.id
    assert query.message is not None
    assert query.message.message_id == msg.message_id
    assert await bot.answer_callback_query(query.id, text="Liked")
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot.answer_callback_query(query.id)
    [answered] = fake.answered_callbacks
    assert (answered.callback_query_id, answered.text) == (query.id, "Liked")
    with pytest.raises(ValueError, match="no button"):
        fake.user_presses(ALICE, None, msg.message_id, "nope")


async def test_edits(bot: Bot, fake: FakeTelegram) -> None:
    fake.user_starts(ALICE)
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data="a")]])
    msg = await bot.send_message(ALICE.id, "draft", reply_markup=keyboard)
    edited = await bot.edit_message_text(
        "<b>final</b>",
        chat_id=ALICE.id,
        message_id=msg.message_id,
        parse_mode="HTML",
        reply_markup=keyboard,
    )
    assert not isinstance(edited, bool)
    assert edited.text == "final"
    assert edited.edit_date is not None
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text(
            "final",
            chat_id=ALICE.id,
            message_id=msg.message_id,
            entities=edited.entities,
            reply_markup=keyboard,
        )
    stripped = await bot.edit_message_reply_markup(chat_id=ALICE.id, message_id=msg.message_id)
    assert not isinstance(stripped, bool)
    assert stripped.reply_markup is None
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("x", chat_id=ALICE.id, message_id=999)
    with pytest.raises(BadRequest, match="Message can't be edited"):
        await bot.edit_message_text("x", chat_id=ALICE.id, message_id=1)  # the user's /start
    assert [e.method for e in fake.edits] == ["editMessageText", "editMessageReplyMarkup"]
    current = fake.message(ALICE.id, msg.message_id)
    assert current is not None
    assert current["text"] == "final"
    assert "reply_markup" not in current
    assert await bot.delete_message(ALICE.id, msg.message_id)
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await bot.delete_message(ALICE.id, msg.message_id)


# --- commands -----------------------------------------------------------------------------------


async def test_set_my_commands_per_scope_and_language(bot: Bot, fake: FakeTelegram) -> None:
    fake.add_chat(TEAM)
    assert await bot.set_my_commands([BotCommand("post", "Post to the wall")])
    assert await bot.set_my_commands([BotCommand("post", "An die Wand")], language_code="de")
    assert await bot.set_my_commands(
        [BotCommand("digest", "Digest")], scope=BotCommandScopeAllGroupChats()
    )
    assert await bot.set_my_commands(
        [BotCommand("admin", "Admin")], scope=BotCommandScopeChat(TEAM.id)
    )
    assert fake.commands[("default", "de")] == [{"command": "post", "description": "An die Wand"}]
    assert fake.commands_for() == ["post"]
    assert fake.commands_for("all_group_chats") == ["digest"]
    assert fake.commands_for(f"chat:{TEAM.id}") == ["admin"]
    german = await bot.get_my_commands(language_code="de")
    assert [(c.command, c.description) for c in german] == [("post", "An die Wand")]
    assert await bot.get_my_commands(language_code="fr") == ()  # no fallback, as Telegram
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Post-It", "x")])
    with pytest.raises(BadRequest, match="Bot_command_description_invalid"):
        await bot.set_my_commands([BotCommand("post", "")])


# --- what users cause ---------------------------------------------------------------------------


async def test_injected_updates_parse_as_telegram_updates(bot: Bot, fake: FakeTelegram) -> None:
    start = fake.user_starts(ALICE, "invite-42")
    command = fake.user_sends_command(BOB, TEAM, "post", "hello world")
    forwarded = fake.user_forwards(ALICE, None, "old news", origin=BOB)
    photo = fake.user_sends_photo(ALICE, None, png_bytes(2, 2), caption="pic")
    added = fake.bot_added_to_group(BOB, TEAM)

    updates = {u.update_id: u for u in await bot.get_updates()}
    assert len(updates) == 6  # + the service message with new_chat_members

    first = updates[start.update_id or 0].message
    assert first is not None
    assert first.text == "/start invite-42"
    assert [(e.type, e.offset, e.length) for e in first.entities] == [("bot_command", 0, 6)]
    assert first.chat.id == ALICE.id
    assert first.from_user is not None
    assert first.from_user.language_code == "en"

    group = updates[command.update_id or 0].message
    assert group is not None
    assert group.chat.type == "supergroup"
    assert group.text == f"/post@{BOT_USERNAME} hello world"
    assert [(e.type, e.offset, e.length) for e in group.entities] == [
        ("bot_command", 0, len(f"/post@{BOT_USERNAME}"))
    ]

    fwd = updates[forwarded.update_id or 0].message
    assert fwd is not None
    assert fwd.forward_origin is not None
    assert fwd.forward_origin.type == "user"

    pic = updates[photo.update_id or 0].message
    assert pic is not None
    assert pic.caption == "pic"
    assert pic.photo[-1].width == 2

    member = updates[added.update_id or 0].my_chat_member
    assert member is not None
    assert (member.old_chat_member.status, member.new_chat_member.status) == ("left", "member")
    assert member.chat.id == TEAM.id

    assert all(isinstance(u, Update) for u in updates.values())


def test_privacy_mode_hides_plain_group_messages(fake: FakeTelegram) -> None:
    assert not fake.user_sends_text(BOB, TEAM, "just chatting").delivered
    assert not fake.user_sends_text(BOB, TEAM, "/post@other_bot hi").delivered
    assert fake.user_sends_text(BOB, TEAM, "/post hi").delivered
    assert fake.user_sends_command(BOB, TEAM, "post").delivered
    assert fake.user_sends_text(ALICE, None, "private chats are always seen").delivered
    with FakeTelegram(privacy_mode=False) as open_fake:
        assert open_fake.user_sends_text(BOB, TEAM, "just chatting").delivered


async def test_allowed_updates_filter_what_comes_later(bot: Bot, fake: FakeTelegram) -> None:
    assert await bot.get_updates(allowed_updates=["callback_query"]) == ()
    assert not fake.user_sends_text(ALICE, None, "filtered").delivered
    await bot.get_updates(allowed_updates=[])  # the default set again
    assert fake.user_sends_text(ALICE, None, "seen").delivered


async def test_user_blocks_the_bot(bot: Bot, fake: FakeTelegram) -> None:
    fake.user_starts(ALICE)
    blocked = fake.user_blocks(ALICE)
    update = Update.de_json(blocked.update, bot)
    assert update is not None
    assert update.my_chat_member is not None
    assert update.my_chat_member.new_chat_member.status == "kicked"
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(ALICE.id, "hi")
    fake.user_starts(ALICE)  # "Restart": unblocked
    await bot.send_message(ALICE.id, "welcome back")
    kinds = [next(k for k in u if k != "update_id") for u in fake.updates]
    assert kinds == ["message", "my_chat_member", "my_chat_member", "message"]
    fake.bot_removed_from_group(BOB, TEAM)
    with pytest.raises(Forbidden, match="bot was kicked from the supergroup chat"):
        await bot.send_message(TEAM.id, "hi")


def test_wait_for_times_out_with_a_clear_message(fake: FakeTelegram) -> None:
    with pytest.raises(AssertionError, match=r"timed out after 0\.05s waiting for a miracle"):
        fake.wait_for(lambda: False, timeout=0.05, what="a miracle")
    fake.wait_for(lambda: True)


# --- issue 22: descriptions, ForceReply, reactions ----------------------------------------------


async def test_descriptions_per_language_within_their_limits(bot: Bot, fake: FakeTelegram) -> None:
    assert await bot.set_my_description("Pinwall for Bäckerei Nord")
    assert await bot.set_my_description("Pinwall für Bäckerei Nord", language_code="de")
    assert await bot.set_my_short_description("Internal network", language_code="de")
    assert fake.descriptions == {"": "Pinwall for Bäckerei Nord", "de": "Pinwall für Bäckerei Nord"}
    assert fake.short_descriptions == {"de": "Internal network"}
    got = await bot.get_my_description(language_code="fr")  # the one for all languages
    assert got.description == "Pinwall for Bäckerei Nord"
    assert (await bot.get_my_short_description("de")).short_description == "Internal network"
    with pytest.raises(BadRequest, match="Description_invalid"):
        await bot.set_my_description("x" * 513)
    with pytest.raises(BadRequest, match="Short_description_invalid"):
        await bot.set_my_short_description("x" * 121)
    assert await bot.set_my_description("", language_code="de")  # removed again
    assert fake.descriptions == {"": "Pinwall for Bäckerei Nord"}


async def test_force_reply_is_recorded_and_checked(bot: Bot, fake: FakeTelegram) -> None:
    from telegram import ForceReply

    fake.user_starts(ALICE)
    msg = await bot.send_message(ALICE.id, "Your comment?", reply_markup=ForceReply(selective=True))
    [sent] = [s for s in fake.sent if s.message_id == msg.message_id]
    assert sent.force_reply == {"force_reply": True, "selective": True}
    assert msg.reply_markup is None  # a Message carries inline keyboards only
    with pytest.raises(BadRequest, match="reply keyboard markup"):
        await bot.send_message(
            ALICE.id, "x", reply_markup=ForceReply(input_field_placeholder="y" * 65)
        )


async def test_reactions_come_when_asked_for_in_private_chats_and_to_admin_bots(
    bot: Bot, fake: FakeTelegram
) -> None:
    fake.user_starts(ALICE)
    msg = await bot.send_message(ALICE.id, "A post")
    await bot.get_updates(offset=-1)  # the /start confirmed
    skipped = fake.user_reacts(ALICE, None, msg.message_id, "👍")  # not asked for
    assert skipped.update_id is None
    kinds = ["message", "message_reaction", "message_reaction_count"]
    await bot.get_updates(offset=-1, allowed_updates=kinds)
    fake.user_reacts(ALICE, None, msg.message_id, "👌")
    [update] = [u for u in await bot.get_updates(allowed_updates=kinds) if u.message_reaction]
    changed = update.message_reaction
    assert changed is not None
    assert [r.emoji for r in changed.old_reaction] == ["👍"]  # type: ignore[attr-defined]
    assert [r.emoji for r in changed.new_reaction] == ["👌"]  # type: ignore[attr-defined]
    assert fake.reactions_on(ALICE.id, msg.message_id) == {"👌": 1}
    with pytest.raises(ValueError, match="REACTION_INVALID"):
        fake.user_reacts(ALICE, None, msg.message_id, "✅")

    # in a group only an administrator bot hears of them; anonymous ones come as counts
    fake.bot_added_to_group(BOB, TEAM)
    post = await bot.send_message(TEAM.id, "In the team")
    assert fake.user_reacts(BOB, TEAM, post.message_id, "🔥").update_id is None
    fake.bot_added_to_group(BOB, TEAM, administrator=True)
    assert fake.user_reacts(BOB, TEAM, post.message_id, "👍").update_id is not None
    counted = fake.anonymous_reacts(TEAM, post.message_id, "👍")
    body = counted.update["message_reaction_count"]
    assert body["reactions"] == [{"type": {"type": "emoji", "emoji": "👍"}, "total_count": 2}]


async def test_a_bots_reaction_is_checked_as_telegram_checks_it(
    bot: Bot, fake: FakeTelegram
) -> None:
    said = fake.user_sends_text(ALICE, None, "A comment").message["message_id"]
    kinds = ["message", "message_reaction"]
    await bot.get_updates(allowed_updates=kinds)
    assert await bot.set_message_reaction(ALICE.id, said, "👌")
    assert fake.bot_reactions(ALICE.id, said) == ["👌"]
    assert fake.reactions_on(ALICE.id, said) == {"👌": 1}
    # ✅ is no standard reaction; a bot has one at most; a message must be there
    with pytest.raises(BadRequest, match=r"(?i)reaction_invalid"):
        await bot.set_message_reaction(ALICE.id, said, "✅")
    with pytest.raises(BadRequest, match=r"(?i)reactions_too_many"):
        await bot.set_message_reaction(ALICE.id, said, ["👍", "👌"])
    with pytest.raises(BadRequest, match=r"(?i)message to react not found"):
        await bot.set_message_reaction(ALICE.id, said + 100, "👌")
    # a group whose admins turned reactions off takes none
    fake.bot_added_to_group(BOB, TEAM)
    in_team = fake.user_sends_text(BOB, TEAM, "/hello@" + BOT_USERNAME).message["message_id"]
    fake.set_available_reactions(TEAM, [])
    with pytest.raises(BadRequest, match=r"(?i)reaction_invalid"):
        await bot.set_message_reaction(TEAM.id, in_team, "👌")
    fake.set_available_reactions(TEAM, None)
    assert await bot.set_message_reaction(TEAM.id, in_team, "👌")
    # taken back (no reaction); the bot's own reactions cause no update
    assert await bot.set_message_reaction(ALICE.id, said)
    assert fake.bot_reactions(ALICE.id, said) == []
    assert not [u for u in await bot.get_updates(allowed_updates=kinds) if u.message_reaction]
