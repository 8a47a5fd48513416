"""Inbound translation: Telegram updates as Pinwall events. No I/O here.

A message with files becomes an event only after its files are fetched, so the
translation says which files it wants (`Inbound.files`) and builds the event from
what the I/O part stored (`Inbound.event`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from telegram import Chat, Message, MessageEntity, ReactionTypeEmoji, Update, User
from telegram.constants import ChatType

from adapters.telegram.render import CallbackCodec
from bot.delivery import LIKE
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

PLATFORM = "telegram"
# What Pinwall asks Telegram for; everything else is not its business. Reactions come only
# when asked for by name (and, in groups, only to a bot that is an administrator there).
ALLOWED_UPDATES = ("message", "callback_query", "message_reaction", "message_reaction_count")


@dataclass(frozen=True, slots=True)
class WantedFile:
    file_id: str
    name: str
    mime_type: str | None
    size: int | None


@dataclass(frozen=True, slots=True)
class Bot:
    """What the translation needs to know about the bot itself (from getMe)."""

    id: int
    username: str


@dataclass(frozen=True)
class Inbound:
    meta: Meta
    text: str
    files: tuple[WantedFile, ...] = ()
    command: tuple[str, str] | None = None  # (name, arguments)
    button: tuple[str, str, MessageRefIn] | None = None  # (action, value, message)
    message_id: str | None = None
    reply_to: MessageRefIn | None = None
    # A button press answers Telegram's spinner with this id (answerCallbackQuery).
    callback_id: str | None = None
    album: str | None = None  # media_group_id
    reaction: tuple[str, MessageRefIn] | None = None  # (emoji, the message reacted to)
    # The emoji a reaction change took back (on `reaction`'s message, or `taken_on`).
    taken_back: tuple[str, ...] = ()
    taken_on: MessageRefIn | None = None

    def events(self, attachments: Sequence[InboundFile] = ()) -> list[Event]:
        """What the update comes to: one event, or for a reaction change each reaction
        taken back (an unlike: 👍 taken back or swapped for another) and the one added."""
        taken: list[Event] = []
        if self.taken_on is not None:
            taken = [
                ReactionRemoved(
                    meta=replace(self.meta, event_id=f"{self.meta.event_id}:-{i}"),
                    emoji=emoji,
                    message=self.taken_on,
                )
                for i, emoji in enumerate(self.taken_back)
            ]
            if self.reaction is None:
                return taken
        return [*taken, self.event(attachments)]

    def event(self, attachments: Sequence[InboundFile] = ()) -> Event:
        if self.reaction is not None:
            emoji, message = self.reaction
            return ReactionAdded(meta=self.meta, emoji=emoji, message=message)
        if self.button is not None:
            action, value, message = self.button
            return ButtonPressed(meta=self.meta, action=action, value=value, message=message)
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
            album=self.album,
        )


def actor(user: User) -> Actor:
    return Actor(
        platform=PLATFORM,
        external_id=str(user.id),
        username=user.username,
        display_name=user.full_name,
        language=user.language_code,
        trust="unknown",  # on Telegram, nobody is in until they redeem an invite
    )


def conversation(chat: Chat) -> Conversation:
    return Conversation(
        external_id=str(chat.id),
        direct=chat.type == ChatType.PRIVATE,
        name=chat.title or chat.username,
    )


def split_command(text: str, entities: Sequence[MessageEntity], me: Bot) -> tuple[str, str] | None:
    """("share", "marketing ...") for "/share@pinwall_bot marketing ..."; None when the
    text is not a command, or a command for another bot."""
    starts = any(e.type == MessageEntity.BOT_COMMAND and e.offset == 0 for e in entities)
    if not starts and not text.startswith("/"):
        return None
    head, _, rest = text.partition(" ")
    word, newline, tail = head.partition("\n")  # "/help\nmore" is a command too
    name, at, addressee = word[1:].partition("@")
    if at and addressee.lower() != me.username.lower():
        return None
    if not name:
        return None
    arguments = (tail + " " + rest if newline else rest).strip()
    return name.lower(), arguments


def _text_with_links(text: str, entities: Sequence[MessageEntity]) -> str:
    """The text, with links hidden behind words (text_link entities) written out, so a
    forwarded article still carries its URL."""
    urls = [e.url for e in entities if e.type == MessageEntity.TEXT_LINK and e.url]
    missing = [u for u in dict.fromkeys(urls) if u not in text]
    return "\n".join([text, *missing]) if missing else text


def wanted_files(message: Message) -> tuple[WantedFile, ...]:
    if message.photo:
        biggest = message.photo[-1]
        name = f"photo-{biggest.file_unique_id}.jpg"
        return (WantedFile(biggest.file_id, name, "image/jpeg", biggest.file_size),)
    for media, default_name in (
        (message.document, "file"),
        (message.video, "video.mp4"),
        (message.animation, "animation.mp4"),
        (message.audio, "audio"),
        (message.voice, "voice.ogg"),
        (message.video_note, "video-note.mp4"),
    ):
        if media is not None:
            name = getattr(media, "file_name", None) or default_name
            mime = getattr(media, "mime_type", None)
            return (WantedFile(media.file_id, name, mime, media.file_size),)
    return ()


def added_emoji(old: Sequence[object], new: Sequence[object]) -> str | None:
    """The emoji a reaction change adds (the first, where a Premium user adds several);
    None when it only takes reactions back or sets custom or paid ones."""
    before = {r.emoji for r in old if isinstance(r, ReactionTypeEmoji)}
    for r in new:
        if isinstance(r, ReactionTypeEmoji) and r.emoji not in before:
            return r.emoji
    return None


def taken_back(old: Sequence[object], new: Sequence[object]) -> tuple[str, ...]:
    """The emoji a reaction change takes back (a non-Premium user has one reaction: a new
    one takes the old one's place)."""
    after = {r.emoji for r in new if isinstance(r, ReactionTypeEmoji)}
    return tuple(r.emoji for r in old if isinstance(r, ReactionTypeEmoji) and r.emoji not in after)


def counted(update: Update) -> tuple[str, str, int] | None:
    """An anonymous total (message_reaction_count, a channel's readers): (chat, message,
    how many 👍 it shows now); None for any other update."""
    totals = update.message_reaction_count
    if totals is None:
        return None
    likes = sum(
        r.total_count
        for r in totals.reactions
        if isinstance(r.type, ReactionTypeEmoji) and r.type.emoji == LIKE
    )
    return str(totals.chat.id), str(totals.message_id), likes


def translate(update: Update, me: Bot, codec: CallbackCodec, now: datetime) -> Inbound | None:
    """The update as Pinwall sees it, or None when it is nothing for Pinwall.

    A reaction a person adds is a ReactionAdded on the message (a like on a post, an
    approval on a card); one taken back a ReactionRemoved (an unlike). The anonymous
    totals of message_reaction_count (a channel's) are not a person's: the receiver
    gives them to bot.likes itself (see `counted`)."""
    event_id = f"{me.id}:{update.update_id}"
    changed = update.message_reaction
    if changed is not None:
        user = changed.user
        emoji = added_emoji(changed.old_reaction, changed.new_reaction)
        gone = taken_back(changed.old_reaction, changed.new_reaction)
        if user is None or user.is_bot or (emoji is None and not gone):
            return None
        meta = Meta(
            platform=PLATFORM,
            event_id=event_id,
            actor=actor(user),
            conversation=conversation(changed.chat),
            time=changed.date,
        )
        ref = MessageRefIn(conversation=str(changed.chat.id), message_id=str(changed.message_id))
        return Inbound(
            meta=meta,
            text="",
            reaction=(emoji, ref) if emoji is not None else None,
            taken_back=gone,
            taken_on=ref if gone else None,
        )
    query = update.callback_query
    if query is not None:
        message = query.message
        if query.from_user.is_bot or message is None or query.data is None:
            return None
        decoded = codec.decode(message.chat.id, query.data)
        if decoded is None:
            return None  # forged, or from another Pinwall: the I/O part says so and logs
        action, value = decoded
        meta = Meta(
            platform=PLATFORM,
            event_id=event_id,
            actor=actor(query.from_user),
            conversation=conversation(message.chat),
            time=now,
        )
        ref = MessageRefIn(conversation=str(message.chat.id), message_id=str(message.message_id))
        return Inbound(meta=meta, text="", button=(action, value, ref), callback_id=query.id)

    message = update.message
    if message is None or message.from_user is None or message.from_user.is_bot:
        return None
    if message.chat.type == ChatType.CHANNEL:
        return None
    text = message.text or message.caption or ""
    entities = message.entities if message.text else message.caption_entities
    meta = Meta(
        platform=PLATFORM,
        event_id=event_id,
        actor=actor(message.from_user),
        conversation=conversation(message.chat),
        time=message.date,
    )
    files = wanted_files(message)
    command = split_command(text, entities, me)
    if command is None and text.startswith("/") and message.chat.type != ChatType.PRIVATE:
        return None  # a command for another bot in a shared group
    reply = message.reply_to_message
    return Inbound(
        meta=meta,
        text=text if command else _text_with_links(text, entities),
        files=files,
        command=command,
        message_id=str(message.message_id),
        reply_to=(
            MessageRefIn(conversation=str(message.chat.id), message_id=str(reply.message_id))
            if reply is not None and not message.is_topic_message
            else None
        ),
        album=message.media_group_id,
    )
