"""The Telegram adapter's receiving part: polling (getUpdates) or the webhook.

Pinwall polls by itself rather than with python-telegram-bot's Updater: the Updater
confirms a batch (by asking for the next offset) as soon as it has fetched it, before
its updates are handled, so a crash would lose them. Here an update is recorded
(`hub.record_batch`, as the Matrix sync records its batches) before the offset that
confirms it is ever sent, and a webhook call is answered only after that; a crash
before it gets the update again from Telegram, and the inbox, keyed by the bot's id
and the update id, makes the second arrival a no-op. It is applied right after it is
recorded (`hub.apply_recorded`); what a crash leaves recorded is applied at the start.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any, Literal, TypeVar

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from telegram import Bot, Update
from telegram.error import BadRequest, Conflict, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.request import HTTPXRequest

from adapters.telegram.inbound import ALLOWED_UPDATES, WantedFile, counted, translate
from adapters.telegram.inbound import Bot as Me
from adapters.telegram.render import CallbackCodec
from bot.delivery import anonymous_likes_counted
from bot.events import InboundFile, Meta
from bot.i18n import Translator, normalize_language
from bot.markup import to_plain
from bot.runtime import Hub
from store.blobs import BlobTooLarge
from store.locks import Singleton

log = logging.getLogger(__name__)

PLATFORM = "telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105  (a header name)
MAX_WEBHOOK_BODY = 1024 * 1024
FETCH_ATTEMPTS = 3  # downloads of one update's files before it is answered as unavailable

T = TypeVar("T")


def seconds(value: int | float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class TransientError(Exception):
    """An update could not be taken now (network, database); it is tried again later."""


def _kinds(data: dict[str, Any]) -> str:
    """What an update carries ("callback_query"), for a log line without its content."""
    return ", ".join(k for k in data if k != "update_id") or "nothing"


def _error(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


class UpdatesRequest(HTTPXRequest):
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


class TelegramReceiver:
    """Takes updates in: `poll()` runs while the adapter polls (the adapter owns its task),
    `webhook` serves the webhook route. `me` is the adapter's bot, known once started."""

    def __init__(
        self,
        hub: Hub,
        bot: Bot,
        updates_request: UpdatesRequest,
        codec: CallbackCodec,
        singleton: Singleton,
        stopping: asyncio.Event,
        *,
        poll_timeout: float,
        max_download: int,
        webhook_secret: str,
        company: str = "",
    ) -> None:
        self.hub = hub
        self.company = company
        self.bot = bot
        self.codec = codec
        self.singleton = singleton
        self.poll_timeout = poll_timeout
        self.max_download = max_download
        self.webhook_secret = webhook_secret
        self.me: Me | None = None
        self.failing: str | None = None  # why the last getUpdates failed
        self._updates_request = updates_request
        self._stopping = stopping
        self._fetch_failures: dict[int, int] = {}
        # Called with the chat id of every private chat an update comes from (the adapter
        # sets a menu there that Telegram refused before the chat existed).
        self.on_private_chat: Callable[[int], Awaitable[None]] | None = None

    # --- polling ------------------------------------------------------------------------

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

    async def poll(self) -> None:
        offset: int | None = None
        backoff = 1.0
        while not self._stopping.is_set():
            try:
                polls_here = await self.hub.call(self.singleton.try_acquire)
            except Exception as exc:  # the database is away: so is everything, but not for good
                self.failing = _error(exc)
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
                await self._pause(seconds(exc.retry_after))
                continue
            except Conflict as exc:
                self.failing = exc.message
                log.warning("Telegram: getUpdates conflicts (%s); trying again", exc.message)
                await self._pause(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            except (NetworkError, TimedOut) as exc:  # TimedOut is a NetworkError too
                self.failing = _error(exc)
                log.warning("Telegram: getUpdates failed (%s); trying again", exc)
                await self._pause(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            except Exception as exc:  # TelegramError, or a batch PTB could not decode at all
                self.failing = _error(exc)
                log.exception("Telegram: getUpdates failed; trying again")
                await self._pause(backoff)
                backoff = min(backoff * 2, 60.0)
                continue
            if updates is None:
                break
            backoff = 1.0
            self.failing = None
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

    # --- the webhook --------------------------------------------------------------------

    async def webhook(self, request: Request) -> Response:
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

    # --- one update ---------------------------------------------------------------------

    async def process(self, update: Update) -> None:
        assert self.me is not None
        total = counted(update)
        if total is not None:
            await self._count_likes(*total)
            return
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
        if self.on_private_chat is not None and inbound.meta.conversation.direct:
            await self.on_private_chat(int(inbound.meta.conversation.external_id))
        attachments = [await self._fetch(update.update_id, w) for w in inbound.files]
        try:
            await self.hub.record_batch(inbound.events(attachments))
        except Exception as exc:  # the store is away: Telegram keeps the update meanwhile
            raise TransientError(f"not recorded: {exc}") from exc
        self._fetch_failures.pop(update.update_id, None)
        try:
            await self.hub.apply_recorded()
        except Exception as exc:  # recorded: the inbox tick applies it when the store is back
            log.warning("Telegram: update %s recorded, not applied yet (%s)", update.update_id, exc)
        if inbound.callback_id is not None:
            told = await self._to_stranger(inbound.meta)
            await self._answer(inbound.callback_id, told, alert=told is not None)

    async def _count_likes(self, chat: str, message_id: str, likes: int) -> None:
        """A channel's anonymous 👍 on a post's copy: the post's cards show the new count.
        A total, not a change: taking it twice is the same (no inbox needed)."""

        def count() -> bool:
            core = self.hub.core
            with core.db.uow() as uow:
                changed = anonymous_likes_counted(
                    uow,
                    PLATFORM,
                    chat,
                    message_id,
                    likes,
                    core.settings.shown_in_place,
                    self.hub.clock.now(),
                )
                uow.commit()
            return changed

        try:
            changed = await self.hub.call(count)
        except Exception as exc:  # the store is away: Telegram keeps the update meanwhile
            raise TransientError(f"not counted: {exc}") from exc
        if changed:
            self.hub.wake()

    async def _to_stranger(self, meta: Meta) -> str | None:
        """What a button pressed in a group by someone Pinwall does not know says to them
        alone (the core answers no stranger in a shared room, to keep it quiet): how to
        take part. None for anyone else."""
        if meta.conversation.direct:
            return None

        def known() -> bool:
            with self.hub.core.db.uow() as uow:
                return uow.people.actor(PLATFORM, meta.actor.external_id) is not None

        if await self.hub.call(known):
            return None
        settings = self.hub.core.settings
        t = Translator(normalize_language(meta.actor.language) or settings.default_language)
        company = self.company.strip() or str(t("telegram.your_company"))
        return to_plain(t("telegram.stranger_pressed", company=company))

    async def _answer(
        self, callback_id: str, text: str | None = None, *, alert: bool = False
    ) -> None:
        try:
            await self.bot.answer_callback_query(callback_id, text=text, show_alert=alert)
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
