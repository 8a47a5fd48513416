"""The Matrix adapter's I/O: the client-server API through matrix-nio.

Pinwall syncs by itself rather than with nio's `sync_forever`: the events of a sync
batch are recorded in the inbox together with the batch's `next_batch` token, in one
transaction, and only then applied; a crash before that syncs the same batch again
from the stored token (the inbox, keyed by event id, makes a second arrival a no-op),
a crash after it applies what was recorded at the next start. The very first sync is
not processed, only its token kept: Pinwall does not answer history.

nio reports most failures as values (ErrorResponse); `expect` is the one place where
they become exceptions. nio's own retrying is switched off: a 429 (M_LIMIT_EXCEEDED)
goes back to the outbox as RateLimited with the server's Retry-After, and a network
error is retried by whoever called (the sync loop, the outbox).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import secrets
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import aiohttp
from nio import (
    AsyncClient,
    AsyncClientConfig,
    ErrorResponse,
    JoinResponse,
    LoginResponse,
    MemoryDownloadResponse,
    MessageDirection,
    RoomCreateResponse,
    RoomLeaveResponse,
    RoomMessagesResponse,
    RoomPreset,
    RoomRedactResponse,
    RoomSendResponse,
    SyncResponse,
    UploadResponse,
    WhoamiResponse,
)

from adapters.matrix.inbound import (
    PLATFORM,
    Inbound,
    Invite,
    Me,
    RoomView,
    WantedFile,
    actor,
    invite_of,
    server_of,
    translate,
)
from adapters.matrix.render import (
    Choice,
    choice_for_key,
    choice_for_number,
    choices,
    edit_content,
    file_content,
    reaction_content,
    text_content,
)
from bot.errors import ConfigError
from bot.events import (
    CommandInvoked,
    Conversation,
    Event,
    InboundFile,
    MessageRefIn,
    Meta,
    dump_event,
)
from bot.i18n import Translator
from bot.markup import to_plain
from bot.message import (
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
from store.blobs import BlobTooLarge, sniff
from store.locks import Singleton
from store.uow import UnitOfWork

log = logging.getLogger(__name__)

T = TypeVar("T")

SYNC_TIMEOUT = 30.0
TIMELINE_LIMIT = 50
MAX_GAP = 1000  # events fetched per room to fill a gap after a long absence
FETCH_ATTEMPTS = 3  # downloads of one event's file before it is answered as unavailable
PROMPTS_KEPT = timedelta(days=60)
DEVICE_NAME = "Pinwall"
# The events Pinwall reads; membership, names and encryption keep nio's room state.
TIMELINE_TYPES = [
    "m.room.message",
    "m.reaction",
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


# --- nio's error values as exceptions ----------------------------------------------------


class MatrixError(Exception):
    """The homeserver refused a request (an ErrorResponse), or answered nonsense."""

    def __init__(self, errcode: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{errcode}: {message}" + (f" (HTTP {status})" if status else ""))
        self.errcode = errcode
        self.message = message
        self.status = status

    @property
    def transient(self) -> bool:
        """Worth trying again later (a server error), rather than a refusal."""
        return self.status is None or self.status >= 500 or self.errcode == "M_UNKNOWN_TOKEN"


class MatrixRateLimited(MatrixError):
    def __init__(self, message: str, retry_after: float, status: int | None = 429) -> None:
        super().__init__("M_LIMIT_EXCEEDED", message, status)
        self.retry_after = retry_after


def _retry_after(resp: Any) -> float:
    """Seconds to wait: the Retry-After header, else the body's retry_after_ms."""
    transport = getattr(resp, "transport_response", None)
    header = transport.headers.get("Retry-After") if transport is not None else None
    if header:
        with contextlib.suppress(ValueError):
            return max(0.0, float(header))
    ms = getattr(resp, "retry_after_ms", None)
    if isinstance(ms, int | float) and ms >= 0:
        return float(ms) / 1000
    return 5.0


def expect(resp: Any, kind: type[T]) -> T:
    """The answer if it is a `kind`; an ErrorResponse (or anything else) raised.

    Every call to the homeserver goes through here: nio's error values are never
    looked at anywhere else, and never ignored.
    """
    if isinstance(resp, kind):
        return resp
    transport = getattr(resp, "transport_response", None)
    status = getattr(transport, "status", None)
    if isinstance(resp, ErrorResponse):
        errcode = str(resp.status_code or "M_UNKNOWN")
        if errcode in ("M_LIMIT_EXCEEDED", "429") or status == 429:
            raise MatrixRateLimited(str(resp.message), _retry_after(resp), status)
        raise MatrixError(errcode, str(resp.message), status)
    raise MatrixError(
        "M_UNEXPECTED", f"expected {kind.__name__}, got {type(resp).__name__}", status
    )


class TransientError(Exception):
    """A batch could not be taken now (a download, the database); it is tried again."""


NETWORK_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)


@dataclass
class _Batch:
    """One sync response, translated: what to record with its token."""

    token: str
    items: list[tuple[Inbound, list[InboundFile]]]
    extra: list[Event]  # events not from the timeline (a redeemed invite)
    encrypted: dict[str, str | None]  # room -> its direct-chat partner, to tell once
    gone: list[str]  # direct chats whose person left: forgotten, and left


class MatrixAdapter:
    platform = PLATFORM
    capabilities = Capabilities(
        buttons=True, reactions=True, html=True, edits=True, threads=True, max_text=24_000
    )
    command_prefix = "!pw "

    def __init__(
        self,
        hub: Hub,
        *,
        homeserver: str,
        user_id: str,
        access_token: str | None = None,
        password: str | None = None,
        member_servers: Sequence[str] = (),
        sync_timeout: float = SYNC_TIMEOUT,
        timeline_limit: int = TIMELINE_LIMIT,
        max_download: int | None = None,
    ) -> None:
        if not user_id.startswith("@") or ":" not in user_id:
            raise ConfigError(
                "PINWALL_MATRIX_USER_ID: must be a full Matrix user id, like @pinwall:example.org"
            )
        if not access_token and not password:
            raise ConfigError(
                "PINWALL_MATRIX_ACCESS_TOKEN: set it, or PINWALL_MATRIX_PASSWORD, for the bot "
                "to log in"
            )
        self.hub = hub
        self.homeserver = homeserver.rstrip("/")
        self.user_id = user_id
        self.access_token = access_token
        self.password = password
        servers = {s.strip().lower() for s in member_servers if s.strip()}
        self.me = Me(user_id=user_id, member_servers=frozenset(servers or {server_of(user_id)}))
        self.sync_timeout = sync_timeout
        self.timeline_limit = timeline_limit
        self.max_download = max_download
        self.client: AsyncClient | None = None
        self._singleton = Singleton(hub.db, "matrix-sync")
        self._stopping = asyncio.Event()
        self._syncer: asyncio.Task[None] | None = None
        self._sync_failing: str | None = None  # why the last sync failed
        self._since: str | None = None
        self._full_state = True  # the first sync after a start brings every room's state
        self._salt = ""
        self._fetch_failures: dict[str, int] = {}
        self._dm_rooms: dict[str, str] = {}  # person -> their direct chat
        self._noticed: set[str] = set()  # encrypted rooms told already
        self._uploads: dict[str, str] = {}  # blob -> mxc:// URI
        self._upload_locks: dict[str, asyncio.Lock] = {}  # one upload of a blob at a time

    @property
    def _since_cursor(self) -> str:
        return f"matrix:since:{self.user_id}"

    # --- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        config = AsyncClientConfig(
            max_limit_exceeded=0,  # a 429 comes back to Pinwall, never slept on in nio
            max_timeouts=0,  # a network error too
            request_timeout=30,
            encryption_enabled=False,
            store_sync_tokens=False,
        )
        self.client = AsyncClient(self.homeserver, self.user_id, config=config)
        try:
            await self._login()
        except BaseException:
            await self.client.close()
            self.client = None
            raise
        self._salt = await self.hub.call(self._load_salt)
        await self.hub.call(self._prune_prompts)
        self._stopping.clear()
        self._syncer = asyncio.create_task(self._sync_loop(), name="matrix-sync")
        log.info("Matrix: %s syncs with %s", self.user_id, self.homeserver)

    async def _login(self) -> None:
        assert self.client is not None
        client = self.client
        try:
            if self.access_token:
                client.access_token = self.access_token
                client.user_id = self.user_id
                who = expect(await client.whoami(), WhoamiResponse)
                if who.user_id != self.user_id:
                    raise ConfigError(
                        f"PINWALL_MATRIX_USER_ID: the access token belongs to {who.user_id}, "
                        f"not {self.user_id}"
                    )
                client.device_id = who.device_id or ""
            else:
                assert self.password is not None
                device_cursor = f"matrix:device:{self.user_id}"
                known = await self.hub.call(self._cursor, device_cursor)
                client.device_id = known or ""  # log in again as the same device
                login = expect(
                    await client.login(self.password, device_name=DEVICE_NAME), LoginResponse
                )
                if not known or known != login.device_id:
                    await self.hub.call(self._set_cursor, device_cursor, str(login.device_id))
        except MatrixError as exc:
            if exc.errcode in ("M_UNKNOWN_TOKEN", "M_MISSING_TOKEN"):
                raise ConfigError(
                    "PINWALL_MATRIX_ACCESS_TOKEN: the homeserver does not accept this token"
                ) from None
            if exc.errcode in ("M_FORBIDDEN", "M_USER_DEACTIVATED", "M_INVALID_USERNAME"):
                raise ConfigError(
                    f"PINWALL_MATRIX_PASSWORD: the homeserver refused the login of "
                    f"{self.user_id} ({exc.message})"
                ) from None
            raise ConfigError(
                f"PINWALL_MATRIX_HOMESERVER: {self.homeserver} refused the login ({exc})"
            ) from None
        except NETWORK_ERRORS as exc:
            raise ConfigError(
                f"PINWALL_MATRIX_HOMESERVER: cannot reach {self.homeserver} "
                f"({type(exc).__name__}: {exc})"
            ) from None

    async def stop(self) -> None:
        self._stopping.set()
        if self._syncer is not None:
            # A loop that ended of itself (see problem()) is over already: nothing to raise.
            await asyncio.gather(self._syncer, return_exceptions=True)
            self._syncer = None
        await self.hub.call(self._singleton.release)
        if self.client is not None:
            await self.client.close()

    def healthy(self) -> bool:
        return self.problem() is None

    def problem(self) -> str | None:
        """Why Matrix events do not come in (for /healthz); None while they do."""
        stopped = task_problem(self._syncer, "Matrix sync")
        if stopped is not None:
            return stopped
        if self._sync_failing is not None:
            return f"Matrix sync fails: {self._sync_failing}"
        return None

    # --- the store (these run on the hub's database thread) ---------------------------

    def _cursor(self, name: str) -> str | None:
        with self.hub.db.uow() as uow:
            return uow.cursors.get(name)

    def _set_cursor(self, name: str, value: str) -> None:
        with self.hub.db.uow() as uow:
            uow.cursors.set(name, value, self.hub.clock.now())
            uow.commit()

    def _load_salt(self) -> str:
        """Transaction ids are the outbox key behind a salt kept in this database, so
        that another Pinwall database with the same bot account never reuses one."""
        name = f"matrix:txn-salt:{self.user_id}"
        with self.hub.db.uow() as uow:
            salt = uow.cursors.get(name)
            if salt is None:
                salt = secrets.token_hex(4)
                uow.cursors.set(name, salt, self.hub.clock.now())
                uow.commit()
            return salt

    def _prune_prompts(self) -> None:
        with self.hub.db.uow() as uow:
            uow.prompts.prune(PLATFORM, self.hub.clock.now() - PROMPTS_KEPT)
            uow.commit()

    def _inviter_known(self, user_id: str) -> bool:
        """The inviter is a person of this Pinwall (an active account, or an admin)."""
        if (PLATFORM, user_id) in self.hub.core.settings.admins:
            return True
        with self.hub.db.uow() as uow:
            account = uow.people.account(PLATFORM, user_id)
            person = uow.people.get(account.person_id) if account else None
            return person is not None and person.active

    def _direct_chats(self, room_ids: list[str]) -> dict[str, str]:
        with self.hub.db.uow() as uow:
            found = {}
            for room_id in room_ids:
                row = uow.direct_chats.find(PLATFORM, room_id)
                if row is not None:
                    found[room_id] = row.address
            return found

    def _add_direct_chat(self, room_id: str, user_id: str) -> None:
        with self.hub.db.uow() as uow:
            uow.direct_chats.add(PLATFORM, room_id, user_id, self.hub.clock.now())
            uow.commit()

    def _newest_direct_chat(self, user_id: str) -> str | None:
        with self.hub.db.uow() as uow:
            return uow.direct_chats.newest_for(PLATFORM, user_id)

    # --- inbound: the sync loop -------------------------------------------------------

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
        assert self.client is not None
        resp = await self.client.sync(
            timeout=int(wait * 1000),
            sync_filter=sync_filter(limit),
            since=since,
            full_state=self._full_state if since else None,
        )
        return expect(resp, SyncResponse)

    async def _sync_loop(self) -> None:
        backoff = 1.0
        while not self._stopping.is_set():
            try:  # whatever fails, the loop goes on (a database away: the lock's query too)
                # Checked before every sync: the lock dies with its connection when
                # PostgreSQL restarts, and another instance may sync by now.
                before = self._singleton.acquisitions
                if not await self.hub.call(self._singleton.try_acquire):
                    await self._pause(5.0)  # another instance syncs; take over if it stops
                    continue
                if self._singleton.acquisitions != before:
                    # Newly in charge: from the stored token, with every room's state.
                    self._since, self._full_state = None, True
                if self._since is None:
                    self._since = await self.hub.call(self._cursor, self._since_cursor)
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
                self._sync_failing = None
                backoff = 1.0
                await self._apply()
            except MatrixRateLimited as exc:
                log.warning("Matrix: sync rate limited for %.1fs", exc.retry_after)
                await self._pause(exc.retry_after)
            except (MatrixError, TransientError, *NETWORK_ERRORS) as exc:
                self._sync_failing = f"{type(exc).__name__}: {exc}"
                log.warning("Matrix: sync failed (%s: %s); trying again", type(exc).__name__, exc)
                await self._pause(backoff)
                backoff = min(backoff * 2, 30.0)
            except Exception as exc:
                self._sync_failing = f"{type(exc).__name__}: {exc}"
                log.exception("Matrix: sync failed; trying again")
                await self._pause(backoff)
                backoff = min(backoff * 2, 60.0)

    async def _first_sync(self) -> None:
        """The first start: rooms and invites as they are, no history answered."""
        resp = await self._until_stopped(self._sync(None, wait=0, limit=1))
        if resp is None:
            return
        batch = _Batch(str(resp.next_batch), [], [], {}, [])
        for room_id, info in resp.rooms.invite.items():
            await self._on_invite(room_id, info, batch)
        await self.hub.call(self._record, batch)
        self._since, self._full_state = batch.token, False
        log.info("Matrix: first start; history before now is not answered")
        await self._apply()

    async def _apply(self) -> None:
        while await self.hub.apply_recorded():
            pass

    async def _take(self, resp: Any, since: str) -> None:
        """Translates one sync batch, fetches its files, and records it with its token."""
        batch = _Batch(str(resp.next_batch), [], [], {}, [])
        for room_id, info in resp.rooms.invite.items():
            await self._on_invite(room_id, info, batch)
        joined = dict(resp.rooms.join)
        direct = await self.hub.call(self._direct_chats, list(joined))
        for room_id, info in joined.items():
            events = [e.source for e in info.timeline.events]
            if info.timeline.limited and info.timeline.prev_batch:
                events = await self._fill_gap(room_id, info.timeline.prev_batch, since) + events
            view = self._view(room_id, direct.get(room_id))
            partner = direct.get(room_id)
            if partner is not None and view.direct_with is None and self._left(room_id, partner):
                batch.gone.append(room_id)
            encrypted = self._room_encrypted(room_id)
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
        fresh = await self.hub.call(self._record, batch)
        for event_id in [i.meta.event_id for i, _ in batch.items]:
            self._fetch_failures.pop(event_id, None)
        self._noticed.update(batch.encrypted)
        for room_id in batch.gone:
            for user, room in list(self._dm_rooms.items()):
                if room == room_id:
                    del self._dm_rooms[user]
            if room_id in resp.rooms.join:
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

    @property
    def _client(self) -> AsyncClient:
        assert self.client is not None
        return self.client

    async def _call(self, request: Coroutine[Any, Any, Any], kind: type[T]) -> T:
        return expect(await request, kind)

    def _view(self, room_id: str, partner: str | None) -> RoomView:
        room = self._client.rooms.get(room_id)
        if room is None:
            return RoomView(room_id=room_id, direct_with=partner)
        direct = partner if partner is not None and room.member_count <= 2 else None
        names = {uid: u.display_name for uid, u in room.users.items() if u.display_name}
        return RoomView(
            room_id=room_id,
            name=str(room.display_name) if room.display_name else None,
            direct_with=direct,
            display_names=names,
        )

    def _left(self, room_id: str, partner: str) -> bool:
        room = self._client.rooms.get(room_id)
        return room is not None and partner not in room.users

    def _room_encrypted(self, room_id: str) -> bool:
        room = self._client.rooms.get(room_id)
        return bool(room is not None and room.encrypted)

    # --- inbound: invites ---------------------------------------------------------

    async def _on_invite(self, room_id: str, info: Any, batch: _Batch) -> None:
        """Joins where a member, a known person or an admin invited the bot; refuses
        (leaves) otherwise, saying why. An invite whose reason carries an invite code
        (`/invite @bot CODE`) is accepted, and the code redeemed there."""
        invite = invite_of(room_id, [_invite_source(e) for e in info.invite_state], self.me)
        if invite is None:
            return
        allowed = self.me.trust(invite.inviter) == "member" or await self.hub.call(
            self._inviter_known, invite.inviter
        )
        code = None if allowed else invite.code()
        if not allowed and code is None:
            await self._refuse(invite)
            return
        if invite.direct:
            await self.hub.call(self._add_direct_chat, room_id, invite.inviter)
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
        room = self._view(invite.room_id, invite.inviter if invite.direct else None)
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
        reason = to_plain(t("matrix.refused", bot=self.user_id))
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

    # --- inbound: files -------------------------------------------------------------

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

    # --- inbound: recording ---------------------------------------------------------

    def _record(self, batch: _Batch) -> int:
        """Records the batch's events and its token in one transaction; returns how many
        events were new. Reactions and numbered answers to the bot's prompts become the
        button presses they stand for."""
        now = self.hub.clock.now()
        fresh = 0
        with self.hub.db.uow() as uow:
            events: list[Event] = list(batch.extra)
            for inbound, files in batch.items:
                event = inbound.event(files, self._pressed(uow, inbound))
                if event is not None:
                    events.append(event)
            for event in events:
                recorded = uow.inbox.record(PLATFORM, event.meta.event_id, dump_event(event), now)
                if recorded is None:
                    self.hub.metrics.events.labels(PLATFORM, "duplicate").inc()
                else:
                    fresh += 1
            for room_id, partner in batch.encrypted.items():
                self._tell_encrypted(uow, room_id, partner)
            for room_id in batch.gone:
                uow.direct_chats.drop(PLATFORM, room_id)
            uow.cursors.set(self._since_cursor, batch.token, now)
            uow.commit()
        return fresh

    def _pressed(self, uow: UnitOfWork, inbound: Inbound) -> tuple[str, str, MessageRefIn] | None:
        conversation = inbound.meta.conversation.external_id
        if inbound.reaction is not None:
            key, ref = inbound.reaction
            prompt = uow.prompts.get(PLATFORM, ref.conversation, ref.message_id)
            choice = choice_for_key(prompt.buttons, key) if prompt else None
            if prompt is None or choice is None:
                return None
            if prompt.post and choice.get("key") == str(choice.get("label", "")).strip():
                return None  # 👍 on a post is a reaction the core counts, not a toggle
            return str(choice["action"]), str(choice["value"]), ref
        if inbound.number is not None:
            if inbound.reply_to is not None:
                prompt = uow.prompts.get(
                    PLATFORM, inbound.reply_to.conversation, inbound.reply_to.message_id
                )
            elif inbound.meta.conversation.direct:
                prompt = uow.prompts.newest(PLATFORM, conversation)
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

    def _tell_encrypted(self, uow: UnitOfWork, room_id: str, partner: str | None) -> None:
        """Tells an encrypted room, once, that the bot cannot read it (in the language of
        the person in a direct chat, else the default)."""
        name = f"matrix:encrypted-told:{room_id}"
        if uow.cursors.get(name) is not None:
            return
        now = self.hub.clock.now()
        person = None
        if partner is not None:
            account = uow.people.account(PLATFORM, partner)
            person = uow.people.get(account.person_id) if account else None
        t = self.hub.core.translator(person)
        self.hub.core.enqueue(
            uow,
            Target(PLATFORM, "room", room_id),
            Message(text=t("matrix.encrypted")),
            person.id if person else None,
            now,
        )
        uow.cursors.set(name, now.isoformat(), now)
        log.info("Matrix: %s is encrypted; told it once that Pinwall cannot read it", room_id)

    # --- outbound -----------------------------------------------------------------

    def _txn(self, key: str, part: str) -> str:
        """The transaction id of one part of a send: the same on every retry of it."""
        return f"pw.{self._salt}.{key}.{part}" if key else f"pw.{secrets.token_hex(8)}.{part}"

    async def send(self, target: Target, message: Message, *, key: str = "") -> SendResult:
        if self.client is None or not self.client.access_token:
            return DeliveryFailed("the Matrix adapter is not started")
        if not key:
            key = secrets.token_hex(8)  # a send without outbox key: still one per call
        try:
            room_id = await self._room_for(target)
            if message.replaces is not None:
                return await self._edit(room_id, message, key)
            return await self._post(room_id, message, key)
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

    async def _room_for(self, target: Target) -> str:
        """The room a message goes to: a room as it is; a person's direct chat, opened
        (a new room, the person invited as a direct chat) when there is none."""
        if target.kind == "room":
            return target.address
        user = target.address
        room_id = self._dm_rooms.get(user) or await self.hub.call(self._newest_direct_chat, user)
        if room_id is not None and not self._left(room_id, user):
            self._dm_rooms[user] = room_id
            return room_id
        created = await self._call(
            self._client.room_create(
                is_direct=True, invite=[user], preset=RoomPreset.trusted_private_chat
            ),
            RoomCreateResponse,
        )
        room_id = str(created.room_id)
        await self.hub.call(self._add_direct_chat, room_id, user)
        self._dm_rooms[user] = room_id
        log.info("Matrix: opened a direct chat %s with %s", room_id, user)
        return room_id

    async def _room_send(self, room_id: str, kind: str, content: dict[str, Any], txn: str) -> str:
        sent = await self._call(
            self._client.room_send(room_id, kind, content, tx_id=txn), RoomSendResponse
        )
        return str(sent.event_id)

    async def _post(self, room_id: str, message: Message, key: str) -> SendResult:
        items = choices(message.buttons)
        main: str | None = None
        text = text_content(message, items)
        if text is not None:
            main = await self._room_send(room_id, "m.room.message", text, self._txn(key, "0"))
        for n, ref in enumerate(message.files, 1):
            content = await self._file_part(ref)
            if content is None:
                continue
            if main is None and message.thread:
                content["m.relates_to"] = {"m.in_reply_to": {"event_id": message.thread}}
            sent = await self._room_send(
                room_id, "m.room.message", content, self._txn(key, f"f{n}")
            )
            main = main or sent
        if main is None:  # nothing to show (a file gone from the store)
            empty = {"msgtype": "m.notice", "body": "…"}
            main = await self._room_send(room_id, "m.room.message", empty, self._txn(key, "0"))
        if items:
            await self._prompt(room_id, main, items, "item" in message.meta, key)
        return Delivered(message_id=main, conversation=room_id)

    async def _edit(self, room_id: str, message: Message, key: str) -> SendResult:
        """Shows the message in place of the one it replaces (`m.replace`); the old
        message's choices go, with the bot's reactions under it."""
        original = message.replaces
        assert original is not None
        items = choices(message.buttons)
        new = text_content(message, items) or {"msgtype": "m.notice", "body": "…"}
        old = await self.hub.call(self._prompt_of, room_id, original)
        for i, choice in enumerate(old or []):
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
        if items:
            await self._prompt(room_id, original, items, "item" in message.meta, key)
        elif old is not None:
            await self.hub.call(self._drop_prompt, room_id, original)
        for n, ref in enumerate(message.files, 1):  # files cannot be edited in: sent below
            content = await self._file_part(ref)
            if content is not None:
                await self._room_send(room_id, "m.room.message", content, self._txn(key, f"f{n}"))
        return Delivered(message_id=original, conversation=room_id)

    async def _prompt(
        self, room_id: str, event_id: str, items: list[Choice], post: bool, key: str
    ) -> None:
        """Keeps which reaction or number presses which button of this message (before
        anyone can answer), then puts the bot's reactions under it."""
        stored = [c.as_dict() for c in items]
        await self.hub.call(self._save_prompt, room_id, event_id, stored, post)
        for i, choice in enumerate(items):
            if choice.key is None:
                continue
            stored[i]["reaction"] = await self._room_send(
                room_id,
                "m.reaction",
                reaction_content(event_id, choice.key),
                self._txn(key, f"r{i}"),
            )
        await self.hub.call(self._save_prompt, room_id, event_id, stored, post)

    def _save_prompt(
        self, room_id: str, event_id: str, buttons: list[dict[str, Any]], post: bool
    ) -> None:
        with self.hub.db.uow() as uow:
            uow.prompts.add(
                platform=PLATFORM,
                conversation=room_id,
                message_id=event_id,
                buttons=buttons,
                post=post,
                now=self.hub.clock.now(),
            )
            uow.commit()

    def _prompt_of(self, room_id: str, event_id: str) -> list[dict[str, Any]] | None:
        with self.hub.db.uow() as uow:
            prompt = uow.prompts.get(PLATFORM, room_id, event_id)
            return list(prompt.buttons) if prompt is not None else None

    def _drop_prompt(self, room_id: str, event_id: str) -> None:
        with self.hub.db.uow() as uow:
            prompt = uow.prompts.get(PLATFORM, room_id, event_id)
            if prompt is not None:
                uow.prompts.drop(prompt)
            uow.commit()

    # --- outbound: files ------------------------------------------------------------

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
        uri = self._uploads.get(ref.blob_id) or await self.hub.call(self._known_upload, ref.blob_id)
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
            await self.hub.call(self._remember_upload, ref.blob_id, uri)
        self._uploads[ref.blob_id] = uri
        return uri, mime

    def _known_upload(self, blob_id: str) -> str | None:
        with self.hub.db.uow() as uow:
            return uow.uploads.uri(PLATFORM, self.homeserver, blob_id)

    def _remember_upload(self, blob_id: str, uri: str) -> None:
        with self.hub.db.uow() as uow:
            uow.uploads.remember(PLATFORM, self.homeserver, blob_id, uri, self.hub.clock.now())
            uow.commit()


def _invite_source(event: Any) -> dict[str, Any]:
    """An invite state event's JSON (nio moves a member event's content out of it)."""
    source = dict(getattr(event, "source", None) or {})
    content = getattr(event, "content", None)
    if "content" not in source and isinstance(content, dict):
        source["content"] = content
    return source


__all__ = ["MatrixAdapter", "MatrixError", "MatrixRateLimited", "TransientError", "expect"]
