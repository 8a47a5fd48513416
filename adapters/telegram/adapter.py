"""The Telegram adapter: python-telegram-bot's Bot (start, stop, health, the command menus
and the bot's description) and sending; receiving (polling or the webhook) is receive.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from starlette.routing import BaseRoute, Route
from telegram import (
    Bot,
    BotCommand,
    BotCommandScope,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    ReactionTypeEmoji,
    ReplyParameters,
    Update,
)
from telegram import Message as TgMessage
from telegram.constants import FileSizeLimit, ParseMode
from telegram.error import (
    BadRequest,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.request import HTTPXRequest

from adapters.telegram import menus
from adapters.telegram.inbound import ALLOWED_UPDATES
from adapters.telegram.inbound import Bot as Me
from adapters.telegram.receive import PLATFORM, TelegramReceiver, UpdatesRequest, seconds
from adapters.telegram.render import (
    MAX_CAPTION,
    MAX_TEXT,
    CallbackCodec,
    keyboard_rows,
    message_html,
)
from bot.errors import ConfigError
from bot.message import (
    Button,
    Capabilities,
    Delivered,
    DeliveryFailed,
    FileRef,
    Message,
    RateLimited,
    SendResult,
    Target,
)
from bot.ports import task_problem
from bot.role_menus import ROLE_MENU
from bot.runtime import Hub
from store.models import Role

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
MAX_DOWNLOAD = int(FileSizeLimit.FILESIZE_DOWNLOAD)  # what a bot may fetch: 20 MB
MENU_LANGUAGES = menus.MENU_LANGUAGES
# "Saved" as a reaction under the person's own message (meta "ack", ✅ on Matrix and
# Slack): Telegram's standard reactions, the only ones a bot may set, have no ✅.
ACK_REACTION = "👌"


def file_base_url(base_url: str) -> str:
    """https://api.telegram.org/bot -> https://api.telegram.org/file/bot"""
    head, sep, tail = base_url.rstrip("/").rpartition("/")
    return f"{head}/file/{tail}" if sep else base_url + "/file"


@dataclass
class _Part:
    """One Bot API call of a message that takes several (long text, files)."""

    send: Callable[[], Awaitable[TgMessage]]
    main: bool  # the message replies and reactions refer to


class TelegramAdapter:
    platform = PLATFORM
    capabilities = Capabilities(
        buttons=True, reactions=False, html=True, edits=True, threads=True, max_text=4096
    )
    command_prefix = "/"

    def __init__(
        self,
        hub: Hub,
        *,
        token: str,
        secret_key: str,
        base_url: str = "https://api.telegram.org/bot",
        mode: Literal["polling", "webhook"] = "polling",
        webhook_secret: str | None = None,
        public_url: str | None = None,
        poll_timeout: float = 30.0,
        max_download: int = MAX_DOWNLOAD,
        company: str = "",
    ) -> None:
        if mode == "webhook" and not webhook_secret:
            raise ConfigError(
                "PINWALL_TELEGRAM_WEBHOOK_SECRET: webhook mode needs a secret "
                "(1-256 characters of A-Z, a-z, 0-9, _ and -)"
            )
        if mode == "webhook" and not public_url:
            raise ConfigError(
                "PINWALL_PUBLIC_URL: Telegram's webhook mode needs the address at which "
                "Telegram reaches Pinwall (https://...)"
            )
        self.hub = hub
        self.mode = mode
        self.base_url = base_url
        self.webhook_secret = webhook_secret or ""
        self.public_url = (public_url or "").rstrip("/")
        self.company = company
        self.codec = CallbackCodec(secret_key.encode())
        updates_request = UpdatesRequest(connection_pool_size=2)
        self.bot = Bot(
            token,
            base_url=base_url,
            base_file_url=file_base_url(base_url),
            request=HTTPXRequest(connection_pool_size=16, read_timeout=20.0),
            get_updates_request=updates_request,
        )
        self.me: Me | None = None
        self._singleton = hub.singleton("telegram-polling")
        self._stopping = asyncio.Event()
        self._poller: asyncio.Task[None] | None = None
        self.receiver = TelegramReceiver(
            hub,
            self.bot,
            updates_request,
            self.codec,
            self._singleton,
            self._stopping,
            poll_timeout=poll_timeout,
            max_download=max_download,
            webhook_secret=self.webhook_secret,
            company=company,
        )
        # Menus of their own that Telegram refused (no such chat yet: an admin named by
        # PINWALL_ADMINS who never opened the bot), set when their chat first speaks.
        self._menus_due: dict[int, Role] = {}
        self.receiver.on_private_chat = self._chat_spoke
        # Parts of a long message already out, by outbox key, so a retry sends the rest.
        self._progress: OrderedDict[str, int] = OrderedDict()
        # Telegram's file id of each blob uploaded once: later sends reuse it.
        self._file_ids: OrderedDict[str, str] = OrderedDict()

    # --- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        try:
            await self.bot.initialize()  # getMe
        except InvalidToken:
            raise ConfigError(
                "PINWALL_TELEGRAM_TOKEN: Telegram does not accept this token "
                "(copy it again from BotFather)"
            ) from None
        except TelegramError as exc:
            raise ConfigError(
                f"PINWALL_TELEGRAM_BASE_URL: cannot reach the Bot API at {self.base_url} ({exc})"
            ) from None
        user = self.bot.bot
        self.me = self.receiver.me = Me(id=user.id, username=user.username or "")
        self.hub.core.settings.invite_links[PLATFORM] = (
            f"https://t.me/{self.me.username}?start={{code}}"
        )
        # A bot may not write to someone who never opened its chat: where an answer went
        # there privately, the room is told how to open it.
        self.hub.core.settings.direct_links[PLATFORM] = f"https://t.me/{self.me.username}"
        await self._set_menus()
        await self._set_descriptions()
        if self.mode == "webhook":
            url = self.public_url + WEBHOOK_PATH
            await self.bot.set_webhook(
                url, secret_token=self.webhook_secret, allowed_updates=list(ALLOWED_UPDATES)
            )
            log.info("Telegram: @%s receives updates at %s", self.me.username, url)
        else:
            # getUpdates and a webhook exclude each other; polling mode means no webhook.
            await self.bot.delete_webhook()
            self._stopping.clear()
            self._poller = asyncio.create_task(self.receiver.poll(), name="telegram-polling")
            log.info("Telegram: @%s polls for updates", self.me.username)

    async def stop(self) -> None:
        self._stopping.set()
        if self._poller is not None:
            # A loop that ended of itself (see problem()) is over already: nothing to raise.
            await asyncio.gather(self._poller, return_exceptions=True)
            self._poller = None
        await self.hub.call(self._singleton.release)
        with contextlib.suppress(TelegramError):
            await self.bot.shutdown()

    def healthy(self) -> bool:
        return self.problem() is None

    def problem(self) -> str | None:
        """Why Telegram's updates do not come in (for /healthz); None while they do."""
        if self.me is None:
            return "Telegram is not started"
        if self.mode == "webhook":
            return None  # updates come as requests: nothing of ours to stop
        stopped = task_problem(self._poller, "Telegram polling")
        if stopped is not None:
            return stopped
        if self.receiver.failing is not None:
            return f"Telegram polling fails: {self.receiver.failing}"
        return None

    def routes(self) -> list[BaseRoute]:
        if self.mode != "webhook":
            return []
        return [Route(WEBHOOK_PATH, self.receiver.webhook, methods=["POST"])]

    # --- menus and description ---------------------------------------------------------

    def _menu(self, keys: tuple[str, ...], language: str) -> list[BotCommand]:
        available = self.hub.core.handlers.commands
        return [BotCommand(e.name, e.description) for e in menus.entries(keys, language, available)]

    async def _set_menus(self) -> None:
        """Everyone's short menu, the groups' few, and each gatekeeper's and admin's own
        in their private chat — in English (every language) and German."""
        for language in MENU_LANGUAGES:
            code = None if language == "en" else language
            everyone = self._menu(menus.EVERYONE, language)
            scopes: tuple[BotCommandScope, ...] = (
                BotCommandScopeDefault(),
                BotCommandScopeAllPrivateChats(),
            )
            for scope in scopes:
                await self.bot.set_my_commands(everyone, scope=scope, language_code=code)
            await self.bot.set_my_commands(
                self._menu(menus.IN_GROUPS, language),
                scope=BotCommandScopeAllGroupChats(),
                language_code=code,
            )
        for chat_id, role in await self.hub.call(self._roles_with_menus):
            await self.set_role_menu(chat_id, role)

    def _roles_with_menus(self) -> list[tuple[int, Role]]:
        """(private chat, role) of the gatekeepers and admins Pinwall knows on Telegram,
        and of the admins PINWALL_ADMINS names here (known before they write)."""
        found: dict[int, Role] = {}
        for platform, external_id in self.hub.core.settings.admins:
            if platform == PLATFORM and external_id.isdigit():
                found[int(external_id)] = Role.ADMIN
        with self.hub.core.db.uow() as uow:
            staff = uow.people.accounts_with_role(PLATFORM, (Role.GATEKEEPER, Role.ADMIN))
        for external_id, role in staff:
            if external_id.isdigit():  # a private chat's id is its person's user id
                found.setdefault(int(external_id), role)
        return sorted(found.items())

    async def set_role_menu(self, chat_id: int, role: Role | None) -> None:
        """A person's private chat gets their role's menu (a gatekeeper's, an admin's), or
        everyone's again when the role has none of its own. Best effort: a chat the bot
        cannot see yet keeps everyone's menu."""
        scope = BotCommandScopeChat(chat_id)
        self._menus_due.pop(chat_id, None)
        try:
            for language in MENU_LANGUAGES:
                code = None if language == "en" else language
                if menus.has_own_menu(role):
                    await self.bot.set_my_commands(
                        self._menu(menus.keys_for(role), language), scope=scope, language_code=code
                    )
                else:
                    await self.bot.delete_my_commands(scope=scope, language_code=code)
        except TelegramError as exc:
            log.info("Telegram: no menu of its own for chat %s yet (%s)", chat_id, exc)
            if menus.has_own_menu(role):
                assert role is not None
                self._menus_due[chat_id] = role

    async def _chat_spoke(self, chat_id: int) -> None:
        role = self._menus_due.get(chat_id)
        if role is not None:
            await self.set_role_menu(chat_id, role)

    async def _set_descriptions(self) -> None:
        """What an empty chat with the bot shows (description) and its profile and shared
        links (short description), in English (every language) and German."""
        for language in MENU_LANGUAGES:
            code = None if language == "en" else language
            long, short = menus.descriptions(language, self.company)
            await self.bot.set_my_description(long, language_code=code)
            await self.bot.set_my_short_description(short, language_code=code)

    async def process(self, update: Update) -> None:
        """Takes one update in (as polling and the webhook do)."""
        await self.receiver.process(update)

    # --- outbound -----------------------------------------------------------------

    async def send(self, target: Target, message: Message, *, key: str = "") -> SendResult:
        try:
            chat_id = int(target.address)
        except ValueError:
            return DeliveryFailed(f"not a Telegram chat id: {target.address!r}", permanent=True)
        menu_role = message.meta.get(ROLE_MENU)
        if menu_role in {r.value for r in Role}:  # a role changed: only the chat's menu
            await self.set_role_menu(chat_id, Role(menu_role))
            return Delivered(conversation=str(chat_id))
        try:
            if await self._ack(message):
                return Delivered(conversation=str(chat_id))
            if message.replaces is not None and self._asks_in_group(chat_id, message):
                # A question whose answer is typed, in a group: an edit cannot carry the
                # ForceReply that ties the answer to it (an edit's reply_markup takes
                # only inline keyboards), so it comes new, under the card it follows,
                # whose buttons go (they were answered).
                await self._drop_buttons(chat_id, message.replaces)
                message = replace(message, replaces=None, thread=message.replaces)
            if message.replaces is not None:
                edited = await self._edit(chat_id, message)
                if edited is not None:
                    return edited
                if message.edit_only:
                    return Delivered(conversation=str(chat_id))
            audience = message.meta.get("audience")
            # A question in a group goes to the one who asked: ForceReply (selective)
            # opens the reply for the people the message mentions, so it mentions them.
            addressee = str(audience) if target.kind == "room" and audience else None
            return await self._post(chat_id, message, key, addressee)
        except RetryAfter as exc:
            return RateLimited(retry_after=seconds(exc.retry_after))
        except Forbidden as exc:  # blocked by the person, or removed from the group
            return DeliveryFailed(exc.message, permanent=True, unreachable=True)
        except BadRequest as exc:
            gone = "chat not found" in exc.message.lower()
            return DeliveryFailed(exc.message, permanent=True, unreachable=gone)
        except (NetworkError, OSError) as exc:  # TimedOut included: tried again later
            return DeliveryFailed(f"{type(exc).__name__}: {exc}")

    @staticmethod
    def _asks_in_group(chat_id: int, message: Message) -> bool:
        """A question whose answer is typed (meta "prompt", no choices to press), to a
        group (a group's or supergroup's id is negative; a private chat's is the
        person's)."""
        return chat_id < 0 and bool(message.meta.get("prompt")) and not message.buttons

    async def _drop_buttons(self, chat_id: int, message_id: str) -> None:
        if not message_id.isdigit():
            return
        try:
            await self.bot.edit_message_reply_markup(
                chat_id=chat_id, message_id=int(message_id), reply_markup=None
            )
        except BadRequest as exc:  # gone, too old, or without buttons already
            log.info("Telegram: buttons of %s not dropped (%s)", message_id, exc.message)

    async def _ack(self, message: Message) -> bool:
        """ "Saved" as 👌 under the person's own message (meta "ack": a comment written
        as a reply) instead of a message; False when the message has none, or the chat
        takes no such reaction (reactions turned off or narrowed by its admins): then its
        text is sent."""
        ack = message.meta.get("ack")
        if not isinstance(ack, dict):
            return False
        chat, message_id = str(ack.get("conversation", "")), str(ack.get("message_id", ""))
        if not (chat.lstrip("-").isdigit() and message_id.isdigit()):
            return False
        try:
            await self.bot.set_message_reaction(
                int(chat), int(message_id), reaction=ReactionTypeEmoji(ACK_REACTION)
            )
        except BadRequest as exc:  # REACTION_INVALID, the message gone: said as text
            log.info("Telegram: no %s on message %s (%s)", ACK_REACTION, message_id, exc.message)
            return False
        return True

    def _keyboard(self, chat_id: int, buttons: tuple[Button, ...]) -> InlineKeyboardMarkup | None:
        rows: list[list[InlineKeyboardButton]] = []
        for row in keyboard_rows(buttons):
            out = []
            for button in row:
                data = self.codec.encode(chat_id, button)
                if data is None:
                    log.error("Telegram: button %s does not fit in 64 bytes", button.action)
                    continue
                out.append(InlineKeyboardButton(button.label, callback_data=data))
            if out:
                rows.append(out)
        return InlineKeyboardMarkup(rows) if rows else None

    async def _edit(self, chat_id: int, message: Message) -> SendResult | None:
        """Shows the message in place of the one it replaces; None when that cannot be
        edited (gone, too old, a photo), so that it is sent as a new message."""
        assert message.replaces is not None
        if not message.replaces.isdigit():
            return None
        files = [f for f in message.files if self.hub.blobs and self.hub.blobs.exists(f.blob_id)]
        captions = message_html(message, MAX_CAPTION)
        captioned = len(files) == 1 and len(captions) <= 1  # sent as a photo with its caption
        chunks = captions if captioned else message_html(message)
        if len(chunks) > 1 or not (chunks or captioned):
            return None
        try:
            if captioned:  # a photo post: its caption and buttons (the like counter)
                await self.bot.edit_message_caption(
                    chat_id=chat_id,
                    message_id=int(message.replaces),
                    caption=chunks[0] if chunks else None,
                    parse_mode=ParseMode.HTML if chunks else None,
                    reply_markup=self._keyboard(chat_id, message.buttons),
                )
            else:
                await self.bot.edit_message_text(
                    chunks[0],
                    chat_id=chat_id,
                    message_id=int(message.replaces),
                    parse_mode=ParseMode.HTML,
                    reply_markup=self._keyboard(chat_id, message.buttons),
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                )
        except BadRequest as exc:
            if "not modified" in exc.message.lower():
                return Delivered(message_id=message.replaces, conversation=str(chat_id))
            log.info("Telegram: could not edit message %s (%s)", message.replaces, exc.message)
            return None
        return Delivered(message_id=message.replaces, conversation=str(chat_id))

    async def _post(
        self, chat_id: int, message: Message, key: str, addressee: str | None = None
    ) -> SendResult:
        parts = self._parts(chat_id, message, addressee)
        done = self._progress.pop(key, 0) if key else 0
        main_id: int | None = None
        for index, part in enumerate(parts):
            if index < done:
                continue
            try:
                sent = await part.send()
            except BaseException:
                if key and index:
                    self._remember(self._progress, key, index)
                raise
            if part.main or main_id is None:
                main_id = sent.message_id
        return Delivered(
            message_id=str(main_id) if main_id is not None else None, conversation=str(chat_id)
        )

    def _parts(self, chat_id: int, message: Message, addressee: str | None = None) -> list[_Part]:
        keyboard: InlineKeyboardMarkup | ForceReply | None = self._keyboard(
            chat_id, message.buttons
        )
        if keyboard is None and message.meta.get("prompt"):
            # A question whose answer is typed: the phone opens the reply to it, and in a
            # group only for the person asked (selective), so the answer stays tied to it.
            keyboard = ForceReply(selective=True)
        # One preview per link: a post's card shows the link's title and description
        # itself (jobs.previews), so Telegram's own preview would show it twice; only a
        # post whose card has no preview of its own lets Telegram show one.
        no_preview = not (message.meta.get("item") and not message.meta.get("preview"))
        reply = (
            ReplyParameters(message_id=int(message.thread), allow_sending_without_reply=True)
            if message.thread and message.thread.isdigit()
            else None
        )
        files = [f for f in message.files if self.hub.blobs and self.hub.blobs.exists(f.blob_id)]
        captions = message_html(message, MAX_CAPTION)
        if len(files) == 1 and len(captions) <= 1:
            caption = captions[0] if captions else None
            return [_Part(self._file_sender(chat_id, files[0], caption, keyboard, reply), True)]
        parts: list[_Part] = []
        chunks = message_html(message)
        if isinstance(keyboard, ForceReply) and addressee and addressee.isdigit() and chunks:
            mention = f'<a href="tg://user?id={addressee}">👤</a> '
            if len(chunks[0]) + 3 <= MAX_TEXT:  # HTML is never shorter than what it shows
                chunks[0] = mention + chunks[0]
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1

            def send_text(
                text: str = chunk,
                markup: InlineKeyboardMarkup | ForceReply | None = keyboard if last else None,
                answering: ReplyParameters | None = reply if i == 0 else None,
            ) -> Awaitable[TgMessage]:
                return self.bot.send_message(
                    chat_id,
                    text,
                    parse_mode=ParseMode.HTML,
                    reply_markup=markup,
                    reply_parameters=answering,
                    link_preview_options=LinkPreviewOptions(
                        is_disabled=no_preview or len(chunks) > 1
                    ),
                )

            parts.append(_Part(send_text, i == 0))
        for f in files:
            parts.append(_Part(self._file_sender(chat_id, f, None, None, None), not parts))
        if not parts:  # nothing to show: an empty message would be refused
            parts.append(
                _Part(lambda: self.bot.send_message(chat_id, "…", reply_markup=keyboard), True)
            )
        return parts

    def _file_sender(
        self,
        chat_id: int,
        ref: FileRef,
        caption: str | None,
        keyboard: InlineKeyboardMarkup | ForceReply | None,
        reply: ReplyParameters | None,
    ) -> Callable[[], Awaitable[TgMessage]]:
        async def send() -> TgMessage:
            assert self.hub.blobs is not None
            known = self._file_ids.get(ref.blob_id)
            content: Any = known
            if known is None:
                content = await asyncio.to_thread(self.hub.blobs.read, ref.blob_id)
            common: dict[str, Any] = {
                "caption": caption,
                "parse_mode": ParseMode.HTML if caption else None,
                "reply_markup": keyboard,
                "reply_parameters": reply,
            }
            if ref.image:
                try:
                    sent = await self.bot.send_photo(
                        chat_id, content, filename=ref.name if known is None else None, **common
                    )
                except BadRequest as exc:  # too big or odd dimensions for a photo
                    log.info("Telegram: %s sent as a document (%s)", ref.name, exc.message)
                    if known is not None:
                        content = await asyncio.to_thread(self.hub.blobs.read, ref.blob_id)
                else:
                    if sent.photo:
                        self._remember(self._file_ids, ref.blob_id, sent.photo[-1].file_id)
                    return sent
            sent = await self.bot.send_document(chat_id, content, filename=ref.name, **common)
            if sent.document is not None:
                self._remember(self._file_ids, ref.blob_id, sent.document.file_id)
            return sent

        return send

    @staticmethod
    def _remember(cache: OrderedDict[str, Any], key: str, value: Any, size: int = 10_000) -> None:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > size:
            cache.popitem(last=False)


__all__ = ["TelegramAdapter", "file_base_url"]
