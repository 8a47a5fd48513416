"""The Telegram adapter's I/O: the Bot API through python-telegram-bot, polling or webhook.

Pinwall polls by itself rather than with python-telegram-bot's Updater: the Updater
confirms a batch (by asking for the next offset) as soon as it has fetched it, before
its updates are handled, so a crash would lose them. Here an update is recorded and
applied (`hub.submit`) before the offset that confirms it is ever sent; a crash
before that gets the update again from Telegram, and the inbox, keyed by the bot's
id and the update id, makes the second arrival a no-op.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, TypeVar

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from telegram import (
    Bot,
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    ReplyParameters,
    Update,
)
from telegram import Message as TgMessage
from telegram.constants import FileSizeLimit, ParseMode
from telegram.error import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest

from adapters.telegram.inbound import ALLOWED_UPDATES, WantedFile, translate
from adapters.telegram.inbound import Bot as Me
from adapters.telegram.render import (
    MAX_CAPTION,
    CallbackCodec,
    keyboard_rows,
    message_html,
)
from bot import grammar
from bot.errors import ConfigError
from bot.events import InboundFile
from bot.i18n import Translator, normalize_language
from bot.markup import to_plain
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
from bot.runtime import Hub
from store.blobs import BlobTooLarge
from store.locks import Singleton

log = logging.getLogger(__name__)

PLATFORM = "telegram"
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105  (a header name)
MAX_DOWNLOAD = int(FileSizeLimit.FILESIZE_DOWNLOAD)  # what a bot may fetch: 20 MB
MAX_WEBHOOK_BODY = 1024 * 1024
FETCH_ATTEMPTS = 3  # downloads of one update's files before it is answered as unavailable
MENU_LANGUAGES = ("en", "de")

T = TypeVar("T")


def file_base_url(base_url: str) -> str:
    """https://api.telegram.org/bot -> https://api.telegram.org/file/bot"""
    head, sep, tail = base_url.rstrip("/").rpartition("/")
    return f"{head}/file/{tail}" if sep else base_url + "/file"


def _seconds(value: int | float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class TransientError(Exception):
    """An update could not be taken now (network, database); it is tried again later."""


def _kinds(data: dict[str, Any]) -> str:
    """What an update carries ("callback_query"), for a log line without its content."""
    return ", ".join(k for k in data if k != "update_id") or "nothing"


def _error(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


class _UpdatesRequest(HTTPXRequest):
    """getUpdates' transport: makes an update that python-telegram-bot cannot decode
    harmless before get_updates decodes the batch.

    get_updates raises for a whole batch when one update in it cannot be decoded, so the
    offset could never move past it: polling would stop for good. Here such an update is
    replaced by its bare update_id (an update with nothing in it) and its reason kept in
    `unreadable`, for the polling loop to log, count and confirm (skip)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.unreadable: dict[int, tuple[str, str]] = {}  # update_id -> (kinds, error)

    # The base class's is a staticmethod; this one needs the instance, for `unreadable`.
    def parse_json_payload(self, payload: bytes) -> dict[str, Any]:  # type: ignore[override]
        data: dict[str, Any] = super().parse_json_payload(payload)
        result = data.get("result")
        if data.get("ok") and isinstance(result, list):
            data["result"] = [u for u in map(self._readable, result) if u is not None]
        return data

    def _readable(self, update: Any) -> Any:
        try:
            Update.de_json(update, None)
        except Exception as exc:
            update_id = update.get("update_id") if isinstance(update, dict) else None
            if not isinstance(update_id, int):  # not to be confirmed alone; the next one does
                log.warning("Telegram: an update without update_id (%s); skipped", _error(exc))
                return None
            self.unreadable[update_id] = (_kinds(update), _error(exc))
            return {"update_id": update_id}
        return update


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
        self.poll_timeout = poll_timeout
        self.max_download = max_download
        self.codec = CallbackCodec(secret_key.encode())
        self._updates_request = _UpdatesRequest(connection_pool_size=2)
        self.bot = Bot(
            token,
            base_url=base_url,
            base_file_url=file_base_url(base_url),
            request=HTTPXRequest(connection_pool_size=16, read_timeout=20.0),
            get_updates_request=self._updates_request,
        )
        self.me: Me | None = None
        self._singleton = Singleton(hub.db, "telegram-polling")
        self._stopping = asyncio.Event()
        self._poller: asyncio.Task[None] | None = None
        self._poll_failing: str | None = None  # why the last getUpdates failed
        self._fetch_failures: dict[int, int] = {}
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
        self.me = Me(id=user.id, username=user.username or "")
        self.hub.core.settings.invite_links[PLATFORM] = (
            f"https://t.me/{self.me.username}?start={{code}}"
        )
        # A bot may not write to someone who never opened its chat: where an answer went
        # there privately, the room is told how to open it.
        self.hub.core.settings.direct_links[PLATFORM] = f"https://t.me/{self.me.username}"
        await self._set_commands()
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
            self._poller = asyncio.create_task(self._poll(), name="telegram-polling")
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
        if self._poll_failing is not None:
            return f"Telegram polling fails: {self._poll_failing}"
        return None

    def routes(self) -> list[BaseRoute]:
        if self.mode != "webhook":
            return []
        return [Route(WEBHOOK_PATH, self._webhook, methods=["POST"])]

    async def _set_commands(self) -> None:
        """The command menu in English (the default) and German."""
        available = self.hub.core.handlers.commands
        for language in MENU_LANGUAGES:
            t = Translator(language)
            commands: list[BotCommand] = []
            seen: set[str] = set()
            for spec in grammar.SPECS:
                if spec.hidden or spec.key not in available or spec.name in seen:
                    continue
                seen.add(spec.name)
                description = to_plain(t(f"help.{spec.key}")).strip()[:256] or spec.name
                commands.append(BotCommand(spec.name, description))
            await self.bot.set_my_commands(
                commands, language_code=None if language == "en" else language
            )

    # --- inbound: polling ---------------------------------------------------------

    async def _until_stopped(self, coro: Coroutine[Any, Any, T]) -> T | None:
        """Awaits `coro` unless Pinwall stops first (then it is cancelled: None)."""
        task = asyncio.ensure_future(coro)
        stop = asyncio.ensure_future(self._stopping.wait())
        done, _ = await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            stop.cancel()
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TelegramError):
            await task
        return None

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _poll(self) -> None:
        offset: int | None = None
        backoff = 1.0
        while not self._stopping.is_set():
            try:
                polls_here = await self.hub.call(self._singleton.try_acquire)
            except Exception as exc:  # the database is away: so is everything, but not for good
                self._poll_failing = _error(exc)
                log.warning("Telegram: cannot take the polling lock (%s); trying again", exc)
                await self._pause(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            if not polls_here:
                await self._pause(5.0)  # another instance polls; take over if it stops
                continue
            try:
                updates = await self._until_stopped(
                    self.bot.get_updates(
                        offset=offset,
                        timeout=timedelta(seconds=self.poll_timeout),
                        allowed_updates=list(ALLOWED_UPDATES),
                    )
                )
            except RetryAfter as exc:
                await self._pause(_seconds(exc.retry_after))
                continue
            except Conflict as exc:
                self._poll_failing = exc.message
                log.warning("Telegram: getUpdates conflicts (%s); trying again", exc.message)
                await self._pause(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            except (NetworkError, TimedOut) as exc:  # TimedOut is a NetworkError too
                self._poll_failing = _error(exc)
                log.warning("Telegram: getUpdates failed (%s); trying again", exc)
                await self._pause(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            except Exception as exc:  # TelegramError, or a batch PTB could not decode at all
                self._poll_failing = _error(exc)
                log.exception("Telegram: getUpdates failed; trying again")
                await self._pause(backoff)
                backoff = min(backoff * 2, 60.0)
                continue
            if updates is None:
                break
            backoff = 1.0
            self._poll_failing = None
            for update in updates:
                while not await self._take(update):
                    if self._stopping.is_set():
                        return  # not confirmed: Telegram sends it again after the restart
                    await self._pause(backoff)
                    backoff = min(backoff * 2, 30.0)
                # Only now may the offset move past it (sent with the next getUpdates).
                offset = update.update_id + 1

    def _skip(self, update_id: int, kinds: str, error: str) -> None:
        """An update python-telegram-bot cannot decode: logged, counted and confirmed, so
        that it neither stops the ones behind it nor comes again."""
        log.warning(
            "Telegram: update %s (%s) cannot be read (%s); skipped", update_id, kinds, error
        )
        self.hub.metrics.events.labels(PLATFORM, "undecodable").inc()

    async def _take(self, update: Update) -> bool:
        """Records and applies one update; False when it must be tried again later."""
        unreadable = self._updates_request.unreadable.pop(update.update_id, None)
        if unreadable is not None:
            self._skip(update.update_id, *unreadable)
            return True
        try:
            await self.process(update)
        except TransientError as exc:
            log.warning("Telegram: update %s not taken yet (%s)", update.update_id, exc)
            return False
        except Exception:
            # A bug in translating this one update must not stop every later one.
            log.exception("Telegram: update %s could not be translated; skipped", update.update_id)
        return True

    # --- inbound: webhook ---------------------------------------------------------

    async def _webhook(self, request: Request) -> Response:
        client = request.client.host if request.client else "?"
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.webhook_secret.encode()):
            log.warning("Telegram: refused a webhook call with a wrong secret from %s", client)
            return PlainTextResponse("forbidden", status_code=403)
        if int(request.headers.get("content-length") or 0) > MAX_WEBHOOK_BODY:
            log.warning("Telegram: refused an oversized webhook body from %s", client)
            return PlainTextResponse("too large", status_code=413)
        body = await request.body()
        if len(body) > MAX_WEBHOOK_BODY:
            return PlainTextResponse("too large", status_code=413)
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            log.warning("Telegram: refused a webhook body that is not an update from %s", client)
            return PlainTextResponse("bad request", status_code=400)
        try:
            update = Update.de_json(data, self.bot)
        except Exception as exc:
            # Acknowledged: Telegram would send it again and again, holding back the rest.
            self._skip(data["update_id"], _kinds(data), _error(exc))
            return Response(status_code=200)
        if self.me is None:
            return PlainTextResponse("starting", status_code=503)
        if not await self._take(update):
            return PlainTextResponse("try again", status_code=503)  # Telegram retries
        return Response(status_code=200)

    # --- inbound: one update ------------------------------------------------------

    async def process(self, update: Update) -> None:
        assert self.me is not None
        inbound = translate(update, self.me, self.codec, self.hub.clock.now())
        query = update.callback_query
        if inbound is None:
            if query is not None and query.data is not None:
                log.warning(
                    "Telegram: refused button data that Pinwall did not sign, from user %s",
                    query.from_user.id,
                )
                t = Translator(normalize_language(query.from_user.language_code) or "en")
                await self._answer(query.id, to_plain(t("error.button_expired")))
            return
        attachments = [await self._fetch(update.update_id, w) for w in inbound.files]
        try:
            await self.hub.submit(inbound.event(attachments))
        except Exception as exc:  # the store is away: Telegram keeps the update meanwhile
            raise TransientError(f"not recorded: {exc}") from exc
        self._fetch_failures.pop(update.update_id, None)
        if inbound.callback_id is not None:
            await self._answer(inbound.callback_id)

    async def _answer(self, callback_id: str, text: str | None = None) -> None:
        try:
            await self.bot.answer_callback_query(callback_id, text=text)
        except TelegramError as exc:  # too old, or answered already: the press still counts
            log.info("Telegram: callback %s not answered (%s)", callback_id, exc)

    async def _fetch(self, update_id: int, wanted: WantedFile) -> InboundFile:
        """Downloads a file a person sent into the blob store."""

        def refused(why: Literal["too_large", "unavailable"], limit: int | None) -> InboundFile:
            return InboundFile(
                name=wanted.name,
                blob_id="",
                mime_type=wanted.mime_type,
                size=wanted.size,
                refused=why,
                limit=limit,
            )

        blobs = self.hub.blobs
        limit = min(self.max_download, blobs.max_bytes if blobs else self.max_download)
        if blobs is None or (wanted.size is not None and wanted.size > limit):
            return refused("too_large", limit)
        try:
            tg_file = await self.bot.get_file(wanted.file_id)
            if tg_file.file_size is not None and tg_file.file_size > limit:
                return refused("too_large", limit)
            data = await tg_file.download_as_bytearray()
            blob = await asyncio.to_thread(blobs.put, bytes(data))
        except BlobTooLarge:
            return refused("too_large", limit)
        except BadRequest as exc:
            if "too big" in exc.message.lower():
                return refused("too_large", limit)
            log.warning("Telegram: file of update %s refused (%s)", update_id, exc.message)
            return refused("unavailable", None)
        except (NetworkError, OSError) as exc:
            failures = self._fetch_failures[update_id] = self._fetch_failures.get(update_id, 0) + 1
            if failures >= FETCH_ATTEMPTS:
                log.warning("Telegram: gave up fetching a file of update %s (%s)", update_id, exc)
                return refused("unavailable", None)
            raise TransientError(f"file download failed: {exc}") from exc
        return InboundFile(
            name=wanted.name, blob_id=blob.id, mime_type=blob.mime_type, size=blob.size
        )

    # --- outbound -----------------------------------------------------------------

    async def send(self, target: Target, message: Message, *, key: str = "") -> SendResult:
        try:
            chat_id = int(target.address)
        except ValueError:
            return DeliveryFailed(f"not a Telegram chat id: {target.address!r}", permanent=True)
        try:
            if message.replaces is not None:
                edited = await self._edit(chat_id, message)
                if edited is not None:
                    return edited
                if message.edit_only:
                    return Delivered(conversation=str(chat_id))
            return await self._post(chat_id, message, key)
        except RetryAfter as exc:
            return RateLimited(retry_after=_seconds(exc.retry_after))
        except Forbidden as exc:  # blocked by the person, or removed from the group
            return DeliveryFailed(exc.message, permanent=True, unreachable=True)
        except BadRequest as exc:
            gone = "chat not found" in exc.message.lower()
            return DeliveryFailed(exc.message, permanent=True, unreachable=gone)
        except (NetworkError, OSError) as exc:  # TimedOut included: tried again later
            return DeliveryFailed(f"{type(exc).__name__}: {exc}")

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
        chunks = message_html(message)
        if len(chunks) != 1:
            return None
        try:
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

    async def _post(self, chat_id: int, message: Message, key: str) -> SendResult:
        parts = self._parts(chat_id, message)
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

    def _parts(self, chat_id: int, message: Message) -> list[_Part]:
        keyboard = self._keyboard(chat_id, message.buttons)
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
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1

            def send_text(
                text: str = chunk,
                markup: InlineKeyboardMarkup | None = keyboard if last else None,
                answering: ReplyParameters | None = reply if i == 0 else None,
            ) -> Awaitable[TgMessage]:
                return self.bot.send_message(
                    chat_id,
                    text,
                    parse_mode=ParseMode.HTML,
                    reply_markup=markup,
                    reply_parameters=answering,
                    link_preview_options=LinkPreviewOptions(is_disabled=len(chunks) > 1),
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
        keyboard: InlineKeyboardMarkup | None,
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


__all__ = ["TelegramAdapter", "TransientError", "file_base_url"]
