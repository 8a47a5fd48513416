"""Inbound translation: Slack payloads (Events API, slash command, interactivity) as
Pinwall events. Pure functions; the I/O part looks up the person (users.info) and
fetches files first."""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qsl

import emoji

from adapters.slack.render import (
    ACTION_PREFIX,
    REASON_ACTIONS,
    REASON_BLOCK,
    REASON_INPUT,
    parse_button_value,
)
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

PLATFORM = "slack"
SHARE_SHORTCUT = "share_to_pinwall"
HOME_COMMAND = "cmd"  # a button or option of the App Home that says a command
HOME_COMMANDS = frozenset({"join", "leave", "digest"})
# Message subtypes that are a person's message; every other subtype (edits, joins,
# bot messages, deletions) is not a post.
_PERSON_SUBTYPES = {None, "file_share", "thread_broadcast"}
# Reactions are named on Slack; the ones Pinwall gives a meaning to, as emoji.
EMOJI = {
    "white_check_mark": "✅",
    "heavy_check_mark": "✅",
    "x": "❌",
    "negative_squared_cross_mark": "❌",
    "+1": "👍",
    "thumbsup": "👍",
    "-1": "👎",
    "heart": "❤️",
    "tada": "🎉",
    "eyes": "👀",
}


def reaction_emoji(name: str) -> str:
    """A Slack reaction's name as the emoji itself ("tada" -> 🎉), so that it counts
    and shows as that emoji everywhere; a workspace's own emoji keeps its :name:."""
    return EMOJI.get(name) or emoji.emojize(f":{name}:", language="alias")


@dataclass(frozen=True, slots=True)
class SlackUser:
    """What users.info says about a person, as far as Pinwall cares."""

    id: str
    name: str
    display_name: str
    locale: str | None
    trust: Trust
    is_bot: bool = False
    deleted: bool = False
    email: str | None = None  # a proven address (see user_from_info)


def user_from_info(
    user: dict[str, Any], team_id: str, trust_profile_email: bool = False
) -> SlackUser:
    """Full members of the workspace are members; guests (restricted, single-channel)
    and people of other workspaces (Slack Connect) are externals.

    The profile's mail address (present with the scope users:read.email) counts as the
    person's proven address when Slack says it is confirmed (is_email_confirmed) or the
    workspace's addresses are trusted (set by its admins); never for another
    workspace's people or bots."""
    profile = user.get("profile") or {}
    guest = bool(user.get("is_restricted") or user.get("is_ultra_restricted"))
    foreign = bool(team_id) and user.get("team_id") not in (None, team_id)
    bot = bool(user.get("is_bot")) or user.get("id") == "USLACKBOT"
    email = str(profile.get("email") or "").strip().lower() or None
    confirmed = bool(user.get("is_email_confirmed")) or trust_profile_email
    return SlackUser(
        id=str(user["id"]),
        name=str(user.get("name") or user["id"]),
        display_name=str(
            profile.get("display_name")
            or profile.get("real_name")
            or user.get("real_name")
            or user.get("name")
            or user["id"]
        ),
        locale=user.get("locale"),
        trust="external" if guest or foreign else "member",
        is_bot=bot,
        deleted=bool(user.get("deleted")),
        email=email if confirmed and not foreign and not bot else None,
    )


@dataclass(frozen=True, slots=True)
class WantedFile:
    id: str
    name: str
    url: str
    mime_type: str | None
    size: int | None


@dataclass(frozen=True)
class Inbound:
    """A payload as Pinwall sees it, but for the person's details and the files."""

    kind: Literal["command", "message", "button", "reaction", "unreaction"]
    event_id: str
    user_id: str
    conversation: Conversation
    time: datetime
    text: str = ""
    command: tuple[str, str] | None = None
    button: tuple[str, str, MessageRefIn | None] | None = None
    reaction: tuple[str, MessageRefIn] | None = None
    message_id: str | None = None
    reply_to: MessageRefIn | None = None
    intent: Literal["message", "share"] = "message"
    files: tuple[WantedFile, ...] = field(default=())
    home: bool = False  # a button on the App Home
    reason: str | None = None  # typed into the reason modal opened by the button
    trigger_id: str = ""  # Slack's, valid 3 s, to open a modal with

    def event(self, user: SlackUser, attachments: Sequence[InboundFile] = ()) -> Event:
        meta = Meta(
            platform=PLATFORM,
            event_id=self.event_id,
            actor=Actor(
                platform=PLATFORM,
                external_id=user.id,
                username=user.name,
                display_name=user.display_name,
                language=user.locale,
                trust=user.trust,
                email=user.email,
            ),
            conversation=self.conversation,
            time=self.time,
        )
        if self.command is not None:
            name, arguments = self.command
            return CommandInvoked(
                meta=meta,
                name=name,
                arguments=arguments,
                raw=self.text,
                attachments=tuple(attachments),
            )
        if self.button is not None:
            action, value, message = self.button
            return ButtonPressed(
                meta=meta, action=action, value=value, message=message, text=self.reason
            )
        if self.reaction is not None:
            emoji, message = self.reaction
            if self.kind == "unreaction":
                return ReactionRemoved(meta=meta, emoji=emoji, message=message)
            return ReactionAdded(meta=meta, emoji=emoji, message=message)
        return MessageReceived(
            meta=meta,
            text=self.text,
            attachments=tuple(attachments),
            reply_to=self.reply_to,
            message_id=self.message_id,
            intent=self.intent,
        )


_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|[^>]*)?>")
_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|([^>]*))?>")
_CHANNEL = re.compile(r"<#([A-Z0-9]+)(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<!(here|channel|everyone)(?:\|[^>]*)?>")


def plain_text(text: str) -> str:
    """Slack's encoded message text as typed: links as URLs, entities decoded."""
    text = _LINK.sub(r"\1", text)
    text = _MENTION.sub(lambda m: "@" + (m.group(2) or m.group(1)), text)
    text = _CHANNEL.sub(lambda m: "#" + (m.group(2) or m.group(1)), text)
    text = _SPECIAL.sub(r"@\1", text)
    return html.unescape(text)


def split_command(text: str) -> tuple[str, str]:
    """`/pinwall share marketing ...` → ("share", "marketing ..."); an empty one is help."""
    word, _, rest = text.strip().partition(" ")
    return (word.lower() or "help"), rest.strip()


def _time(ts: str | float | None) -> datetime:
    try:
        return datetime.fromtimestamp(float(ts or 0), tz=UTC) if ts else datetime.now(UTC)
    except ValueError:
        return datetime.now(UTC)


def _direct(channel_id: str) -> bool:
    return channel_id.startswith("D")


def _files(raw: Sequence[dict[str, Any]] | None) -> tuple[WantedFile, ...]:
    out = []
    for f in raw or ():
        url = f.get("url_private_download") or f.get("url_private")
        if not url or f.get("mode") in ("tombstone", "hidden_by_limit", "external"):
            continue
        out.append(
            WantedFile(
                id=str(f.get("id")),
                name=str(f.get("name") or f.get("title") or "file"),
                url=str(url),
                mime_type=f.get("mimetype"),
                size=f.get("size"),
            )
        )
    return tuple(out)


SIGNATURE_WINDOW = 300  # seconds a signed request is good for (Slack's own advice)


def signed(body: bytes, timestamp: str, signature: str, secret: str, *, now: float) -> bool:
    """Slack's request signature ("v0=" + HMAC-SHA256 of "v0:<timestamp>:<body>"), over
    the body's bytes as they came: for a body that Bolt cannot read (Bolt checks the
    others itself, and only on a body it could decode)."""
    if not timestamp.isdigit() or abs(now - int(timestamp)) > SIGNATURE_WINDOW:
        return False
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def malformed_body(body: bytes, content_type: str | None) -> str | None:
    """Why a request body is none that Slack sends, read the way Bolt reads it (JSON when
    the type says so or it starts with "{"; else a form, whose `payload` field, if any, is
    JSON): Bolt would fail on it with a 500. None for a body Bolt can read."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8"
    kind = (content_type or "").split(";")[0].strip().lower()
    raw, what = text, "JSON"
    if kind != "application/json" and not text.startswith("{"):
        payload = dict(parse_qsl(text, keep_blank_values=True)).get("payload") if text else None
        if payload is None:
            return None  # a slash command's plain form
        raw, what = payload, "form payload"
    try:
        parsed = json.loads(raw)
    except ValueError as err:
        return f"malformed {what} ({err})"
    return None if isinstance(parsed, dict) else f"{what} that is not an object"


def slash_command(body: dict[str, Any]) -> Inbound:
    channel = str(body.get("channel_id", ""))
    direct = _direct(channel) or body.get("channel_name") == "directmessage"
    return Inbound(
        kind="command",
        # Slack does not retry slash commands; each invocation has its own trigger id.
        event_id="cmd:" + str(body.get("trigger_id") or body.get("command_ts") or ""),
        user_id=str(body["user_id"]),
        conversation=Conversation(
            external_id=channel,
            direct=direct,
            name=body.get("channel_name") if not direct else None,
        ),
        time=datetime.now(UTC),
        text=str(body.get("text", "")),
        command=split_command(plain_text(str(body.get("text", "")))),
        trigger_id=str(body.get("trigger_id") or ""),
    )


def message_event(body: dict[str, Any], bot_user_id: str) -> Inbound | None:
    """A message in a direct chat with the bot or in a channel it is in."""
    event = body["event"]
    if event.get("subtype") not in _PERSON_SUBTYPES or event.get("bot_id") or not event.get("user"):
        return None
    channel = str(event.get("channel", ""))
    raw = str(event.get("text") or "")
    direct = event.get("channel_type") == "im" or _direct(channel)
    if not direct and f"<@{bot_user_id}>" in raw:
        return None  # a mention: the app_mention event carries it as a command
    thread = event.get("thread_ts")
    return Inbound(
        kind="message",
        event_id=str(body.get("event_id") or f"msg:{channel}:{event.get('ts')}"),
        user_id=str(event["user"]),
        conversation=Conversation(external_id=channel, direct=direct),
        time=_time(event.get("ts")),
        text=plain_text(raw),
        message_id=str(event.get("ts")),
        reply_to=(
            MessageRefIn(conversation=channel, message_id=str(thread))
            if thread and thread != event.get("ts")
            else None
        ),
        files=_files(event.get("files")),
    )


def app_mention(body: dict[str, Any], bot_user_id: str) -> Inbound | None:
    """`@Pinwall share marketing ...` in a channel: a command said there."""
    event = body["event"]
    if event.get("bot_id") or not event.get("user"):
        return None
    channel = str(event.get("channel", ""))
    raw = str(event.get("text") or "").replace(f"<@{bot_user_id}>", " ")
    text = plain_text(raw).strip()
    return Inbound(
        kind="command",
        event_id=str(body.get("event_id") or f"mention:{channel}:{event.get('ts')}"),
        user_id=str(event["user"]),
        conversation=Conversation(external_id=channel, direct=_direct(channel)),
        time=_time(event.get("ts")),
        text=text,
        command=split_command(text),
        files=_files(event.get("files")),
    )


def reaction_added(body: dict[str, Any], *, removed: bool = False) -> Inbound | None:
    """reaction_added (reaction_removed with `removed`: a 👍 taken back is an unlike)."""
    event = body["event"]
    item = event.get("item") or {}
    if item.get("type") != "message" or not event.get("user"):
        return None
    channel = str(item.get("channel", ""))
    name = str(event.get("reaction", "")).split("::")[0]  # skin tones: "+1::skin-tone-2"
    return Inbound(
        kind="unreaction" if removed else "reaction",
        event_id=str(
            body.get("event_id")
            or f"{'un' if removed else ''}react:{channel}:{item.get('ts')}:{event['user']}:{name}"
        ),
        user_id=str(event["user"]),
        conversation=Conversation(external_id=channel, direct=_direct(channel)),
        time=_time(event.get("event_ts")),
        reaction=(
            reaction_emoji(name),
            MessageRefIn(conversation=channel, message_id=str(item.get("ts"))),
        ),
    )


def block_action(body: dict[str, Any]) -> Inbound | None:
    """A press of one of Pinwall's buttons, on a message or on the App Home."""
    actions = body.get("actions") or []
    if not actions:
        return None
    pressed = actions[0]
    if not str(pressed.get("action_id", "")).startswith(ACTION_PREFIX):
        return None
    raw = pressed.get("value", "")
    if pressed.get("type") == "static_select":  # the App Home's selects: the chosen option
        raw = (pressed.get("selected_option") or {}).get("value", "")
    parsed = parse_button_value(str(raw))
    if parsed is None:
        return None  # a link button (Open): Slack opened it, nothing for Pinwall
    action, value = parsed
    user = str(body["user"]["id"])
    container = body.get("container") or {}
    home = container.get("type") == "view"
    channel = str((body.get("channel") or {}).get("id") or container.get("channel_id") or "")
    message_ts = container.get("message_ts") or (body.get("message") or {}).get("ts")
    ref = (
        MessageRefIn(conversation=channel, message_id=str(message_ts))
        if channel and message_ts
        else None
    )
    direct = home or _direct(channel)
    if action == HOME_COMMAND:
        # A control of the App Home that is a command of the person's own (join, leave,
        # digest times): said as that command in their direct chat; nothing else.
        command = split_command(value)
        if not home or command[0] not in HOME_COMMANDS:
            return None
        return Inbound(
            kind="command",
            event_id="act:" + str(pressed.get("action_ts") or body.get("trigger_id")) + ":" + user,
            user_id=user,
            conversation=Conversation(external_id=user, direct=True),
            time=_time(pressed.get("action_ts")),
            text=value,
            command=command,
            home=True,
        )
    return Inbound(
        kind="button",
        event_id="act:" + str(pressed.get("action_ts") or body.get("trigger_id")) + ":" + user,
        user_id=user,
        conversation=Conversation(external_id=user if home else channel, direct=direct),
        time=_time(pressed.get("action_ts")),
        button=(action, value, None if home else ref),
        home=home,
        trigger_id=str(body.get("trigger_id") or ""),
    )


# --- the reason modal (Reject / Request changes by button) ---------------------------


def wants_reason(found: Inbound) -> bool:
    """A press that Slack answers with the reason modal instead of a question by DM."""
    return found.button is not None and found.button[0] in REASON_ACTIONS


def reason_metadata(found: Inbound, key: bytes) -> str:
    """The press, carried through the modal in its private_metadata and signed, so that
    the submission decides on exactly what was pressed, where, by whom."""
    assert found.button is not None
    action, value, ref = found.button
    data = {
        "a": action,
        "v": value,
        "u": found.user_id,
        "c": found.conversation.external_id,
        "d": found.conversation.direct,
        "m": ref.message_id if ref else None,
        "h": found.home,
    }
    raw = json.dumps(data, separators=(",", ":"), sort_keys=True)
    return raw + "." + _mac(raw, key)


def _mac(raw: str, key: bytes) -> str:
    return hmac.new(key, raw.encode(), hashlib.sha256).hexdigest()[:32]


def view_submission(body: dict[str, Any], key: bytes) -> Inbound | str | None:
    """The submitted reason modal as the press it answers, with the reason typed; the
    string "empty" (or "empty_comment") when nothing was typed (Slack shows the error in
    the modal); None
    for a modal that is not Pinwall's, was tampered with or submitted by someone else."""
    view = body.get("view") or {}
    raw, _, mac = str(view.get("private_metadata") or "").rpartition(".")
    if not raw or not hmac.compare_digest(mac, _mac(raw, key)):
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    user = str((body.get("user") or {}).get("id") or "")
    if not isinstance(data, dict) or data.get("u") != user or data.get("a") not in REASON_ACTIONS:
        return None
    values = (view.get("state") or {}).get("values") or {}
    typed = ((values.get(REASON_BLOCK) or {}).get(REASON_INPUT) or {}).get("value")
    reason = str(typed or "").strip()
    if not reason:
        return "empty_comment" if REASON_ACTIONS[data["a"]] == "comment" else "empty"
    channel = str(data.get("c") or user)
    ref = (
        MessageRefIn(conversation=channel, message_id=str(data["m"]))
        if data.get("m") and not data.get("h")
        else None
    )
    return Inbound(
        kind="button",
        # One submission of one modal: a double submit takes effect once.
        event_id="view:" + str(view.get("id") or body.get("trigger_id")),
        user_id=user,
        conversation=Conversation(external_id=channel, direct=bool(data.get("d"))),
        time=datetime.now(UTC),
        button=(str(data["a"]), str(data.get("v") or ""), ref),
        home=bool(data.get("h")),
        reason=reason,
    )


def share_shortcut(body: dict[str, Any]) -> Inbound:
    """ "Share to Pinwall group" on a message: its text and files (a modal opens where it
    can, adapters/slack/modals.py; else the share flow by direct message)."""
    message = body.get("message") or {}
    user = str(body["user"]["id"])
    return Inbound(
        kind="message",
        event_id="share:" + str(body.get("trigger_id") or body.get("action_ts")),
        user_id=user,
        # The question which group goes to the person's direct chat with the bot.
        conversation=Conversation(external_id=user, direct=True),
        time=_time(body.get("action_ts")),
        text=plain_text(str(message.get("text") or "")),
        intent="share",
        files=_files(message.get("files")),
        trigger_id=str(body.get("trigger_id") or ""),
    )
