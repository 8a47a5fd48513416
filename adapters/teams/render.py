"""Neutral messages as Teams activities (pure): plain text as Teams markdown; anything
with a title, fields or buttons (approval cards, posts, digests, polls, announcements)
as an Adaptive Card whose buttons are Action.Execute, carrying "action|value" as the
press that Slack's buttons carry. Authors of bridged posts who have a Teams account are
named with a real mention (<at>Name</at> and its mention entity)."""

from __future__ import annotations

import re
from typing import Any

from bot.markup import Span, parse, to_plain
from bot.message import Button, Message

CARD = "application/vnd.microsoft.card.adaptive"
CARD_VERSION = "1.5"
CARD_KEY = "pw"  # as inbound.CARD_KEY
VERB = "pinwall"
MAX_TEXT = 20_000  # Teams takes about 28 KB per message, card and all
MAX_BUTTON_VALUE = 1000
_MARKDOWN = re.compile(r"([\\*_\[\]`])")
_TEAMS_USER = re.compile(r"(?:29|8):[\w.:@-]{1,200}")
_STYLE = {"primary": "positive", "danger": "destructive"}


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _escape(text: str) -> str:
    return _MARKDOWN.sub(r"\\\1", text)


def _span(span: Span) -> str:
    text = _escape(span.text)
    if span.url:
        text = f"[{text}]({span.url.replace(')', '%29')})"
    if span.italic:
        text = f"_{text}_"
    if span.bold:
        text = f"**{text}**"
    return text


def markdown(text: str) -> str:
    """Pinwall's markup subset as the markdown Teams renders in messages and cards."""
    lines = []
    for block in parse(text):
        body = "".join(_span(s) for s in block.spans)
        lines.append({"p": "", "li": "- ", "quote": "> "}[block.kind] + body)
    return "\n\n".join(line for line in lines if line) if "\n" in text else "".join(lines)


def mentions(text: str, people: object) -> tuple[str, list[dict[str, Any]]]:
    """The first mention of each person in markdown `text` (their handle, with or without
    "@") as Teams' real mention where their Teams account is known, else their name."""
    entities: list[dict[str, Any]] = []
    if not isinstance(people, dict):
        return text, entities
    for handle, person in people.items():
        if not isinstance(handle, str) or not handle or not isinstance(person, dict):
            continue
        accounts = person.get("accounts")
        user = accounts.get("teams") if isinstance(accounts, dict) else None
        name = " ".join(str(person.get("name") or handle).split())[:80]
        word = re.compile(rf"(?<![\w.@/:&#-])@?{re.escape(_escape(handle))}(?![\w-])")
        found = word.search(text)
        if found is None:
            continue
        if isinstance(user, str) and _TEAMS_USER.fullmatch(user):
            shown = f"<at>{_escape(name)}</at>"
            entities.append(
                {"type": "mention", "text": shown, "mentioned": {"id": user, "name": name}}
            )
        else:
            shown = _escape(name)
        text = text[: found.start()] + shown + text[found.end() :]
    return text, entities


def press_data(button: Button) -> dict[str, str]:
    return {CARD_KEY: cut(f"{button.action}|{button.value}", MAX_BUTTON_VALUE)}


def _action(button: Button) -> dict[str, Any]:
    action: dict[str, Any] = {
        "type": "Action.Execute",
        "verb": VERB,
        "title": cut(button.label, 80) or "…",
        "data": press_data(button),
    }
    if button.style in _STYLE:
        action["style"] = _STYLE[button.style]
    return action


def is_card(message: Message) -> bool:
    return bool(message.title or message.fields or message.buttons)


def _file_lines(message: Message, links: dict[str, str]) -> str:
    """Each file as "📎 name", a link to Pinwall's signed download where there is one."""
    lines = []
    for f in message.files:
        url = links.get(f.blob_id)
        lines.append(f"📎 [{_escape(f.name)}]({url})" if url else f"📎 {_escape(f.name)}")
    return "\n\n".join(lines)


_POST_LINE = re.compile(r"^- #(\d+)\b")


def _digest(message: Message) -> tuple[list[dict[str, Any]], list[Button]]:
    """A digest's lines, each post ("- #12 …") with its Open button beside it (a card's
    own actions are few in Teams); the buttons no line took are returned."""
    opens = {b.value: b for b in message.buttons if b.action == "item.open"}
    out: list[dict[str, Any]] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            out.append({"type": "TextBlock", "text": markdown("\n".join(pending)), "wrap": True})
            pending.clear()

    for line in message.text.split("\n"):
        found = _POST_LINE.match(line)
        button = opens.pop(found.group(1), None) if found else None
        if button is None:
            pending.append(line)
            continue
        flush()
        out.append(
            {
                "type": "ColumnSet",
                "columns": [
                    {
                        "type": "Column",
                        "width": "stretch",
                        "items": [{"type": "TextBlock", "text": markdown(line), "wrap": True}],
                    },
                    {
                        "type": "Column",
                        "width": "auto",
                        "items": [{"type": "ActionSet", "actions": [_action(button)]}],
                    },
                ],
            }
        )
    flush()
    left = [b for b in message.buttons if b.action != "item.open" or b.value in opens]
    return out, left


def card(
    message: Message, links: dict[str, str] | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The Adaptive Card of a message, and the mention entities it needs."""
    people = message.meta.get("mentions")
    body: list[dict[str, Any]] = []
    entities: list[dict[str, Any]] = []
    if message.title:
        title, entities = mentions(markdown(message.title), people)
        body.append(
            {"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": True}
        )
        people = None  # named once, in the title
    buttons = list(message.buttons)
    if message.text and "digest" in message.meta:
        lines, buttons = _digest(message)
        body += lines
    elif message.text:
        text, more = mentions(markdown(message.text), people)
        entities += more
        body.append({"type": "TextBlock", "text": cut(text, MAX_TEXT), "wrap": True})
    if message.fields:
        facts = [{"title": markdown(f.label), "value": markdown(f.value)} for f in message.fields]
        body.append({"type": "FactSet", "facts": facts})
    if message.files:
        names = _file_lines(message, links or {})
        body.append({"type": "TextBlock", "text": names, "wrap": True, "isSubtle": True})
    actions = [_action(b) for b in buttons]
    url = message.meta.get("url")
    if "item" in message.meta and isinstance(url, str) and re.match(r"https?://", url, re.I):
        actions.insert(0, {"type": "Action.OpenUrl", "title": "↗", "url": url})
    content: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": CARD_VERSION,
        "body": body or [{"type": "TextBlock", "text": "…"}],
        "msteams": {"width": "Full"},
    }
    if actions:
        content["actions"] = actions
    if entities:
        content["msteams"]["entities"] = entities
    return content, entities


def activity(message: Message, links: dict[str, str] | None = None) -> dict[str, Any]:
    """The message activity (as the Bot Connector takes it) of a neutral message; `links`:
    signed download URLs of its files, by blob id (files are shown as links: a bot can
    upload to a personal chat only after a consent card, to a channel only via Graph)."""
    if is_card(message):
        content, _entities = card(message, links)
        return {
            "type": "message",
            "summary": cut(summary(message), 200),
            "attachments": [{"contentType": CARD, "content": content}],
        }
    text, entities = mentions(markdown(message.text), message.meta.get("mentions"))
    if message.files:
        text += "\n\n" + _file_lines(message, links or {})
    out: dict[str, Any] = {"type": "message", "textFormat": "markdown", "text": cut(text, MAX_TEXT)}
    if entities:
        out["entities"] = entities
    return out


def summary(message: Message) -> str:
    first = message.title or message.text or ""
    return to_plain(first).split("\n")[0] or "Pinwall"
