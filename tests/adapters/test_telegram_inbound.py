"""Telegram updates as Pinwall events: commands, addressing, files, buttons."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from telegram import Bot as PtbBot
from telegram import Update

import adapters.telegram  # noqa: F401  (sets PTB_TIMEDELTA before telegram is used)
from adapters.telegram.inbound import Bot, split_command, translate
from adapters.telegram.render import CallbackCodec
from bot.events import ButtonPressed, CommandInvoked, InboundFile, MessageReceived
from bot.message import Button

ME = Bot(id=999, username="pinwall_test_bot")
CODEC = CallbackCodec(b"key")
NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
ALICE = {
    "id": 42,
    "is_bot": False,
    "first_name": "Alice",
    "username": "alice",
    "language_code": "de",
}
PRIVATE = {"id": 42, "type": "private", "first_name": "Alice"}
GROUP = {"id": -100123, "type": "supergroup", "title": "Filiale Nord"}


def update(update_id: int = 7, **message: Any) -> Update:
    body = {"message_id": 5, "date": 1796720400, "chat": PRIVATE, "from": ALICE, **message}
    return Update.de_json({"update_id": update_id, "message": body}, PtbBot("1:x"))


def command_entity(text: str) -> list[dict[str, Any]]:
    return [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/start AbCdEf1234", ("start", "AbCdEf1234")),
        ("/share@pinwall_test_bot marketing Poster", ("share", "marketing Poster")),
        ("/SHARE@Pinwall_Test_Bot marketing", ("share", "marketing")),
        ("/help", ("help", "")),
        ("/comment\n12 nice", ("comment", "12 nice")),
        ("/share@other_bot marketing", None),
        ("just text", None),
        ("/", None),
    ],
)
def test_split_command(text: str, expected: tuple[str, str] | None) -> None:
    assert split_command(text, [], ME) == expected


def test_a_command_in_a_direct_chat() -> None:
    text = "/start AbCdEf1234"
    inbound = translate(update(text=text, entities=command_entity(text)), ME, CODEC, NOW)
    assert inbound is not None
    event = inbound.event()
    assert isinstance(event, CommandInvoked)
    assert (event.name, event.arguments) == ("start", "AbCdEf1234")
    assert event.meta.event_id == "999:7"
    assert event.meta.conversation.direct
    assert event.meta.actor.external_id == "42"
    assert event.meta.actor.language == "de"
    assert event.meta.actor.trust == "unknown"


def test_a_command_for_another_bot_in_a_group_is_not_ours() -> None:
    text = "/share@other_bot marketing"
    got = translate(update(chat=GROUP, text=text, entities=command_entity(text)), ME, CODEC, NOW)
    assert got is None


def test_a_photo_with_a_caption_wants_its_biggest_size() -> None:
    photo = [
        {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 90, "file_size": 10},
        {"file_id": "big", "file_unique_id": "b", "width": 1280, "height": 960, "file_size": 9000},
    ]
    inbound = translate(update(photo=photo, caption="Poster at the station"), ME, CODEC, NOW)
    assert inbound is not None
    [wanted] = inbound.files
    assert (wanted.file_id, wanted.size, wanted.mime_type) == ("big", 9000, "image/jpeg")
    stored = InboundFile(name=wanted.name, blob_id="a" * 64, mime_type="image/jpeg", size=9000)
    event = inbound.event([stored])
    assert isinstance(event, MessageReceived)
    assert event.text == "Poster at the station"
    assert event.attachments == (stored,)


def test_hidden_links_of_a_forwarded_message_are_written_out() -> None:
    inbound = translate(
        update(
            text="Read this article",
            entities=[{"type": "text_link", "offset": 10, "length": 7, "url": "https://ex.com/a"}],
            forward_origin={"type": "hidden_user", "sender_user_name": "Press", "date": 1796720000},
        ),
        ME,
        CODEC,
        NOW,
    )
    assert inbound is not None
    assert inbound.text == "Read this article\nhttps://ex.com/a"


def test_a_group_message_keeps_its_id_and_what_it_replies_to() -> None:
    reply = {"message_id": 3, "date": 1796720000, "chat": GROUP, "text": "post"}
    inbound = translate(update(chat=GROUP, text="nice", reply_to_message=reply), ME, CODEC, NOW)
    assert inbound is not None
    event = inbound.event()
    assert isinstance(event, MessageReceived)
    assert not event.meta.conversation.direct
    assert event.meta.conversation.name == "Filiale Nord"
    assert event.message_id == "5"
    assert event.reply_to is not None
    assert (event.reply_to.conversation, event.reply_to.message_id) == ("-100123", "3")


def callback(data: str, chat: dict[str, Any]) -> Update:
    message = {"message_id": 11, "date": 1796720000, "chat": chat, "text": "Which group?"}
    query = {"id": "cb1", "from": ALICE, "chat_instance": "ci", "message": message, "data": data}
    return Update.de_json({"update_id": 8, "callback_query": query}, PtbBot("1:x"))


def test_a_signed_button_press() -> None:
    data = CODEC.encode(42, Button(label="Marketing", action="share.pick", value="3:1"))
    assert data is not None
    inbound = translate(callback(data, PRIVATE), ME, CODEC, NOW)
    assert inbound is not None
    assert inbound.callback_id == "cb1"
    event = inbound.event()
    assert isinstance(event, ButtonPressed)
    assert (event.action, event.value) == ("share.pick", "3:1")
    assert event.message is not None
    assert (event.message.conversation, event.message.message_id) == ("42", "11")


def test_button_data_from_another_chat_or_forged_is_refused() -> None:
    data = CODEC.encode(-100123, Button(label="x", action="share.pick", value="3:1"))
    assert data is not None
    assert translate(callback(data, PRIVATE), ME, CODEC, NOW) is None
    assert translate(callback("share.pick|3:2|AAAAAAAAAAA", PRIVATE), ME, CODEC, NOW) is None


def test_messages_of_bots_are_ignored() -> None:
    bot_user = {**ALICE, "is_bot": True}
    assert translate(update(text="hi", **{"from": bot_user}), ME, CODEC, NOW) is None
