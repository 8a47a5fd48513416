"""The neutral outbound message, its addressing, and what a send can come to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import TypeAdapter

ButtonStyle = Literal["default", "primary", "danger"]


@dataclass(frozen=True, kw_only=True)
class Button:
    label: str
    action: str
    value: str
    style: ButtonStyle = "default"


@dataclass(frozen=True, kw_only=True)
class MessageField:
    label: str
    value: str


@dataclass(frozen=True, kw_only=True)
class FileRef:
    blob_id: str
    name: str
    mime_type: str | None = None
    image: bool = False


@dataclass(frozen=True, kw_only=True)
class Message:
    """One rich message. `text` and `title` use the markup subset of bot.markup."""

    text: str = ""
    title: str | None = None
    fields: tuple[MessageField, ...] = ()
    files: tuple[FileRef, ...] = ()
    buttons: tuple[Button, ...] = ()
    # The platform message this one answers or threads under, when known.
    thread: str | None = None
    # The platform message this one takes the place of: the outcome of a button press
    # shown where the question was. Platforms that cannot edit send it as a new message.
    replaces: str | None = None
    # Only worth showing in place (a card's running vote count): where the message it
    # replaces cannot be edited any more, nothing is sent instead of a second copy.
    edit_only: bool = False
    meta: dict[str, Any] = field(default_factory=dict)


_MESSAGE: TypeAdapter[Message] = TypeAdapter(Message)


def dump_message(message: Message) -> dict[str, Any]:
    data: dict[str, Any] = _MESSAGE.dump_python(message, mode="json")
    return data


def load_message(data: dict[str, Any]) -> Message:
    return _MESSAGE.validate_python(data)


@dataclass(frozen=True, slots=True)
class Target:
    """Where a message goes: a person's direct chat or a room, on one platform."""

    platform: str
    kind: Literal["dm", "room"]
    address: str


@dataclass(frozen=True, slots=True)
class Capabilities:
    buttons: bool = False
    reactions: bool = False
    html: bool = False
    edits: bool = False
    threads: bool = False
    max_text: int = 4000


# --- what a send comes to ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delivered:
    message_id: str | None = None
    conversation: str | None = None  # the actual conversation, where the target was a person


@dataclass(frozen=True, slots=True)
class RateLimited:
    retry_after: float
    # The limit holds for every conversation of the platform, not only this one (Matrix
    # limits the bot's account; Telegram and Slack mostly limit a chat or channel).
    everywhere: bool = False


@dataclass(frozen=True, slots=True)
class DeliveryFailed:
    reason: str
    permanent: bool = False
    # The recipient cannot be reached on this account any more (blocked the bot, left).
    unreachable: bool = False


SendResult = Delivered | RateLimited | DeliveryFailed
