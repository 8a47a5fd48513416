"""The normalized inbound events every adapter produces."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

# How far a platform vouches for a person on first contact (DESIGN.md "first contact"):
#   member    - a full member of the company's workspace or homeserver
#   external  - known to the platform but outside the company (a Slack guest)
#   local     - the console: a member, unless their first act is redeeming an invite
#   unknown   - anyone; only an invite or a link code lets them in (Telegram)
Trust = Literal["member", "external", "local", "unknown"]


@dataclass(frozen=True, kw_only=True)
class Actor:
    platform: str
    external_id: str
    username: str | None = None
    display_name: str | None = None
    language: str | None = None
    trust: Trust = "unknown"
    # A mail address the messenger vouches for as this person's (Slack's users.info with
    # users:read.email, confirmed): it becomes their verified address (bot.access).
    email: str | None = None


@dataclass(frozen=True, kw_only=True)
class Conversation:
    external_id: str
    direct: bool
    name: str | None = None


@dataclass(frozen=True, kw_only=True)
class Meta:
    platform: str
    event_id: str
    actor: Actor
    conversation: Conversation
    time: datetime


@dataclass(frozen=True, kw_only=True)
class MessageRefIn:
    """A message on the platform that an event points at (a reply, a reaction, a button)."""

    conversation: str
    message_id: str


# Why an adapter could not take a file a person sent: over the platform's or Pinwall's
# size limit, or the download failed. The core answers; the file is not attached.
Refusal = Literal["too_large", "unavailable"]


@dataclass(frozen=True, kw_only=True)
class InboundFile:
    name: str
    blob_id: str  # "" when refused
    mime_type: str | None = None
    size: int | None = None
    refused: Refusal | None = None
    limit: int | None = None  # the size limit in bytes, when refused as too large


@dataclass(frozen=True, kw_only=True)
class CommandInvoked:
    meta: Meta
    name: str
    arguments: str = ""
    raw: str = ""
    # A file or photo sent with the command (Telegram: a photo captioned "/share ...").
    attachments: tuple[InboundFile, ...] = ()
    type: Literal["command"] = "command"


@dataclass(frozen=True, kw_only=True)
class MessageReceived:
    meta: Meta
    text: str
    attachments: tuple[InboundFile, ...] = ()
    reply_to: MessageRefIn | None = None
    # The platform's id of this message, so that replies to it in its room find the post.
    message_id: str | None = None
    # "share": the person asked to share this message (Slack's "Share to Pinwall"
    # shortcut): the share flow, never a command or a comment. "mail": a mail to one of
    # Pinwall's addresses (adapters/email): a post of the group or a comment on the post
    # that `to` names, never a command.
    intent: Literal["message", "share", "mail"] = "message"
    # The platform's id of files sent together (a Telegram album arrives as one message
    # per photo): in a direct chat they make one share flow, not one question each.
    album: str | None = None
    # A mail's subject (the post's title) and what its address named: "group:<slug>" or
    # "item:<id>" (a reply to a notification), checked by the adapter against its signature.
    subject: str | None = None
    to: str | None = None
    type: Literal["message"] = "message"


@dataclass(frozen=True, kw_only=True)
class ButtonPressed:
    meta: Meta
    action: str
    value: str
    message: MessageRefIn | None = None
    # What the person typed with the press, where the platform asks at once (Slack's
    # modal for a rejection's reason); None for a plain press.
    text: str | None = None
    # Pressed by reacting with the button's emoji (Matrix: ✅ under an approval card),
    # so that where the card shows the outcome no message repeats it.
    by_reaction: bool = False
    type: Literal["button"] = "button"


@dataclass(frozen=True, kw_only=True)
class ReactionAdded:
    meta: Meta
    emoji: str
    message: MessageRefIn
    type: Literal["reaction"] = "reaction"


@dataclass(frozen=True, kw_only=True)
class ReactionRemoved:
    """A person took a reaction back (Telegram's message_reaction without it, Slack's
    reaction_removed): a 👍 taken back is an unlike. Given only to the handlers of
    taken-back reactions, so that no handler of added ones mistakes it for a vote."""

    meta: Meta
    emoji: str
    message: MessageRefIn
    type: Literal["unreaction"] = "unreaction"


Event = CommandInvoked | MessageReceived | ButtonPressed | ReactionAdded | ReactionRemoved

_EVENTS: TypeAdapter[Event] = TypeAdapter(Annotated[Event, Field(discriminator="type")])


def dump_event(event: Event) -> dict[str, object]:
    """JSON-ready form, stored in the inbox so an event can be applied after a restart."""
    data: dict[str, object] = _EVENTS.dump_python(event, mode="json")
    return data


def load_event(data: dict[str, object]) -> Event:
    return _EVENTS.validate_python(data)
