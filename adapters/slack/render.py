"""Outbound translation: neutral messages and homes as Block Kit. Pure functions.

Slack's limits (https://api.slack.com/reference/block-kit): at most 50 blocks in a
message and 100 in a view; a section's text 3,000 characters; a field 2,000 and ten
fields a section; a button's label 75, its value 2,000 and its URL 3,000; 25 elements in
an actions block; a select's options 100, each option's text 75 and value 150; a
message's `text` 40,000. What does not fit is cut with an ellipsis, never refused, and
every message carries a plain-text `text` for notifications and clients without blocks.
Everything people wrote is escaped (&, <, >), so `<!channel>` or `<@U…>` typed by
someone stays text; the only mentions are the ones Pinwall makes itself, of the people
whose Slack account it knows (the message's meta "mentions").

A post (meta "item") is a section with its actions: Open (its link), Comment and 👍; a
digest (meta "digest") a section per post with its Open button beside it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from bot.authors import author_label
from bot.home import Home, HomeProposal
from bot.i18n import Translator
from bot.ids import show_id
from bot.markup import Span, parse, to_plain
from bot.message import Button, Message

PLATFORM = "slack"
MAX_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_SECTION = 3000
MAX_FIELD = 2000
MAX_FIELDS = 10
MAX_BUTTON_LABEL = 75
MAX_BUTTON_VALUE = 2000
MAX_ACTIONS = 25
MAX_FALLBACK = 3000
MAX_URL = 3000
MAX_OPTIONS = 100  # of a static select
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
MAX_PLACEHOLDER = 150
ACTION_PREFIX = "pw:"
OPEN_ACTION = ACTION_PREFIX + "open"  # a link button: Slack opens it, Pinwall ignores the press
# Reject / Request changes by button: Slack asks for the reason in a modal at once.
# Presses that Slack answers with a modal asking for a text (the reason of a decision, a
# comment: a question shown in a channel to the asker alone could not be answered there).
REASON_ACTIONS = {
    "proposal.reject": "reject",
    "proposal.changes": "changes",
    "item.comment": "comment",
}
REASON_CALLBACK = "pw:reason"
REASON_BLOCK, REASON_INPUT = "reason", "reason_input"
MAX_MODAL_TITLE = 24  # a modal's title, submit and close labels
MAX_INPUT_LABEL = 2000
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


def _button(b: Button, i: int) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button",
        "action_id": f"{ACTION_PREFIX}{i}",
        "text": {
            "type": "plain_text",
            "text": cut(b.label, MAX_BUTTON_LABEL) or "…",
            "emoji": True,
        },
        "value": button_value(b),
    }
    if b.style != "default":
        element["style"] = b.style
    return element


def _buttons(buttons: Iterable[Button], start: int = 0) -> list[Block]:
    blocks: list[Block] = []
    elements: list[dict[str, Any]] = []
    for i, b in enumerate(buttons, start):
        elements.append(_button(b, i))
        if len(elements) == MAX_ACTIONS:
            blocks.append({"type": "actions", "elements": elements})
            elements = []
    if elements:
        blocks.append({"type": "actions", "elements": elements})
    return blocks


_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,20}")


def mention(text: str, mentions: object, *, every: bool = False) -> str:
    """The first mention of each person in mrkdwn `text` (their handle, with or without
    "@"): Slack's real mention where their Slack account is known, else their name.
    `every`: each "@handle" (with its "@" only), for lists that name many people
    (a digest's lines, the App Home)."""
    if not isinstance(mentions, dict):
        return text
    for handle, person in mentions.items():
        if not isinstance(handle, str) or not handle or not isinstance(person, dict):
            continue
        accounts = person.get("accounts")
        user = accounts.get(PLATFORM) if isinstance(accounts, dict) else None
        name = person.get("name")
        if isinstance(user, str) and _SLACK_USER.fullmatch(user):
            shown = f"<@{user}>"
        elif isinstance(name, str) and name.strip():
            shown = escape(" ".join(name.split())[:80])
        else:
            continue
        at = "@" if every else "@?"
        word = re.compile(rf"(?<![\w.@/:&#-]){at}{re.escape(escape(handle))}(?![\w-])")
        if every:  # a name is put in as it is, never read as a pattern
            text = word.sub(shown.replace("\\", "\\\\"), text)  # a literal replacement
            continue
        found = word.search(text)
        if found is not None:
            text = text[: found.start()] + shown + text[found.end() :]
    return text


def _open_button(url: object, label: str) -> dict[str, Any] | None:
    """A button that opens the post's link in the browser (no press reaches Pinwall)."""
    if not isinstance(url, str) or len(url) > MAX_URL or not re.match(r"https?://", url, re.I):
        return None
    host = urlsplit(url).hostname or url
    return {
        "type": "button",
        "action_id": OPEN_ACTION,
        "text": {"type": "plain_text", "text": cut(label or f"↗ {host}", MAX_BUTTON_LABEL)},
        "url": url,
    }


def _digest_sections(message: Message, first: int) -> tuple[list[Block], list[Button]]:
    """A digest's lines, each post ("• #12 …") as a section with its Open button beside
    it; the buttons no line took are returned for the actions block."""
    opens = {b.value: (i, b) for i, b in enumerate(message.buttons) if b.action == "item.open"}
    out: list[Block] = []
    pending: list[str] = []
    text = mention(mrkdwn(message.text), message.meta.get("mentions"), every=True)
    for line in text.split("\n"):
        found = re.match(r"• #(\d+)\b", line)
        taken = opens.pop(found.group(1), None) if found else None
        if taken is None:
            pending.append(line)
            continue
        if pending:
            out += _sections("\n".join(pending))
            pending = []
        i, button = taken
        block = _section(cut(line, MAX_SECTION))
        block["accessory"] = _button(button, first + i)
        out.append(block)
    if pending:
        out += _sections("\n".join(pending))
    left = [b for b in message.buttons if b.action != "item.open" or b.value in opens]
    return out, left


def blocks(message: Message) -> list[Block]:
    out: list[Block] = []
    mentions = message.meta.get("mentions")
    if message.title:
        plain_title = mrkdwn(message.title)
        title = mention(plain_title, mentions)
        out += _sections("\n".join(f"*{line}*" if line else "" for line in title.split("\n")))
        if isinstance(mentions, dict):  # each named once: in the title, else in the text
            mentions = {
                h: p for h, p in mentions.items() if mention(plain_title, {h: p}) == plain_title
            }
    buttons = list(message.buttons)
    if message.text and "digest" in message.meta:
        sections, buttons = _digest_sections(message, 0)
        out += sections
    elif message.text:
        out += _sections(mention(mrkdwn(message.text), mentions))
    fields = [
        {"type": "mrkdwn", "text": cut(f"*{mrkdwn(f.label)}*\n{mrkdwn(f.value)}", MAX_FIELD)}
        for f in message.fields
    ]
    for i in range(0, len(fields), MAX_FIELDS):
        out.append({"type": "section", "fields": fields[i : i + MAX_FIELDS]})
    actions = _buttons(buttons)
    opener = _open_button(message.meta.get("url"), "") if "item" in message.meta else None
    if opener is not None:  # Open first, then Comment and 👍
        if actions and len(actions[0]["elements"]) < MAX_ACTIONS:
            actions[0]["elements"].insert(0, opener)
        else:
            actions.insert(0, {"type": "actions", "elements": [opener]})
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

MODES = ("instant", "daily", "weekly", "mute", "mail")


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
        if len(view) > MAX_VIEW_BLOCKS - 40:  # room for what follows
            view.append(_section("…"))
            break
        view.append(_section(cut(f"*{escape(g.name)}* ({escape(g.slug)})", MAX_SECTION)))
        offered = [m for m in MODES if m != "mail" or home.has_mail or g.mode == "mail"]
        modes = [
            _option(to_plain(t(f"notify.mode.{m}")), f"notify.set|{g.slug}:{m}") for m in offered
        ]
        view.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "static_select",
                        "action_id": f"{ACTION_PREFIX}notify:{g.slug}",
                        "placeholder": _plain(to_plain(t("slack.home.notify")), MAX_PLACEHOLDER),
                        "options": modes,
                        "initial_option": modes[offered.index(g.mode)]
                        if g.mode in offered
                        else modes[1],
                    },
                    {
                        "type": "button",
                        "action_id": f"{ACTION_PREFIX}leave:{g.slug}",
                        "text": _plain(to_plain(t("slack.home.leave")), MAX_BUTTON_LABEL),
                        "value": cut(f"cmd|leave {g.slug}", MAX_BUTTON_VALUE),
                    },
                ],
            }
        )
    if home.joinable:
        view += [{"type": "divider"}, _section(f"*{mrkdwn(t('slack.home.joinable'))}*")]
        for g in home.joinable:
            if len(view) > MAX_VIEW_BLOCKS - 30:
                view.append(_section("…"))
                break
            block = _section(cut(f"*{escape(g.name)}* ({escape(g.slug)})", MAX_SECTION))
            block["accessory"] = {
                "type": "button",
                "action_id": f"{ACTION_PREFIX}join:{g.slug}",
                "text": _plain(to_plain(t("slack.home.join")), MAX_BUTTON_LABEL),
                "value": cut(f"cmd|join {g.slug}", MAX_BUTTON_VALUE),
                "style": "primary",
            }
            view.append(block)
    view += [{"type": "divider"}, _section(f"*{mrkdwn(t('home.posts'))}*")]
    if not home.posts:
        view.append(_section(mrkdwn(t("home.no_posts"))))
    for p in home.posts:
        when = t.datetime(p.dated_at, home.timezone)
        if p.author:
            author = f"@{p.author}"
        else:
            author = author_label(t, None) if p.former_member else "feed"
        head = mention(
            mrkdwn(t("home.post", item=p.item, group=p.group, author=author, when=when)),
            home.mentions,
            every=True,
        )
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
        *_digest_controls(home, t),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn(t("home.footer"))}]},
    ]
    return {"type": "home", "blocks": view[:MAX_VIEW_BLOCKS]}


DIGEST_HOURS = tuple(f"{h:02d}:00" for h in range(5, 23))  # 05:00 … 22:00
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": cut(text, limit) or "…", "emoji": True}


def _option(label: str, value: str) -> dict[str, Any]:
    return {"text": _plain(label, MAX_OPTION_TEXT), "value": value[:MAX_OPTION_VALUE]}


def _digest_controls(home: Home, t: Translator) -> list[Block]:
    """The digest times as selects (a daily hour, a weekly day) and pause / resume."""
    hours = list(DIGEST_HOURS)
    if home.daily_at not in hours:  # a time set by command, such as 07:30
        hours = sorted([*hours, home.daily_at])
    daily = [_option(h, f"cmd|digest daily {h}") for h in hours][:MAX_OPTIONS]
    weekly = [
        _option(to_plain(t(f"digest.day.{i}")), f"cmd|digest weekly {day} {home.weekly_at}")
        for i, day in enumerate(DAYS)
    ]
    pause = (
        _button(
            Button(
                label=to_plain(t("slack.home.resume")),
                action="cmd",
                value=f"digest daily {home.daily_at}",
            ),
            0,
        )
        if home.digests_paused
        else _button(
            Button(label=to_plain(t("slack.home.pause")), action="cmd", value="digest off"), 0
        )
    )
    pause["action_id"] = f"{ACTION_PREFIX}digest:pause"
    return [
        {
            "type": "actions",
            "elements": [
                {
                    "type": "static_select",
                    "action_id": f"{ACTION_PREFIX}digest:daily",
                    "placeholder": _plain(to_plain(t("slack.home.daily_at")), MAX_PLACEHOLDER),
                    "options": daily,
                    "initial_option": daily[hours.index(home.daily_at)],
                },
                {
                    "type": "static_select",
                    "action_id": f"{ACTION_PREFIX}digest:weekly",
                    "placeholder": _plain(to_plain(t("slack.home.weekly_on")), MAX_PLACEHOLDER),
                    "options": weekly,
                    "initial_option": weekly[home.weekly_day % 7],
                },
                pause,
            ],
        }
    ]


def _home_proposals(home: Home, t: Translator) -> list[Block]:
    """The proposals waiting for this gatekeeper, each with the card's three buttons (the
    same actions, so a press here works as one on the card)."""
    out: list[Block] = [{"type": "divider"}, _section(f"*{mrkdwn(t('home_proposals.title'))}*")]
    if not home.proposals:
        out.append(_section(mrkdwn(t("home_proposals.none"))))
    for p in home.proposals:
        out.append(_section(cut(mention(_proposal_text(p, t), home.mentions), MAX_SECTION)))
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
    they request), or anyone for their comment on a post; the press travels in its
    private_metadata."""
    kind = REASON_ACTIONS[action]
    raw_id = value.partition(":")[0]
    ref = (
        show_id(int(raw_id), "item" if kind == "comment" else "proposal")
        if raw_id.isdigit()
        else "?"
    )
    submit = {"reject": "reject_submit", "changes": "changes_submit", "comment": "comment_submit"}

    def plain(text: str, limit: int) -> dict[str, Any]:
        return {"type": "plain_text", "text": cut(text, limit), "emoji": True}

    def said(key: str) -> str:
        return to_plain(t(f"reason_modal.{key}", proposal=ref, item=ref))

    return {
        "type": "modal",
        "callback_id": REASON_CALLBACK,
        "private_metadata": metadata[:MAX_METADATA],
        "title": plain(said(f"{kind}_title"), MAX_MODAL_TITLE),
        "submit": plain(said(submit[kind]), MAX_MODAL_TITLE),
        "close": plain(said("cancel"), MAX_MODAL_TITLE),
        "blocks": [
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": plain(said(f"{kind}_label"), MAX_INPUT_LABEL),
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_INPUT,
                    "multiline": True,
                    "min_length": 1,
                    "max_length": MAX_REASON,
                    "placeholder": plain(
                        said("comment_placeholder" if kind == "comment" else "placeholder"),
                        MAX_PLACEHOLDER,
                    ),
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
