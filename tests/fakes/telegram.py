"""A fake Telegram Bot API over real HTTP, faithful to what Pinwall's Telegram adapter uses.

`FakeTelegram` is an HTTP server on 127.0.0.1, port 0, in a thread. Point
python-telegram-bot at it with

    Bot(fake.token, base_url=f"{fake.url}/bot", base_file_url=f"{fake.url}/file/bot")

and it answers `POST /bot<token>/<method>` (a JSON, form-urlencoded or multipart body, or a
GET query string, as the real server accepts) and `GET /file/bot<token>/<file_path>` as the
Bot API does: `{"ok":true,"result":...}` or `{"ok":false,"error_code":N,"description":...}`
with Telegram's own descriptions ("Bad Request: chat not found", "Forbidden: bot was blocked
by the user", "Too Many Requests: retry after 5" with `parameters.retry_after`, ...) and the
HTTP status equal to `error_code`.

What the real server does and the fake does too:
- getUpdates: a queue of updates with increasing update_ids; a call with `offset` forgets
  every update below it for good, unconfirmed ones come again, a negative offset keeps the
  last -offset; `timeout` long-polls and wakes as soon as an update is injected; a newer
  getUpdates ends an older waiting one with 409, a webhook makes getUpdates answer 409;
  `allowed_updates` is remembered and filters updates created afterwards.
- Text as Telegram shows it: parse_mode HTML is parsed like tdlib's parser (same tag set,
  same error texts with byte offsets), entities come back with UTF-16 offsets, text is
  trimmed, limits (4096 text / 1024 caption characters after parsing) are checked; bot
  commands, mentions, hashtags, URLs and e-mails are detected as entities.
- Files: uploads are stored under a file_id / file_unique_id; getFile hands out a file_path
  that can be downloaded (over 20 MB: "file is too big"); a photo must be an image.
- Groups: privacy mode as getMe reports it (can_read_all_group_messages false): a plain
  group message is not delivered, commands, replies to the bot and service messages are.

Test-facing: `user_*` methods inject what a user's client would cause and return
`Injected(update, update_id)`; `sent`, `edits`, `answered_callbacks`, `commands`, `calls`,
`early`, ... tell what the bot did. `flood()`, `block()` and `TelegramLimits` make it answer
429 / 403. Every public method is thread-safe.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import hashlib
import itertools
import json
import math
import mimetypes
import re
import socket
import struct
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, NamedTuple, Self
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import httpx

TOKEN = "123456:TEST-token"
BOT_USERNAME = "pinwall_test_bot"

MAX_TEXT_LENGTH = 4096  # characters (code points) after entity parsing, as Telegram counts
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_CALLBACK_ANSWER_TEXT = 200
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024  # getFile refuses bigger files
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
MAX_INLINE_BUTTONS = 100
MAX_COMMANDS = 100
MAX_DESCRIPTION = 512  # setMyDescription
MAX_SHORT_DESCRIPTION = 120  # setMyShortDescription
MAX_PLACEHOLDER = 64  # ForceReply.input_field_placeholder
# The emoji a bot's users may react with without Telegram Premium ("ReactionTypeEmoji":
# "Currently, it can be one of ..."); "✅" is not among them.
REACTION_EMOJI = frozenset(
    {
        "👍",
        "👎",
        "❤",
        "🔥",
        "🥰",
        "👏",
        "😁",
        "🤔",
        "🤯",
        "😱",
        "🤬",
        "😢",
        "🎉",
        "🤩",
        "🤮",
        "💩",
        "🙏",
        "👌",
        "🕊",
        "🤡",
        "🥱",
        "🥴",
        "😍",
        "🐳",
        "❤️\u200d🔥",
        "🌚",
        "🌭",
        "💯",
        "🤣",
        "⚡",
        "🍌",
        "🏆",
        "💔",
        "🤨",
        "😐",
        "🍓",
        "🍾",
        "💋",
        "🖕",
        "😈",
        "😴",
        "😭",
        "🤓",
        "👻",
        "👨\u200d💻",
        "👀",
        "🎃",
        "🙈",
        "😇",
        "😨",
        "🤝",
        "✍",
        "🤗",
        "🫡",
        "🎅",
        "🎄",
        "☃",
        "💅",
        "🤪",
        "🗿",
        "🆒",
        "💘",
        "🙉",
        "🦄",
        "😘",
        "💊",
        "🙊",
        "😎",
        "👾",
        "🤷\u200d♂️",
        "🤷",
        "🤷\u200d♀️",
        "😡",
    }
)
WEBHOOK_PORTS = (80, 88, 443, 8443)
LONG_POLL_MAX_TIMEOUT = 50

ALL_UPDATE_TYPES = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_connection",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
    "message_reaction",
    "message_reaction_count",
    "inline_query",
    "chosen_inline_result",
    "callback_query",
    "shipping_query",
    "pre_checkout_query",
    "purchased_paid_media",
    "poll",
    "poll_answer",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "chat_boost",
    "removed_chat_boost",
)
# "Specify an empty list to receive all update types except chat_member, message_reaction,
# and message_reaction_count (default)."
DEFAULT_UPDATE_TYPES = frozenset(ALL_UPDATE_TYPES) - {
    "chat_member",
    "message_reaction",
    "message_reaction_count",
}

CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)

BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)

# Methods that post or change messages: flood control and rate limits apply to them.
_RATE_LIMITED = frozenset(
    {
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "sendMediaGroup",
        "editMessageText",
        "editMessageCaption",
        "editMessageReplyMarkup",
    }
)

_TOKEN_SHAPE = re.compile(r"\d+:[A-Za-z0-9_-]+")
_COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
_LANGUAGE_CODE = re.compile(r"[a-z]{2}")


# --- errors ----------------------------------------------------------------------------


class ApiError(Exception):
    """An answer {"ok": false, ...} with the HTTP status equal to error_code."""

    def __init__(
        self, error_code: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.parameters = parameters

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.error_code,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def _bad_request(what: str) -> ApiError:
    return ApiError(400, f"Bad Request: {what}")


def _forbidden(what: str) -> ApiError:
    return ApiError(403, f"Forbidden: {what}")


_NOT_FOUND = ApiError(404, "Not Found")
_UNAUTHORIZED = ApiError(401, "Unauthorized")
_QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)


# --- users and chats -------------------------------------------------------------------

_group_ids = itertools.count(4_000_000_001)
_supergroup_ids = itertools.count(1_000_000_001)


@dataclass(frozen=True)
class TgUser:
    """A Telegram user as the Bot API shows one (`User`)."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    is_bot: bool = False

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        if self.last_name is not None:
            out["last_name"] = self.last_name
        if self.username is not None:
            out["username"] = self.username
        if self.language_code is not None:
            out["language_code"] = self.language_code
        return out

    @property
    def chat(self) -> TgChat:
        """The private chat between this user and the bot (its id is the user's id)."""
        return TgChat.private(self)


@dataclass(frozen=True)
class TgChat:
    """A chat (`Chat`): private (id == the user's id), group/supergroup (negative id)."""

    id: int
    type: str = "private"
    title: str | None = None
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None

    def __post_init__(self) -> None:
        if self.type not in ("private", "group", "supergroup", "channel"):
            raise ValueError(f"unknown chat type {self.type!r}")
        if self.type == "private" and self.id <= 0:
            raise ValueError("a private chat's id is the user's id, a positive number")
        if self.type != "private" and self.id >= 0:
            raise ValueError("group, supergroup and channel ids are negative")

    @classmethod
    def private(cls, user: TgUser) -> TgChat:
        return cls(
            id=user.id,
            type="private",
            username=user.username,
            first_name=user.first_name,
            last_name=user.last_name,
        )

    @classmethod
    def group(cls, title: str, id: int | None = None) -> TgChat:
        return cls(id=id if id is not None else -next(_group_ids), type="group", title=title)

    @classmethod
    def supergroup(cls, title: str, id: int | None = None, username: str | None = None) -> TgChat:
        chat_id = id if id is not None else -(1_000_000_000_000 + next(_supergroup_ids))
        return cls(id=chat_id, type="supergroup", title=title, username=username)

    @classmethod
    def channel(cls, title: str, id: int | None = None, username: str | None = None) -> TgChat:
        chat_id = id if id is not None else -(1_000_000_000_000 + next(_supergroup_ids))
        return cls(id=chat_id, type="channel", title=title, username=username)

    @property
    def is_group(self) -> bool:
        return self.type in ("group", "supergroup")

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id}
        if self.type == "private":
            out["first_name"] = self.first_name or ""
            if self.last_name is not None:
                out["last_name"] = self.last_name
        else:
            out["title"] = self.title or ""
        if self.username is not None:
            out["username"] = self.username
        out["type"] = self.type
        return out


# --- what the fake records ---------------------------------------------------------------


class Injected(NamedTuple):
    """An update a user caused. update_id is None when Telegram would not deliver it to the
    bot (privacy mode in a group, or a type left out of allowed_updates)."""

    update: dict[str, Any]
    update_id: int | None

    @property
    def delivered(self) -> bool:
        return self.update_id is not None

    @property
    def message(self) -> dict[str, Any]:
        """The message in the update (for a callback query: the message with the button)."""
        for key in ("message", "edited_message", "channel_post"):
            if key in self.update:
                return dict(self.update[key])
        if "callback_query" in self.update:
            return dict(self.update["callback_query"]["message"])
        raise KeyError(f"no message in {sorted(self.update)}")

    @property
    def message_id(self) -> int:
        return int(self.message["message_id"])


@dataclass
class SentMessage:
    """A message the bot posted, as it was when posted."""

    method: str
    chat_id: int
    message_id: int
    kind: str  # "text" | "photo" | "document"
    text: str | None  # as Telegram shows it: markup parsed away
    raw_text: str | None  # as the bot sent it
    parse_mode: str | None
    entities: list[dict[str, Any]]
    reply_markup: dict[str, Any] | None
    caption: str | None = None
    raw_caption: str | None = None
    file_id: str | None = None
    file_sha256: str | None = None
    file_name: str | None = None
    mime_type: str | None = None
    reply_to_message_id: int | None = None
    at: float = 0.0  # time.monotonic()
    message: dict[str, Any] = field(default_factory=dict)  # the Message the bot was answered
    # The ForceReply markup sent with it ({"force_reply": true, "selective": ...}): the
    # returned Message never carries it, so the fake keeps it here.
    force_reply: dict[str, Any] | None = None


@dataclass
class Edit:
    method: str
    chat_id: int
    message_id: int
    text: str | None
    raw_text: str | None
    parse_mode: str | None
    caption: str | None
    reply_markup: dict[str, Any] | None
    at: float
    message: dict[str, Any] = field(default_factory=dict)


@dataclass
class AnsweredCallback:
    callback_query_id: str
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int
    at: float


@dataclass
class EarlyCall:
    """A call that came before a retry_after the fake had given had passed."""

    method: str
    chat_id: int
    at: float
    allowed_at: float


@dataclass
class ApiCall:
    method: str
    params: dict[str, str]
    files: dict[str, tuple[str, int]]  # part name -> (file name, size)
    status: int
    description: str | None
    at: float


@dataclass
class TelegramLimits:
    """Telegram's documented broadcast limits: about 1 message a second in a chat (short
    bursts tolerated), 20 a minute in a group, about 30 a second overall."""

    per_chat_per_second: float = 1.0
    per_chat_burst: int = 3
    group_per_minute: int = 20
    overall_per_second: int = 30


# --- text: UTF-16, HTML, entities ------------------------------------------------------


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def _utf16_offsets(text: str) -> list[int]:
    offsets = [0]
    for ch in text:
        offsets.append(offsets[-1] + (2 if ord(ch) > 0xFFFF else 1))
    return offsets


class _HtmlError(Exception):
    pass


_HTML_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "tg-spoiler",
        "tg-emoji",
        "span",
        "pre",
        "code",
        "blockquote",
    }
)
_HTML_SPACE = frozenset(b" \t\r\n\x0b\x00")
_NAMED_ENTITIES = {b"lt": 0x3C, b"gt": 0x3E, b"amp": 0x26, b"quot": 0x22}
_TAG_ENTITY = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
}
_ENTITY_ORDER = {
    name: i
    for i, name in enumerate(
        (
            "blockquote",
            "expandable_blockquote",
            "pre",
            "code",
            "text_link",
            "text_mention",
            "url",
            "email",
            "bot_command",
            "mention",
            "hashtag",
            "cashtag",
            "phone_number",
            "bold",
            "italic",
            "underline",
            "strikethrough",
            "spoiler",
            "custom_emoji",
        )
    )
}


def _decode_html_entity(b: bytes, pos: int) -> tuple[int, int]:
    """(code point, position after it) of an HTML entity at b[pos], or (0, pos) if none.
    Unknown named entities and bad numbers are not entities: they stay as text."""
    size = len(b)

    def at(i: int) -> int:
        return b[i] if i < size else 0

    end = pos + 1
    value = 0
    if at(end) == 0x23:  # '#'
        end += 1
        if at(end) == 0x78:  # 'x'
            end += 1
            while chr(at(end)) in "0123456789abcdefABCDEF" and at(end):
                value = value * 16 + int(chr(at(end)), 16)
                end += 1
        else:
            while 0x30 <= at(end) <= 0x39:
                value = value * 10 + at(end) - 0x30
                end += 1
        if value == 0 or value >= 0x10FFFF or end - pos >= 10:
            return 0, pos
    else:
        while chr(at(end)).isascii() and chr(at(end)).isalpha():
            end += 1
        named = _NAMED_ENTITIES.get(b[pos + 1 : end])
        if named is None:
            return 0, pos
        value = named
    if at(end) == 0x3B:  # ';'
        end += 1
    return value, end


def _check_url(url: str) -> str | None:
    """A link target Telegram accepts, normalised as it does; None if it is not a URL."""
    u = url.strip()
    if not u:
        return None
    if "://" not in u and not u.startswith(("tg:", "mailto:")):
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]*\.[A-Za-z]{2,}(?:[:/?#]\S*)?", u):
            return None
        u = "http://" + u
    parts = urlsplit(u)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https", "ftp", "ton", "tonsite"):
        if not parts.netloc or any(c.isspace() for c in u):
            return None
        return urlunsplit((scheme, parts.netloc, parts.path or "/", parts.query, parts.fragment))
    if scheme in ("tg", "mailto"):
        return u
    return None


def parse_html(
    text: str, known_users: dict[int, TgUser] | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """Telegram's parse_mode=HTML: (plain text, entities) or _HtmlError with the message
    Telegram gives after "Bad Request: can't parse entities: "."""
    b = text.encode("utf-8")
    size = len(b)

    def at(i: int) -> int:
        return b[i] if i < size else 0

    result = bytearray()
    entities: list[dict[str, Any]] = []
    # (tag name, argument, UTF-16 offset where it starts, byte offset in result)
    nested: list[tuple[str, str, int, int]] = []
    u16 = 0
    i = 0
    while i < size:
        c = b[i]
        if c == 0x26:  # '&'
            cp, after = _decode_html_entity(b, i)
            if cp:
                if 0xD800 <= cp <= 0xDFFF:
                    raise _HtmlError(
                        "Text contains invalid Unicode characters after decoding HTML "
                        "entities, check for unmatched surrogate code units"
                    )
                result += chr(cp).encode("utf-8")
                u16 += 2 if cp > 0xFFFF else 1
                i = after
                continue
        if c != 0x3C:  # '<'
            if c & 0xC0 != 0x80:  # the first byte of a character
                u16 += 2 if c >= 0xF0 else 1
            result.append(c)
            i += 1
            continue

        begin = i
        i += 1
        if at(i) != 0x2F:  # a start tag
            while at(i) not in _HTML_SPACE and at(i) != 0x3E:
                i += 1
            if at(i) == 0:
                raise _HtmlError(f"Unclosed start tag at byte offset {begin}")
            tag = b[begin + 1 : i].decode("utf-8", "replace").lower()
            if tag not in _HTML_TAGS:
                raise _HtmlError(f'Unsupported start tag "{tag}" at byte offset {begin}')
            argument = ""
            while at(i) != 0x3E:
                while at(i) != 0 and at(i) in _HTML_SPACE:
                    i += 1
                if at(i) == 0x3E:
                    break
                name_begin = i
                while at(i) not in _HTML_SPACE and at(i) not in (0x3D, 0x3E):
                    i += 1
                name = b[name_begin:i].decode("utf-8", "replace").lower()
                if not name:
                    raise _HtmlError(
                        f'Empty attribute name in the tag "{tag}" at byte offset {begin}'
                    )
                while at(i) != 0 and at(i) in _HTML_SPACE:
                    i += 1
                if at(i) == 0:
                    raise _HtmlError(f'Unclosed start tag "{tag}" at byte offset {begin}')
                if at(i) != 0x3D:
                    if tag == "blockquote" and name == "expandable":
                        argument = "expandable"
                        continue
                    raise _HtmlError(
                        "Expected equal sign in declaration of an attribute of the tag "
                        f'"{tag}" at byte offset {begin}'
                    )
                i += 1
                while at(i) != 0 and at(i) in _HTML_SPACE:
                    i += 1
                if at(i) == 0:
                    raise _HtmlError(f'Unclosed start tag "{tag}" at byte offset {begin}')
                value = bytearray()
                if at(i) not in (0x22, 0x27):  # a name token
                    token_begin = i
                    while (chr(at(i)).isascii() and chr(at(i)).isalnum()) or at(i) in (
                        0x2E,
                        0x2D,
                    ):
                        i += 1
                    value += b[token_begin:i].lower()
                    if at(i) not in _HTML_SPACE and at(i) != 0x3E:
                        raise _HtmlError(f"Unexpected end of name token at byte offset {i}")
                else:  # a string literal
                    quote = at(i)
                    i += 1
                    while at(i) != quote and at(i) != 0:
                        if at(i) == 0x26:
                            cp, after = _decode_html_entity(b, i)
                            if cp and not 0xD800 <= cp <= 0xDFFF:
                                value += chr(cp).encode("utf-8")
                                i = after
                                continue
                        value.append(b[i])
                        i += 1
                    if at(i) == quote:
                        i += 1
                if at(i) == 0:
                    raise _HtmlError(f"Unclosed start tag at byte offset {begin}")
                v = value.decode("utf-8", "replace")
                if tag == "a" and name == "href":
                    argument = v
                elif tag == "code" and name == "class" and v.startswith("language-"):
                    argument = v[len("language-") :]
                elif tag == "span" and name == "class" and v.startswith("tg-"):
                    argument = v[len("tg-") :]
                elif tag == "tg-emoji" and name == "emoji-id":
                    argument = v
            if tag == "span" and argument != "spoiler":
                raise _HtmlError(f'Tag "span" must have class "tg-spoiler" at byte offset {begin}')
            nested.append((tag, argument, u16, len(result)))
            i += 1
            continue

        # an end tag
        if not nested:
            raise _HtmlError(f"Unexpected end tag at byte offset {begin}")
        i += 1
        while at(i) not in _HTML_SPACE and at(i) != 0x3E:
            i += 1
        end_name = b[begin + 2 : i].decode("utf-8", "replace").lower()
        while at(i) != 0 and at(i) in _HTML_SPACE:
            i += 1
        if at(i) != 0x3E:
            raise _HtmlError(f"Unclosed end tag at byte offset {begin}")
        tag, argument, start, result_start = nested.pop()
        if end_name and end_name != tag:
            raise _HtmlError(
                f'Unmatched end tag at byte offset {begin}, expected "</{tag}>", '
                f'found "</{end_name}>"'
            )
        i += 1
        length = u16 - start
        if length <= 0:
            continue
        entity: dict[str, Any] = {"offset": start, "length": length}
        if tag in _TAG_ENTITY:
            entity["type"] = _TAG_ENTITY[tag]
        elif tag == "tg-emoji":
            if not argument.isdigit():
                continue
            entity.update(type="custom_emoji", custom_emoji_id=argument)
        elif tag == "a":
            url = argument or result[result_start:].decode("utf-8", "replace")
            m = re.fullmatch(r"tg://user\?id=(\d+)", url.strip())
            if m:
                uid = int(m.group(1))
                user = (known_users or {}).get(uid) or TgUser(id=uid, first_name="")
                entity.update(type="text_mention", user=user.to_api())
            else:
                checked = _check_url(url)
                if checked is None:
                    continue
                entity.update(type="text_link", url=checked)
        elif tag == "pre":
            entity["type"] = "pre"
            if argument:
                entity["language"] = argument
        elif tag == "code":
            entity["type"] = "code"
            if argument:
                entity["language"] = argument  # kept only when it names a <pre>'s language
        else:  # blockquote
            entity["type"] = "expandable_blockquote" if argument else "blockquote"
        entities.append(entity)
    if nested:
        raise _HtmlError(f'Can\'t find end tag corresponding to start tag "{nested[-1][0]}"')
    return result.decode("utf-8"), _tidy_entities(entities)


def _tidy_entities(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Telegram's nesting rules: pre/code contain nothing else (a <code class=language-x>
    filling a <pre> names the pre's language), blockquotes don't nest."""
    pres = [e for e in entities if e["type"] == "pre"]
    out: list[dict[str, Any]] = []
    for e in entities:
        if e["type"] == "code":
            same = next(
                (p for p in pres if (p["offset"], p["length"]) == (e["offset"], e["length"])),
                None,
            )
            if same is not None:
                if e.get("language"):
                    same["language"] = e["language"]
                continue
            e.pop("language", None)
        out.append(e)

    def inside(e: dict[str, Any], o: dict[str, Any]) -> bool:
        return (
            o is not e
            and o["offset"] <= e["offset"]
            and e["offset"] + e["length"] <= o["offset"] + o["length"]
        )

    kept = []
    for e in out:
        if any(inside(e, o) and o["type"] in ("pre", "code") for o in out):
            continue
        if e["type"].endswith("blockquote") and any(
            inside(e, o) and o["type"].endswith("blockquote") for o in out
        ):
            continue
        kept.append(e)
    return _sorted_entities(kept)


def _sorted_entities(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(
        entities, key=lambda e: (e["offset"], -e["length"], _ENTITY_ORDER.get(e["type"], 99))
    )


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


_ASCII_WORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_URL = re.compile(r"(?i)\b(?:https?|ftp|tg)://[^\s<>\"']+")
_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
)


def _find_bot_commands(text: str) -> Iterable[tuple[int, int]]:
    """tdlib's rule: /[a-zA-Z0-9_]{1,64}(@[a-zA-Z0-9_]{3,32})? not glued to a word, / < >."""
    n = len(text)
    i = text.find("/")
    while i != -1:
        start = i
        i = text.find("/", i + 1)
        if start > 0 and (_is_word_char(text[start - 1]) or text[start - 1] in "/<>"):
            continue
        j = start + 1
        while j < n and text[j] in _ASCII_WORD:
            j += 1
        if not 1 <= j - start - 1 <= 64:
            continue
        end = j
        if j < n and text[j] == "@":
            k = j + 1
            while k < n and text[k] in _ASCII_WORD:
                k += 1
            if not 3 <= k - j - 1 <= 32:
                continue
            end = k
        if end < n and (_is_word_char(text[end]) or text[end] in "/<>"):
            continue
        yield start, end


def _find_mentions(text: str) -> Iterable[tuple[int, int]]:
    n = len(text)
    for m in re.finditer("@", text):
        start = m.start()
        if start > 0 and _is_word_char(text[start - 1]):
            continue
        j = start + 1
        while j < n and text[j] in _ASCII_WORD:
            j += 1
        if not 2 <= j - start - 1 <= 32 or (j < n and _is_word_char(text[j])):
            continue
        yield start, j


def _find_hashtags(text: str) -> Iterable[tuple[int, int]]:
    n = len(text)
    for m in re.finditer("#", text):
        start = m.start()
        if start > 0 and _is_word_char(text[start - 1]):
            continue
        j = start + 1
        while j < n and _is_word_char(text[j]):
            j += 1
        if j == start + 1 or (j < n and text[j] == "#"):
            continue
        if not any(ch.isalpha() for ch in text[start + 1 : j]):
            continue
        yield start, min(j, start + 257)


def find_entities(text: str) -> list[dict[str, Any]]:
    """The entities Telegram detects by itself: URLs, e-mails, bot commands, mentions,
    hashtags (offsets and lengths in UTF-16 code units)."""
    offsets = _utf16_offsets(text)
    spans: list[tuple[int, int, str]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e, _ in spans)

    for m in _URL.finditer(text):
        start, end = m.start(), m.end()
        while end > start and text[end - 1] in ".,;:!?)]}'\"":
            end -= 1
        spans.append((start, end, "url"))
    for m in _EMAIL.finditer(text):
        if free(m.start(), m.end()):
            spans.append((m.start(), m.end(), "email"))
    for kind, finder in (
        ("bot_command", _find_bot_commands),
        ("mention", _find_mentions),
        ("hashtag", _find_hashtags),
    ):
        for start, end in finder(text):
            if free(start, end):
                spans.append((start, end, kind))
    return _sorted_entities(
        [
            {"offset": offsets[s], "length": offsets[e] - offsets[s], "type": kind}
            for s, e, kind in spans
        ]
    )


def _trim(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Telegram strips leading and trailing whitespace; entities move and shrink with it."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    lead = utf16_len(text[: len(text) - len(text.lstrip())])
    total = utf16_len(stripped)
    out = []
    for e in entities:
        start = max(e["offset"] - lead, 0)
        end = min(e["offset"] + e["length"] - lead, total)
        if end > start:
            out.append({**e, "offset": start, "length": end - start})
    return stripped, out


def _merge_auto_entities(text: str, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    opaque = [
        e
        for e in entities
        if e["type"] in ("pre", "code", "text_link", "text_mention", "custom_emoji")
    ]
    merged = list(entities)
    for auto in find_entities(text):
        a0, a1 = auto["offset"], auto["offset"] + auto["length"]
        if any(not (a1 <= o["offset"] or a0 >= o["offset"] + o["length"]) for o in opaque):
            continue
        merged.append(auto)
    return _sorted_entities(merged)


# --- images ------------------------------------------------------------------------------


def png_bytes(width: int = 1, height: int = 1, rgb: tuple[int, int, int] = (200, 30, 60)) -> bytes:
    """A valid PNG image of one colour (different colours give different bytes)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def image_size(data: bytes) -> tuple[str, int, int] | None:
    """(format, width, height) of a JPEG, PNG, GIF, WebP or BMP image; None otherwise."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24 and data[12:16] == b"IHDR":
        w, h = struct.unpack(">II", data[16:24])
        return "png", w, h
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        w, h = struct.unpack("<HH", data[6:10])
        return "gif", w, h
    if data.startswith(b"BM") and len(data) >= 26:
        w, h = struct.unpack("<ii", data[18:26])
        return "bmp", abs(w), abs(h)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        kind = data[12:16]
        if kind == b"VP8 ":
            w, h = struct.unpack("<HH", data[26:30])
            return "webp", w & 0x3FFF, h & 0x3FFF
        if kind == b"VP8L":
            b0, b1, b2, b3 = data[21:25]
            w = 1 + (((b1 & 0x3F) << 8) | b0)
            h = 1 + (((b3 & 0x0F) << 10) | (b2 << 2) | ((b1 & 0xC0) >> 6))
            return "webp", w, h
        if kind == b"VP8X":
            w = 1 + int.from_bytes(data[24:27], "little")
            h = 1 + int.from_bytes(data[27:30], "little")
            return "webp", w, h
        return None
    if data.startswith(b"\xff\xd8"):
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            if marker == 0xFF:
                i += 1
                continue
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                h, w = struct.unpack(">HH", data[i + 5 : i + 9])
                return "jpeg", w, h
            i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


def _photo_sizes(width: int, height: int) -> list[tuple[int, int]]:
    """The sizes Telegram makes of a photo: thumbnails of 90, 320, 800, 1280 px boxes that are
    smaller than the photo, and the photo itself (at most 2560 px)."""
    longest = max(width, height, 1)
    sizes = []
    for box in (90, 320, 800, 1280, 2560):
        if box < longest:
            scale = box / longest
            sizes.append((max(1, round(width * scale)), max(1, round(height * scale))))
    scale = min(1.0, 2560 / longest)
    sizes.append((max(1, round(width * scale)), max(1, round(height * scale))))
    return sizes


# --- request parsing ---------------------------------------------------------------------


@dataclass
class _Upload:
    filename: str
    content_type: str
    data: bytes


def _parse_multipart(body: bytes, boundary: bytes) -> tuple[dict[str, str], dict[str, _Upload]]:
    values: dict[str, str] = {}
    files: dict[str, _Upload] = {}
    for part in body.split(b"--" + boundary)[1:]:
        if part.startswith(b"--"):
            break
        if part.startswith(b"\r\n"):
            part = part[2:]
        if part.endswith(b"\r\n"):
            part = part[:-2]
        head, _, content = part.partition(b"\r\n\r\n")
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        params = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', disposition))
        name = params.get("name")
        if name is None:
            continue
        if "filename" in params:
            files[name] = _Upload(
                filename=params["filename"],
                content_type=headers.get("content-type", "application/octet-stream"),
                data=content,
            )
        else:
            values[name] = content.decode("utf-8", "replace")
    return values, files


def _json_to_text(value: Any) -> str | None:
    """How the Bot API server reads a JSON body: every value as the text a form would send."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False)


def _leading_int(text: str | None) -> int | None:
    if text is None:
        return None
    m = re.match(r"\s*([+-]?\d+)", text)
    return int(m.group(1)) if m else None


class _Params:
    def __init__(self, values: dict[str, str], files: dict[str, _Upload]) -> None:
        self.values = values
        self.files = files

    def has(self, name: str) -> bool:
        return name in self.values or name in self.files

    def text(self, name: str) -> str | None:
        return self.values.get(name)

    def integer(self, name: str, default: int = 0) -> int:
        value = _leading_int(self.values.get(name))
        return default if value is None else value

    def flag(self, name: str) -> bool:
        value = self.values.get(name, "")
        return value.lower() == "true" or value == "1"

    def json(self, name: str, what: str) -> Any:
        raw = self.values.get(name)
        if raw is None or raw == "":
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise _bad_request(f"can't parse {what} JSON object") from None


# --- server state ------------------------------------------------------------------------


@dataclass
class _Chat:
    chat: TgChat
    next_message_id: int = 1
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    by_bot: set[int] = field(default_factory=set)
    kinds: dict[int, str] = field(default_factory=dict)
    blocked: str | None = None  # a 403 description while blocked
    bot_status: str = "member"  # groups: member | administrator | left | kicked
    # The reactions the chat allows (a group's admins may narrow them or turn them off:
    # an empty set); None: every standard one (REACTION_EMOJI).
    available_reactions: frozenset[str] | None = None


@dataclass
class _File:
    file_id: str
    file_unique_id: str
    kind: str  # "photo" | "document"
    data: bytes
    file_path: str
    file_name: str | None = None
    mime_type: str | None = None
    width: int = 0
    height: int = 0
    sizes: list[str] = field(default_factory=list)  # a photo's sizes, smallest first


@dataclass
class _Webhook:
    url: str
    secret_token: str | None
    max_connections: int
    has_custom_certificate: bool = False


@dataclass
class _FloodRule:
    seconds: float
    count: int
    chat_id: int | None


@dataclass
class _Block:
    until: float
    integer: bool  # retry_after given in whole seconds, as Telegram does


@dataclass
class _Bucket:
    tokens: float
    at: float


class _Result(NamedTuple):
    result: Any
    description: str


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, fake: FakeTelegram) -> None:
        self.fake = fake
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | OSError):
            return  # the client went away
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real API
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        self.server.fake._serve(self)

    def do_POST(self) -> None:
        self.server.fake._serve(self)


# --- the fake ------------------------------------------------------------------------------


class FakeTelegram:
    """The Telegram Bot API, in a thread on 127.0.0.1."""

    def __init__(
        self,
        *,
        token: str = TOKEN,
        username: str = BOT_USERNAME,
        first_name: str = "Pinwall",
        privacy_mode: bool = True,
        limits: TelegramLimits | None = None,
        callback_answer_timeout: float = 15.0,
        first_update_id: int = 100_000_001,
        latency: float = 0.0,
        answer_delay: float = 0.0,
    ) -> None:
        if not _TOKEN_SHAPE.fullmatch(token):
            raise ValueError("a bot token looks like 123456:ABC-def")
        self.token = token
        self.bot_user = TgUser(
            id=int(token.split(":")[0]), first_name=first_name, username=username, is_bot=True
        )
        self.privacy_mode = privacy_mode
        self.limits = limits
        self.callback_answer_timeout = callback_answer_timeout
        self.latency = latency
        # Seconds a call's answer is held back after the call was carried out (a client
        # timing out meanwhile cannot know its message is out).
        self.answer_delay = answer_delay

        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._closing = False

        self._chats: dict[int, _Chat] = {}
        self._users: dict[int, TgUser] = {}
        self._queue: list[dict[str, Any]] = []
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = first_update_id
        self._confirmed_offset = 0
        self._allowed: frozenset[str] = DEFAULT_UPDATE_TYPES
        self._allowed_given: list[str] | None = None
        self._poll_generation = 0
        self._polling = 0
        self._webhook: _Webhook | None = None
        self._webhook_error: tuple[int, str] | None = None

        self._files: dict[str, _File] = {}
        self._paths: dict[str, _File] = {}  # file_path handed out by getFile -> file
        self._file_counter = itertools.count(1)
        self._urls: dict[str, tuple[bytes, str]] = {}
        self._callbacks: dict[str, tuple[float, bool]] = {}  # id -> (created, answered)
        self._callback_counter = itertools.count(1)
        self._commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self._descriptions: dict[str, str] = {}  # language_code ("" for all) -> text
        self._short_descriptions: dict[str, str] = {}
        # (chat id, message id) -> user id -> the emoji that user reacted with
        self._reactions: dict[tuple[int, int], dict[int, list[str]]] = {}
        self._anonymous: dict[tuple[int, int], dict[str, int]] = {}

        self._sent: list[SentMessage] = []
        self._edits: list[Edit] = []
        self._answered: list[AnsweredCallback] = []
        self._calls: list[str] = []
        self._requests: list[ApiCall] = []
        self._early: list[EarlyCall] = []
        self._errors: list[str] = []
        self._downloads: list[str] = []

        self._flood_rules: list[_FloodRule] = []
        self._albums_sent: list[str] = []
        self._blocks: dict[int, _Block] = {}
        self._block_all: _Block | None = None
        self._buckets: dict[int, _Bucket] = {}
        self._group_sends: dict[int, deque[float]] = {}
        self._all_sends: deque[float] = deque()

        self._methods: dict[str, tuple[str, Callable[[_Params], Any]]] = {
            name.lower(): (name, handler)
            for name, handler in (
                ("getMe", self._get_me),
                ("getUpdates", self._get_updates),
                ("setWebhook", self._set_webhook),
                ("deleteWebhook", self._delete_webhook),
                ("getWebhookInfo", self._get_webhook_info),
                ("getChat", self._get_chat),
                ("getChatMember", self._get_chat_member),
                ("sendMessage", self._send_message),
                ("sendPhoto", self._send_photo),
                ("sendDocument", self._send_document),
                ("sendMediaGroup", self._send_media_group),
                ("sendChatAction", self._send_chat_action),
                ("getFile", self._get_file),
                ("answerCallbackQuery", self._answer_callback_query),
                ("editMessageText", self._edit_message_text),
                ("editMessageCaption", self._edit_message_caption),
                ("editMessageReplyMarkup", self._edit_message_reply_markup),
                ("deleteMessage", self._delete_message),
                ("setMessageReaction", self._set_message_reaction),
                ("setMyCommands", self._set_my_commands),
                ("getMyCommands", self._get_my_commands),
                ("deleteMyCommands", self._delete_my_commands),
                ("setMyDescription", self._set_my_description),
                ("getMyDescription", self._get_my_description),
                ("setMyShortDescription", self._set_my_short_description),
                ("getMyShortDescription", self._get_my_short_description),
            )
        }

    # --- life ---------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            return self
        self._closing = False
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True, name="fake-telegram"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server = self._server
        if server is None:
            return
        with self._cond:
            self._closing = True
            self._cond.notify_all()  # long polls answer at once
        server.shutdown()
        with server.connections_lock:
            open_connections = list(server.connections)
        for conn in open_connections:  # idle keep-alive connections: end their threads
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT"""
        if self._server is None:
            raise RuntimeError("FakeTelegram is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def base_url(self) -> str:
        """What to give Bot(base_url=...)."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """What to give Bot(base_file_url=...)."""
        return f"{self.url}/file/bot"

    @property
    def bot_kwargs(self) -> dict[str, str]:
        """Bot(**fake.bot_kwargs) talks to this fake."""
        return {"token": self.token, "base_url": self.base_url, "base_file_url": self.base_file_url}

    @property
    def username(self) -> str:
        return self.bot_user.username or ""

    # --- inspection -----------------------------------------------------------------------

    @property
    def sent(self) -> list[SentMessage]:
        """Every message the bot posted, in order."""
        with self._lock:
            return list(self._sent)

    def sent_to(self, chat_id: int) -> list[SentMessage]:
        with self._lock:
            return [s for s in self._sent if s.chat_id == chat_id]

    def messages_in(self, chat_id: int) -> list[dict[str, Any]]:
        """What the chat shows now: every message (the users' and the bot's) not deleted, as
        Message objects, edits applied, in order."""
        with self._lock:
            state = self._chats.get(chat_id)
            if state is None:
                return []
            return [copy.deepcopy(state.messages[m]) for m in sorted(state.messages)]

    def message(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        with self._lock:
            state = self._chats.get(chat_id)
            msg = state.messages.get(message_id) if state else None
            return copy.deepcopy(msg) if msg else None

    @property
    def edits(self) -> list[Edit]:
        with self._lock:
            return list(self._edits)

    @property
    def answered_callbacks(self) -> list[AnsweredCallback]:
        with self._lock:
            return list(self._answered)

    @property
    def commands(self) -> dict[tuple[str, str], list[dict[str, str]]]:
        """What setMyCommands stored: (scope key, language_code) -> commands. Scope keys:
        "default", "all_private_chats", "all_group_chats", "all_chat_administrators",
        "chat:<chat_id>", "chat_administrators:<chat_id>", "chat_member:<chat_id>:<user_id>";
        language_code "" for all languages."""
        with self._lock:
            return copy.deepcopy(self._commands)

    @property
    def descriptions(self) -> dict[str, str]:
        """What setMyDescription stored, by language_code ("" for all languages)."""
        with self._lock:
            return dict(self._descriptions)

    @property
    def short_descriptions(self) -> dict[str, str]:
        """What setMyShortDescription stored, by language_code ("" for all languages)."""
        with self._lock:
            return dict(self._short_descriptions)

    def reactions_on(self, chat_id: int, message_id: int) -> dict[str, int]:
        """The reactions a message shows now: emoji -> count (users' and anonymous)."""
        with self._lock:
            counts = dict(self._anonymous.get((chat_id, message_id), {}))
            for emoji_list in self._reactions.get((chat_id, message_id), {}).values():
                for emoji in emoji_list:
                    counts[emoji] = counts.get(emoji, 0) + 1
            return counts

    def commands_for(self, scope: str = "default", language_code: str = "") -> list[str]:
        """The command names stored for a scope and language."""
        with self._lock:
            return [c["command"] for c in self._commands.get((scope, language_code), [])]

    @property
    def calls(self) -> list[str]:
        """The method names called, in order (as documented, e.g. "sendMessage")."""
        with self._lock:
            return list(self._calls)

    @property
    def requests(self) -> list[ApiCall]:
        """Every API call with its parameters and the status it got."""
        with self._lock:
            return list(self._requests)

    @property
    def downloads(self) -> list[str]:
        """The file_paths downloaded (GET /file/bot<token>/<file_path>), in order."""
        with self._lock:
            return list(self._downloads)

    @property
    def early(self) -> list[EarlyCall]:
        """Calls that came before a retry_after the fake had given had passed."""
        with self._lock:
            return list(self._early)

    @property
    def errors(self) -> list[str]:
        """Tracebacks of the fake's own failures (answered 500); a test may assert it empty."""
        with self._lock:
            return list(self._errors)

    @property
    def confirmed_offset(self) -> int:
        """Updates with an update_id below this are confirmed and forgotten."""
        with self._lock:
            return self._confirmed_offset

    @property
    def updates(self) -> list[dict[str, Any]]:
        """Every update that was queued for the bot, confirmed or not."""
        with self._lock:
            return copy.deepcopy(self._updates)

    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates not confirmed yet (getUpdates) or not delivered yet (webhook)."""
        with self._lock:
            return copy.deepcopy(self._queue)

    @property
    def polling(self) -> int:
        """How many getUpdates calls are waiting (long-polling) right now."""
        with self._lock:
            return self._polling

    @property
    def webhook_url(self) -> str | None:
        with self._lock:
            return self._webhook.url if self._webhook else None

    def file_bytes(self, file_id: str) -> bytes:
        with self._lock:
            return self._files[file_id].data

    def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 5.0, what: str = "the condition"
    ) -> None:
        """Polls predicate until true; AssertionError after timeout (blocks the thread: in
        async tests use wait_for_async)."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(self._timeout_message(what, timeout))
            time.sleep(0.005)

    async def wait_for_async(
        self,
        predicate: Callable[[], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 - the same signature as wait_for
        what: str = "the condition",
    ) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(self._timeout_message(what, timeout))
            await asyncio.sleep(0.005)

    def _timeout_message(self, what: str, timeout: float) -> str:
        with self._lock:
            calls = self._calls[-15:]
            sent = [(s.chat_id, s.text or s.caption) for s in self._sent[-5:]]
        return (
            f"FakeTelegram: timed out after {timeout}s waiting for {what}; "
            f"last calls {calls}, last messages sent {sent}"
        )

    # --- test controls ----------------------------------------------------------------------

    def add_chat(self, chat: TgChat) -> None:
        """Make a chat known, as if the bot had met it (sends elsewhere: "chat not found")."""
        with self._lock:
            self._chat_state(chat)

    def add_user(self, user: TgUser) -> None:
        with self._lock:
            self._users[user.id] = user

    def add_channel(self, chat: TgChat, *, admin: bool = True) -> None:
        """A channel the bot was made an administrator of (may post), or not (403)."""
        if chat.type != "channel":
            raise ValueError("add_channel takes a TgChat.channel(...)")
        with self._lock:
            self._chat_state(chat).bot_status = "administrator" if admin else "left"

    def block(self, chat_id: int, description: str = "bot was blocked by the user") -> None:
        """From now on sends to chat_id answer 403 "Forbidden: <description>"."""
        with self._lock:
            self._state_for_id(chat_id).blocked = description

    def unblock(self, chat_id: int) -> None:
        with self._lock:
            self._state_for_id(chat_id).blocked = None

    def flood(self, seconds: float, count: int = 1, chat_id: int | None = None) -> None:
        """The next `count` send/edit calls (to chat_id, or any chat) answer 429 with
        retry_after=seconds, and that chat refuses more until then. Telegram gives whole
        seconds; a float is passed on as it is, to keep tests fast."""
        with self._lock:
            self._flood_rules.append(_FloodRule(seconds, count, chat_id))

    def serve_url(self, url: str, data: bytes, content_type: str = "image/png") -> None:
        """What Telegram finds at url when the bot sends a file by URL (else: "failed to get
        HTTP URL content")."""
        with self._lock:
            self._urls[url] = (data, content_type)

    # --- injecting what users do ---------------------------------------------------------

    def user_sends_text(
        self,
        user: TgUser,
        chat: TgChat | None,
        text: str,
        *,
        reply_to: int | None = None,
        entities: list[dict[str, Any]] | None = None,
    ) -> Injected:
        """A user writes text (with the entities a client makes: commands, mentions, URLs)."""
        with self._cond:
            state = self._chat_state(chat or user.chat, user)
            content: dict[str, Any] = {}
            self._add_reply(state, content, reply_to)
            content["text"] = text
            found = entities if entities is not None else find_entities(text)
            if found:
                content["entities"] = found
            msg = self._new_message(state, user.to_api(), content)
            return self._deliver("message", msg, self._bot_sees(state, msg))

    def user_starts(self, user: TgUser, payload: str | None = None) -> Injected:
        """The user opens the bot (or a t.me/<bot>?start=<payload> link): "/start [payload]"
        in the private chat. A user who had blocked the bot restarts it: my_chat_member
        (kicked -> member) comes first, as Telegram sends it."""
        with self._lock:
            if self._chat_state(user.chat, user).blocked:
                self.user_unblocks(user)
        return self.user_sends_text(user, user.chat, "/start" + (f" {payload}" if payload else ""))

    def user_sends_command(
        self,
        user: TgUser,
        chat: TgChat | None,
        command: str,
        args: str = "",
        *,
        mention: bool | str | None = None,
    ) -> Injected:
        """A user sends /command args; in groups as /command@botname args (as a client does
        when picked from the menu) unless mention=False; mention="other_bot" addresses
        another bot."""
        chat = chat or user.chat
        with_mention = chat.is_group if mention is None else mention
        addressee = mention if isinstance(mention, str) else self.username
        text = f"/{command}" + (f"@{addressee}" if with_mention else "")
        return self.user_sends_text(user, chat, text + (f" {args}" if args else ""))

    def user_sends_photo(
        self,
        user: TgUser,
        chat: TgChat | None,
        data: bytes,
        caption: str | None = None,
        *,
        reply_to: int | None = None,
        album: str | None = None,
    ) -> Injected:
        with self._cond:
            state = self._chat_state(chat or user.chat, user)
            found = image_size(data)
            width, height = (found[1], found[2]) if found else (1280, 960)
            content: dict[str, Any] = {}
            self._add_reply(state, content, reply_to)
            content["photo"] = self._store_photo(data, width, height)
            self._add_caption(content, caption)
            if album is not None:
                content["media_group_id"] = album
            msg = self._new_message(state, user.to_api(), content)
            return self._deliver("message", msg, self._bot_sees(state, msg))

    def user_sends_album(
        self, user: TgUser, chat: TgChat | None, photos: list[bytes], caption: str | None = None
    ) -> list[Injected]:
        """Several photos picked at once: as Telegram delivers an album, one message per
        photo sharing a media_group_id, the caption on the first."""
        with self._lock:
            album = str(10_000_000 + len(self._albums_sent))
            self._albums_sent.append(album)
        return [
            self.user_sends_photo(user, chat, data, caption if i == 0 else None, album=album)
            for i, data in enumerate(photos)
        ]

    def user_sends_document(
        self,
        user: TgUser,
        chat: TgChat | None,
        data: bytes,
        file_name: str,
        mime_type: str,
        caption: str | None = None,
        *,
        reply_to: int | None = None,
    ) -> Injected:
        with self._cond:
            state = self._chat_state(chat or user.chat, user)
            stored = self._store_file("document", data, file_name=file_name, mime_type=mime_type)
            content: dict[str, Any] = {}
            self._add_reply(state, content, reply_to)
            content["document"] = self._document_object(stored)
            self._add_caption(content, caption)
            msg = self._new_message(state, user.to_api(), content)
            return self._deliver("message", msg, self._bot_sees(state, msg))

    def user_forwards(
        self,
        user: TgUser,
        chat: TgChat | None,
        text: str,
        *,
        origin: TgUser | TgChat | str,
        origin_message_id: int | None = None,
        origin_date: int | None = None,
    ) -> Injected:
        """A user forwards a text message into the chat. origin: the user who wrote it, a
        channel or group it came from, or a name (a user who hides their account)."""
        date = origin_date if origin_date is not None else int(time.time()) - 60
        forward_origin: dict[str, Any]
        if isinstance(origin, TgUser):
            forward_origin = {"type": "user", "date": date, "sender_user": origin.to_api()}
        elif isinstance(origin, str):
            forward_origin = {"type": "hidden_user", "date": date, "sender_user_name": origin}
        elif origin.type == "channel":
            forward_origin = {
                "type": "channel",
                "date": date,
                "chat": origin.to_api(),
                "message_id": origin_message_id or 1,
            }
        else:
            forward_origin = {"type": "chat", "date": date, "sender_chat": origin.to_api()}
        with self._cond:
            state = self._chat_state(chat or user.chat, user)
            content: dict[str, Any] = {"forward_origin": forward_origin, "text": text}
            found = find_entities(text)
            if found:
                content["entities"] = found
            msg = self._new_message(state, user.to_api(), content)
            return self._deliver("message", msg, self._bot_sees(state, msg))

    def user_edits_text(
        self, user: TgUser, chat: TgChat | None, message_id: int, text: str
    ) -> Injected:
        """A user edits a text message they sent: an edited_message update."""
        with self._cond:
            state = self._chat_state(chat or user.chat, user)
            msg = state.messages.get(message_id)
            if msg is None or message_id in state.by_bot or msg["from"]["id"] != user.id:
                raise ValueError(f"{user.id} sent no message {message_id} in {state.chat.id}")
            msg["text"] = text
            msg.pop("entities", None)
            found = find_entities(text)
            if found:
                msg["entities"] = found
            msg["edit_date"] = int(time.time())
            return self._deliver("edited_message", msg, self._bot_sees(state, msg))

    def user_presses(
        self, user: TgUser, chat: TgChat | None, message_id: int, callback_data: str
    ) -> Injected:
        """A user presses an inline button with callback_data on a message the bot sent."""
        with self._cond:
            state = self._chat_state(chat or user.chat, user)
            msg = state.messages.get(message_id)
            if msg is None or message_id not in state.by_bot:
                raise ValueError(f"the bot has no message {message_id} in chat {state.chat.id}")
            buttons = [
                button.get("callback_data")
                for row in (msg.get("reply_markup") or {}).get("inline_keyboard", [])
                for button in row
            ]
            if callback_data not in buttons:
                raise ValueError(
                    f"message {message_id} has no button with callback_data {callback_data!r} "
                    f"(it has {buttons})"
                )
            query_id = str(4_382_000_000_000_000_000 + next(self._callback_counter))
            self._callbacks[query_id] = (time.monotonic(), False)
            chat_instance = str(
                int.from_bytes(hashlib.sha256(f"{state.chat.id}".encode()).digest()[:8]) >> 1
            )
            query = {
                "id": query_id,
                "from": user.to_api(),
                "message": copy.deepcopy(msg),
                "chat_instance": chat_instance,
                "data": callback_data,
            }
            return self._deliver("callback_query", query, True)

    def user_reacts(
        self, user: TgUser, chat: TgChat | None, message_id: int, *emoji: str
    ) -> Injected:
        """A user sets their reactions on a message (none: takes them back): a
        message_reaction update with old_reaction and new_reaction. Telegram sends it in
        private chats, and in groups only where the bot is an administrator; an emoji
        outside the free set is refused as the client would (REACTION_INVALID)."""
        for e in emoji:
            if e not in REACTION_EMOJI:
                raise ValueError(f"REACTION_INVALID: {e!r} is not a reaction Telegram offers")
        with self._cond:
            state = self._chat_state(chat or user.chat, user)
            if message_id not in state.messages:
                raise ValueError(f"no message {message_id} in chat {state.chat.id}")
            per_user = self._reactions.setdefault((state.chat.id, message_id), {})
            old = per_user.get(user.id, [])
            per_user[user.id] = list(emoji)
            body = {
                "chat": state.chat.to_api(),
                "message_id": message_id,
                "user": user.to_api(),
                "date": int(time.time()),
                "old_reaction": [{"type": "emoji", "emoji": e} for e in old],
                "new_reaction": [{"type": "emoji", "emoji": e} for e in emoji],
            }
            visible = not state.chat.is_group or state.bot_status == "administrator"
            return self._deliver("message_reaction", body, visible)

    def anonymous_reacts(
        self, chat: TgChat, message_id: int, emoji: str, delta: int = 1
    ) -> Injected:
        """Someone anonymous (a channel's reader, a group's anonymous admin) reacts: a
        message_reaction_count update with the message's totals, for an administrator bot."""
        if emoji not in REACTION_EMOJI:
            raise ValueError(f"REACTION_INVALID: {emoji!r} is not a reaction Telegram offers")
        with self._cond:
            state = self._chat_state(chat)
            counts = self._anonymous.setdefault((state.chat.id, message_id), {})
            counts[emoji] = max(0, counts.get(emoji, 0) + delta)
            totals = self.reactions_on(state.chat.id, message_id)
            body = {
                "chat": state.chat.to_api(),
                "message_id": message_id,
                "date": int(time.time()),
                "reactions": [
                    {"type": {"type": "emoji", "emoji": e}, "total_count": n}
                    for e, n in sorted(totals.items(), key=lambda kv: -kv[1])
                    if n > 0
                ],
            }
            return self._deliver(
                "message_reaction_count", body, state.bot_status == "administrator"
            )

    def set_available_reactions(self, chat: TgChat, emoji: Iterable[str] | None) -> None:
        """A group's admins narrow the reactions allowed there (none: turned off), or
        allow every standard one again (None)."""
        with self._lock:
            state = self._chat_state(chat)
            state.available_reactions = None if emoji is None else frozenset(emoji)

    def bot_reactions(self, chat_id: int, message_id: int) -> list[str]:
        """The emoji the bot itself set on a message (setMessageReaction)."""
        with self._lock:
            return list(self._reactions.get((chat_id, message_id), {}).get(self.bot_user.id, []))

    def bot_added_to_group(
        self, by: TgUser, chat: TgChat, *, administrator: bool = False
    ) -> Injected:
        """A user adds the bot to a group: a my_chat_member update (returned), then the service
        message with new_chat_members, as Telegram sends both."""
        if not chat.is_group:
            raise ValueError("bots are added to groups and supergroups")
        with self._cond:
            state = self._chat_state(chat, by)
            old = state.bot_status if state.bot_status in ("left", "kicked") else "left"
            state.bot_status = "administrator" if administrator else "member"
            injected = self._my_chat_member(state, by, old, state.bot_status)
            msg = self._new_message(
                state, by.to_api(), {"new_chat_members": [self.bot_user.to_api()]}
            )
            self._deliver("message", msg, True)
            return injected

    def bot_removed_from_group(self, by: TgUser, chat: TgChat, *, kicked: bool = True) -> Injected:
        """The bot is removed (kicked) from a group or leaves it: a my_chat_member update;
        sends there answer 403 from now on."""
        with self._cond:
            state = self._chat_state(chat, by)
            old = state.bot_status
            state.bot_status = "kicked" if kicked else "left"
            return self._my_chat_member(state, by, old, state.bot_status)

    def user_blocks(self, user: TgUser) -> Injected:
        """The user blocks the bot: my_chat_member (member -> kicked) in the private chat, and
        sends there answer 403 "Forbidden: bot was blocked by the user"."""
        with self._cond:
            state = self._chat_state(user.chat, user)
            state.blocked = "bot was blocked by the user"
            return self._my_chat_member(state, user, "member", "kicked")

    def user_unblocks(self, user: TgUser) -> Injected:
        with self._cond:
            state = self._chat_state(user.chat, user)
            state.blocked = None
            return self._my_chat_member(state, user, "kicked", "member")

    def inject_update(self, kind: str, body: dict[str, Any]) -> Injected:
        """An update of `kind` carrying `body` as given, not made from the fake's chats: for
        what the real server sends and a client library cannot read (a callback query whose
        message lacks its date, say). It is queued and confirmed like any other."""
        with self._cond:
            return self._deliver(kind, body, True)

    # --- webhook delivery, driven by the test --------------------------------------------------

    def webhook_request(
        self, update: Injected | dict[str, Any]
    ) -> tuple[str, dict[str, str], bytes]:
        """(url, headers, body) of the POST Telegram would make to the webhook for update."""
        body = update.update if isinstance(update, Injected) else update
        with self._lock:
            if self._webhook is None:
                raise RuntimeError("no webhook is set: Telegram would not post anything")
            headers = {"Content-Type": "application/json"}
            if self._webhook.secret_token:
                headers["X-Telegram-Bot-Api-Secret-Token"] = self._webhook.secret_token
            return self._webhook.url, headers, json.dumps(body).encode()

    def post_webhook(
        self, update: Injected | dict[str, Any], url: str | None = None, timeout: float = 5.0
    ) -> int:
        """POST update to the webhook (or to url, e.g. the adapter's local listener, with the
        same headers) as Telegram does; 2xx confirms it. Returns the HTTP status."""
        target, headers, body = self.webhook_request(update)
        request = urllib.request.Request(url or target, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status = int(response.status)
                reason = str(response.reason)
        except urllib.error.HTTPError as exc:
            status, reason = exc.code, str(exc.reason)
            exc.close()
        self._webhook_answered(update, status, reason)
        return status

    async def post_webhook_async(
        self,
        update: Injected | dict[str, Any],
        url: str | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - the HTTP client's timeout
        client: httpx.AsyncClient | None = None,
    ) -> int:
        """`client`: one kept by the caller, for many POSTs (a new client builds an SSL
        context, which costs more than the POST: a load generator keeps one)."""
        target, headers, body = self.webhook_request(update)
        if client is not None:
            response = await client.post(
                url or target, content=body, headers=headers, timeout=timeout
            )
        else:
            async with httpx.AsyncClient(timeout=timeout) as own:
                response = await own.post(url or target, content=body, headers=headers)
        self._webhook_answered(update, response.status_code, response.reason_phrase)
        return response.status_code

    def _webhook_answered(
        self, update: Injected | dict[str, Any], status: int, reason: str
    ) -> None:
        body = update.update if isinstance(update, Injected) else update
        with self._lock:
            if 200 <= status < 300:
                self._queue = [u for u in self._queue if u.get("update_id") != body["update_id"]]
                self._webhook_error = None
            else:
                self._webhook_error = (
                    int(time.time()),
                    f"Wrong response from the webhook: {status} {reason}",
                )

    # --- internals: chats, messages, updates ------------------------------------------------

    def _chat_state(self, chat: TgChat, user: TgUser | None = None) -> _Chat:
        if user is not None:
            self._users[user.id] = user
        state = self._chats.get(chat.id)
        if state is None:
            state = self._chats[chat.id] = _Chat(chat=chat)
        return state

    def _state_for_id(self, chat_id: int) -> _Chat:
        state = self._chats.get(chat_id)
        if state is None:
            if chat_id > 0:
                user = self._users.get(chat_id) or TgUser(id=chat_id, first_name="User")
                return self._chat_state(user.chat, user)
            raise KeyError(f"unknown chat {chat_id}: inject something there or add_chat() it")
        return state

    def _new_message(
        self, state: _Chat, sender: dict[str, Any], content: dict[str, Any], kind: str = "text"
    ) -> dict[str, Any]:
        message_id = state.next_message_id
        state.next_message_id += 1
        msg = {
            "message_id": message_id,
            "from": sender,
            "chat": state.chat.to_api(),
            "date": int(time.time()),
            **content,
        }
        state.messages[message_id] = msg
        state.kinds[message_id] = kind
        return msg

    def _add_reply(self, state: _Chat, content: dict[str, Any], reply_to: int | None) -> None:
        if reply_to is None:
            return
        replied = state.messages.get(reply_to)
        if replied is None:
            raise ValueError(f"no message {reply_to} in chat {state.chat.id} to reply to")
        snapshot = copy.deepcopy(replied)
        snapshot.pop("reply_to_message", None)
        content["reply_to_message"] = snapshot

    def _add_caption(self, content: dict[str, Any], caption: str | None) -> None:
        if caption:
            content["caption"] = caption
            found = find_entities(caption)
            if found:
                content["caption_entities"] = found

    def _bot_sees(self, state: _Chat, msg: dict[str, Any]) -> bool:
        """Privacy mode: in groups the bot gets commands (/cmd, or /cmd@it), replies to its
        messages and service messages, not the rest."""
        if state.chat.is_group and state.bot_status in ("left", "kicked"):
            return False
        if not state.chat.is_group or not self.privacy_mode:
            return True
        if not any(k in msg for k in ("text", "caption", "photo", "document")):
            return True  # a service message
        reply = msg.get("reply_to_message")
        if reply and reply.get("from", {}).get("id") == self.bot_user.id:
            return True
        text = msg.get("text") or msg.get("caption") or ""
        for e in msg.get("entities") or msg.get("caption_entities") or []:
            if e["type"] == "bot_command" and e["offset"] == 0:
                command = text.encode("utf-16-le")[: 2 * e["length"]].decode("utf-16-le")
                _, at, target = command.partition("@")
                return not at or target.lower() == self.username.lower()
        return False

    def _deliver(self, kind: str, body: dict[str, Any], visible: bool) -> Injected:
        if not visible or kind not in self._allowed:
            return Injected({kind: copy.deepcopy(body)}, None)
        update_id = self._next_update_id
        self._next_update_id += 1
        update = {"update_id": update_id, kind: copy.deepcopy(body)}
        self._queue.append(update)
        self._updates.append(update)
        self._cond.notify_all()
        return Injected(copy.deepcopy(update), update_id)

    def _my_chat_member(self, state: _Chat, by: TgUser, old: str, new: str) -> Injected:
        body = {
            "chat": state.chat.to_api(),
            "from": by.to_api(),
            "date": int(time.time()),
            "old_chat_member": self._member(old),
            "new_chat_member": self._member(new),
        }
        return self._deliver("my_chat_member", body, True)

    def _member(self, status: str) -> dict[str, Any]:
        member: dict[str, Any] = {"user": self.bot_user.to_api(), "status": status}
        if status == "kicked":
            member["until_date"] = 0
        elif status == "administrator":
            member.update(
                can_be_edited=False,
                is_anonymous=False,
                can_manage_chat=True,
                can_delete_messages=True,
                can_manage_video_chats=True,
                can_restrict_members=True,
                can_promote_members=False,
                can_change_info=True,
                can_invite_users=True,
                can_post_stories=False,
                can_edit_stories=False,
                can_delete_stories=False,
                can_pin_messages=True,
            )
        return member

    def _new_file_ids(self, kind: str, number: int) -> tuple[str, str]:
        digest = hashlib.sha256(f"{self.token}:{kind}:{number}".encode()).digest()
        prefix = {"photo": "AgACAgIAAxkBAAI", "document": "BQACAgIAAxkBAAI"}[kind]
        body = base64.urlsafe_b64encode(digest).decode().rstrip("=")
        unique = "AQAD" if kind == "photo" else "AgAD"
        return prefix + body, unique + body[:12]

    def _store_file(
        self,
        kind: str,
        data: bytes,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
        width: int = 0,
        height: int = 0,
    ) -> _File:
        number = next(self._file_counter)
        file_id, unique_id = self._new_file_ids(kind, number)
        if kind == "photo":
            path = f"photos/file_{number}.jpg"
        else:
            ext = ""
            if file_name and "." in file_name:
                ext = "." + file_name.rsplit(".", 1)[1]
            path = f"documents/file_{number}{ext}"
        stored = _File(
            file_id=file_id,
            file_unique_id=unique_id,
            kind=kind,
            data=data,
            file_path=path,
            file_name=file_name,
            mime_type=mime_type,
            width=width,
            height=height,
        )
        self._files[file_id] = stored
        return stored

    def _store_photo(self, data: bytes, width: int, height: int) -> list[dict[str, Any]]:
        """The photo's sizes, each its own file (the fake serves the uploaded bytes for each:
        Telegram would serve re-encoded JPEGs)."""
        stored = [
            self._store_file("photo", data, width=w, height=h)
            for w, h in _photo_sizes(width, height)
        ]
        for f in stored:
            f.sizes = [s.file_id for s in stored]
        return [self._photo_size_object(f) for f in stored]

    def _photo_size_object(self, stored: _File) -> dict[str, Any]:
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "width": stored.width,
            "height": stored.height,
        }

    def _document_object(self, stored: _File) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if stored.file_name is not None:
            out["file_name"] = stored.file_name
        if stored.mime_type is not None:
            out["mime_type"] = stored.mime_type
        out.update(
            file_id=stored.file_id,
            file_unique_id=stored.file_unique_id,
            file_size=len(stored.data),
        )
        return out

    # --- HTTP -----------------------------------------------------------------------------

    def _serve(self, handler: _Handler) -> None:
        try:
            body = self._read_body(handler)
        except (ValueError, OSError):  # the client went away mid-request
            handler.close_connection = True
            return
        if self.latency:
            time.sleep(self.latency)
        path = urlsplit(handler.path)
        route = unquote(path.path)  # clients may percent-encode the token's ':'
        content_type = "application/json"
        if route.startswith("/file/bot") and handler.command == "GET":
            status, data, content_type = self._serve_file(route[len("/file/bot") :])
        elif route.startswith("/bot"):
            status, payload = self._api(route[len("/bot") :], path.query, handler, body)
            data = json.dumps(payload, ensure_ascii=False).encode()
        else:
            status, data = 404, json.dumps(_NOT_FOUND.payload()).encode()
        if self.answer_delay:
            time.sleep(self.answer_delay)
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except OSError:
            handler.close_connection = True

    def _read_body(self, handler: _Handler) -> bytes:
        if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                line = handler.rfile.readline()
                if not line:
                    raise ValueError("cut short")
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    handler.rfile.readline()
                    return b"".join(chunks)
                chunk = handler.rfile.read(size)
                handler.rfile.readline()
                chunks.append(chunk)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        if len(body) < length:
            raise ValueError("cut short")
        return body

    def _serve_file(self, rest: str) -> tuple[int, bytes, str]:
        token, _, file_path = rest.partition("/")
        with self._lock:
            stored = self._paths.get(file_path) if token == self.token else None
            self._downloads.append(file_path)
        if stored is None:
            return 404, json.dumps(_NOT_FOUND.payload()).encode(), "application/json"
        return 200, stored.data, stored.mime_type or "application/octet-stream"

    def _api(
        self, rest: str, query: str, handler: _Handler, body: bytes
    ) -> tuple[int, dict[str, Any]]:
        token, _, method = rest.partition("/")
        name = method
        values: dict[str, str] = {}
        files: dict[str, _Upload] = {}
        try:
            if token != self.token:
                raise _UNAUTHORIZED if _TOKEN_SHAPE.fullmatch(token) else _NOT_FOUND
            entry = self._methods.get(method.lower())
            if entry is None:
                raise _NOT_FOUND
            name, run = entry
            values, files = self._parse_request(query, handler, body)
            outcome = run(_Params(values, files))
            status, payload = 200, {"ok": True, "result": outcome}
            if isinstance(outcome, _Result):
                payload = {"ok": True, "result": outcome.result, "description": outcome.description}
        except ApiError as exc:
            status, payload = exc.error_code, exc.payload()
        except Exception:
            with self._lock:
                self._errors.append(traceback.format_exc())
            status = 500
            payload = {"ok": False, "error_code": 500, "description": "Internal Server Error"}
        with self._lock:
            self._calls.append(name)
            self._requests.append(
                ApiCall(
                    method=name,
                    params=values,
                    files={k: (f.filename, len(f.data)) for k, f in files.items()},
                    status=status,
                    description=payload.get("description"),
                    at=time.monotonic(),
                )
            )
        return status, payload

    def _parse_request(
        self, query: str, handler: _Handler, body: bytes
    ) -> tuple[dict[str, str], dict[str, _Upload]]:
        values = dict(parse_qsl(query, keep_blank_values=True))
        files: dict[str, _Upload] = {}
        content_type = handler.headers.get("Content-Type", "")
        kind = content_type.split(";")[0].strip().lower()
        if body and kind == "application/json":
            try:
                parsed = json.loads(body)
            except ValueError:
                raise _bad_request("can't parse JSON object") from None
            if not isinstance(parsed, dict):
                raise _bad_request("JSON object expected")
            for key, value in parsed.items():
                text = _json_to_text(value)
                if text is not None:
                    values[key] = text
        elif body and kind == "application/x-www-form-urlencoded":
            values.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        elif body and kind == "multipart/form-data":
            m = re.search(r'boundary="?([^";]+)"?', content_type)
            if m is None:
                raise _bad_request("can't parse multipart/form-data: no boundary")
            form, files = _parse_multipart(body, m.group(1).encode())
            values.update(form)
            if any(len(f.data) > MAX_UPLOAD_BYTES for f in files.values()):
                raise ApiError(413, "Request Entity Too Large")
        return values, files

    # --- API: bot and updates ---------------------------------------------------------------

    def _get_me(self, p: _Params) -> dict[str, Any]:
        return {
            **self.bot_user.to_api(),
            "can_join_groups": True,
            "can_read_all_group_messages": not self.privacy_mode,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _parse_allowed_updates(self, p: _Params) -> None:
        if not p.has("allowed_updates"):
            return
        raw = p.json("allowed_updates", "allowed updates")
        if raw is None:
            return
        if not isinstance(raw, list):
            raise _bad_request("can't parse allowed updates JSON object")
        wanted = [u for u in raw if isinstance(u, str) and u in ALL_UPDATE_TYPES]
        self._allowed_given = wanted
        self._allowed = frozenset(wanted) if wanted else DEFAULT_UPDATE_TYPES

    def _confirm(self, offset: int) -> None:
        if offset > 0:
            self._queue = [u for u in self._queue if u["update_id"] >= offset]
            self._confirmed_offset = max(self._confirmed_offset, offset)
        elif offset < 0:
            keep = -offset
            self._queue = self._queue[-keep:] if keep < len(self._queue) else self._queue
            if self._queue:
                self._confirmed_offset = max(self._confirmed_offset, self._queue[0]["update_id"])

    def _get_updates(self, p: _Params) -> list[dict[str, Any]]:
        offset = p.integer("offset", 0)
        limit = min(max(p.integer("limit", 100), 1), 100)
        timeout = min(max(p.integer("timeout", 0), 0), LONG_POLL_MAX_TIMEOUT)
        with self._cond:
            if self._webhook is not None:
                raise ApiError(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first",
                )
            self._parse_allowed_updates(p)
            self._confirm(offset)
            self._poll_generation += 1
            generation = self._poll_generation
            self._cond.notify_all()  # an older getUpdates still waiting is terminated
            deadline = time.monotonic() + timeout
            while True:
                if self._closing:
                    return []
                if generation != self._poll_generation:
                    raise ApiError(
                        409,
                        "Conflict: terminated by other getUpdates request; make sure that "
                        "only one bot instance is running",
                    )
                if self._webhook is not None:
                    raise ApiError(409, "Conflict: terminated by setWebhook request")
                if self._queue:
                    return copy.deepcopy(self._queue[:limit])
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                self._polling += 1
                try:
                    self._cond.wait(remaining)
                finally:
                    self._polling -= 1

    def _set_webhook(self, p: _Params) -> _Result:
        url = (p.text("url") or "").strip()
        if not url:
            return self._delete_webhook(p)
        parts = urlsplit(url)
        if parts.scheme.lower() != "https":
            raise _bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        try:
            port = parts.port
        except ValueError:
            raise _bad_request("bad webhook: Wrong port number specified in the URL") from None
        if port is not None and port not in WEBHOOK_PORTS:
            raise _bad_request(
                "bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443"
            )
        if not parts.hostname:
            raise _bad_request("bad webhook: Failed to resolve host: Name or service not known")
        secret = p.text("secret_token") or None
        if secret is not None:
            if len(secret) > 256:
                raise _bad_request("secret token is too long")
            if not _SECRET_TOKEN.fullmatch(secret):
                raise _bad_request("secret token contains unallowed characters")
        max_connections = min(max(p.integer("max_connections", 40), 1), 100)
        with self._cond:
            self._parse_allowed_updates(p)
            new = _Webhook(
                url, secret, max_connections, has_custom_certificate=p.has("certificate")
            )
            same = self._webhook == new
            self._webhook = new
            if p.flag("drop_pending_updates"):
                self._queue.clear()
            self._cond.notify_all()  # a waiting getUpdates is terminated
        return _Result(True, "Webhook is already set" if same else "Webhook was set")

    def _delete_webhook(self, p: _Params) -> _Result:
        with self._cond:
            had = self._webhook is not None
            self._webhook = None
            self._webhook_error = None
            if p.flag("drop_pending_updates"):
                self._queue.clear()
        return _Result(True, "Webhook was deleted" if had else "Webhook is already deleted")

    def _get_chat(self, p: _Params) -> dict[str, Any]:
        """ChatFullInfo of a chat the bot knows (a private channel it is not in is "chat
        not found", as for Telegram)."""
        state = self._resolve_chat(p)
        private = state.chat.username is None
        if state.chat.type == "channel" and state.bot_status != "administrator" and private:
            raise _bad_request("chat not found")
        return {**state.chat.to_api(), "accent_color_id": 0, "max_reaction_count": 11}

    def _get_chat_member(self, p: _Params) -> dict[str, Any]:
        """The bot's own membership (the only one the fake knows): an administrator of a
        channel may post; anything else is a plain member or gone."""
        state = self._resolve_chat(p)
        if p.integer("user_id") != self.bot_user.id:
            raise _bad_request("member not found")
        user = self.bot_user.to_api()
        if state.bot_status != "administrator":
            status = "left" if state.bot_status in ("left", "kicked") else "member"
            return {"status": status, "user": user}
        rights = dict.fromkeys(
            [
                "can_manage_chat",
                "can_delete_messages",
                "can_manage_video_chats",
                "can_restrict_members",
                "can_promote_members",
                "can_change_info",
                "can_invite_users",
                "can_post_stories",
                "can_edit_stories",
                "can_delete_stories",
            ],
            True,
        )
        if state.chat.type == "channel":
            rights |= {"can_post_messages": True, "can_edit_messages": True}
        return {
            "status": "administrator",
            "user": user,
            "can_be_edited": False,
            "is_anonymous": False,
            **rights,
        }

    def _get_webhook_info(self, p: _Params) -> dict[str, Any]:
        with self._lock:
            hook = self._webhook
            info: dict[str, Any] = {
                "url": hook.url if hook else "",
                "has_custom_certificate": bool(hook and hook.has_custom_certificate),
                "pending_update_count": len(self._queue),
            }
            if hook is not None:
                info["ip_address"] = "203.0.113.10"
                if self._webhook_error:
                    info["last_error_date"], info["last_error_message"] = self._webhook_error
                info["max_connections"] = hook.max_connections
                if self._allowed_given is not None:
                    info["allowed_updates"] = list(self._allowed_given)
            return info

    # --- API: sending ----------------------------------------------------------------------------

    def _resolve_chat(self, p: _Params, name: str = "chat_id") -> _Chat:
        raw = (p.text(name) or "").strip()
        if not raw:
            raise _bad_request("chat_id is empty")
        if raw.startswith("@"):
            wanted = raw[1:].lower()
            for known in self._chats.values():
                if (known.chat.username or "").lower() == wanted:
                    return known
            raise _bad_request("chat not found")
        chat_id = _leading_int(raw)
        state = self._chats.get(chat_id) if chat_id is not None else None
        if state is None:
            raise _bad_request("chat not found")
        return state

    def _check_can_post(self, state: _Chat) -> None:
        if state.blocked:
            raise _forbidden(state.blocked)
        if state.chat.type == "channel" and state.bot_status != "administrator":
            raise _forbidden("bot is not a member of the channel chat")
        if state.chat.is_group and state.bot_status in ("left", "kicked"):
            kind = "supergroup chat" if state.chat.type == "supergroup" else "group chat"
            if state.bot_status == "kicked":
                raise _forbidden(f"bot was kicked from the {kind}")
            raise _forbidden(f"bot is not a member of the {kind}")

    def _formatted(
        self, p: _Params, text_name: str, entities_name: str, *, required: bool
    ) -> tuple[str, str | None, list[dict[str, Any]]]:
        """(plain text, raw text, entities) as Telegram makes them of text + parse_mode."""
        raw = p.text(text_name)
        if raw is None or raw == "":
            if required:
                raise _bad_request("message text is empty")
            return "", raw, []
        entities: list[dict[str, Any]] = []
        parse_mode = (p.text("parse_mode") or "").strip()
        given = p.json(entities_name, "entities")
        text = raw
        if given is not None:
            if not isinstance(given, list) or not all(
                isinstance(e, dict) and {"type", "offset", "length"} <= e.keys() for e in given
            ):
                raise _bad_request("can't parse entities JSON object")
            entities = _sorted_entities([dict(e) for e in given])
        elif parse_mode:
            mode = parse_mode.lower()
            if mode == "html":
                try:
                    text, entities = parse_html(raw, self._users)
                except _HtmlError as exc:
                    raise _bad_request(f"can't parse entities: {exc}") from None
            elif mode not in ("markdown", "markdownv2"):
                raise _bad_request("unsupported parse_mode")
            # Markdown and MarkdownV2 are not parsed by this fake: the text stays as sent.
        text, entities = _trim(text, entities)
        if not text and required:
            raise _bad_request("message text is empty")
        return text, raw, _merge_auto_entities(text, entities)

    def _force_reply(self, p: _Params) -> dict[str, Any] | None:
        """The ForceReply markup of a send, checked as Telegram does; None for others."""
        markup = p.json("reply_markup", "reply keyboard markup")
        if not isinstance(markup, dict) or "force_reply" not in markup:
            return None
        if markup["force_reply"] is not True:
            raise _bad_request("can't parse reply keyboard markup JSON object")
        placeholder = markup.get("input_field_placeholder")
        if placeholder is not None and not (
            isinstance(placeholder, str) and 1 <= len(placeholder) <= MAX_PLACEHOLDER
        ):
            raise _bad_request("can't parse reply keyboard markup JSON object")
        return copy.deepcopy(markup)

    def _reply_markup(self, p: _Params) -> dict[str, Any] | None:
        """The inline keyboard to show with the message (other keyboards are accepted but a
        Message never carries them)."""
        markup = p.json("reply_markup", "reply keyboard markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" not in markup:
            if any(k in markup for k in ("keyboard", "remove_keyboard", "force_reply")):
                return None
            raise _bad_request("can't parse reply keyboard markup JSON object")
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise _bad_request(
                "can't parse reply keyboard markup JSON object: "
                'Field "inline_keyboard" must be of type Array'
            )
        if sum(len(r) for r in rows) > MAX_INLINE_BUTTONS:
            raise _bad_request("reply markup is too long")
        for row in rows:
            for button in row:
                if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                    raise _bad_request(
                        'can\'t parse inline keyboard button: Field "text" must be of type String'
                    )
                actions = [a for a in BUTTON_ACTIONS if a in button]
                if not actions:
                    raise _bad_request(
                        "can't parse inline keyboard button: "
                        "Text buttons are unallowed in the inline keyboard"
                    )
                if "callback_data" in button:
                    data = button["callback_data"]
                    if not isinstance(data, str) or not 1 <= len(data.encode()) <= 64:
                        raise _bad_request("BUTTON_DATA_INVALID")
                if "url" in button and _check_url(str(button["url"])) is None:
                    raise _bad_request(
                        f"inline keyboard button URL '{button['url']}' is invalid: Wrong HTTP URL"
                    )
        return {"inline_keyboard": rows} if rows else None

    def _reply_to(self, p: _Params, state: _Chat) -> dict[str, Any] | None:
        """The message replied to (reply_parameters or reply_to_message_id)."""
        params = p.json("reply_parameters", "reply parameters")
        if params is not None and not isinstance(params, dict):
            raise _bad_request("can't parse reply parameters JSON object")
        message_id: int | None = None
        allow_without = p.flag("allow_sending_without_reply")
        if params:
            message_id = _leading_int(str(params.get("message_id", "")))
            allow_without = bool(params.get("allow_sending_without_reply", allow_without))
        elif p.has("reply_to_message_id"):
            message_id = p.integer("reply_to_message_id")
        if not message_id:
            return None
        replied = state.messages.get(message_id)
        if replied is None:
            if allow_without:
                return None
            raise _bad_request("message to be replied not found")
        snapshot = copy.deepcopy(replied)
        snapshot.pop("reply_to_message", None)
        return snapshot

    def _check_flood(self, method: str, chat_id: int, is_group: bool) -> None:
        now = time.monotonic()
        block = self._blocks.get(chat_id)
        for b in (block, self._block_all):
            if b is not None and now + 0.005 < b.until:
                self._early.append(EarlyCall(method, chat_id, now, b.until))
                raise self._too_many(b.until - now, b.integer)
        for rule in self._flood_rules:
            if rule.chat_id is None or rule.chat_id == chat_id:
                rule.count -= 1
                if rule.count <= 0:
                    self._flood_rules.remove(rule)
                integer = float(rule.seconds).is_integer()
                self._blocks[chat_id] = _Block(now + rule.seconds, integer)
                raise self._too_many(rule.seconds, integer)
        limits = self.limits
        if limits is None:
            return
        bucket = self._buckets.get(chat_id)
        if bucket is None:
            bucket = self._buckets[chat_id] = _Bucket(float(limits.per_chat_burst), now)
        bucket.tokens = min(
            float(limits.per_chat_burst),
            bucket.tokens + (now - bucket.at) * limits.per_chat_per_second,
        )
        bucket.at = now
        group = self._group_sends.setdefault(chat_id, deque())
        while group and group[0] <= now - 60:
            group.popleft()
        while self._all_sends and self._all_sends[0] <= now - 1:
            self._all_sends.popleft()
        wait = 0.0
        if bucket.tokens < 1:
            wait = (1 - bucket.tokens) / limits.per_chat_per_second
        if is_group and len(group) >= limits.group_per_minute:
            wait = max(wait, group[0] + 60 - now)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            self._blocks[chat_id] = _Block(now + seconds, True)
            raise self._too_many(seconds, True)
        if len(self._all_sends) >= limits.overall_per_second:
            seconds = max(1, math.ceil(self._all_sends[0] + 1 - now))
            self._block_all = _Block(now + seconds, True)
            raise self._too_many(seconds, True)
        bucket.tokens -= 1
        group.append(now)
        self._all_sends.append(now)

    @staticmethod
    def _too_many(seconds: float, integer: bool) -> ApiError:
        retry: int | float = (
            max(1, math.ceil(seconds - 1e-9)) if integer else math.ceil(seconds * 1000) / 1000
        )
        return ApiError(429, f"Too Many Requests: retry after {retry}", {"retry_after": retry})

    def _link_preview(self, p: _Params) -> dict[str, Any] | None:
        options = p.json("link_preview_options", "link preview options")
        if options is not None and not isinstance(options, dict):
            raise _bad_request("can't parse link preview options JSON object")
        if options is None and p.flag("disable_web_page_preview"):
            options = {"is_disabled": True}
        return options or None

    def _post(
        self,
        method: str,
        state: _Chat,
        content: dict[str, Any],
        record: dict[str, Any],
        kind: str,
        *,
        flood_checked: bool = False,
    ) -> dict[str, Any]:
        """Post a message of the bot's in the chat (checks done, flood control last)."""
        if not flood_checked:
            self._check_flood(method, state.chat.id, state.chat.is_group)
        msg = self._new_message(state, self.bot_user.to_api(), content, kind)
        if state.chat.type == "channel":  # a channel post is the channel's, not the bot's
            del msg["from"]
            msg["sender_chat"] = state.chat.to_api()
        state.by_bot.add(msg["message_id"])
        self._sent.append(
            SentMessage(
                method=method,
                chat_id=state.chat.id,
                message_id=msg["message_id"],
                kind=kind,
                reply_markup=copy.deepcopy(content.get("reply_markup")),
                reply_to_message_id=(content.get("reply_to_message") or {}).get("message_id"),
                at=time.monotonic(),
                message=copy.deepcopy(msg),
                **record,
            )
        )
        return copy.deepcopy(msg)

    def _send_message(self, p: _Params) -> dict[str, Any]:
        text, raw, entities = self._formatted(p, "text", "entities", required=True)
        markup = self._reply_markup(p)
        preview = self._link_preview(p)
        with self._lock:
            state = self._resolve_chat(p)
            self._check_can_post(state)
            reply = self._reply_to(p, state)
            if len(text) > MAX_TEXT_LENGTH:
                raise _bad_request("message is too long")
            content: dict[str, Any] = {}
            if reply is not None:
                content["reply_to_message"] = reply
            content["text"] = text
            if entities:
                content["entities"] = entities
            if preview is not None:
                content["link_preview_options"] = preview
            if markup is not None:
                content["reply_markup"] = markup
            if p.flag("protect_content"):
                content["has_protected_content"] = True
            return self._post(
                "sendMessage",
                state,
                content,
                {
                    "text": text,
                    "raw_text": raw,
                    "parse_mode": p.text("parse_mode"),
                    "entities": entities,
                    "force_reply": self._force_reply(p),
                },
                "text",
            )

    def _input_file(
        self, p: _Params, name: str, kind: str
    ) -> tuple[bytes, _Upload | None, _File | None]:
        """The file a send names: an upload, an attach://, a file_id or a URL."""
        upload = p.files.get(name)
        value = p.text(name)
        if upload is None and value and value.startswith("attach://"):
            upload = p.files.get(value[len("attach://") :])
        if upload is not None:
            return upload.data, upload, None
        if not value:
            raise _bad_request(f"there is no {kind} in the request")
        with self._lock:
            stored = self._files.get(value)
            if stored is not None:
                if stored.kind != kind:
                    raise _bad_request("type of file mismatch")
                return stored.data, None, stored
            if re.match(r"(?i)https?://", value):
                if value not in self._urls:
                    raise _bad_request("failed to get HTTP URL content")
                data, content_type = self._urls[value]
                name_part = urlsplit(value).path.rsplit("/", 1)[-1] or "file"
                return data, _Upload(name_part, content_type, data), None
        raise _bad_request("wrong file identifier/HTTP URL specified")

    def _caption(self, p: _Params) -> tuple[str | None, str | None, list[dict[str, Any]]]:
        caption, raw, entities = self._formatted(p, "caption", "caption_entities", required=False)
        if len(caption) > MAX_CAPTION_LENGTH:
            raise _bad_request("message caption is too long")
        return (caption or None), raw, entities

    def _send_photo(self, p: _Params) -> dict[str, Any]:
        caption, raw_caption, entities = self._caption(p)
        markup = self._reply_markup(p)
        data, upload, existing = self._input_file(p, "photo", "photo")
        if existing is None:
            found = image_size(data)
            if found is None:
                raise _bad_request("IMAGE_PROCESS_FAILED")
            _, width, height = found
            if width + height > 10000 or max(width, height) > 20 * max(1, min(width, height)):
                raise _bad_request("PHOTO_INVALID_DIMENSIONS")
        with self._lock:
            state = self._resolve_chat(p)
            self._check_can_post(state)
            reply = self._reply_to(p, state)
            self._check_flood("sendPhoto", state.chat.id, state.chat.is_group)
            if existing is not None:
                largest = self._files[existing.sizes[-1]] if existing.sizes else existing
                sizes = [self._photo_size_object(self._files[i]) for i in existing.sizes]
            else:
                sizes = self._store_photo(data, width, height)
                largest = self._files[sizes[-1]["file_id"]]
            content: dict[str, Any] = {}
            if reply is not None:
                content["reply_to_message"] = reply
            content["photo"] = sizes
            if caption:
                content["caption"] = caption
                if entities:
                    content["caption_entities"] = entities
            if markup is not None:
                content["reply_markup"] = markup
            return self._post(
                "sendPhoto",
                state,
                content,
                {
                    "text": None,
                    "raw_text": None,
                    "parse_mode": p.text("parse_mode"),
                    "entities": entities,
                    "caption": caption,
                    "raw_caption": raw_caption,
                    "file_id": largest.file_id,
                    "file_sha256": hashlib.sha256(data).hexdigest(),
                    "file_name": upload.filename if upload else None,
                    "mime_type": "image/jpeg",
                },
                "photo",
                flood_checked=True,
            )

    def _send_document(self, p: _Params) -> dict[str, Any]:
        caption, raw_caption, entities = self._caption(p)
        markup = self._reply_markup(p)
        data, upload, existing = self._input_file(p, "document", "document")
        with self._lock:
            state = self._resolve_chat(p)
            self._check_can_post(state)
            reply = self._reply_to(p, state)
            self._check_flood("sendDocument", state.chat.id, state.chat.is_group)
            if existing is not None:
                stored = existing
            else:
                assert upload is not None
                file_name = upload.filename or "document"
                mime = upload.content_type.split(";")[0].strip().lower()
                if not mime or mime == "application/octet-stream":
                    mime = mimetypes.guess_type(file_name)[0] or "application/octet-stream"
                stored = self._store_file("document", data, file_name=file_name, mime_type=mime)
            content: dict[str, Any] = {}
            if reply is not None:
                content["reply_to_message"] = reply
            content["document"] = self._document_object(stored)
            if caption:
                content["caption"] = caption
                if entities:
                    content["caption_entities"] = entities
            if markup is not None:
                content["reply_markup"] = markup
            return self._post(
                "sendDocument",
                state,
                content,
                {
                    "text": None,
                    "raw_text": None,
                    "parse_mode": p.text("parse_mode"),
                    "entities": entities,
                    "caption": caption,
                    "raw_caption": raw_caption,
                    "file_id": stored.file_id,
                    "file_sha256": hashlib.sha256(data).hexdigest(),
                    "file_name": stored.file_name,
                    "mime_type": stored.mime_type,
                },
                "document",
                flood_checked=True,
            )

    def _send_media_group(self, p: _Params) -> list[dict[str, Any]]:
        """An album: each item its own message with a shared media_group_id. Documents
        group only with documents (and audio with audio); photos with videos."""
        items = p.json("media", "media")
        if items is None:
            raise _bad_request('parameter "media" is required')
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise _bad_request("can't parse media JSON object")
        if not items:
            raise _bad_request("there are no messages to send")
        if len(items) > 10:
            raise _bad_request("too many messages to send as an album")
        kinds = {str(i.get("type")) for i in items}
        if not kinds <= {"photo", "document"}:
            raise _bad_request(f"can't parse InputMedia: type {sorted(kinds)} is not supported")
        if len(kinds) > 1:
            raise _bad_request("document can't be mixed with other media types")
        [kind] = kinds
        parts = []
        for n, item in enumerate(items, 1):
            sub = _Params(
                {
                    k: _json_to_text(item[k]) or ""
                    for k in ("caption", "parse_mode", "caption_entities")
                    if k in item
                },
                {},
            )
            caption, raw_caption, entities = self._caption(sub)
            media = item.get("media")
            if not isinstance(media, str):
                raise _bad_request("can't parse InputMedia: media not found")
            data, upload, existing = self._input_file(_Params({kind: media}, p.files), kind, kind)
            size = image_size(data) if kind == "photo" and existing is None else None
            if kind == "photo" and existing is None and size is None:
                raise _bad_request(
                    f'failed to send message #{n} with the error message "IMAGE_PROCESS_FAILED"'
                )
            parts.append(
                (
                    caption,
                    raw_caption,
                    entities,
                    sub.text("parse_mode"),
                    data,
                    upload,
                    existing,
                    size,
                )
            )
        with self._lock:
            state = self._resolve_chat(p)
            self._check_can_post(state)
            reply = self._reply_to(p, state)
            self._check_flood("sendMediaGroup", state.chat.id, state.chat.is_group)
            group_id = str(next(self._file_counter) * 7919 + 13_000_000_000_000_000)
            messages = []
            for caption, raw_caption, entities, parse_mode, data, upload, existing, size in parts:
                content: dict[str, Any] = {"media_group_id": group_id}
                if reply is not None:
                    content["reply_to_message"] = reply
                if kind == "photo":
                    if existing is not None:
                        largest = self._files[existing.sizes[-1]] if existing.sizes else existing
                        content["photo"] = [
                            self._photo_size_object(self._files[i]) for i in existing.sizes
                        ]
                    else:
                        assert size is not None
                        content["photo"] = self._store_photo(data, size[1], size[2])
                        largest = self._files[content["photo"][-1]["file_id"]]
                    file_name, mime = (upload.filename if upload else None), "image/jpeg"
                else:
                    if existing is not None:
                        largest = existing
                    else:
                        assert upload is not None
                        name = upload.filename or "document"
                        mime = upload.content_type.split(";")[0].strip().lower()
                        if not mime or mime == "application/octet-stream":
                            mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
                        largest = self._store_file("document", data, file_name=name, mime_type=mime)
                    content["document"] = self._document_object(largest)
                    file_name, mime = largest.file_name, largest.mime_type or ""
                if caption:
                    content["caption"] = caption
                    if entities:
                        content["caption_entities"] = entities
                messages.append(
                    self._post(
                        "sendMediaGroup",
                        state,
                        content,
                        {
                            "text": None,
                            "raw_text": None,
                            "parse_mode": parse_mode,
                            "entities": entities,
                            "caption": caption,
                            "raw_caption": raw_caption,
                            "file_id": largest.file_id,
                            "file_sha256": hashlib.sha256(data).hexdigest(),
                            "file_name": file_name,
                            "mime_type": mime,
                        },
                        kind,
                        flood_checked=True,
                    )
                )
            return messages

    def _send_chat_action(self, p: _Params) -> bool:
        action = (p.text("action") or "").strip().lower()
        with self._lock:
            state = self._resolve_chat(p)
            if action not in CHAT_ACTIONS:
                raise _bad_request("wrong parameter action in request")
            self._check_can_post(state)
        return True

    def _get_file(self, p: _Params) -> dict[str, Any]:
        file_id = (p.text("file_id") or "").strip()
        if not file_id:
            raise _bad_request("invalid file_id")
        with self._lock:
            stored = self._files.get(file_id)
            if stored is None:
                raise _bad_request("invalid file_id")
            if len(stored.data) > MAX_DOWNLOAD_BYTES:
                raise _bad_request("file is too big")
            self._paths[stored.file_path] = stored
            return {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "file_size": len(stored.data),
                "file_path": stored.file_path,
            }

    # --- API: callbacks, edits, deletes -------------------------------------------------------

    def _answer_callback_query(self, p: _Params) -> bool:
        query_id = (p.text("callback_query_id") or "").strip()
        text = p.text("text")
        if text is not None and len(text) > MAX_CALLBACK_ANSWER_TEXT:
            raise _bad_request("MESSAGE_TOO_LONG")
        with self._lock:
            pending = self._callbacks.get(query_id)
            if pending is None or pending[1]:
                raise _bad_request(_QUERY_TOO_OLD)
            created, _ = pending
            if time.monotonic() - created > self.callback_answer_timeout:
                raise _bad_request(_QUERY_TOO_OLD)
            self._callbacks[query_id] = (created, True)
            self._answered.append(
                AnsweredCallback(
                    callback_query_id=query_id,
                    text=text,
                    show_alert=p.flag("show_alert"),
                    url=p.text("url"),
                    cache_time=p.integer("cache_time", 0),
                    at=time.monotonic(),
                )
            )
        return True

    def _message_to_edit(self, p: _Params) -> tuple[_Chat, dict[str, Any]]:
        if p.text("inline_message_id"):
            raise _bad_request("MESSAGE_ID_INVALID")  # the fake has no inline messages
        state = self._resolve_chat(p)
        message_id = p.integer("message_id", 0)
        if not message_id:
            raise _bad_request("message identifier is not specified")
        msg = state.messages.get(message_id)
        if msg is None:
            raise _bad_request("message to edit not found")
        if message_id not in state.by_bot:
            raise _bad_request("message can't be edited")
        self._check_can_post(state)
        return state, msg

    def _edited(
        self,
        method: str,
        state: _Chat,
        msg: dict[str, Any],
        changes: dict[str, Any],
        record: dict[str, Any],
    ) -> dict[str, Any]:
        before = {k: msg.get(k) for k in changes}
        if all((changes[k] or None) == (before[k] or None) for k in changes):
            raise _bad_request(_NOT_MODIFIED)
        self._check_flood(method, state.chat.id, state.chat.is_group)
        for key, value in changes.items():
            if value:
                msg[key] = value
            else:
                msg.pop(key, None)
        msg["edit_date"] = int(time.time())
        result = copy.deepcopy(msg)
        self._edits.append(
            Edit(
                method=method,
                chat_id=state.chat.id,
                message_id=msg["message_id"],
                reply_markup=copy.deepcopy(msg.get("reply_markup")),
                at=time.monotonic(),
                message=copy.deepcopy(msg),
                **record,
            )
        )
        return result

    def _edit_message_text(self, p: _Params) -> dict[str, Any]:
        text, raw, entities = self._formatted(p, "text", "entities", required=True)
        markup = self._reply_markup(p)
        preview = self._link_preview(p)
        with self._lock:
            state, msg = self._message_to_edit(p)
            if state.kinds.get(msg["message_id"]) != "text":
                raise _bad_request("there is no text in the message to edit")
            if len(text) > MAX_TEXT_LENGTH:
                raise _bad_request("message is too long")
            changes: dict[str, Any] = {"text": text, "entities": entities, "reply_markup": markup}
            if preview is not None:
                changes["link_preview_options"] = preview
            return self._edited(
                "editMessageText",
                state,
                msg,
                changes,
                {
                    "text": text,
                    "raw_text": raw,
                    "parse_mode": p.text("parse_mode"),
                    "caption": None,
                },
            )

    def _edit_message_caption(self, p: _Params) -> dict[str, Any]:
        caption, _, entities = self._caption(p)
        markup = self._reply_markup(p)
        with self._lock:
            state, msg = self._message_to_edit(p)
            if state.kinds.get(msg["message_id"]) == "text":
                raise _bad_request("there is no caption in the message to edit")
            changes = {"caption": caption, "caption_entities": entities, "reply_markup": markup}
            return self._edited(
                "editMessageCaption",
                state,
                msg,
                changes,
                {
                    "text": None,
                    "raw_text": None,
                    "parse_mode": p.text("parse_mode"),
                    "caption": caption,
                },
            )

    def _edit_message_reply_markup(self, p: _Params) -> dict[str, Any]:
        markup = self._reply_markup(p)
        with self._lock:
            state, msg = self._message_to_edit(p)
            return self._edited(
                "editMessageReplyMarkup",
                state,
                msg,
                {"reply_markup": markup},
                {"text": msg.get("text"), "raw_text": None, "parse_mode": None, "caption": None},
            )

    def _delete_message(self, p: _Params) -> bool:
        with self._lock:
            state = self._resolve_chat(p)
            message_id = p.integer("message_id", 0)
            if not message_id:
                raise _bad_request("message identifier is not specified")
            if message_id not in state.messages:
                raise _bad_request("message to delete not found")
            del state.messages[message_id]
            state.by_bot.discard(message_id)
        return True

    def _set_message_reaction(self, p: _Params) -> bool:
        """A bot's reaction on a message, as Telegram checks it: standard emoji only (a bot
        has no Premium: REACTION_INVALID otherwise), at most one, and only those the chat
        allows. Bots get no update of their own reactions."""
        given = p.json("reaction", "reaction types")
        given = [] if given is None else given
        if not isinstance(given, list) or not all(isinstance(r, dict) for r in given):
            raise _bad_request("can't parse reaction types JSON object")
        emoji: list[str] = []
        for r in given:
            if r.get("type") != "emoji" or r.get("emoji") not in REACTION_EMOJI:
                raise _bad_request("REACTION_INVALID")
            emoji.append(str(r["emoji"]))
        if len(emoji) > 1:
            raise _bad_request("REACTIONS_TOO_MANY")
        with self._lock:
            state = self._resolve_chat(p)
            message_id = p.integer("message_id", 0)
            if message_id not in state.messages:
                raise _bad_request("message to react not found")
            self._check_can_post(state)
            allowed = state.available_reactions
            if allowed is not None and any(e not in allowed for e in emoji):
                raise _bad_request("REACTION_INVALID")
            per_user = self._reactions.setdefault((state.chat.id, message_id), {})
            if emoji:
                per_user[self.bot_user.id] = emoji
            else:
                per_user.pop(self.bot_user.id, None)
        return True

    # --- API: commands ----------------------------------------------------------------------

    def _scope_key(self, p: _Params) -> str:
        scope = p.json("scope", "bot command scope")
        if scope is None:
            return "default"
        if not isinstance(scope, dict) or not isinstance(scope.get("type"), str):
            raise _bad_request("can't parse bot command scope JSON object")
        kind = scope["type"]
        if kind in ("default", "all_private_chats", "all_group_chats", "all_chat_administrators"):
            return str(kind)
        if kind not in ("chat", "chat_administrators", "chat_member"):
            raise _bad_request("unsupported bot command scope type specified")
        raw_chat = scope.get("chat_id")
        chat = self._resolve_chat(_Params({"chat_id": str(raw_chat or "")}, {}))
        if kind == "chat_member":
            user_id = _leading_int(str(scope.get("user_id", "")))
            if not user_id:
                raise _bad_request("user not found")
            return f"chat_member:{chat.chat.id}:{user_id}"
        return f"{kind}:{chat.chat.id}"

    def _language(self, p: _Params) -> str:
        code = (p.text("language_code") or "").strip()
        if code and not _LANGUAGE_CODE.fullmatch(code):
            raise _bad_request("LANG_CODE_INVALID")
        return code

    def _set_my_commands(self, p: _Params) -> bool:
        commands = p.json("commands", "commands")
        if commands is None:
            raise _bad_request('parameter "commands" is required')
        if not isinstance(commands, list) or not all(isinstance(c, dict) for c in commands):
            raise _bad_request("can't parse commands JSON object")
        if len(commands) > MAX_COMMANDS:
            raise _bad_request("BOT_COMMANDS_TOO_MUCH")
        cleaned = []
        for c in commands:
            name, description = c.get("command"), c.get("description")
            if not isinstance(name, str) or not _COMMAND_NAME.fullmatch(name):
                raise _bad_request("BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description) <= 256:
                raise _bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
            cleaned.append({"command": name, "description": description})
        with self._lock:
            key = (self._scope_key(p), self._language(p))
            if cleaned:
                self._commands[key] = cleaned
            else:
                self._commands.pop(key, None)
        return True

    def _set_description(self, p: _Params, name: str, limit: int, store: dict[str, str]) -> bool:
        text = p.text(name) or ""
        if len(text) > limit:
            raise _bad_request(f"{name.upper()}_INVALID")
        with self._lock:
            code = self._language(p)
            if text:
                store[code] = text
            else:  # "Pass an empty string to remove the dedicated description"
                store.pop(code, None)
        return True

    def _set_my_description(self, p: _Params) -> bool:
        return self._set_description(p, "description", MAX_DESCRIPTION, self._descriptions)

    def _get_my_description(self, p: _Params) -> dict[str, str]:
        with self._lock:
            code = self._language(p)
            return {"description": self._descriptions.get(code, self._descriptions.get("", ""))}

    def _set_my_short_description(self, p: _Params) -> bool:
        return self._set_description(
            p, "short_description", MAX_SHORT_DESCRIPTION, self._short_descriptions
        )

    def _get_my_short_description(self, p: _Params) -> dict[str, str]:
        with self._lock:
            code = self._language(p)
            found = self._short_descriptions.get(code, self._short_descriptions.get("", ""))
            return {"short_description": found}

    def _get_my_commands(self, p: _Params) -> list[dict[str, str]]:
        with self._lock:
            key = (self._scope_key(p), self._language(p))
            return copy.deepcopy(self._commands.get(key, []))

    def _delete_my_commands(self, p: _Params) -> bool:
        with self._lock:
            self._commands.pop((self._scope_key(p), self._language(p)), None)
        return True
