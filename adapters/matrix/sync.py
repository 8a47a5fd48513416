"""The Matrix adapter's receiving part: the sync loop, invites and the files people send.

Pinwall syncs by itself rather than with nio's `sync_forever`: the events of a sync
batch are recorded in the inbox together with the batch's `next_batch` token, in one
transaction (`Hub.record_batch`), and only then applied; a crash before that syncs the
same batch again from the stored token (the inbox, keyed by event id, makes a second
arrival a no-op), a crash after it applies what was recorded at the next start. The
very first sync is not processed, only its token kept: Pinwall does not answer history.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import quote

from nio import (
    AsyncClient,
    JoinResponse,
    MemoryDownloadResponse,
    MessageDirection,
    RoomLeaveResponse,
    RoomMessagesResponse,
    RoomRedactResponse,
    SyncResponse,
)

from adapters.matrix import polls
from adapters.matrix.client import (
    NETWORK_ERRORS,
    MatrixError,
    MatrixRateLimited,
    TransientError,
    expect,
    has_left,
    is_encrypted,
    room_view,
)
from adapters.matrix.inbound import (
    PLATFORM,
    Inbound,
    Invite,
    Me,
    WantedFile,
    actor,
    invite_of,
    number_of,
    taken_back,
    translate,
)
from adapters.matrix.render import choice_for_key, choice_for_number
from bot.adapter_state import BatchChange, ForgetDirectChat, SetCursor, TellOnce
from bot.events import (
    CommandInvoked,
    Conversation,
    Event,
    InboundFile,
    MessageRefIn,
    Meta,
    load_event,
)
from bot.i18n import Translator
from bot.markup import to_plain
from bot.message import Target
from bot.runtime import Hub
from store.blobs import BlobTooLarge
from store.locks import Singleton

log = logging.getLogger(__name__)

T = TypeVar("T")

SYNC_TIMEOUT = 30.0
TIMELINE_LIMIT = 50
MAX_GAP = 1000  # events fetched per room to fill a gap after a long absence
FETCH_ATTEMPTS = 3  # downloads of one event's file before it is answered as unavailable
# The events Pinwall reads; membership, names and encryption keep nio's room state.
TIMELINE_TYPES = [
    "m.room.message",
    "m.reaction",
    "m.room.redaction",  # a reaction taken back
    *polls.RESPONSE_TYPES,
    "m.room.encrypted",
    "m.room.member",
    "m.room.encryption",
    "m.room.name",
    "m.room.canonical_alias",
    "m.room.create",
]


def sync_filter(timeline_limit: int) -> dict[str, Any]:
    return {
        "presence": {"types": []},
        "account_data": {"types": []},
        "room": {
            "timeline": {"limit": timeline_limit, "types": TIMELINE_TYPES},
            "ephemeral": {"types": []},
            "account_data": {"types": []},
            "state": {"lazy_load_members": False},
        },
    }


@dataclass
class _Batch:
    """One sync response, translated: what to record with its token."""

    token: str
    items: list[tuple[Inbound, list[InboundFile]]] = field(default_factory=list)
    extra: list[Event] = field(default_factory=list)  # not from the timeline (an invite)
    encrypted: dict[str, str | None] = field(default_factory=dict)  # room -> partner
    gone: list[str] = field(default_factory=list)  # direct chats whose person left
    shared: list[str] = field(default_factory=list)  # direct chats someone else came into


class MatrixSync:
    """Receives: syncs while this instance holds the sync lock, records each batch with
    its token through the hub, then applies it. The adapter owns the client and the
    task that runs `run()`."""

    def __init__(
        self,
        hub: Hub,
        me: Me,
        singleton: Singleton,
        stopping: asyncio.Event,
        dm_rooms: dict[str, str],
        *,
        sync_timeout: float = SYNC_TIMEOUT,
        timeline_limit: int = TIMELINE_LIMIT,
        max_download: int | None = None,
    ) -> None:
        self.hub = hub
        self.me = me
        self.client: AsyncClient | None = None  # the adapter's, once it has logged in
        self.singleton = singleton
        self.sync_timeout = sync_timeout
        self.timeline_limit = timeline_limit
        self.max_download = max_download
        self.since_cursor = f"matrix:since:{me.user_id}"
        self.failing: str | None = None  # why the last sync failed
        self._stopping = stopping
        self._dm_rooms = dm_rooms  # person -> their direct chat, shared with sending
        self._since: str | None = None
        self._full_state = True  # the first sync after a start brings every room's state
        self._fetch_failures: dict[str, int] = {}
        self._noticed: set[str] = set()  # encrypted rooms told already

    @property
    def _client(self) -> AsyncClient:
        assert self.client is not None
        return self.client

    async def _call(self, request: Coroutine[Any, Any, Any], kind: type[T]) -> T:
        return expect(await request, kind)

    # --- the loop ---------------------------------------------------------------------

    async def _until_stopped(self, coro: Coroutine[Any, Any, T]) -> T | None:
        """Awaits `coro` unless Pinwall stops first (then it is cancelled: None)."""
        task = asyncio.ensure_future(coro)
        stop = asyncio.ensure_future(self._stopping.wait())
        done, _ = await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            stop.cancel()
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, *NETWORK_ERRORS, MatrixError):
            await task
        return None

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _sync(self, since: str | None, *, wait: float, limit: int) -> Any:
        resp = await self._client.sync(
            timeout=int(wait * 1000),
            sync_filter=sync_filter(limit),
            since=since,
            full_state=self._full_state if since else None,
        )
        return expect(resp, SyncResponse)

    async def run(self) -> None:
        backoff = 1.0
        # A start has a new client, which knows no room yet: its first sync brings every
        # room's state (else a direct chat looks left, its members unknown, and the next
        # answer opens a new one), after a stop of this instance as after a process start.
        self._full_state = True
        while not self._stopping.is_set():
            try:  # whatever fails, the loop goes on (a database away: the lock's query too)
                # Checked before every sync: the lock dies with its connection when
                # PostgreSQL restarts, and another instance may sync by now.
                before = self.singleton.acquisitions
                if not await self.hub.call(self.singleton.try_acquire):
                    await self._pause(5.0)  # another instance syncs; take over if it stops
                    continue
                if self.singleton.acquisitions != before:
                    # Newly in charge: from the stored token, with every room's state.
                    self._since, self._full_state = None, True
                if self._since is None:
                    self._since = await self.hub.state.cursor(self.since_cursor)
                    if self._since is None:
                        await self._first_sync()
                        continue
                resp = await self._until_stopped(
                    self._sync(self._since, wait=self.sync_timeout, limit=self.timeline_limit)
                )
                if resp is None:
                    break
                await self._take(resp, self._since)
                self._since, self._full_state = str(resp.next_batch), False
                self.failing = None
                backoff = 1.0
                await self._apply()
            except MatrixRateLimited as exc:
                log.warning("Matrix: sync rate limited for %.1fs", exc.retry_after)
                await self._pause(exc.retry_after)
            except (MatrixError, TransientError, *NETWORK_ERRORS) as exc:
                self.failing = f"{type(exc).__name__}: {exc}"
                log.warning("Matrix: sync failed (%s: %s); trying again", type(exc).__name__, exc)
                await self._pause(backoff)
                backoff = min(backoff * 2, 30.0)
            except Exception as exc:
                self.failing = f"{type(exc).__name__}: {exc}"
                log.exception("Matrix: sync failed; trying again")
                await self._pause(backoff)
                backoff = min(backoff * 2, 60.0)

    async def _first_sync(self) -> None:
        """The first start: rooms and invites as they are, no history answered."""
        resp = await self._until_stopped(self._sync(None, wait=0, limit=1))
        if resp is None:
            return
        batch = _Batch(str(resp.next_batch))
        for room_id, info in resp.rooms.invite.items():
            await self._on_invite(room_id, info, batch)
        await self._record(batch)
        self._since, self._full_state = batch.token, False
        log.info("Matrix: first start; history before now is not answered")
        await self._apply()

    async def _apply(self) -> None:
        while await self.hub.apply_recorded():
            pass

    # --- one batch ----------------------------------------------------------------------

    async def _take(self, resp: Any, since: str) -> None:
        """Translates one sync batch, fetches its files, and records it with its token."""
        batch = _Batch(str(resp.next_batch))
        for room_id, info in resp.rooms.invite.items():
            await self._on_invite(room_id, info, batch)
        joined = dict(resp.rooms.join)
        direct = await self.hub.state.direct_chats(PLATFORM, list(joined))
        for room_id, info in joined.items():
            events = [e.source for e in info.timeline.events]
            if info.timeline.limited and info.timeline.prev_batch:
                events = await self._fill_gap(room_id, info.timeline.prev_batch, since) + events
            partner = direct.get(room_id)
            view = room_view(self._client, room_id, partner)
            if partner is not None and view.direct_with is None:
                # The person left (the bot leaves too), or someone else came in (the
                # room stays, as a room): either way no direct chat any more.
                left = has_left(self._client, room_id, partner)
                (batch.gone if left else batch.shared).append(room_id)
            encrypted = is_encrypted(self._client, room_id)
            for source in events:
                inbound = translate(source, view, self.me)
                if inbound is None:
                    continue
                encrypted = encrypted or inbound.encrypted
                files = [await self._fetch(inbound.meta.event_id, w) for w in inbound.files]
                batch.items.append((inbound, files))
            if encrypted and room_id not in self._noticed:
                batch.encrypted[room_id] = view.direct_with
        for room_id in resp.rooms.leave:
            batch.gone.append(room_id)  # the bot left or was removed
        fresh = await self._record(batch)
        for event_id in [i.meta.event_id for i, _ in batch.items]:
            self._fetch_failures.pop(event_id, None)
        self._noticed.update(batch.encrypted)
        for room_id in batch.gone + batch.shared:
            for user, room in list(self._dm_rooms.items()):
                if room == room_id:
                    del self._dm_rooms[user]
            if room_id in resp.rooms.join and room_id in batch.gone:
                with contextlib.suppress(MatrixError, *NETWORK_ERRORS):
                    await self._call(self._client.room_leave(room_id), RoomLeaveResponse)
        if fresh:
            log.debug("Matrix: recorded %d events", fresh)

    async def _fill_gap(self, room_id: str, prev_batch: str, since: str) -> list[dict[str, Any]]:
        """The events a limited timeline left out, back to where the last sync ended."""
        older: list[dict[str, Any]] = []
        token = prev_batch
        while len(older) < MAX_GAP:
            resp = await self._call(
                self._client.room_messages(
                    room_id, start=token, end=since, direction=MessageDirection.back, limit=100
                ),
                RoomMessagesResponse,
            )
            chunk = [e.source for e in resp.chunk]
            older.extend(chunk)
            if not chunk or not resp.end or resp.end == token:
                break
            token = str(resp.end)
        else:
            log.warning(
                "Matrix: more than %d events missed in %s; older ones skipped", MAX_GAP, room_id
            )
        older.reverse()
        return older

    async def _record(self, batch: _Batch) -> int:
        """Records the batch's events with its token (and what goes with it: encrypted
        rooms told, direct chats forgotten) in one transaction; returns how many events
        were new. Reactions and numbered answers to the bot's prompts become the button
        presses they stand for."""
        events: list[Event] = list(batch.extra)
        redact: list[tuple[str, str]] = []
        # This batch's events by id: a redaction of one of them (a reaction taken back
        # before the bot synced again) takes back what came before it in the batch,
        # which the inbox does not hold yet.
        earlier: dict[str, Event] = {}
        for inbound, files in batch.items:
            pressed = None
            if inbound.redacts is not None:
                before = earlier.get(inbound.redacts)
                event: Event | None = (
                    taken_back(inbound, before)
                    if before is not None
                    else await self.hub.call(self._taken_back, inbound)
                )
            else:
                pressed = await self._pressed(inbound)
                event = inbound.event(files, pressed)
            if event is not None:
                events.append(event)
                earlier[event.meta.event_id] = event
            room_id = inbound.meta.conversation.external_id
            if pressed is not None and await self._anonymous(inbound, pressed[2]):
                redact.append((room_id, inbound.meta.event_id))
        changes: list[BatchChange] = [
            TellOnce(
                mark=f"matrix:encrypted-told:{room_id}",
                target=Target(PLATFORM, "room", room_id),
                key="matrix.encrypted",
                reader=partner,
            )
            for room_id, partner in batch.encrypted.items()
        ]
        changes += [ForgetDirectChat(PLATFORM, r) for r in batch.gone + batch.shared]
        changes.append(SetCursor(self.since_cursor, batch.token))
        fresh = await self.hub.record_batch(events, changes)
        for room_id, event_id in redact:
            await self._take_back(room_id, event_id)
        return fresh

    async def _anonymous(self, inbound: Inbound, card: MessageRefIn) -> bool:
        """Whether this is an answer to an anonymous poll of Pinwall's: a native answer
        (its poll's start event kept as anonymous), or a reaction or number on the card."""
        if inbound.poll_response is not None:
            room_id, message_id = inbound.meta.conversation.external_id, inbound.poll_response[0]
        else:
            room_id, message_id = card.conversation, card.message_id
        prompt = await self.hub.state.button_prompt(PLATFORM, room_id, message_id)
        return prompt is not None and any(c.get("anonymous") for c in prompt.buttons)

    async def _take_back(self, room_id: str, event_id: str) -> None:
        """Redacts an answer to an anonymous poll once it is recorded (counted by the
        core in a direct chat, refused in a room, where everyone saw it; either way the
        core forgets who gave it): the chat keeps no trace of the choice. Best effort:
        where the bot may not redact, the answer stays."""
        try:
            await self._call(
                self._client.room_redact(room_id, event_id, reason="anonymous poll"),
                RoomRedactResponse,
            )
        except (MatrixError, *NETWORK_ERRORS) as exc:
            log.info("Matrix: could not redact the anonymous answer %s (%s)", event_id, exc)

    def _taken_back(self, inbound: Inbound) -> Event | None:
        """What a redaction takes back, from the inbox: a reaction the person gave is
        taken back (ReactionRemoved); anything else is nothing for Pinwall."""
        assert inbound.redacts is not None
        with self.hub.core.db.uow() as uow:
            row = uow.inbox.get(PLATFORM, inbound.redacts)
            payload = row.payload if row is not None else None
        try:
            redacted = load_event(payload) if isinstance(payload, dict) else None
        except ValueError:
            redacted = None
        return taken_back(inbound, redacted)

    async def _pressed(self, inbound: Inbound) -> tuple[str, str, MessageRefIn] | None:
        """The button a reaction or a bare number presses, if it is one."""
        state = self.hub.state
        conversation = inbound.meta.conversation.external_id
        if inbound.poll_response is not None:
            start, answers = inbound.poll_response
            prompt = await state.button_prompt(PLATFORM, conversation, start)
            entry = next((c for c in prompt.buttons if c.get("card")), None) if prompt else None
            value = polls.selection_value(str(entry["value"]), answers) if entry else None
            if entry is None or value is None:
                return None
            # The answer shows again on the text card beside the native poll.
            ref = MessageRefIn(conversation=conversation, message_id=str(entry["card"]))
            return str(entry["action"]), value, ref
        if inbound.reaction is not None:
            key, ref = inbound.reaction
            prompt = await state.button_prompt(PLATFORM, ref.conversation, ref.message_id)
            choice = choice_for_key(prompt.buttons, key) if prompt else None
            if prompt is not None and choice is None and number_of(key) is not None:
                # The bot offers no keycaps, but a person's 2️⃣ still means "2".
                choice = choice_for_number(prompt.buttons, number_of(key) or 0)
            if prompt is None or choice is None:
                return None
            if prompt.post and choice.get("key") == str(choice.get("label", "")).strip():
                return None  # 👍 on a post is a reaction the core counts, not a toggle
            return str(choice["action"]), str(choice["value"]), ref
        if inbound.number is not None:
            if inbound.reply_to is not None:
                reply_to = inbound.reply_to
                prompt = await state.button_prompt(
                    PLATFORM, reply_to.conversation, reply_to.message_id
                )
            elif inbound.meta.conversation.direct:
                prompt = await state.newest_button_prompt(PLATFORM, conversation)
                if prompt is not None and prompt.post:
                    prompt = None  # a bare number after a post is just a message
            else:
                prompt = None
            choice = choice_for_number(prompt.buttons, inbound.number) if prompt else None
            if prompt is None or choice is None:
                return None
            ref = MessageRefIn(conversation=prompt.conversation, message_id=prompt.message_id)
            return str(choice["action"]), str(choice["value"]), ref
        return None

    # --- invites ------------------------------------------------------------------------

    async def _on_invite(self, room_id: str, info: Any, batch: _Batch) -> None:
        """Joins where a member, a known person or an admin invited the bot; refuses
        (leaves) otherwise, saying why. An invite whose reason carries an invite code
        (`/invite @bot CODE`) is accepted, and the code redeemed there."""
        invite = invite_of(room_id, [_invite_source(e) for e in info.invite_state], self.me)
        if invite is None:
            return
        allowed = self.me.trust(invite.inviter) == "member" or await self.hub.state.is_person(
            PLATFORM, invite.inviter
        )
        code = None if allowed else invite.code()
        if not allowed and code is None:
            await self._refuse(invite)
            return
        if invite.direct:
            await self.hub.state.add_direct_chat(PLATFORM, room_id, invite.inviter)
            self._dm_rooms[invite.inviter] = room_id
        try:
            await self._call(self._client.join(room_id), JoinResponse)
        except MatrixError as exc:
            if exc.transient:
                raise
            log.warning("Matrix: could not join %s (%s)", room_id, exc)
            return
        log.info("Matrix: joined %s, invited by %s", room_id, invite.inviter)
        if code is not None:
            batch.extra.append(self._redeem(invite, code))

    def _redeem(self, invite: Invite, code: str) -> Event:
        partner = invite.inviter if invite.direct else None
        room = room_view(self._client, invite.room_id, partner)
        return CommandInvoked(
            meta=Meta(
                platform=PLATFORM,
                event_id=f"invite:{invite.room_id}:{invite.inviter}:{code}",
                actor=actor(invite.inviter, room, self.me),
                conversation=Conversation(
                    external_id=invite.room_id, direct=invite.direct, name=invite.room_name
                ),
                time=self.hub.clock.now(),
            ),
            name="redeem",
            arguments=code,
            raw=f"redeem {code}",
        )

    async def _refuse(self, invite: Invite) -> None:
        t = Translator(self.hub.core.settings.default_language)
        reason = to_plain(t("matrix.refused", bot=self.me.user_id))
        log.info("Matrix: refused the invite of %s to %s", invite.inviter, invite.room_id)
        try:
            # nio's room_leave takes no reason; the same call with one.
            resp = await self._client._send(
                RoomLeaveResponse,
                "POST",
                f"/_matrix/client/v3/rooms/{quote(invite.room_id, safe='')}/leave",
                json.dumps({"reason": reason}),
            )
            expect(resp, RoomLeaveResponse)
        except MatrixError as exc:
            if exc.transient:
                raise
            log.warning("Matrix: could not refuse the invite to %s (%s)", invite.room_id, exc)

    # --- files people send --------------------------------------------------------------

    async def _fetch(self, event_id: str, wanted: WantedFile) -> InboundFile:
        """Downloads a file a person sent (authenticated media) into the blob store."""

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
        limit = blobs.max_bytes if blobs else 0
        if self.max_download is not None:
            limit = min(limit, self.max_download)
        if blobs is None or (wanted.size is not None and wanted.size > limit):
            return refused("too_large", limit)
        try:
            data = await self._download(wanted.mxc)
            if len(data) > limit:
                return refused("too_large", limit)
            blob = await asyncio.to_thread(blobs.put, data)
        except BlobTooLarge:
            return refused("too_large", limit)
        except MatrixError as exc:
            if exc.transient and not isinstance(exc, MatrixRateLimited):
                return await self._fetch_failed(event_id, exc, refused("unavailable", None))
            if isinstance(exc, MatrixRateLimited):
                raise
            log.warning("Matrix: file %s of %s refused (%s)", wanted.mxc, event_id, exc)
            return refused("unavailable", None)
        except NETWORK_ERRORS as exc:
            return await self._fetch_failed(event_id, exc, refused("unavailable", None))
        return InboundFile(
            name=wanted.name, blob_id=blob.id, mime_type=blob.mime_type, size=blob.size
        )

    async def _fetch_failed(
        self, event_id: str, exc: BaseException, given_up: InboundFile
    ) -> InboundFile:
        failures = self._fetch_failures[event_id] = self._fetch_failures.get(event_id, 0) + 1
        if failures >= FETCH_ATTEMPTS:
            log.warning("Matrix: gave up fetching a file of %s (%s)", event_id, exc)
            return given_up
        raise TransientError(f"file download failed: {exc}") from exc

    async def _download(self, mxc: str) -> bytes:
        """/_matrix/client/v1/media/download (authenticated); the older unauthenticated
        /_matrix/media/v3 where a homeserver does not know the new endpoint."""
        try:
            resp = await self._call(self._client.download(mxc=mxc), MemoryDownloadResponse)
            return bytes(resp.body)
        except MatrixError as exc:
            if exc.errcode != "M_UNRECOGNIZED":
                raise
        server, _, media_id = mxc.removeprefix("mxc://").partition("/")
        answer = await self._client.send(
            "GET",
            f"/_matrix/media/v3/download/{quote(server, safe='')}/{quote(media_id, safe='')}",
            headers={"Authorization": f"Bearer {self._client.access_token}"},
        )
        async with answer:
            if answer.status != 200:
                raise MatrixError(
                    "M_NOT_FOUND", f"legacy media download: {answer.status}", answer.status
                )
            return bytes(await answer.read())


def _invite_source(event: Any) -> dict[str, Any]:
    """An invite state event's JSON (nio moves a member event's content out of it)."""
    source = dict(getattr(event, "source", None) or {})
    content = getattr(event, "content", None)
    if "content" not in source and isinstance(content, dict):
        source["content"] = content
    return source
