"""Outbound translation: the neutral message as Telegram HTML and inline keyboards.

Pure functions, no I/O. Telegram counts a message's length after its HTML is parsed
(the visible text, in UTF-16 code units): at most 4,096 for a text, 1,024 for a
caption. Longer text is split between lines where it can be, else between words,
else anywhere, and every piece is valid HTML on its own (formatting is closed and
reopened around a cut).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass, replace

from bot.markup import Block, Span, html_span, parse
from bot.message import Button, Message

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64  # bytes
_MAC_CHARS = 11  # 66 bits of HMAC-SHA256, base64url
_ROW_CHARS = 32  # labels per keyboard row, roughly what fits on a phone
_ROW_BUTTONS = 3


def visible_length(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


# --- text -------------------------------------------------------------------------


def _source(message: Message) -> str:
    """The whole message in markup: title, text, fields."""
    parts: list[str] = []
    if message.title:
        parts.append("\n".join(f"**{line}**" if line else "" for line in message.title.split("\n")))
    if message.text:
        parts.append(message.text)
    for f in message.fields:
        parts.append(f"**{f.label}:** {f.value}")
    return "\n".join(parts)


@dataclass
class _Chunk:
    lines: list[str]
    length: int = 0

    def html(self) -> str:
        return "\n".join(self.lines)


def _block_html(kind: str, spans: tuple[Span, ...]) -> str:
    body = "".join(html_span(s) for s in spans)
    if kind == "li":
        return "• " + body
    if kind == "quote":
        return f"<blockquote>{body}</blockquote>"
    return body


def _block_length(kind: str, spans: tuple[Span, ...]) -> int:
    return (2 if kind == "li" else 0) + sum(visible_length(s.text) for s in spans)


_WORD = re.compile(r"\S+\s*|\s+")


def _cut(text: str, limit: int) -> tuple[str, str]:
    """The longest head of `text` within `limit` visible units, cut after a word where
    possible, and the rest."""
    if visible_length(text) <= limit:
        return text, ""
    head, used = "", 0
    for m in _WORD.finditer(text):
        n = visible_length(m.group())
        if used + n > limit:
            break
        head, used = head + m.group(), used + n
    if not head:  # one word longer than the limit: cut inside it
        for ch in text:
            n = visible_length(ch)
            if used + n > limit:
                break
            head, used = head + ch, used + n
    return head, text[len(head) :]


def _split_block(block: Block, limit: int) -> list[tuple[str, int]]:
    """One block too long for a message, as pieces of valid HTML within `limit`."""
    pieces: list[tuple[str, int]] = []
    current: list[Span] = []
    room = limit - (2 if block.kind == "li" else 0)
    left = room
    queue = list(block.spans)
    while queue:
        span = queue.pop(0)
        head, rest = _cut(span.text, left)
        if head:
            current.append(replace(span, text=head))
            left -= visible_length(head)
        if rest:
            queue.insert(0, replace(span, text=rest))
            if current:
                pieces.append((_block_html(block.kind, tuple(current)), room - left))
            current, left = [], room
    if current:
        pieces.append((_block_html(block.kind, tuple(current)), room - left))
    return pieces


def html_chunks(source: str, limit: int = MAX_TEXT) -> list[str]:
    """Markup as Telegram HTML, in as few pieces within `limit` as the lines allow."""
    chunks: list[_Chunk] = [_Chunk([])]
    for block in parse(source):
        length = _block_length(block.kind, block.spans)
        pieces = (
            [(_block_html(block.kind, block.spans), length)]
            if length <= limit
            else _split_block(block, limit)
        )
        for html, n in pieces:
            chunk = chunks[-1]
            needed = n + (1 if chunk.lines else 0)  # the line break before it
            if chunk.lines and chunk.length + needed > limit:
                chunk = _Chunk([])
                chunks.append(chunk)
                needed = n
            chunk.lines.append(html)
            chunk.length += needed
    out = [c.html().strip("\n") for c in chunks]
    return [c for c in out if c.strip()] or []


def message_html(message: Message, limit: int = MAX_TEXT) -> list[str]:
    return html_chunks(_source(message), limit)


# --- buttons ----------------------------------------------------------------------


class CallbackCodec:
    """Compact, signed callback data: `action|value|mac`, at most 64 bytes.

    The MAC covers the chat the keyboard was sent to, so that data taken from one chat
    cannot be replayed in another (someone else's share question, say); who may press
    what is then the core's decision, as on every platform.
    """

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, chat_id: int | str, action: str, value: str) -> str:
        digest = hmac.new(
            self._key, f"tg-button\x00{chat_id}\x00{action}\x00{value}".encode(), hashlib.sha256
        ).digest()
        return base64.urlsafe_b64encode(digest).decode()[:_MAC_CHARS]

    def encode(self, chat_id: int | str, button: Button) -> str | None:
        """The callback data for a button, or None when it cannot fit in 64 bytes."""
        if "|" in button.action:
            return None
        data = f"{button.action}|{button.value}|{self._mac(chat_id, button.action, button.value)}"
        return data if len(data.encode()) <= MAX_CALLBACK_DATA else None

    def decode(self, chat_id: int | str, data: str) -> tuple[str, str] | None:
        """(action, value) of genuine data pressed in this chat, else None."""
        action, sep, rest = data.partition("|")
        value, sep2, mac = rest.rpartition("|")
        if not sep or not sep2 or not action:
            return None
        if not hmac.compare_digest(mac, self._mac(chat_id, action, value)):
            return None
        return action, value


def keyboard_rows(buttons: tuple[Button, ...]) -> list[list[Button]]:
    """Buttons in rows: short labels side by side, long ones on their own row."""
    rows: list[list[Button]] = []
    width = 0
    for button in buttons:
        n = visible_length(button.label)
        if rows and len(rows[-1]) < _ROW_BUTTONS and width + n <= _ROW_CHARS:
            rows[-1].append(button)
            width += n
        else:
            rows.append([button])
            width = n
    return rows
