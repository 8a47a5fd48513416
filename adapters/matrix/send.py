"""The Matrix adapter's sending part: messages, edits, reaction prompts and files.

Every event is sent with a transaction id made from the outbox key, so a send retried
after a crash posts once. Buttons become numbered choices; only an approval card's ✅ / ❌
(and one-emoji labels) get the bot's reaction under the message, never an ordinary post
(render.choices); what each reaction or number presses is kept through the hub before
anyone can answer. A file is uploaded to the homeserver once and its mxc://
URI reused in every room.
"""

from __future__ import annotations

import asyncio
import io
import logging
import secrets
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

from nio import (
    AsyncClient,
    RoomCreateResponse,
    RoomPreset,
    RoomRedactResponse,
    RoomSendResponse,
    UploadResponse,
)

from adapters.matrix import polls
from adapters.matrix.client import (
    NETWORK_ERRORS,
    MatrixError,
    MatrixRateLimited,
    crowded,
    expect,
    has_left,
)
from adapters.matrix.inbound import PLATFORM
from adapters.matrix.render import (
    Choice,
    choices,
    edit_content,
    file_content,
    reaction_content,
    text_content,
    thread_relation,
)
from bot.adapter_state import ButtonPromptView
from bot.message import (
    Delivered,
    DeliveryFailed,
    FileRef,
    Message,
    RateLimited,
    SendResult,
    Target,
)
from bot.runtime import Hub
from store.blobs import sniff

log = logging.getLogger(__name__)

T = TypeVar("T")


class MatrixSender:
    """Sends what the outbox hands the adapter. The adapter owns the client and gives
    it, with the transaction-id salt, as it starts."""

    def __init__(self, hub: Hub, homeserver: str, dm_rooms: dict[str, str]) -> None:
        self.hub = hub
        self.homeserver = homeserver  # uploads are remembered per server
        self.client: AsyncClient | None = None
        # Transaction ids are the outbox key behind a salt kept in this database, so
        # that another Pinwall database with the same bot account never reuses one.
        self.salt = ""
        self._dm_rooms = dm_rooms  # person -> their direct chat, shared with the sync
        self._uploads: dict[str, str] = {}  # blob -> mxc:// URI
        self._upload_locks: dict[str, asyncio.Lock] = {}  # one upload of a blob at a time

    @property
    def _client(self) -> AsyncClient:
        assert self.client is not None
        return self.client

    async def _call(self, request: Coroutine[Any, Any, Any], kind: type[T]) -> T:
        return expect(await request, kind)

    def _txn(self, key: str, part: str) -> str:
        """The transaction id of one part of a send: the same on every retry of it."""
        return f"pw.{self.salt}.{key}.{part}" if key else f"pw.{secrets.token_hex(8)}.{part}"

    async def send(self, target: Target, message: Message, *, key: str = "") -> SendResult:
        if self.client is None or not self.client.access_token:
            return DeliveryFailed("the Matrix adapter is not started")
        if not key:
            key = secrets.token_hex(8)  # a send without outbox key: still one per call
        try:
            acked = await self._ack(message, key)
            if acked is not None:
                return acked
            room_id = await self._room_for(target)
            if message.replaces is not None:
                return await self._edit(room_id, message, key)
            return await self._post(room_id, message, key, direct=target.kind == "dm")
        except MatrixRateLimited as exc:
            # M_LIMIT_EXCEEDED limits the bot's user, in every room alike.
            return RateLimited(retry_after=exc.retry_after, everywhere=True)
        except MatrixError as exc:
            if exc.transient:
                return DeliveryFailed(str(exc))
            gone = exc.errcode in ("M_FORBIDDEN", "M_NOT_FOUND", "M_UNKNOWN")
            return DeliveryFailed(str(exc), permanent=True, unreachable=gone)
        except NETWORK_ERRORS as exc:
            return DeliveryFailed(f"{type(exc).__name__}: {exc}")

    async def _ack(self, message: Message, key: str) -> SendResult | None:
        """ "Saved" as a reaction under the person's own message (meta "ack": a comment
        written as a thread answer), not as a message of its own; None when the message
        has none (or not one in a Matrix room), so that its text is sent."""
        ack = message.meta.get("ack")
        if not isinstance(ack, dict):
            return None
        room_id, event_id = str(ack.get("conversation", "")), str(ack.get("message_id", ""))
        if not (room_id.startswith("!") and event_id.startswith("$")):
            return None
        content = reaction_content(event_id, str(ack.get("emoji") or "✅"))
        await self._room_send(room_id, "m.reaction", content, self._txn(key, "ack"))
        return Delivered(conversation=room_id)

    async def _room_for(self, target: Target) -> str:
        """The room a message goes to: a room as it is; a person's direct chat, opened
        (a new room, the person invited as a direct chat) when there is none. A direct
        chat someone else was invited to or joined is one no longer: it is forgotten
        (what goes there, everyone in it would read) and a new one opened."""
        if target.kind == "room":
            return target.address
        user = target.address
        state = self.hub.state
        room_id = self._dm_rooms.get(user) or await state.newest_direct_chat(PLATFORM, user)
        while room_id is not None and not has_left(self._client, room_id, user):
            if not crowded(self._client, room_id):
                self._dm_rooms[user] = room_id
                return room_id
            log.info("Matrix: %s is no direct chat with %s any more (others in it)", room_id, user)
            if self._dm_rooms.get(user) == room_id:
                del self._dm_rooms[user]
            await state.forget_direct_chat(PLATFORM, room_id)
            room_id = await state.newest_direct_chat(PLATFORM, user)
        created = await self._call(
            self._client.room_create(
                is_direct=True, invite=[user], preset=RoomPreset.trusted_private_chat
            ),
            RoomCreateResponse,
        )
        room_id = str(created.room_id)
        await self.hub.state.add_direct_chat(PLATFORM, room_id, user)
        self._dm_rooms[user] = room_id
        log.info("Matrix: opened a direct chat %s with %s", room_id, user)
        return room_id

    async def _room_send(self, room_id: str, kind: str, content: dict[str, Any], txn: str) -> str:
        sent = await self._call(
            self._client.room_send(room_id, kind, content, tx_id=txn), RoomSendResponse
        )
        return str(sent.event_id)

    async def _post(
        self, room_id: str, message: Message, key: str, *, direct: bool = False
    ) -> SendResult:
        items = choices(message)
        main: str | None = None
        text = text_content(message, items)
        if text is not None:
            main = await self._room_send(room_id, "m.room.message", text, self._txn(key, "0"))
        for n, ref in enumerate(message.files, 1):
            content = await self._file_part(ref)
            if content is None:
                continue
            if main is None and message.thread:
                content["m.relates_to"] = thread_relation(message.thread)
            sent = await self._room_send(
                room_id, "m.room.message", content, self._txn(key, f"f{n}")
            )
            main = main or sent
        if main is None:  # nothing to show (a file gone from the store)
            empty = {"msgtype": "m.notice", "body": "…"}
            main = await self._room_send(room_id, "m.room.message", empty, self._txn(key, "0"))
        extra: list[dict[str, Any]] = []
        native = polls.native_of(message.meta)
        if native is not None and text is not None and polls.wanted(native, direct):
            extra = await self._start_poll(room_id, main, native, items, key)
        if native is not None and native.get("anonymous"):
            extra.append(dict(polls.ANONYMOUS_CARD))  # its answers are taken back (sync)
        if items:
            await self._prompt(room_id, main, items, "item" in message.meta, key, extra)
        return Delivered(message_id=main, conversation=room_id)

    async def _start_poll(
        self,
        room_id: str,
        card: str,
        native: Mapping[str, Any],
        items: list[Choice],
        key: str,
    ) -> list[dict[str, Any]]:
        """Sends the native poll beside the text card and keeps what its answers press:
        the whole selection (CHOOSE, shown again on the text card), and the card's
        numbers as well (a bare number after it still votes). Returns the entry that
        marks the text card's native poll, for its end."""
        start = await self._room_send(
            room_id, polls.START_TYPE, polls.start_content(native), self._txn(key, "p")
        )
        answer = {
            "number": -1,  # pressed by a poll response, never by a number
            "key": None,
            "label": "",
            "action": str(native.get("action", "")),
            "value": str(native.get("value", "")),
            "card": card,
            # An anonymous poll's answers are taken back from the room once counted.
            "anonymous": bool(native.get("anonymous")),
        }
        numbers = [c.as_dict() for c in items]
        await self.hub.state.save_button_prompt(
            PLATFORM, ButtonPromptView(room_id, start, [*numbers, answer], False)
        )
        return [{"number": -1, "key": None, "label": "", "action": "", "value": "", "poll": start}]

    async def _edit(self, room_id: str, message: Message, key: str) -> SendResult:
        """Shows the message in place of the one it replaces (`m.replace`); the old
        message's choices go, with the bot's reactions under it."""
        original = message.replaces
        assert original is not None
        items = choices(message)
        new = text_content(message, items) or {"msgtype": "m.notice", "body": "…"}
        old = await self.hub.state.button_prompt(PLATFORM, room_id, original)
        # The native poll beside this card (polls.py), kept with the card's choices, and
        # the mark of an anonymous poll's card.
        extra = [
            c
            for c in (old.buttons if old is not None else [])
            if c.get("poll") or c.get("anonymous")
        ]
        started = [c for c in extra if c.get("poll")]
        for i, choice in enumerate(old.buttons if old is not None else []):
            reaction = choice.get("reaction")
            if not reaction:
                continue
            try:
                await self._call(
                    self._client.room_redact(room_id, reaction, tx_id=self._txn(key, f"x{i}")),
                    RoomRedactResponse,
                )
            except MatrixError as exc:
                if exc.transient or isinstance(exc, MatrixRateLimited):
                    raise
                log.info("Matrix: could not take back reaction %s (%s)", reaction, exc)
        await self._room_send(
            room_id, "m.room.message", edit_content(new, original), self._txn(key, "e")
        )
        native = polls.native_of(message.meta)
        if native is not None and not native.get("open") and started:
            # The poll closed: its native poll ends too (clients show the final count).
            end = polls.end_content(str(started[0]["poll"]), polls.fallback_text(native))
            await self._room_send(room_id, polls.END_TYPE, end, self._txn(key, "pe"))
            extra = []
        if items:
            await self._prompt(room_id, original, items, "item" in message.meta, key, extra)
        elif old is not None:
            await self.hub.state.drop_button_prompt(PLATFORM, room_id, original)
        for n, ref in enumerate(message.files, 1):  # files cannot be edited in: sent below
            content = await self._file_part(ref)
            if content is not None:
                await self._room_send(room_id, "m.room.message", content, self._txn(key, f"f{n}"))
        return Delivered(message_id=original, conversation=room_id)

    async def _prompt(
        self,
        room_id: str,
        event_id: str,
        items: list[Choice],
        post: bool,
        key: str,
        extra: list[dict[str, Any]] | None = None,
    ) -> None:
        """Keeps which reaction or number presses which button of this message (before
        anyone can answer), then puts the bot's reactions under it. `extra`: entries no
        reaction or number presses (the native poll beside the card)."""
        stored = [c.as_dict() for c in items] + list(extra or [])
        await self.hub.state.save_button_prompt(
            PLATFORM, ButtonPromptView(room_id, event_id, list(stored), post)
        )
        for i, choice in enumerate(items):
            if choice.key is None:
                continue
            stored[i]["reaction"] = await self._room_send(
                room_id,
                "m.reaction",
                reaction_content(event_id, choice.key),
                self._txn(key, f"r{i}"),
            )
        await self.hub.state.save_button_prompt(
            PLATFORM, ButtonPromptView(room_id, event_id, stored, post)
        )

    # --- files --------------------------------------------------------------------------

    async def _file_part(self, ref: FileRef) -> dict[str, Any] | None:
        """A stored file as an m.image / m.file event, uploaded to the homeserver once."""
        blobs = self.hub.blobs
        if blobs is None or not blobs.exists(ref.blob_id):
            log.warning("Matrix: file %s is not in the blob store; not sent", ref.blob_id)
            return None
        size = (await asyncio.to_thread(blobs.path(ref.blob_id).stat)).st_size
        lock = self._upload_locks.setdefault(ref.blob_id, asyncio.Lock())
        async with lock:  # the same file to several rooms at once: uploaded by the first
            uri, mime = await self._upload(ref)
        if not lock.locked():
            self._upload_locks.pop(ref.blob_id, None)
        return file_content(ref, uri, size, mime)

    async def _upload(self, ref: FileRef) -> tuple[str, str | None]:
        assert self.hub.blobs is not None
        blobs = self.hub.blobs
        uri = self._uploads.get(ref.blob_id) or await self.hub.state.uploaded(
            PLATFORM, self.homeserver, ref.blob_id
        )
        mime = ref.mime_type
        if uri is None:
            data = await asyncio.to_thread(blobs.read, ref.blob_id)
            mime = mime or sniff(data[:512])
            uploaded, _keys = await self._client.upload(
                io.BytesIO(data),
                content_type=mime or "application/octet-stream",
                filename=ref.name,
                filesize=len(data),
            )
            uri = str(expect(uploaded, UploadResponse).content_uri)
            await self.hub.state.remember_upload(PLATFORM, self.homeserver, ref.blob_id, uri)
        self._uploads[ref.blob_id] = uri
        return uri, mime
