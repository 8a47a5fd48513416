"""What the Matrix adapter's receiving and sending parts share around matrix-nio's client:
its error values as exceptions, and the synced room state as the translation sees it.

nio reports most failures as values (ErrorResponse); `expect` is the one place where
they become exceptions. nio's own retrying is switched off: a 429 (M_LIMIT_EXCEEDED)
goes back to the outbox as RateLimited with the server's Retry-After, and a network
error is retried by whoever called (the sync loop, the outbox).
"""

from __future__ import annotations

import contextlib
from typing import Any, TypeVar

import aiohttp
from nio import AsyncClient, ErrorResponse

from adapters.matrix.inbound import RoomView

T = TypeVar("T")

NETWORK_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)


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


class TransientError(Exception):
    """A batch could not be taken now (a download, the database); it is tried again."""


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


# --- the synced room state ----------------------------------------------------------------


def room_view(client: AsyncClient, room_id: str, partner: str | None) -> RoomView:
    """The room as the translation needs it; `partner`: whom Pinwall knows it as the
    direct chat with (it is one while nobody else is in it)."""
    room = client.rooms.get(room_id)
    if room is None:
        return RoomView(room_id=room_id, direct_with=partner)
    direct = partner if partner is not None and not crowded(client, room_id) else None
    names = {uid: u.display_name for uid, u in room.users.items() if u.display_name}
    return RoomView(
        room_id=room_id,
        name=str(room.display_name) if room.display_name else None,
        direct_with=direct,
        display_names=names,
    )


def crowded(client: AsyncClient, room_id: str) -> bool:
    """More than two joined or invited members (the bot and one person): no direct chat,
    whatever it was opened as — what goes there, everyone in it reads."""
    room = client.rooms.get(room_id)
    return room is not None and room.member_count > 2


def has_left(client: AsyncClient, room_id: str, user_id: str) -> bool:
    room = client.rooms.get(room_id)
    return room is not None and user_id not in room.users


def is_encrypted(client: AsyncClient, room_id: str) -> bool:
    room = client.rooms.get(room_id)
    return bool(room is not None and room.encrypted)
