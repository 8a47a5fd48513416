"""Publishing to a public Telegram channel: a bot, administrator of the channel, posts there.

`[outlets.NAME]` options: `chat` (the channel: `@name` or its id, -100...; required),
`base_url` (the Bot API; default: PINWALL_TELEGRAM_BASE_URL, itself defaulting to
https://api.telegram.org/bot). The token is `PINWALL_OUTLET_<NAME>_TOKEN` when set, else
Pinwall's own bot (PINWALL_TELEGRAM_TOKEN): then adding that bot to the channel as an
administrator allowed to post messages is all the setup there is.

One Bot API call per publication: the text as HTML (escaped) with the link's preview,
or the media with the text as caption (one photo or file, or an album of up to 10;
images up to 10 MB go as photos, else everything goes as files, since Telegram does not
mix files with photos in one album). Telegram has no idempotency key: a timeout after
the call was sent is reported as uncertain, for an admin to decide.
"""

from __future__ import annotations

import asyncio
import html
import os
from collections.abc import Sequence
from datetime import timedelta

import httpx

# python-telegram-bot 22: time periods as timedelta (the int form warns), as in the adapter;
# set before telegram is imported.
os.environ.setdefault("PTB_TIMEDELTA", "true")

from telegram import (
    Bot,
    InputFile,
    InputMediaDocument,
    InputMediaPhoto,
    LinkPreviewOptions,
    Message,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest

from bot.config import Settings, load_settings, outlet_token_variable
from bot.errors import ConfigError
from bot.messenger import Problem
from bot.outlets import OutletSpec, publication_text
from jobs.outlets.base import (
    MediaFile,
    OutletContext,
    PermanentPublishError,
    Publication,
    Published,
    PublishError,
    TransientPublishError,
    UncertainPublishError,
)

MAX_TEXT = 4096  # characters after the HTML is parsed
MAX_CAPTION = 1024
MAX_MEDIA = 10  # files in one album
MAX_PHOTO_BYTES = 10 * 1024 * 1024  # larger images go as files
MAX_UPLOAD_BYTES = 50 * 1024 * 1024  # what a bot may upload
PHOTO_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
# Connecting, or waiting for a pooled connection: the request has not left.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def file_base_url(base_url: str) -> str:
    """https://api.telegram.org/bot -> https://api.telegram.org/file/bot"""
    head, sep, tail = base_url.rstrip("/").rpartition("/")
    return f"{head}/file/{tail}" if sep else base_url + "/file"


def _seconds(value: int | float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class TelegramChannelPublisher:
    def __init__(
        self, name: str, *, chat: str | int, token: str, base_url: str, timeout: float = 30.0
    ) -> None:
        self.name = name
        self.chat = chat
        connect = min(timeout, 10.0)
        self._requests = (
            HTTPXRequest(
                connection_pool_size=2,
                connect_timeout=connect,
                pool_timeout=connect,
                read_timeout=timeout,
                write_timeout=timeout,
                media_write_timeout=timeout,
            ),
            HTTPXRequest(connection_pool_size=1),  # getUpdates: never used here
        )
        self.bot = Bot(
            token,
            base_url=base_url,
            base_file_url=file_base_url(base_url),
            request=self._requests[0],
            get_updates_request=self._requests[1],
        )
        self._ready = False

    async def aclose(self) -> None:
        if self._ready:
            await self.bot.shutdown()
        for request in self._requests:  # also when getMe failed and the bot never started
            await request.shutdown()

    async def check(self) -> list[Problem]:
        """For `pinwall doctor`: is the token accepted, is the channel known to the bot,
        and may the bot post there."""
        token_var = outlet_token_variable(self.name)
        try:
            await self.bot.initialize()  # getMe
            self._ready = True
            chat = await self.bot.get_chat(self.chat)
            member = await self.bot.get_chat_member(chat.id, self.bot.id)
        except InvalidToken:
            return [
                Problem(
                    f"Telegram does not accept the bot token of outlet {self.name}",
                    f"copy it again from @BotFather into {token_var} (or PINWALL_TELEGRAM_TOKEN)",
                )
            ]
        except BadRequest as exc:
            return [
                Problem(
                    f"the channel {self.chat} of outlet {self.name} is unknown to the bot "
                    f"({exc.message})",
                    "add the bot to the channel as an administrator, and check the channel's "
                    "@name or id",
                )
            ]
        except TelegramError as exc:
            return [Problem(f"outlet {self.name}: Telegram does not answer ({exc})", "try again")]
        if member.status == "creator" or getattr(member, "can_post_messages", False):
            return []
        return [
            Problem(
                f"the bot may not post in the channel {self.chat} of outlet {self.name}",
                "make it an administrator of the channel with the right to post messages",
            )
        ]

    async def publish(self, publication: Publication) -> Published:
        text = publication_text(publication.text, publication.link)
        self._check(text, publication.media)
        try:
            if not self._ready:
                await self.bot.initialize()  # getMe: is the token good?
                self._ready = True
        except TelegramError as exc:
            raise self._failure(exc, posting=False) from exc
        try:
            message = await self._send(text, publication)
        except TelegramError as exc:
            raise self._failure(exc, posting=True) from exc
        username = message.chat.username
        if username is None and isinstance(self.chat, str) and self.chat.startswith("@"):
            username = self.chat[1:]
        return Published(
            remote_id=f"{message.chat.id}:{message.message_id}",
            url=f"https://t.me/{username}/{message.message_id}" if username else None,
        )

    @staticmethod
    def _check(text: str, media: Sequence[MediaFile]) -> None:
        if len(media) > MAX_MEDIA:
            raise PermanentPublishError(f"Telegram takes at most {MAX_MEDIA} files in one post")
        for file in media:
            if file.size > MAX_UPLOAD_BYTES:
                raise PermanentPublishError(
                    f"{file.name} is larger than Telegram's {MAX_UPLOAD_BYTES // 2**20} MB"
                )
        limit = MAX_CAPTION if media else MAX_TEXT
        if len(text) > limit:
            what = "a caption" if media else "a message"
            raise PermanentPublishError(f"Telegram takes at most {limit} characters in {what}")

    async def _send(self, text: str, publication: Publication) -> Message:
        markup = html.escape(text, quote=False)
        media = publication.media
        if not media:
            preview = LinkPreviewOptions(url=publication.link) if publication.link else None
            return await self.bot.send_message(
                self.chat, markup, parse_mode=ParseMode.HTML, link_preview_options=preview
            )
        as_photos = all(m.mime_type in PHOTO_TYPES and m.size <= MAX_PHOTO_BYTES for m in media)
        caption = markup or None
        if len(media) == 1:
            file = media[0]
            upload = InputFile(await asyncio.to_thread(file.path.read_bytes), filename=file.name)
            if as_photos:
                return await self.bot.send_photo(
                    self.chat, upload, caption=caption, parse_mode=ParseMode.HTML
                )
            return await self.bot.send_document(
                self.chat, upload, caption=caption, parse_mode=ParseMode.HTML
            )
        album: list[InputMediaPhoto | InputMediaDocument] = []
        for i, file in enumerate(media):
            data = await asyncio.to_thread(file.path.read_bytes)
            first = caption if i == 0 else None
            if as_photos:
                album.append(
                    InputMediaPhoto(
                        data, caption=first, parse_mode=ParseMode.HTML, filename=file.name
                    )
                )
            else:
                album.append(
                    InputMediaDocument(
                        data, caption=first, parse_mode=ParseMode.HTML, filename=file.name
                    )
                )
        messages = await self.bot.send_media_group(self.chat, album)
        return messages[0]

    @staticmethod
    def _failure(exc: TelegramError, *, posting: bool) -> PublishError:
        if isinstance(exc, RetryAfter):
            return TransientPublishError(
                "Telegram: flood control", retry_after=_seconds(exc.retry_after)
            )
        if isinstance(exc, InvalidToken):
            return PermanentPublishError(f"Telegram refused the bot's token ({exc.message})")
        if isinstance(exc, ChatMigrated):
            return PermanentPublishError(
                f"Telegram: the chat moved to {exc.new_chat_id}; set that as the outlet's chat"
            )
        if isinstance(exc, NetworkError) and not isinstance(exc, BadRequest):  # and TimedOut
            cause = exc.__cause__
            if isinstance(cause, httpx.HTTPError) and not isinstance(cause, _NOT_SENT) and posting:
                what = "no answer in time" if isinstance(exc, TimedOut) else "cut off"
                return UncertainPublishError(
                    f"Telegram: {what} after the post was sent; it may have been posted"
                )
            if isinstance(cause, httpx.HTTPError):
                return TransientPublishError("Telegram: Bot API not reachable")
            return TransientPublishError(f"Telegram: {exc.message}")  # a 5xx answer
        # Forbidden (not an administrator of the channel), BadRequest (chat not found,
        # a file Telegram cannot take, ...), Conflict.
        return PermanentPublishError(f"Telegram refused the post ({exc.message})")


def _setting(spec: OutletSpec, key: str) -> str:
    """How a setting of the outlet's [outlets.NAME] table is named in messages."""
    return f"PINWALL_OUTLETS_{spec.name.upper()}_{key.upper()}"


def create(spec: OutletSpec, context: OutletContext) -> TelegramChannelPublisher:
    raw_chat = spec.options.get("chat")
    chat: str | int
    if isinstance(raw_chat, int) and not isinstance(raw_chat, bool) and raw_chat < 0:
        chat = raw_chat
    elif isinstance(raw_chat, str) and raw_chat.strip().startswith("@"):
        chat = raw_chat.strip()
    elif isinstance(raw_chat, str) and raw_chat.strip().lstrip("-").isdigit():
        chat = int(raw_chat.strip())
    else:
        raise ConfigError(
            f"{_setting(spec, 'chat')}: the channel is required, as @name or its id (-100...)"
        )
    token, base_url = spec.token, spec.options.get("base_url")
    if not token or base_url is None:
        settings = load_settings(Settings)  # the bot's own token and Bot API, validated at start
        if not token and settings.telegram_token is not None:
            token = settings.telegram_token.get_secret_value()
        if base_url is None:
            base_url = settings.telegram_base_url
    if not isinstance(base_url, str) or not base_url.startswith(("https://", "http://")):
        raise ConfigError(f"{_setting(spec, 'base_url')}: must be an http:// or https:// URL")
    if not token:
        raise ConfigError(
            f"{outlet_token_variable(spec.name)}: a bot token is needed for the channel (or set "
            "PINWALL_TELEGRAM_TOKEN and make that bot an administrator of the channel)"
        )
    return TelegramChannelPublisher(
        spec.name, chat=chat, token=token, base_url=base_url, timeout=context.timeout
    )
