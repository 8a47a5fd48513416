"""Slack: Block Kit within Slack's limits, mrkdwn escaping, payloads as events."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from adapters.slack import inbound
from adapters.slack.inbound import SlackUser, plain_text, user_from_info
from adapters.slack.render import blocks, fallback, home_view, mrkdwn
from bot.events import ButtonPressed, CommandInvoked, MessageReceived, ReactionAdded
from bot.home import Home, HomeGroup, HomePost
from bot.i18n import Translator
from bot.markup import bold, esc, italic, link
from bot.message import Button, Message, MessageField
from tests.fakes.slack import validate_blocks

ALICE = SlackUser(id="U1", name="alice", display_name="Alice", locale="de-DE", trust="member")


def test_markup_as_mrkdwn_escapes_what_slack_reads() -> None:
    text = esc("a < b & c > d *not bold*") + "\n" + bold("Bold") + " " + italic("it")
    assert mrkdwn(text) == "a &lt; b &amp; c &gt; d *not bold*\n*Bold* _it_"
    assert mrkdwn(link("https://example.com/a?b=1|2", "the <label>")) == (
        "<https://example.com/a?b=1%7C2|the &lt;label&gt;>"
    )
    assert mrkdwn(link("javascript:alert(1)", "x")) == "x (javascript:alert(1%29)"


def test_message_blocks_keep_slacks_limits() -> None:
    message = Message(
        title=esc("bob in Marketing"),
        text=esc("x" * 7000),
        fields=tuple(MessageField(label=f"f{i}", value="v") for i in range(12)),
        buttons=tuple(
            Button(label="L" * 100, action="share.pick", value=f"{i}:1") for i in range(30)
        ),
    )
    out = blocks(message)
    assert len(out) <= 50
    for block in out:
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= 3000
        if block["type"] == "section" and "fields" in block:
            assert len(block["fields"]) <= 10
        if block["type"] == "actions":
            assert len(block["elements"]) <= 25
            for element in block["elements"]:
                assert len(element["text"]["text"]) <= 75
                assert element["action_id"].startswith("pw:")
    ids = [e["action_id"] for b in out if b["type"] == "actions" for e in b["elements"]]
    assert len(ids) == 30
    assert len(set(ids)) == 30
    assert fallback(message).startswith("bob in Marketing")


def test_too_many_blocks_are_cut_with_an_ellipsis() -> None:
    text = "\n".join(esc("y" * 2990) for _ in range(80))
    out = blocks(Message(text=text, buttons=(Button(label="OK", action="a", value="1"),)))
    assert len(out) == 50
    assert out[-2]["type"] == "context"
    assert out[-1]["type"] == "actions"


def test_home_view() -> None:
    home = Home(
        handle="alice",
        language="de",
        timezone="Europe/Berlin",
        role="member",
        groups=(HomeGroup(slug="marketing", name="Marketing", mode="daily", moderator=False),),
        posts=(
            HomePost(
                item="#3",
                group="Marketing",
                author="bob",
                text="Poster <b>",
                url="https://example.com/p",
                title="Poster",
                dated_at=datetime(2026, 11, 27, 9, 0, tzinfo=UTC),
            ),
        ),
    )
    view = home_view(home, Translator("de"))
    assert view["type"] == "home"
    flat = str(view)
    assert "Deine Gruppen" in flat
    assert "Poster &lt;b&gt;" in flat
    controls = {
        e["action_id"]: e for b in view["blocks"] if b["type"] == "actions" for e in b["elements"]
    }
    notify = controls["pw:notify:marketing"]
    assert [o["text"]["text"] for o in notify["options"]] == [
        "sofort",
        "täglich",
        "wöchentlich",
        "stumm",
    ]
    assert notify["options"][0]["value"] == "notify.set|marketing:instant"
    assert notify["initial_option"]["value"] == "notify.set|marketing:daily"
    assert controls["pw:leave:marketing"]["value"] == "cmd|leave marketing"
    assert controls["pw:digest:daily"]["initial_option"]["value"] == "cmd|digest daily 08:00"
    assert controls["pw:digest:weekly"]["initial_option"]["text"]["text"] == "Montag"
    assert validate_blocks(view["blocks"], limit=100, root="/view/blocks") == []
    # The digest times, in the person's zone, and when the next digest comes.
    digests = replace(
        home, weekly_day=4, weekly_at="17:00", next_digest=datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
    )
    assert (
        "Deine Zusammenfassungen: täglich um *08:00 Uhr*, wöchentlich am *Freitag* um *17:00 Uhr*."
        " Die nächste: Samstag, 28.11.2026 08:00."
    ) in str(home_view(digests, Translator("de")))
    paused = str(home_view(replace(home, digests_paused=True), Translator("en")))
    assert "Your digests are *paused* (daily at 08:00, weekly on Monday at 08:00)." in paused


def test_home_view_links_show_the_label_the_core_made() -> None:
    """bot.home labels each link (bot.linklabel); the view never shows a bare title."""
    post = HomePost(
        item="#3",
        group="Marketing",
        author="bob",
        text="Look",
        url="http://evil.example/login",
        title="https://www.bank.example/login",
        dated_at=datetime(2026, 11, 27, 9, 0, tzinfo=UTC),
        label="http://evil.example/login",
    )
    home = Home(
        handle="alice", language="en", timezone="Europe/Berlin", role="member", groups=(), posts=()
    )
    flat = str(home_view(replace(home, posts=(post,)), Translator("en")))
    assert "<http://evil.example/login|http://evil.example/login>" in flat
    assert "bank.example" not in flat
    titled = replace(post, title="Poster", label="Poster (evil.example)")
    flat = str(home_view(replace(home, posts=(titled,)), Translator("en")))
    assert "<http://evil.example/login|Poster (evil.example)>" in flat


def test_users_info_decides_first_contact() -> None:
    member = user_from_info({"id": "U1", "name": "a", "team_id": "T1", "locale": "de-DE"}, "T1")
    guest = user_from_info({"id": "U2", "name": "g", "team_id": "T1", "is_restricted": True}, "T1")
    single = user_from_info({"id": "U3", "team_id": "T1", "is_ultra_restricted": True}, "T1")
    foreign = user_from_info({"id": "U4", "name": "f", "team_id": "T9"}, "T1")
    assert (member.trust, member.locale) == ("member", "de-DE")
    assert guest.trust == single.trust == foreign.trust == "external"


def test_slack_text_as_typed() -> None:
    assert plain_text("see <https://example.com/x|example.com/x> &amp; <@U1|alice>") == (
        "see https://example.com/x & @alice"
    )


def test_slash_command_in_a_channel_and_in_a_dm() -> None:
    body = {
        "user_id": "U1",
        "channel_id": "C1",
        "channel_name": "marketing",
        "text": "share marketing <https://example.com/p> Poster",
        "trigger_id": "T123",
    }
    found = inbound.slash_command(body)
    event = found.event(ALICE)
    assert isinstance(event, CommandInvoked)
    assert (event.name, event.arguments) == ("share", "marketing https://example.com/p Poster")
    assert not event.meta.conversation.direct
    assert event.meta.actor.language == "de-DE"
    empty = inbound.slash_command({**body, "text": "", "channel_id": "D1"})
    assert empty.command == ("help", "")
    assert empty.conversation.direct


def test_events_as_pinwall_events() -> None:
    message = inbound.message_event(
        {
            "event_id": "Ev1",
            "event": {
                "type": "message",
                "channel": "C1",
                "channel_type": "channel",
                "user": "U1",
                "text": "Unser Schaufenster",
                "ts": "1700000000.000200",
                "thread_ts": "1700000000.000100",
            },
        },
        "UBOT",
    )
    assert message is not None
    event = message.event(ALICE)
    assert isinstance(event, MessageReceived)
    assert event.meta.event_id == "Ev1"
    assert event.reply_to is not None
    assert event.reply_to.message_id == "1700000000.000100"
    # a mention in a channel comes as app_mention too: the message event is not taken
    mention = {"event": {"channel": "C1", "user": "U1", "text": "<@UBOT> help", "ts": "1"}}
    assert inbound.message_event(mention, "UBOT") is None
    as_command = inbound.app_mention({"event_id": "Ev2", **mention}, "UBOT")
    assert as_command is not None
    assert as_command.command == ("help", "")
    edited = {"event": {"subtype": "message_changed", "channel": "C1", "ts": "2"}}
    assert inbound.message_event(edited, "UBOT") is None

    reaction = inbound.reaction_added(
        {
            "event_id": "Ev3",
            "event": {
                "user": "U1",
                "reaction": "white_check_mark",
                "item": {"type": "message", "channel": "C1", "ts": "5.1"},
            },
        }
    )
    assert reaction is not None
    r = reaction.event(ALICE)
    assert isinstance(r, ReactionAdded)
    assert r.emoji == "✅"


def test_button_and_shortcut() -> None:
    pressed = inbound.block_action(
        {
            "user": {"id": "U1"},
            "trigger_id": "tr",
            "channel": {"id": "D1"},
            "container": {"type": "message", "message_ts": "9.9", "channel_id": "D1"},
            "actions": [{"action_id": "pw:0", "value": "share.pick|3:1", "action_ts": "10.0"}],
        }
    )
    assert pressed is not None
    event = pressed.event(ALICE)
    assert isinstance(event, ButtonPressed)
    assert (event.action, event.value) == ("share.pick", "3:1")
    assert event.message is not None
    assert event.message.message_id == "9.9"
    assert event.meta.conversation.direct
    foreign = {"user": {"id": "U1"}, "actions": [{"action_id": "other", "value": "x|y"}]}
    assert inbound.block_action(foreign) is None

    shortcut = inbound.share_shortcut(
        {
            "user": {"id": "U1"},
            "trigger_id": "tr2",
            "message": {"text": "Look <https://example.com/a>", "ts": "1.0"},
            "channel": {"id": "C1"},
        }
    )
    shared = shortcut.event(ALICE)
    assert isinstance(shared, MessageReceived)
    assert shared.intent == "share"
    assert shared.text == "Look https://example.com/a"
    assert shared.meta.conversation.direct


def test_a_post_is_a_section_with_open_comment_and_like_and_a_digest_opens_per_post() -> None:
    post = Message(
        title="alice in Marketing",
        text="Poster [example.com](https://example.com/p)",
        buttons=(
            Button(label="Comment", action="item.comment", value="3"),
            Button(label="👍", action="item.like", value="3"),
        ),
        meta={"item": 3, "url": "https://example.com/p", "mentions": {}},
    )
    rendered = blocks(post)
    assert validate_blocks(rendered) == []
    [actions] = [b for b in rendered if b["type"] == "actions"]
    opener, comment, like = actions["elements"]
    assert opener["url"] == "https://example.com/p"
    assert opener["text"]["text"] == "↗ example.com"
    assert "value" not in opener  # Slack opens it; no press reaches Pinwall
    assert (comment["value"], like["value"]) == ("item.comment|3", "item.like|3")
    assert (
        inbound.block_action(
            {
                "type": "block_actions",
                "user": {"id": "U1"},
                "container": {"type": "message", "channel_id": "D1", "message_ts": "1.2"},
                "actions": [{"action_id": opener["action_id"], "type": "button"}],
            }
        )
        is None
    )
    # A javascript: link gets no Open button.
    sneaky = Message(title="x", meta={"item": 4, "url": "javascript:alert(1)"})
    assert not [b for b in blocks(sneaky) if b["type"] == "actions"]

    digest = Message(
        title="Your digest",
        text="**Marketing** · 2 new posts\n- #3 Poster · @bob\n- #4 Flyer · @carla\nMore: items",
        buttons=(
            Button(label="Open #3", action="item.open", value="3"),
            Button(label="Open #4", action="item.open", value="4"),
        ),
        meta={"digest": "daily"},
    )
    rendered = blocks(digest)
    assert validate_blocks(rendered) == []
    opened = [(b["text"]["text"], b["accessory"]["value"]) for b in rendered if "accessory" in b]
    assert opened == [("• #3 Poster · @bob", "item.open|3"), ("• #4 Flyer · @carla", "item.open|4")]
    assert not [b for b in rendered if b["type"] == "actions"]  # every Open is beside its post
