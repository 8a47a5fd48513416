"""Inbound translation: Matrix room events as Pinwall events. No I/O here.

The translation works on the events' JSON as the homeserver sent it. What needs the
store or the network is left to the I/O part: files to fetch (`Inbound.files`), and
whether a reaction or a numbered answer presses a button of one of the bot's messages
(`Inbound.reaction`, `Inbound.number`); `Inbound.event` then builds the event.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from adapters.matrix import polls
from adapters.matrix.render import KEYCAPS
from bot import grammar
from bot.events import (
    Actor,
    ButtonPressed,
    CommandInvoked,
    Conversation,
    Event,
    InboundFile,
    MessageReceived,
    MessageRefIn,
    Meta,
    ReactionAdded,
    ReactionRemoved,
)

PLATFORM = "matrix"
PREFIX = "!pw"
TEXT_TYPES = ("m.text", "m.emote")
FILE_TYPES = {"m.image": "image", "m.file": "file", "m.video": "video", "m.audio": "audio"}
_NUMBER = re.compile(r"^\s*(\d{1,2})[.)]?\s*$")
_WORDS = re.compile(r"(\S+)(?:\s+(.*))?$", re.DOTALL)
_CODE = re.compile(r"\b([A-Za-z0-9]{10})\b")


def server_of(user_id: str) -> str:
    """ "@alice:example.org" -> "example.org" (a port stays: "localhost:8448")."""
    return user_id.partition(":")[2].lower()


def localpart(user_id: str) -> str:
    return user_id.removeprefix("@").partition(":")[0]


@dataclass(frozen=True, slots=True)
class Me:
    user_id: str
    member_servers: frozenset[str]  # whose users are members on first contact

    def trust(self, user_id: str) -> Literal["member", "unknown"]:
        return "member" if server_of(user_id) in self.member_servers else "unknown"


@dataclass(frozen=True, slots=True)
class RoomView:
    """What the translation needs to know about a room (from the synced state)."""

    room_id: str
    name: str | None = None
    # The person this room is the direct chat with (a room invited into as a direct
    # chat that has no one else in it); None for a shared room.
    direct_with: str | None = None
    display_names: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WantedFile:
    mxc: str
    name: str
    mime_type: str | None
    size: int | None


@dataclass(frozen=True)
class Inbound:
    meta: Meta
    text: str = ""
    files: tuple[WantedFile, ...] = ()
    command: tuple[str, str] | None = None  # (name, arguments)
    message_id: str | None = None
    reply_to: MessageRefIn | None = None
    # A reaction: its key, on this message (a button press where it is one of the
    # bot's prompts, else a reaction the core may count on a post).
    reaction: tuple[str, MessageRefIn] | None = None
    # A bare number (or keycap): a button's number, where it answers a prompt.
    number: int | None = None
    # A native poll's answer: (the poll's start event, the answer ids chosen).
    poll_response: tuple[str, tuple[str, ...]] | None = None
    encrypted: bool = False  # a message the bot cannot read
    # A redaction: the event it takes back (a person's 👍 taken back is an unlike; the
    # I/O part finds what the redacted event was, see taken_back).
    redacts: str | None = None

    def event(
        self,
        attachments: Sequence[InboundFile] = (),
        pressed: tuple[str, str, MessageRefIn] | None = None,
    ) -> Event | None:
        """The Pinwall event; `pressed` = (action, value, message) where the I/O part
        found that this reaction or number presses a button."""
        if self.redacts is not None:
            return None  # only what it takes back may be something (taken_back)
        if pressed is not None:
            action, value, message = pressed
            return ButtonPressed(
                meta=self.meta,
                action=action,
                value=value,
                message=message,
                by_reaction=self.reaction is not None,
            )
        if self.encrypted or self.poll_response is not None:
            return None  # an answer to no poll of Pinwall's
        if self.reaction is not None:
            key, message = self.reaction
            return ReactionAdded(meta=self.meta, emoji=key, message=message)
        if self.command is not None:
            name, arguments = self.command
            return CommandInvoked(
                meta=self.meta,
                name=name,
                arguments=arguments,
                raw=self.text,
                attachments=tuple(attachments),
            )
        return MessageReceived(
            meta=self.meta,
            text=self.text,
            attachments=tuple(attachments),
            reply_to=self.reply_to,
            message_id=self.message_id,
        )


def split_command(text: str, *, direct: bool) -> tuple[str, str] | None:
    """("share", "marketing ...") for "!pw share marketing ..."; in a direct chat the
    prefix may be left out ("share marketing ..."). None when the text is no command."""
    m = _WORDS.match(text.strip())
    if m is None:
        return None
    first, rest = m.group(1), (m.group(2) or "").strip()
    if first.lower() == PREFIX:
        command = _WORDS.match(rest)
        if command is None:
            return "help", ""
        return command.group(1).lower(), (command.group(2) or "").strip()
    if direct and first.lower() in grammar.COMMAND_NAMES:
        return first.lower(), rest
    return None


def strip_reply_fallback(body: str) -> str:
    """A reply's body starts with the quoted original ("> <@a:b> text" lines and an
    empty line) in older clients: that is not what the person wrote."""
    lines = body.split("\n")
    if not lines[0].startswith("> <"):
        return body
    i = 0
    while i < len(lines) and lines[i].startswith(">"):
        i += 1
    if i >= len(lines) or lines[i] != "":
        return body  # no fallback: a quote the person wrote
    return "\n".join(lines[i + 1 :])


def number_of(text: str) -> int | None:
    """1 for "1", "1." or "1️⃣"; None for anything else."""
    stripped = text.strip()
    if stripped in KEYCAPS:
        return KEYCAPS.index(stripped) + 1
    m = _NUMBER.match(stripped)
    return int(m.group(1)) if m else None


def _relation(content: Mapping[str, Any]) -> Mapping[str, Any]:
    relates = content.get("m.relates_to")
    return relates if isinstance(relates, Mapping) else {}


def reply_target(content: Mapping[str, Any]) -> str | None:
    """The event a message answers: a reply, or the root of the thread it is in."""
    relates = _relation(content)
    if relates.get("rel_type") == "m.thread" and isinstance(relates.get("event_id"), str):
        return str(relates["event_id"])
    in_reply = relates.get("m.in_reply_to")
    if isinstance(in_reply, Mapping) and isinstance(in_reply.get("event_id"), str):
        return str(in_reply["event_id"])
    return None


def _time(event: Mapping[str, Any]) -> datetime:
    ts = event.get("origin_server_ts")
    if isinstance(ts, int | float):
        return datetime.fromtimestamp(ts / 1000, tz=UTC)
    return datetime.now(UTC)


def actor(user_id: str, room: RoomView, me: Me) -> Actor:
    return Actor(
        platform=PLATFORM,
        external_id=user_id,
        username=localpart(user_id),
        display_name=room.display_names.get(user_id) or None,
        language=None,  # Matrix does not say; the person can choose with `settings`
        trust=me.trust(user_id),
    )


def translate(event: Mapping[str, Any], room: RoomView, me: Me) -> Inbound | None:
    """The event as Pinwall sees it, or None when it is nothing for Pinwall."""
    sender = event.get("sender")
    event_id = event.get("event_id")
    kind = event.get("type")
    content = event.get("content")
    if not isinstance(sender, str) or not isinstance(event_id, str) or sender == me.user_id:
        return None
    if not isinstance(content, Mapping) or "redacted_because" in event.get("unsigned", {}):
        return None
    direct = room.direct_with == sender
    meta = Meta(
        platform=PLATFORM,
        event_id=event_id,
        actor=actor(sender, room, me),
        conversation=Conversation(external_id=room.room_id, direct=direct, name=room.name),
        time=_time(event),
    )
    if kind == "m.room.encrypted":
        return Inbound(meta=meta, encrypted=True, message_id=event_id)
    if kind == "m.room.redaction":  # "redacts": at the top (rooms < v11), in the content
        redacted = event.get("redacts") or content.get("redacts")
        return Inbound(meta=meta, redacts=redacted) if isinstance(redacted, str) else None
    if kind == "m.reaction":
        relates = _relation(content)
        key, target = relates.get("key"), relates.get("event_id")
        if relates.get("rel_type") != "m.annotation" or not isinstance(key, str):
            return None
        if not isinstance(target, str) or not key.strip():
            return None
        ref = MessageRefIn(conversation=room.room_id, message_id=target)
        return Inbound(meta=meta, reaction=(key.strip(), ref))
    response = polls.response_of(str(kind), content)
    if response is not None:
        return Inbound(meta=meta, poll_response=response)
    if kind != "m.room.message":
        return None
    if _relation(content).get("rel_type") == "m.replace" or "m.new_content" in content:
        return None  # an edit of an earlier message: that one counted already
    msgtype = content.get("msgtype")
    body = content.get("body")
    if not isinstance(body, str):
        return None
    replied = reply_target(content)
    reply_to = MessageRefIn(conversation=room.room_id, message_id=replied) if replied else None
    if msgtype in TEXT_TYPES:
        text = strip_reply_fallback(body) if replied else body
        command = split_command(text, direct=direct)
        return Inbound(
            meta=meta,
            text=text.strip() if command else text,
            command=command,
            message_id=event_id,
            reply_to=reply_to,
            number=number_of(text) if command is None else None,
        )
    if msgtype in FILE_TYPES:
        url = content.get("url")
        if not isinstance(url, str) or not url.startswith("mxc://"):
            return None  # an encrypted attachment ("file"), or broken
        info = content.get("info") if isinstance(content.get("info"), Mapping) else {}
        assert isinstance(info, Mapping)
        filename = content.get("filename")
        # Since Matrix 1.10 a body that differs from the file name is a caption.
        caption = body if isinstance(filename, str) and filename and body != filename else ""
        name = filename if isinstance(filename, str) and filename else body
        size = info.get("size")
        mime = info.get("mimetype")
        wanted = WantedFile(
            mxc=url,
            name=(name or FILE_TYPES[str(msgtype)]).strip()[:255] or "file",
            mime_type=mime if isinstance(mime, str) else None,
            size=size if isinstance(size, int) else None,
        )
        command = split_command(caption, direct=direct) if caption else None
        return Inbound(
            meta=meta,
            text=caption,
            files=(wanted,),
            command=command,
            message_id=event_id,
            reply_to=reply_to,
        )
    return None  # notices (other bots), locations, stickers: nothing for Pinwall


# --- invites ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Invite:
    room_id: str
    inviter: str
    direct: bool  # invited as a direct chat (is_direct)
    reason: str = ""
    room_name: str | None = None

    def code(self) -> str | None:
        """An invite code the inviter gave as the invite's reason (`/invite @bot CODE`)."""
        m = _CODE.search(self.reason)
        return m.group(1) if m else None


def invite_of(room_id: str, invite_state: Sequence[Mapping[str, Any]], me: Me) -> Invite | None:
    """Who invited the bot into a room, from the room's stripped invite state."""
    inviter: str | None = None
    direct = False
    reason = ""
    name: str | None = None
    for event in invite_state:
        content = event.get("content")
        if not isinstance(content, Mapping):
            continue
        if event.get("type") == "m.room.member" and event.get("state_key") == me.user_id:
            if content.get("membership") != "invite":
                continue
            sender = event.get("sender")
            inviter = sender if isinstance(sender, str) else None
            direct = content.get("is_direct") is True
            raw_reason = content.get("reason")
            reason = raw_reason if isinstance(raw_reason, str) else ""
        elif event.get("type") == "m.room.name" and isinstance(content.get("name"), str):
            name = content["name"]
    if inviter is None:
        return None
    return Invite(room_id=room_id, inviter=inviter, direct=direct, reason=reason, room_name=name)


def taken_back(inbound: Inbound, redacted: Event | None) -> ReactionRemoved | None:
    """A redaction of the person's own reaction (as Pinwall recorded it): the reaction
    taken back; None for anything else (a message redacted, someone else's event)."""
    if not isinstance(redacted, ReactionAdded):
        return None
    meta = inbound.meta
    if (
        redacted.meta.actor.external_id != meta.actor.external_id
        or redacted.message.conversation != meta.conversation.external_id
    ):
        return None
    return ReactionRemoved(meta=meta, emoji=redacted.emoji, message=redacted.message)
