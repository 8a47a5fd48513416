"""Outbound translation: neutral messages and homes as Block Kit. Pure functions.

Slack's limits (https://api.slack.com/reference/block-kit): at most 50 blocks in a
message and 100 in a view; a section's text 3,000 characters; a field 2,000 and ten
fields a section; a button's label 75 and its value 2,000; 25 elements in an actions
block. What does not fit is cut with an ellipsis, never refused, and every message
carries a plain-text `text` for notifications and clients without blocks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

from bot.authors import author_label
from bot.home import Home, HomeProposal
from bot.i18n import Translator
from bot.ids import show_id
from bot.markup import Span, parse, to_plain
from bot.message import Button, Message

MAX_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_SECTION = 3000
MAX_FIELD = 2000
MAX_FIELDS = 10
MAX_BUTTON_LABEL = 75
MAX_BUTTON_VALUE = 2000
MAX_ACTIONS = 25
MAX_FALLBACK = 3000
ACTION_PREFIX = "pw:"
# Reject / Request changes by button: Slack asks for the reason in a modal at once.
REASON_ACTIONS = {"proposal.reject": "reject", "proposal.changes": "changes"}
REASON_CALLBACK = "pw:reason"
REASON_BLOCK, REASON_INPUT = "reason", "reason_input"
MAX_MODAL_TITLE = 24  # a modal's title, submit and close labels
MAX_INPUT_LABEL = 2000
MAX_PLACEHOLDER = 150
MAX_REASON = 2000  # what the core keeps of a reason
MAX_METADATA = 3000
_SAFE_SCHEME = re.compile(r"(?:https?|mailto):", re.IGNORECASE)

Block = dict[str, Any]


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def escape(text: str) -> str:
    """Slack's three control characters, as its docs ask."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _span(span: Span) -> str:
    text = escape(span.text)
    if span.url and _SAFE_SCHEME.match(span.url):
        url = span.url.replace("|", "%7C").replace(">", "%3E")
        text = f"<{url}|{text.replace('|', '¦')}>" if span.text != span.url else f"<{url}>"
    elif span.url:
        text = escape(f"{span.text} ({span.url})")
    stripped = text.strip()
    if not stripped:
        return text
    # Emphasis markers must touch the words: keep outer spaces outside them.
    lead, trail = text[: len(text) - len(text.lstrip())], text[len(text.rstrip()) :]
    if span.italic:
        stripped = f"_{stripped}_"
    if span.bold:
        stripped = f"*{stripped}*"
    return lead + stripped + trail


def mrkdwn(source: str) -> str:
    """The markup subset as Slack mrkdwn."""
    lines = []
    for block in parse(source):
        body = "".join(_span(s) for s in block.spans)
        prefix = {"p": "", "li": "• ", "quote": "> "}[block.kind]
        lines.append(prefix + body)
    return "\n".join(lines)


def _sections(text: str) -> list[Block]:
    """mrkdwn text as sections within the length limit, split between lines."""
    out: list[Block] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > MAX_SECTION:  # one enormous line: split it hard
            if current:
                out.append(_section(current))
                current = ""
            out.append(_section(line[:MAX_SECTION]))
            line = line[MAX_SECTION:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > MAX_SECTION:
            out.append(_section(current))
            current = line
        else:
            current = candidate
    if current.strip():
        out.append(_section(current))
    return out


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text or " "}}


def button_value(button: Button) -> str:
    return cut(f"{button.action}|{button.value}", MAX_BUTTON_VALUE)


def parse_button_value(value: str) -> tuple[str, str] | None:
    action, sep, rest = value.partition("|")
    return (action, rest) if sep and action else None


def _buttons(buttons: Iterable[Button], start: int = 0) -> list[Block]:
    blocks: list[Block] = []
    elements: list[dict[str, Any]] = []
    for i, b in enumerate(buttons, start):
        element: dict[str, Any] = {
            "type": "button",
            "action_id": f"{ACTION_PREFIX}{i}",
            "text": {"type": "plain_text", "text": cut(b.label, MAX_BUTTON_LABEL), "emoji": True},
            "value": button_value(b),
        }
        if b.style != "default":
            element["style"] = b.style
        elements.append(element)
        if len(elements) == MAX_ACTIONS:
            blocks.append({"type": "actions", "elements": elements})
            elements = []
    if elements:
        blocks.append({"type": "actions", "elements": elements})
    return blocks


def blocks(message: Message) -> list[Block]:
    out: list[Block] = []
    if message.title:
        out += _sections(
            "\n".join(f"*{line}*" if line else "" for line in mrkdwn(message.title).split("\n"))
        )
    if message.text:
        out += _sections(mrkdwn(message.text))
    fields = [
        {"type": "mrkdwn", "text": cut(f"*{mrkdwn(f.label)}*\n{mrkdwn(f.value)}", MAX_FIELD)}
        for f in message.fields
    ]
    for i in range(0, len(fields), MAX_FIELDS):
        out.append({"type": "section", "fields": fields[i : i + MAX_FIELDS]})
    actions = _buttons(message.buttons)
    room = MAX_BLOCKS - len(actions)
    if len(out) > room:
        out = [*out[: room - 1], {"type": "context", "elements": [{"type": "mrkdwn", "text": "…"}]}]
    return out + actions


def fallback(message: Message) -> str:
    """The plain text Slack shows in notifications and where blocks cannot show."""
    parts = [to_plain(message.title)] if message.title else []
    if message.text:
        parts.append(to_plain(message.text))
    return cut(escape("\n".join(parts)) or "…", MAX_FALLBACK)


# --- App Home -----------------------------------------------------------------------

MODES = ("instant", "daily", "weekly", "mute")


def home_view(home: Home, t: Translator) -> dict[str, Any]:
    """The Home tab: the person's groups with notify buttons, then the newest posts."""
    view: list[Block] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": cut(to_plain(t("home.title")), 150)},
        },
        _section(mrkdwn(t("home.hello", handle=home.handle))),
    ]
    if home.decides:  # what waits for a decision first: it is what a gatekeeper is here for
        view += _home_proposals(home, t)
    view += [{"type": "divider"}, _section(f"*{mrkdwn(t('home.groups'))}*")]
    if not home.groups:
        view.append(_section(mrkdwn(t("home.no_groups"))))
    for g in home.groups:
        mode_name = mrkdwn(t(f"notify.mode.{g.mode}"))
        view.append(_section(f"*{escape(g.name)}* ({escape(g.slug)}) · {mode_name}"))
        buttons = [
            Button(
                label=to_plain(t(f"notify.mode.{mode}")),
                action="notify.set",
                value=f"{g.slug}:{mode}",
                style="primary" if mode == g.mode else "default",
            )
            for mode in MODES
        ]
        view += _buttons(buttons, start=len(view) * 10)
        if len(view) > MAX_VIEW_BLOCKS - 20:
            view.append(_section("…"))
            break
    view += [{"type": "divider"}, _section(f"*{mrkdwn(t('home.posts'))}*")]
    if not home.posts:
        view.append(_section(mrkdwn(t("home.no_posts"))))
    for p in home.posts:
        when = t.datetime(p.dated_at, home.timezone)
        if p.author:
            author = f"@{p.author}"
        else:
            author = author_label(t, None) if p.former_member else "feed"
        head = mrkdwn(t("home.post", item=p.item, group=p.group, author=author, when=when))
        body = escape(cut(p.text.strip().split("\n")[0], 300)) if p.text.strip() else ""
        link = f"<{p.url}|{escape(cut(p.label or p.url, 200))}>" if p.url else ""
        text = "\n".join(x for x in (head, body, link) if x)
        view.append(_section(cut(text, MAX_SECTION)))
    view += [
        {"type": "divider"},
        _section(f"*{mrkdwn(t('home.settings'))}*"),
        _section(
            mrkdwn(
                t(
                    "home.settings_line",
                    language=t(f"language.{home.language}"),
                    timezone=home.timezone,
                    daily=sum(g.mode == "daily" for g in home.groups),
                    weekly=sum(g.mode == "weekly" for g in home.groups),
                )
            )
        ),
        _section(mrkdwn(_digest_line(home, t))),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn(t("home.footer"))}]},
    ]
    return {"type": "home", "blocks": view[:MAX_VIEW_BLOCKS]}


def _home_proposals(home: Home, t: Translator) -> list[Block]:
    """The proposals waiting for this gatekeeper, each with the card's three buttons (the
    same actions, so a press here works as one on the card)."""
    out: list[Block] = [{"type": "divider"}, _section(f"*{mrkdwn(t('home_proposals.title'))}*")]
    if not home.proposals:
        out.append(_section(mrkdwn(t("home_proposals.none"))))
    for p in home.proposals:
        out.append(_section(cut(_proposal_text(p, t), MAX_SECTION)))
        value = f"{p.id}:{p.revision}"
        buttons = [
            Button(
                label=to_plain(t("card.approve")),
                action="proposal.approve",
                value=value,
                style="primary",
            ),
            Button(
                label=to_plain(t("card.reject")),
                action="proposal.reject",
                value=value,
                style="danger",
            ),
            Button(label=to_plain(t("card.changes")), action="proposal.changes", value=value),
        ]
        out += _buttons(buttons, start=1000 + p.id * 10)
    if home.proposals_more:
        out.append(_section(mrkdwn(t("home_proposals.more", count=home.proposals_more))))
    return out


def _proposal_text(p: HomeProposal, t: Translator) -> str:
    author = author_label(t, p.author or None)
    head = mrkdwn(t("home_proposals.line", proposal=p.proposal, outlet=p.outlet, author=author))
    lines = [line for line in p.text.strip().split("\n") if line.strip()]
    excerpt = cut(" ".join(" ".join(lines).split()), 300)
    return f"{head}\n> {escape(excerpt)}" if excerpt else head


# --- the reason modal ------------------------------------------------------------------


def reason_modal(action: str, value: str, metadata: str, t: Translator) -> dict[str, Any]:
    """The modal that asks a gatekeeper for the reason of a rejection (or of the changes
    they request); the press travels in its private_metadata."""
    reject = REASON_ACTIONS[action] == "reject"
    raw_id = value.partition(":")[0]
    proposal = show_id(int(raw_id), "proposal") if raw_id.isdigit() else "?"

    def plain(text: str, limit: int) -> dict[str, Any]:
        return {"type": "plain_text", "text": cut(text, limit), "emoji": True}

    return {
        "type": "modal",
        "callback_id": REASON_CALLBACK,
        "private_metadata": metadata[:MAX_METADATA],
        "title": plain(
            to_plain(
                t("reason_modal.reject_title", proposal=proposal)
                if reject
                else t("reason_modal.changes_title", proposal=proposal)
            ),
            MAX_MODAL_TITLE,
        ),
        "submit": plain(
            to_plain(t("reason_modal.reject_submit" if reject else "reason_modal.changes_submit")),
            MAX_MODAL_TITLE,
        ),
        "close": plain(to_plain(t("reason_modal.cancel")), MAX_MODAL_TITLE),
        "blocks": [
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": plain(
                    to_plain(
                        t("reason_modal.reject_label" if reject else "reason_modal.changes_label")
                    ),
                    MAX_INPUT_LABEL,
                ),
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_INPUT,
                    "multiline": True,
                    "min_length": 1,
                    "max_length": MAX_REASON,
                    "placeholder": plain(to_plain(t("reason_modal.placeholder")), MAX_PLACEHOLDER),
                },
            }
        ],
    }


def _digest_line(home: Home, t: Translator) -> str:
    """The person's digest times, or that they are paused."""
    params = {
        "daily": home.daily_at,
        "day": t(f"digest.day.{home.weekly_day}"),
        "weekly": home.weekly_at,
    }
    if home.digests_paused or home.next_digest is None:
        return t("digest.home_paused", **params)
    local = home.next_digest.astimezone(ZoneInfo(home.timezone))
    upcoming = t(
        "digest.when",
        day=t(f"digest.day.{local.weekday()}"),
        when=t.datetime(home.next_digest, home.timezone),
    )
    return t("digest.home", next=upcoming, **params)
