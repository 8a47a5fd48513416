"""Outbound translation: the neutral message as Matrix event content. No I/O here.

A message is an `m.room.message` with a plain `body` and an `org.matrix.custom.html`
`formatted_body` (every text from people HTML-escaped); the bot's own chatter is an
`m.notice`, posts are `m.text`. Matrix has no buttons, and rooms stay quiet
(CONVERSATION.md rule 6):
- an ordinary post gets no choices and no reactions of the bot: people react to it
  with any emoji (counted as they are) and comment by answering in its thread;
- elsewhere each button is a numbered choice in the text (answer with the number);
  only an approval card's Approve / Reject (✅ / ❌) and a button whose label is one
  emoji (a poll's option) get a reaction key, which the bot puts under the message
  and the choice line explains once ("✅ Approve   ❌ Reject   [3] Request changes").
  No keycap emoji (1️⃣).
An outcome shown in place of a message is an edit (`m.replace`); a message in a thread
(a comment under its post) is in that thread (`m.thread`, with a reply fallback for
clients without threads). An event stays under Matrix's 64 KiB: the text is cut with
an ellipsis where it would not fit.
"""

from __future__ import annotations

import html
import json
import unicodedata
from dataclasses import dataclass
from typing import Any

from bot.markup import Block, html_span, parse, plain_span
from bot.message import FileRef, Message

HTML_FORMAT = "org.matrix.custom.html"
# Keycaps are never put under a message any more; a person who answers with one still
# presses the button of that number (inbound.number_of).
KEYCAPS = ("1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣", "6️⃣", "7️⃣", "8️⃣", "9️⃣", "🔟")
# The reaction that presses a button by its action, where the label is a word.
ACTION_KEYS = {"proposal.approve": "✅", "proposal.reject": "❌"}
# Matrix events may be 64 KiB in all (JSON, with the server's own fields): the content
# the bot sends stays below MAX_EVENT bytes, the plain text below MAX_TEXT characters.
MAX_TEXT = 24_000
MAX_EVENT = 60_000
_ELLIPSIS = "…"


@dataclass(frozen=True, slots=True)
class Choice:
    """A button as Matrix shows it: its number, and the reaction that presses it."""

    number: int
    key: str | None  # the reaction key; None beyond ten buttons (answer with the number)
    label: str
    action: str
    value: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "key": self.key,
            "label": self.label,
            "action": self.action,
            "value": self.value,
        }


def is_single_emoji(text: str) -> bool:
    """One emoji (with its variation selectors and joiners), not a word or a digit."""
    text = text.strip()
    if not text or len(text) > 16 or text in KEYCAPS:
        return False
    if any(ch.isalnum() and ord(ch) < 0x2000 for ch in text):
        return False
    return all(
        unicodedata.category(ch) in ("So", "Sk", "Mn", "Cf", "Me") or ch in "\u200d\ufe0f"
        for ch in text
    )


def choices(message: Message) -> list[Choice]:
    """Each button's number and reaction key: none for an ordinary post (its buttons,
    Comment and 👍, are a thread answer and a reaction on Matrix); else ✅ / ❌ for an
    approval card's Approve / Reject, a label that is one emoji (used once) as itself,
    and no key for the rest (answered with the number)."""
    if "item" in message.meta:
        return []
    buttons = message.buttons
    labels = [b.label.strip() for b in buttons]
    keys = [ACTION_KEYS.get(b.action) for b in buttons]
    out: list[Choice] = []
    for i, button in enumerate(buttons):
        label = labels[i]
        key = keys[i]
        if key is None and is_single_emoji(label) and labels.count(label) == 1:
            key = label
        if key is not None and (keys.count(key) + labels.count(key) > 1):
            key = None  # two buttons would share the key: answer by number only
        out.append(Choice(i + 1, key, button.label, button.action, button.value))
    return out


def choice_for_key(buttons: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    """The stored choice a reaction key presses."""
    wanted = key.strip()
    for choice in buttons:
        if choice.get("key") and choice["key"] == wanted:
            return choice
    return None


def choice_for_number(buttons: list[dict[str, Any]], number: int) -> dict[str, Any] | None:
    for choice in buttons:
        if choice.get("number") == number:
            return choice
    return None


# --- text ------------------------------------------------------------------------------


def _source(message: Message) -> str:
    """Title, text and fields of a message, in markup."""
    parts: list[str] = []
    if message.title:
        parts.append("\n".join(f"**{line}**" if line else "" for line in message.title.split("\n")))
    if message.text:
        parts.append(message.text)
    for f in message.fields:
        parts.append(f"**{f.label}:** {f.value}")
    return "\n".join(parts)


def _plain_blocks(blocks: list[Block]) -> str:
    lines = []
    for block in blocks:
        body = "".join(plain_span(s) for s in block.spans)
        lines.append({"p": "", "li": "• ", "quote": "> "}[block.kind] + body)
    return "\n".join(lines)


def _html_blocks(blocks: list[Block]) -> str:
    """Blocks as Matrix HTML: lines joined by <br>, list items in one <ul>, quotes as
    <blockquote> (Matrix clients collapse plain newlines in HTML)."""
    out: list[str] = []
    items: list[str] = []
    pending_break = False

    def flush_list() -> None:
        nonlocal pending_break
        if items:
            out.append("<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>")
            items.clear()
            pending_break = False

    for block in blocks:
        body = "".join(html_span(s) for s in block.spans)
        if block.kind == "li":
            items.append(body)
            continue
        flush_list()
        if block.kind == "quote":
            out.append(f"<blockquote>{body}</blockquote>")
            pending_break = False
            continue
        if pending_break:
            out.append("<br>")
        out.append(body)
        pending_break = True
    flush_list()
    return "".join(out)


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + _ELLIPSIS


def _choice_line(items: list[Choice]) -> tuple[str, str]:
    """The numbered choices under a message: plain and HTML."""
    plain, rich = [], []
    for c in items:
        mark = c.key if c.key is not None else f"[{c.number}]"
        if c.key is not None and c.key == c.label.strip():
            plain.append(mark)
            rich.append(html.escape(mark, quote=False))
        else:
            plain.append(f"{mark} {c.label}")
            rich.append(f"{html.escape(mark, quote=False)} {html.escape(c.label, quote=False)}")
    return "   ".join(plain), "&nbsp;&nbsp; ".join(rich)


def thread_relation(root: str) -> dict[str, Any]:
    """In the thread under `root`, with a reply to it for clients without threads."""
    return {
        "rel_type": "m.thread",
        "event_id": root,
        "is_falling_back": True,
        "m.in_reply_to": {"event_id": root},
    }


def _size(content: dict[str, Any]) -> int:
    return len(json.dumps(content, ensure_ascii=False).encode())


def _fit(content: dict[str, Any]) -> dict[str, Any]:
    """The content cut until it is below MAX_EVENT bytes: first the HTML goes (the plain
    text, escaped, stands in for it), then the text is shortened with an ellipsis."""
    if _size(content) <= MAX_EVENT:
        return content
    body = str(content["body"])
    content["formatted_body"] = html.escape(body, quote=False).replace("\n", "<br>")
    while _size(content) > MAX_EVENT and len(body) > 1:
        over = _size(content) - MAX_EVENT
        # Bytes to characters: at most four bytes (six escaped) a character.
        body = _truncate(body, max(1, len(body) - max(over // 6, 64)))
        content["body"] = body
        content["formatted_body"] = html.escape(body, quote=False).replace("\n", "<br>")
    return content


def text_content(message: Message, items: list[Choice] | None = None) -> dict[str, Any] | None:
    """The text part of a message as `m.room.message` content; None when it has none
    (a message of files only). Posts are `m.text`, the bot's own answers `m.notice`."""
    items = choices(message) if items is None else items
    source = _source(message)
    if not source.strip() and not items:
        return None
    blocks = parse(source) if source.strip() else []
    body = _plain_blocks(blocks)
    formatted = _html_blocks(blocks)
    if items:
        plain_line, html_line = _choice_line(items)
        body = f"{body}\n{plain_line}" if body else plain_line
        formatted = f"{formatted}<br>{html_line}" if formatted else html_line
    body = _truncate(body, MAX_TEXT)
    content: dict[str, Any] = {
        # People's words (a post, a comment relayed) are m.text; the bot's own, m.notice.
        "msgtype": "m.text" if "item" in message.meta or "comment" in message.meta else "m.notice",
        "body": body,
        "format": HTML_FORMAT,
        "formatted_body": formatted
        if len(formatted) <= 2 * MAX_TEXT
        else html.escape(body, quote=False).replace("\n", "<br>"),
    }
    if message.thread:
        content["m.relates_to"] = thread_relation(message.thread)
    return _fit(content)


def file_content(ref: FileRef, uri: str, size: int | None, mime_type: str | None) -> dict[str, Any]:
    """A stored file as `m.image` (pictures) or `m.file`, pointing at its mxc:// URI."""
    mime = mime_type or ref.mime_type or "application/octet-stream"
    info: dict[str, Any] = {"mimetype": mime}
    if size is not None:
        info["size"] = size
    image = ref.image or mime.startswith("image/")
    return {
        "msgtype": "m.image" if image else "m.file",
        "body": ref.name,
        "filename": ref.name,
        "url": uri,
        "info": info,
    }


def edit_content(new: dict[str, Any], original_event_id: str) -> dict[str, Any]:
    """An edit (`m.replace`) that shows `new` in place of the original event. The edit
    carries the text twice (its fallback and m.new_content): it is cut until both fit."""
    replacement = {k: v for k, v in new.items() if k != "m.relates_to"}
    body = str(replacement.get("body", ""))
    while True:
        edit = {
            "msgtype": replacement.get("msgtype", "m.notice"),
            "body": "* " + str(replacement.get("body", "")),
            "format": HTML_FORMAT,
            "formatted_body": "* "
            + str(replacement.get("formatted_body", html.escape(replacement.get("body", "")))),
            "m.new_content": replacement,
            "m.relates_to": {"rel_type": "m.replace", "event_id": original_event_id},
        }
        if _size(edit) <= MAX_EVENT or len(body) <= 1:
            return edit
        body = _truncate(body, len(body) * 3 // 4)
        replacement = {
            **replacement,
            "body": body,
            "formatted_body": html.escape(body, quote=False).replace("\n", "<br>"),
        }


def reaction_content(event_id: str, key: str) -> dict[str, Any]:
    return {"m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": key}}
