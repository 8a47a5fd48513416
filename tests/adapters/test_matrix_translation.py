"""The Matrix adapter's pure parts: room events as Pinwall events, and neutral messages as
Matrix content (HTML with a plain body, numbered choices, reaction keys, edits, replies)."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.matrix.client import MatrixError, MatrixRateLimited, expect
from adapters.matrix.inbound import (
    Me,
    RoomView,
    invite_of,
    number_of,
    split_command,
    strip_reply_fallback,
    translate,
)
from adapters.matrix.render import (
    choice_for_key,
    choice_for_number,
    choices,
    edit_content,
    file_content,
    text_content,
)
from bot.events import ButtonPressed, CommandInvoked, MessageReceived, ReactionAdded
from bot.message import Button, FileRef, Message, MessageField

ME = Me(user_id="@pinwall:example.org", member_servers=frozenset({"example.org"}))
ROOM = RoomView(
    room_id="!room:example.org", name="Marketing", display_names={"@ann:example.org": "Ann"}
)
DM = RoomView(room_id="!dm:example.org", direct_with="@ann:example.org")


def event(body: str = "", *, sender: str = "@ann:example.org", **content: Any) -> dict[str, Any]:
    return {
        "type": "m.room.message",
        "event_id": "$e1",
        "sender": sender,
        "origin_server_ts": 1_700_000_000_000,
        "content": {"msgtype": "m.text", "body": body, **content},
    }


@pytest.mark.parametrize(
    ("text", "direct", "expected"),
    [
        ("!pw share marketing Look", False, ("share", "marketing Look")),
        ("!PW groups", False, ("groups", "")),
        ("!pw", False, ("help", "")),
        ("!pw\nhelp share", False, ("help", "share")),
        ("share marketing x", True, ("share", "marketing x")),
        ("share marketing x", False, None),
        ("!pwn it", False, None),
        ("hello there", True, None),
    ],
)
def test_commands(text: str, direct: bool, expected: tuple[str, str] | None) -> None:
    assert split_command(text, direct=direct) == expected


def test_a_command_in_a_room_and_chatter() -> None:
    inbound = translate(event("!pw join marketing"), ROOM, ME)
    assert inbound is not None
    command = inbound.event()
    assert isinstance(command, CommandInvoked)
    assert (command.name, command.arguments) == ("join", "marketing")
    assert command.meta.actor.trust == "member"
    assert command.meta.actor.username == "ann"
    assert command.meta.actor.display_name == "Ann"
    assert not command.meta.conversation.direct
    chatter = translate(event("nice poster"), ROOM, ME)
    assert chatter is not None
    assert isinstance(chatter.event(), MessageReceived)


def test_strangers_servers_and_the_bots_own_events() -> None:
    stranger = translate(event("hi", sender="@eve:elsewhere.net"), DM, ME)
    assert stranger is not None
    assert stranger.meta.actor.trust == "unknown"
    assert not stranger.meta.conversation.direct  # not the person this DM is with
    assert translate(event("hi", sender=ME.user_id), ROOM, ME) is None


def test_a_reply_loses_its_fallback_and_points_at_the_post() -> None:
    body = "> <@bob:example.org> the post\n> more\n\nGreat idea"
    relates = {"m.in_reply_to": {"event_id": "$post"}}
    inbound = translate(event(body, **{"m.relates_to": relates}), ROOM, ME)
    assert inbound is not None
    received = inbound.event()
    assert isinstance(received, MessageReceived)
    assert received.text == "Great idea"
    assert received.reply_to is not None
    assert received.reply_to.message_id == "$post"
    assert strip_reply_fallback("> just a quote") == "> just a quote"
    thread = {"rel_type": "m.thread", "event_id": "$root"}
    in_thread = translate(event("in a thread", **{"m.relates_to": thread}), ROOM, ME)
    assert in_thread is not None
    assert in_thread.reply_to is not None
    assert in_thread.reply_to.message_id == "$root"


def test_edits_notices_and_redactions_are_nothing_for_pinwall() -> None:
    edit = {"rel_type": "m.replace", "event_id": "$e0"}
    assert translate(event("* fixed", **{"m.relates_to": edit}), ROOM, ME) is None
    assert translate(event("beep", msgtype="m.notice"), ROOM, ME) is None
    redacted = event("x")
    redacted["unsigned"] = {"redacted_because": {}}
    assert translate(redacted, ROOM, ME) is None


def test_files_and_captions() -> None:
    image = event(
        "poster.png",
        msgtype="m.image",
        url="mxc://example.org/abc",
        info={"mimetype": "image/png", "size": 1234},
    )
    inbound = translate(image, DM, ME)
    assert inbound is not None
    [wanted] = inbound.files
    assert (wanted.mxc, wanted.name, wanted.mime_type, wanted.size) == (
        "mxc://example.org/abc",
        "poster.png",
        "image/png",
        1234,
    )
    assert inbound.text == ""
    captioned = event(
        "share marketing New poster",
        msgtype="m.file",
        filename="poster.pdf",
        url="mxc://example.org/def",
    )
    inbound = translate(captioned, DM, ME)
    assert inbound is not None
    assert inbound.command == ("share", "marketing New poster")
    encrypted_file = event("secret.png", msgtype="m.image", file={"url": "mxc://x/y"})
    assert translate(encrypted_file, DM, ME) is None


def test_reactions_numbers_and_encrypted_events() -> None:
    reaction = {
        "type": "m.reaction",
        "event_id": "$r",
        "sender": "@ann:example.org",
        "content": {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$q", "key": "✅"}},
    }
    inbound = translate(reaction, ROOM, ME)
    assert inbound is not None
    counted = inbound.event()
    assert isinstance(counted, ReactionAdded)
    assert (counted.emoji, counted.message.message_id) == ("✅", "$q")
    pressed = inbound.event(pressed=("share.pick", "1:2", counted.message))
    assert isinstance(pressed, ButtonPressed)
    assert (pressed.action, pressed.value) == ("share.pick", "1:2")
    assert [number_of(t) for t in ("2", " 3. ", "1️⃣", "12", "two", "1 2")] == [
        2,
        3,
        1,
        12,
        None,
        None,
    ]
    encrypted = {**event(), "type": "m.room.encrypted", "content": {"ciphertext": "..."}}
    inbound = translate(encrypted, ROOM, ME)
    assert inbound is not None
    assert inbound.encrypted
    assert inbound.event() is None


def test_invites_say_who_and_whether_direct() -> None:
    state = [
        {"type": "m.room.name", "state_key": "", "sender": "@ann:x.org", "content": {"name": "Hi"}},
        {
            "type": "m.room.member",
            "state_key": ME.user_id,
            "sender": "@ann:x.org",
            "content": {"membership": "invite", "is_direct": True, "reason": "code Ab3dE5gH9k"},
        },
    ]
    invite = invite_of("!r:x.org", state, ME)
    assert invite is not None
    assert (invite.inviter, invite.direct, invite.room_name) == ("@ann:x.org", True, "Hi")
    assert invite.code() == "Ab3dE5gH9k"
    assert invite_of("!r:x.org", state[:1], ME) is None


# --- rendering --------------------------------------------------------------------------


def test_html_with_a_plain_body() -> None:
    message = Message(
        title="bob in Marketing",
        text="**New** poster <b>\n- one\n- two\n> quoted\n[site](https://example.com/a?b=1&c=2)",
        fields=(MessageField(label="Where", value="Station"),),
        thread="$post",
    )
    content = text_content(message)
    assert content is not None
    assert content["msgtype"] == "m.notice"
    assert content["format"] == "org.matrix.custom.html"
    assert content["body"] == (
        "bob in Marketing\nNew poster <b>\n• one\n• two\n> quoted\n"
        "site (https://example.com/a?b=1&c=2)\nWhere: Station"
    )
    html = content["formatted_body"]
    assert html.startswith("<b>bob in Marketing</b><br><b>New</b> poster &lt;b&gt;")
    assert "<ul><li>one</li><li>two</li></ul><blockquote>quoted</blockquote>" in html
    assert '<a href="https://example.com/a?b=1&amp;c=2">site</a>' in html
    # In the thread under the post, with a reply fallback for clients without threads.
    assert content["m.relates_to"] == {
        "rel_type": "m.thread",
        "event_id": "$post",
        "is_falling_back": True,
        "m.in_reply_to": {"event_id": "$post"},
    }
    post = text_content(Message(text="x", meta={"item": 3}))
    assert post is not None
    assert post["msgtype"] == "m.text"


def test_buttons_become_numbered_choices_and_only_cards_get_reaction_keys() -> None:
    buttons = (
        Button(label="Marketing", action="share.pick", value="1:1"),
        Button(label="Sales", action="share.pick", value="1:2"),
        Button(label="🎉", action="poll.vote", value="P1:1"),
    )
    items = choices(Message(text="Which group?", buttons=buttons))
    assert [c.key for c in items] == [None, None, "🎉"]  # no keycaps, ever
    content = text_content(Message(text="Which group?", buttons=buttons), items)
    assert content is not None
    assert content["body"].endswith("[1] Marketing   [2] Sales   🎉")
    assert "1️⃣" not in content["body"] + content["formatted_body"]
    stored = [c.as_dict() for c in items]
    assert choice_for_key(stored, "🎉") == stored[2]
    assert choice_for_key(stored, "1️⃣") is None
    assert choice_for_number(stored, 2) == stored[1]
    # An approval card: ✅ and ❌ for its words, explained once in the choice line.
    card = Message(
        title="Proposal P1",
        buttons=(
            Button(label="Approve", action="proposal.approve", value="1:1"),
            Button(label="Reject", action="proposal.reject", value="1:1"),
            Button(label="Request changes", action="proposal.changes", value="1:1"),
        ),
        meta={"proposal": 1},
    )
    keyed = choices(card)
    assert [c.key for c in keyed] == ["✅", "❌", None]
    shown = text_content(card, keyed)
    assert shown is not None
    assert shown["body"].endswith("✅ Approve   ❌ Reject   [3] Request changes")
    # An ordinary post has no choices at all: people react and answer in its thread.
    post = Message(
        text="A post",
        buttons=(
            Button(label="Comment", action="item.comment", value="3"),
            Button(label="👍", action="item.like", value="3"),
        ),
        meta={"item": 3},
    )
    assert choices(post) == []
    posted = text_content(post)
    assert posted is not None
    assert posted["body"] == "A post"


def test_edits_files_and_the_bots_answers() -> None:
    new = text_content(Message(text="Shared as #1 in Marketing."))
    assert new is not None
    edit = edit_content(new, "$question")
    assert edit["m.relates_to"] == {"rel_type": "m.replace", "event_id": "$question"}
    assert edit["m.new_content"]["body"] == "Shared as #1 in Marketing."
    assert edit["body"].startswith("* ")
    ref = FileRef(blob_id="b" * 64, name="poster.png", mime_type="image/png", image=True)
    image = file_content(ref, "mxc://hs/abc", 1234, "image/png")
    assert image == {
        "msgtype": "m.image",
        "body": "poster.png",
        "filename": "poster.png",
        "url": "mxc://hs/abc",
        "info": {"mimetype": "image/png", "size": 1234},
    }
    pdf = FileRef(blob_id="c" * 64, name="list.pdf", mime_type="application/pdf")
    assert file_content(pdf, "mxc://hs/d", None, None)["msgtype"] == "m.file"


def test_error_values_become_exceptions() -> None:
    from nio import ErrorResponse, RoomSendError, RoomSendResponse

    ok = RoomSendResponse("$e", "!r")
    assert expect(ok, RoomSendResponse) is ok
    with pytest.raises(MatrixRateLimited) as limited:
        expect(RoomSendError("slow down", "M_LIMIT_EXCEEDED", 2500), RoomSendResponse)
    assert limited.value.retry_after == 2.5
    with pytest.raises(MatrixError) as refused:
        expect(ErrorResponse("no", "M_FORBIDDEN"), RoomSendResponse)
    assert refused.value.errcode == "M_FORBIDDEN"
    with pytest.raises(MatrixError, match="M_UNEXPECTED"):
        expect(object(), RoomSendResponse)
