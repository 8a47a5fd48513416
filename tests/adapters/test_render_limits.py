"""Every message the bot can say passes the messenger's own rules (issue 22, point 13):
each catalog template, in both languages, filled with hostile and very long values, is
rendered for Slack and for Matrix, with buttons and fields, as a post and as the bot's
answer; so are the App Home and the modals.

Slack: the blocks pass FakeSlack's Block Kit validation (50 blocks, 3,000 characters a
section, 75 a button's label, 2,000 its value, 100 options of 75 / 150 a select, ...),
the notification text stays under 40,000, and nothing a person typed becomes a mention
or a link (`<!channel>`, `<@U123>` stay text). Matrix: an event stays under 64 KiB, the
HTML has nothing unescaped, and the plain body keeps the words.
"""

from __future__ import annotations

import json
import string
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.matrix.render import MAX_EVENT, edit_content, text_content
from adapters.slack.modals import GroupChoice, propose_modal, settings_modal, share_modal
from adapters.slack.render import blocks, fallback, home_view, reason_modal
from bot.home import Home, HomeGroup, HomePost, HomeProposal
from bot.i18n import LANGUAGES, Translator, catalog
from bot.message import Button, Message, MessageField
from tests.fakes.slack import MAX_TEXT, validate_blocks, validate_modal

HOSTILE = (
    "<!channel>",
    "<@U123>",
    "Tom & Jerry <b>",
    "<script>alert(1)</script>",
    "*bold* _it_ ~s~ `c` [x](javascript:alert(1)) <https://evil.example|bank>",
    "> quoted\n- listed\n**x**",
)
LONG = ("<!channel> <@U123> & <script>x</script> ümlaut 👍 " * 300)[:10_000]
# What must never reach Slack unescaped, or Matrix's HTML unescaped.
SLACK_FORBIDDEN = ("<!channel>", "<@U123>", "<script", "<https://evil")
HTML_FORBIDDEN = ("<script", "<!channel>", "<@U123>", "Jerry <b>")
MATRIX_EVENT_LIMIT = 65_536


def placeholders(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def templates(language: str) -> list[tuple[str, str]]:
    out = []
    for key, value in catalog(language).items():
        for template in value.values() if isinstance(value, dict) else [value]:
            out.append((key, template))
    return out


def filled(t: Translator, key: str, template: str, first: str = LONG) -> str:
    """The template with its first value `first` (10,000 characters), the others hostile."""
    params: dict[str, Any] = {}
    for i, name in enumerate(placeholders(template)):
        params[name] = first if i == 0 else HOSTILE[i % len(HOSTILE)]
    params["count"] = 2
    return str(t(key, **params))


def texts(obj: Any) -> str:
    """Every mrkdwn text of blocks or a view: where Slack reads <!channel>, <@U…> and
    links (plain_text shows as it is; values are handed back, never shown)."""
    if isinstance(obj, dict):
        if obj.get("type") == "mrkdwn":
            return str(obj.get("text", ""))
        return "\n".join(texts(v) for k, v in obj.items() if k != "value")
    if isinstance(obj, list):
        return "\n".join(texts(v) for v in obj)
    return ""


def check_slack(message: Message, where: str) -> None:
    rendered = blocks(message)
    assert validate_blocks(rendered) == [], where
    shown = texts(rendered)
    for bad in SLACK_FORBIDDEN:
        assert bad not in shown, f"{where}: {bad}"
    text = fallback(message)
    assert 0 < len(text) <= MAX_TEXT, where
    assert not any(bad in text for bad in SLACK_FORBIDDEN), where


def check_matrix(message: Message, where: str) -> None:
    content = text_content(message)
    assert content is not None, where
    size = len(json.dumps(content, ensure_ascii=False).encode())
    assert size <= MAX_EVENT < MATRIX_EVENT_LIMIT, f"{where}: {size} bytes"
    for bad in HTML_FORBIDDEN:
        assert bad not in content["formatted_body"], f"{where}: {bad}"
    assert content["body"].strip(), where
    edit = edit_content(content, "$original")
    assert len(json.dumps(edit, ensure_ascii=False).encode()) <= MATRIX_EVENT_LIMIT, where


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_template_with_hostile_and_long_values_fits_slack_and_matrix(
    language: str,
) -> None:
    t = Translator(language)
    short = HOSTILE[3]
    for key, template in templates(language):
        text = filled(t, key, template)
        where = f"{language}:{key}"
        # The bot's answer with a 10,000-character value; with a title, fields and
        # buttons (a card) and as a post, with a shorter one (the long one is tried in
        # these shapes below, on a few templates: the whole catalog would be slow).
        answer = Message(text=text)
        text = filled(t, key, template, LONG[:700])
        card = Message(
            title=text,
            text=text,
            fields=tuple(MessageField(label=short, value=text) for _ in range(12)),
            buttons=(
                Button(label=text, action="proposal.approve", value=LONG, style="primary"),
                Button(label=short, action="proposal.reject", value="1:1", style="danger"),
                *(
                    Button(label=f"{short} {i}", action="share.pick", value=str(i))
                    for i in range(30)
                ),
            ),
            meta={"proposal": 1},
        )
        # A post, with its link, its author's accounts and a thread.
        post = Message(
            title=text,
            text=text,
            buttons=(
                Button(label=short, action="item.comment", value="1"),
                Button(label="👍", action="item.like", value="1"),
            ),
            thread="$root",
            meta={
                "item": 1,
                "url": "https://example.com/" + "x" * 4000,
                "mentions": {
                    "alice": {"name": LONG, "accounts": {"slack": "U1ALICE", "matrix": "@a:hs"}},
                    "bob": {"name": short, "accounts": {"telegram": "5001"}},
                },
            },
        )
        for message, kind in ((answer, "answer"), (card, "card"), (post, "post")):
            check_slack(message, f"{where} as {kind}")
            check_matrix(message, f"{where} as {kind}")


def test_long_cards_and_posts_fit() -> None:
    for language in LANGUAGES:
        t = Translator(language)
        for key in ("item.title", "comment.relayed", "card.approve", "help.share"):
            text = filled(t, key, str(t.raw(key)))
            card = Message(
                title=text,
                text=text,
                fields=tuple(MessageField(label=text, value=text) for _ in range(12)),
                buttons=tuple(Button(label=text, action="a", value=LONG) for _ in range(30)),
                meta={"proposal": 1},
            )
            post = Message(title=text, text=text, thread="$root", meta={"item": 1, "url": LONG})
            for message in (card, post):
                check_slack(message, f"{language}:{key}")
                check_matrix(message, f"{language}:{key}")


def test_text_that_grows_when_escaped_still_fits_matrix() -> None:
    for text in ("&" * 30_000, "<" * 30_000, "👍" * 30_000):
        check_matrix(Message(text=text, meta={"comment": 1}), text[:3])
        check_slack(Message(text=text), text[:3])


def test_a_digest_and_a_mention_stay_within_slacks_rules() -> None:
    lines = "\n".join(f"- #{i} {LONG[:2000]} · @bob" for i in range(1, 60))
    digest = Message(
        title="Your digest <!channel>",
        text=lines,
        buttons=tuple(
            Button(label=f"Open #{i}", action="item.open", value=str(i)) for i in range(1, 11)
        ),
        meta={"digest": "daily"},
    )
    rendered = blocks(digest)
    assert validate_blocks(rendered) == []
    assert sum("accessory" in b for b in rendered) >= 1
    post = Message(
        title="alice via Telegram in Marketing",
        text="Tom & alice.example.com <@U123>",
        meta={
            "item": 3,
            "url": None,
            "mentions": {"alice": {"name": "Alice", "accounts": {"slack": "U1ALICE"}}},
        },
    )
    shown = texts(blocks(post))
    assert shown.count("<@U1ALICE>") == 1  # the author, once, in the title
    assert "alice.example.com" in shown
    assert "&lt;@U123&gt;" in shown
    # Someone without a Slack account: by their name, escaped.
    franz = Message(
        title="franz.huber via Telegram in Marketing",
        meta={"mentions": {"franz.huber": {"name": "Franz <!channel> Huber", "accounts": {}}}},
    )
    assert texts(blocks(franz)).strip().startswith("*Franz &lt;!channel&gt; Huber via Telegram")
    forged = Message(
        title="bob in X",
        meta={"mentions": {"bob": {"name": "Bob", "accounts": {"slack": "U1> <!channel"}}}},
    )
    assert texts(blocks(forged)).strip() == "*Bob in X*"


def test_the_app_home_and_the_modals_with_hostile_values_fit() -> None:
    group = HomeGroup(slug="s" * 32, name=LONG[:200], mode="weekly", moderator=True)
    home = Home(
        handle="a" * 32,
        language="de",
        timezone="Europe/Berlin",
        role="gatekeeper",
        groups=tuple(group for _ in range(60)),
        posts=tuple(
            HomePost(
                item=f"#{i}",
                group=LONG[:200],
                author="bob",
                text=LONG,
                url="https://example.com/" + "y" * 2000,
                title=LONG[:300],
                dated_at=datetime(2026, 12, 7, 9, 0, tzinfo=UTC),
                label=LONG[:200],
            )
            for i in range(10)
        ),
        daily_at="07:30",
        decides=True,
        proposals=tuple(
            HomeProposal(
                id=i, proposal=f"P{i}", revision=1, outlet=LONG[:100], author="x", text=LONG
            )
            for i in range(10)
        ),
        joinable=tuple(group for _ in range(20)),
    )
    for language in LANGUAGES:
        t = Translator(language)
        view = home_view(home, t)
        assert validate_blocks(view["blocks"], limit=100, root="/view/blocks") == [], language
        shown = texts(view)
        assert not any(bad in shown for bad in SLACK_FORBIDDEN), language
        groups = [GroupChoice(f"g{i}", LONG[:300]) for i in range(150)]
        modal = share_modal(groups, LONG, "m" * 100, t)
        assert validate_modal(modal) == [], language
        outlets = [f"{i}-{LONG[:140]}" for i in range(150)] + [LONG]
        assert validate_modal(propose_modal(outlets, "m" * 100, t)) == [], language
        settings = settings_modal("xx", "Mars/" + LONG[:300], "m" * 100, t)
        assert validate_modal(settings) == [], language
        for action in ("proposal.reject", "proposal.changes"):
            assert validate_modal(reason_modal(action, "12:1", "m" * 5000, t)) == [], language
