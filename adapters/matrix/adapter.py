"""The Matrix adapter: owns matrix-nio's client (login, start, stop, health) and wires its
two halves, receiving (sync.py: the sync loop) and sending (send.py).

Both reach the store only through the hub: events and the sync token with
`hub.record_batch`, what they keep besides (prompts, direct chats, uploads, cursors)
with `hub.state`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Sequence
from datetime import timedelta

from nio import AsyncClient, AsyncClientConfig, LoginResponse, WhoamiResponse

from adapters.matrix.client import NETWORK_ERRORS, MatrixError, expect
from adapters.matrix.inbound import PLATFORM, Me, server_of
from adapters.matrix.send import MatrixSender
from adapters.matrix.sync import SYNC_TIMEOUT, TIMELINE_LIMIT, MatrixSync
from bot.errors import ConfigError
from bot.message import Capabilities, Message, SendResult, Target
from bot.ports import task_problem
from bot.runtime import Hub

log = logging.getLogger(__name__)

PROMPTS_KEPT = timedelta(days=60)
DEVICE_NAME = "Pinwall"


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
        self.client: AsyncClient | None = None
        self._singleton = hub.singleton("matrix-sync")
        self._stopping = asyncio.Event()
        self._syncer: asyncio.Task[None] | None = None
        dm_rooms: dict[str, str] = {}  # person -> their direct chat, known to both halves
        self.sync = MatrixSync(
            hub,
            self.me,
            self._singleton,
            self._stopping,
            dm_rooms,
            sync_timeout=sync_timeout,
            timeline_limit=timeline_limit,
            max_download=max_download,
        )
        self.sender = MatrixSender(hub, self.homeserver, dm_rooms)

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
        self.sender.salt = await self.hub.state.set_cursor(
            f"matrix:txn-salt:{self.user_id}", secrets.token_hex(4), keep=True
        )
        await self.hub.state.prune_button_prompts(PLATFORM, PROMPTS_KEPT)
        self.sync.client = self.sender.client = self.client
        self._stopping.clear()
        self._syncer = asyncio.create_task(self.sync.run(), name="matrix-sync")
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
                known = await self.hub.state.cursor(device_cursor)
                client.device_id = known or ""  # log in again as the same device
                login = expect(
                    await client.login(self.password, device_name=DEVICE_NAME), LoginResponse
                )
                if not known or known != login.device_id:
                    await self.hub.state.set_cursor(device_cursor, str(login.device_id))
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
        if self.sync.failing is not None:
            return f"Matrix sync fails: {self.sync.failing}"
        return None

    # --- outbound -----------------------------------------------------------------

    async def send(self, target: Target, message: Message, *, key: str = "") -> SendResult:
        return await self.sender.send(target, message, key=key)


__all__ = ["MatrixAdapter"]
