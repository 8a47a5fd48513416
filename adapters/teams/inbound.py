"""Inbound translation: Bot Framework activities from Teams as Pinwall events. Pure
functions; the I/O part (adapter.py) checks the request's JWT first and fetches files.

- personal chat: a command typed with or without "/" ("join marketing"); anything else
  is a message (the share flow asks which group);
- channel and group chat: "@Pinwall join marketing" — the mention is cut off, the rest
  is the command; a message that does not mention the bot is a message there (a reply
  in a bridged channel's thread is a comment);
- card buttons: Action.Execute (invoke "adaptiveCard/action") and Action.Submit (a
  message whose `value` carries the press), both as the press Slack's buttons make;
- the message extension "Share to Pinwall group" (invoke composeExtension/submitAction);
- messageReaction: Teams' reactions (like, heart, ...) as their emoji;
- files (application/vnd.microsoft.teams.file.download.info) to be fetched.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

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
    Trust,
)
from bot.grammar import COMMAND_NAMES

PLATFORM = "teams"
SHARE_COMMAND = "shareToPinwall"  # the message extension's command id (manifest.py)
CARD_KEY = "pw"  # the key of a card action's data that carries "action|value"
FILE_INFO = "application/vnd.microsoft.teams.file.download.info"
# Teams' reaction types, as the emoji Pinwall counts; newer clients send the emoji.
REACTIONS = {
    "like": "👍",
    "heart": "❤️",
    "laugh": "😆",
    "surprised": "😮",
    "sad": "😢",
    "angry": "😠",
}

_TAG = re.compile(r"<[^>]+>")
_BREAK = re.compile(r"<br\s*/?>|</p>|</div>", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class WantedFile:
    name: str
    url: str
    mime_type: str | None = None


@dataclass(frozen=True)
class Inbound:
    """An activity as Pinwall sees it, but for the files to fetch."""

    kind: Literal["command", "message", "button", "reaction"]
    meta: Meta
    text: str = ""
    command: tuple[str, str] | None = None
    button: tuple[str, str, MessageRefIn | None] | None = None
    reaction: tuple[str, MessageRefIn] | None = None
    removed: bool = False  # a reaction taken back (reactionsRemoved): ReactionRemoved
    message_id: str | None = None
    reply_to: MessageRefIn | None = None
    intent: Literal["message", "share"] = "message"
    files: tuple[WantedFile, ...] = field(default=())

    def event(self, attachments: Sequence[InboundFile] = ()) -> Event:
        if self.command is not None:
            name, arguments = self.command
            return CommandInvoked(
                meta=self.meta,
                name=name,
                arguments=arguments,
                raw=self.text,
                attachments=tuple(attachments),
            )
        if self.button is not None:
            action, value, message = self.button
            return ButtonPressed(meta=self.meta, action=action, value=value, message=message)
        if self.reaction is not None:
            emoji, message = self.reaction
            if self.removed:
                return ReactionRemoved(meta=self.meta, emoji=emoji, message=message)
            return ReactionAdded(meta=self.meta, emoji=emoji, message=message)
        return MessageReceived(
            meta=self.meta,
            text=self.text,
            attachments=tuple(attachments),
            reply_to=self.reply_to,
            message_id=self.message_id,
            intent=self.intent,
        )


def plain_text(text: str) -> str:
    """Teams' message text (HTML when it has mentions or formatting) as typed."""
    text = _BREAK.sub("\n", text)
    return html.unescape(_TAG.sub("", text)).replace("\xa0", " ").strip()


def split_command(text: str) -> tuple[str, str]:
    word, _, rest = text.strip().partition(" ")
    return (word.lstrip("/").lower() or "help"), rest.strip()


def base_conversation(conversation_id: str) -> tuple[str, str | None]:
    """A channel thread's conversation id ("19:...@thread.tacv2;messageid=17") as the
    channel's id and the thread's root message."""
    base, sep, root = conversation_id.partition(";messageid=")
    return base, (root or None) if sep else None


def tenant_of(activity: dict[str, Any]) -> str:
    conversation = activity.get("conversation") or {}
    tenant = ((activity.get("channelData") or {}).get("tenant") or {}).get("id")
    return str(conversation.get("tenantId") or tenant or "")


def is_direct(activity: dict[str, Any]) -> bool:
    """A personal chat, as Teams says it; one that does not say is no personal chat."""
    return bool((activity.get("conversation") or {}).get("conversationType") == "personal")


def uninstalled(activity: dict[str, Any]) -> bool:
    """The person removed the app from their personal chat (installationUpdate remove)."""
    return (
        activity.get("type") == "installationUpdate"
        and activity.get("action") == "remove"
        and is_direct(activity)
    )


def _time(raw: object) -> datetime:
    if isinstance(raw, str):
        try:
            return datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            pass
    return datetime.now(UTC)


def _meta(activity: dict[str, Any], event_id: str, tenant: str, direct: bool) -> Meta:
    sender = activity.get("from") or {}
    user = str(sender.get("id") or "")
    # People of the company's own tenant are members; anyone else (another tenant's
    # people in a shared channel, federated chats) is an external: a guest by invite only.
    trust: Trust = "member" if tenant and tenant_of(activity) == tenant else "external"
    conversation = str((activity.get("conversation") or {}).get("id") or "")
    base, _root = base_conversation(conversation)
    return Meta(
        platform=PLATFORM,
        event_id=event_id,
        actor=Actor(
            platform=PLATFORM,
            external_id=user,
            username=sender.get("name"),
            display_name=sender.get("name"),
            language=activity.get("locale"),
            trust=trust,
        ),
        conversation=Conversation(
            external_id=user if direct else base,
            direct=direct,
            name=(activity.get("conversation") or {}).get("name"),
        ),
        time=_time(activity.get("timestamp")),
    )


def _mentions_bot(activity: dict[str, Any], bot_id: str) -> list[str]:
    """The texts ("<at>Pinwall</at>") with which the activity mentions the bot."""
    found = []
    for entity in activity.get("entities") or ():
        if entity.get("type") != "mention":
            continue
        if (entity.get("mentioned") or {}).get("id") in (bot_id, f"28:{bot_id}"):
            found.append(str(entity.get("text") or ""))
    return found


def _files(raw: object) -> tuple[WantedFile, ...]:
    out = []
    for a in raw if isinstance(raw, list) else ():
        if not isinstance(a, dict) or a.get("contentType") != FILE_INFO:
            continue
        content = a.get("content") or {}
        url = content.get("downloadUrl")
        if isinstance(url, str) and url:
            out.append(WantedFile(name=str(a.get("name") or "file"), url=url))
    return tuple(out)


def _press(data: object) -> tuple[str, str] | None:
    if not isinstance(data, dict):
        return None
    raw = data.get(CARD_KEY)
    if not isinstance(raw, str):
        return None
    action, sep, value = raw.partition("|")
    return (action, value) if sep and action else None


def translate(activity: dict[str, Any], bot_id: str, tenant: str) -> Inbound | None:
    """One activity as an inbound event; None for what Pinwall does not act on
    (conversationUpdate, typing, the bot's own messages, an unknown invoke)."""
    kind = activity.get("type")
    sender = activity.get("from") or {}
    if not sender.get("id") or sender.get("id") in (bot_id, f"28:{bot_id}"):
        return None
    direct = is_direct(activity)
    conversation = str((activity.get("conversation") or {}).get("id") or "")
    base, root = base_conversation(conversation)
    event_id = str(activity.get("id") or "")
    if kind == "message":
        return _message(activity, bot_id, tenant, direct, base, root, event_id)
    if kind == "invoke":
        return _invoke(activity, tenant, direct, base)
    if kind == "messageReaction":
        return _reaction(activity, tenant, direct, base, event_id)
    return None


def _reaction(
    activity: dict[str, Any], tenant: str, direct: bool, base: str, event_id: str
) -> Inbound | None:
    """A reaction given (reactionsAdded) or taken back (reactionsRemoved): a like and its
    undoing. Teams sends each in an activity of its own."""
    added = activity.get("reactionsAdded") or []
    removed = activity.get("reactionsRemoved") or []
    target = activity.get("replyToId")
    if not (added or removed) or not target:
        return None
    reaction = str((added or removed)[0].get("type") or "")
    emoji = REACTIONS.get(reaction, reaction)
    ref = MessageRefIn(conversation=base, message_id=str(target))
    sender = str((activity.get("from") or {}).get("id") or "")
    # The activity's own id where it has one: a like given again after it was taken back
    # is a new event, not a repeat of the first.
    verb = "reaction" if added else "unreaction"
    key = f"{verb}:{base}:{target}:{sender}:{reaction}" + (f":{event_id}" if event_id else "")
    meta = _meta(activity, key, tenant, direct)
    return Inbound(kind="reaction", meta=meta, reaction=(emoji, ref), removed=not added)


def _message(
    activity: dict[str, Any],
    bot_id: str,
    tenant: str,
    direct: bool,
    base: str,
    root: str | None,
    event_id: str,
) -> Inbound | None:
    meta = _meta(activity, event_id, tenant, direct)
    press = _press(activity.get("value"))
    if press is not None:  # Action.Submit on a card
        ref = activity.get("replyToId")
        message = MessageRefIn(conversation=base, message_id=str(ref)) if ref else None
        return Inbound(kind="button", meta=meta, button=(press[0], press[1], message))
    raw = str(activity.get("text") or "")
    mentions = _mentions_bot(activity, bot_id)
    for said in mentions:
        raw = raw.replace(said, " ")
    text = plain_text(raw)
    files = _files(activity.get("attachments"))
    if not text and not files:
        return None
    name, arguments = split_command(text)
    if (mentions and not direct) or (direct and (text.startswith("/") or name in COMMAND_NAMES)):
        return Inbound(kind="command", meta=meta, text=text, command=(name, arguments), files=files)
    reply_to = MessageRefIn(conversation=base, message_id=root) if root else None
    return Inbound(
        kind="message",
        meta=meta,
        text=text,
        message_id=event_id or None,
        reply_to=reply_to,
        files=files,
    )


def _invoke(activity: dict[str, Any], tenant: str, direct: bool, base: str) -> Inbound | None:
    name = activity.get("name")
    value = activity.get("value") or {}
    event_id = str(activity.get("id") or "")
    if name == "adaptiveCard/action":  # Action.Execute
        press = _press((value.get("action") or {}).get("data"))
        if press is None:
            return None
        ref = activity.get("replyToId")
        message = MessageRefIn(conversation=base, message_id=str(ref)) if ref else None
        meta = _meta(activity, event_id or f"execute:{base}:{ref}", tenant, direct)
        return Inbound(kind="button", meta=meta, button=(press[0], press[1], message))
    if name == "composeExtension/submitAction" and value.get("commandId") == SHARE_COMMAND:
        payload = value.get("messagePayload") or {}
        body = payload.get("body") or {}
        text = plain_text(str(body.get("content") or ""))
        note = (value.get("data") or {}).get("note")  # the dialog's "Note" field
        if isinstance(note, str) and note.strip():
            text = f"{note.strip()}\n{text}" if text else note.strip()
        meta = _meta(activity, event_id or f"share:{base}:{payload.get('id')}", tenant, True)
        # The question which group goes to the person's personal chat with the bot.
        return Inbound(
            kind="message",
            meta=meta,
            text=text,
            intent="share",
            files=_files(payload.get("attachments")),
        )
    return None
