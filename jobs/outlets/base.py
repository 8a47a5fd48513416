"""What every outlet's publisher implements, and how it reports an outcome.

A publisher makes one call per attempt. The caller records the attempt before the
call and the outcome after it; the error class tells it what to do next:
`TransientPublishError` (nothing was posted: retry with backoff),
`UncertainPublishError` (it may have been posted, e.g. a timeout after sending: an
admin decides, never retried blindly), `PermanentPublishError` (refused: report), and
of those `TokenRefusedError` (the network refused the outlet's token, e.g. an expired
LinkedIn token: the admins are told too, since only they can put in a new one).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from bot.outlets import OutletSpec
    from store.db import Database


@dataclass(frozen=True)
class MediaFile:
    name: str
    mime_type: str
    path: Path  # in the blob store
    size: int
    alt: str = ""


@dataclass(frozen=True)
class Publication:
    proposal_id: int
    text: str
    link: str | None  # the shared item's URL, when the proposal carries one
    media: tuple[MediaFile, ...]
    # Stable for one approved revision of one proposal; sent where the outlet takes one
    # (Mastodon's Idempotency-Key header), so a repeated call cannot post twice.
    idempotency_key: str
    # What Pinwall's link preview stored for the link (for a network's link card).
    link_title: str | None = None
    link_description: str | None = None
    link_image: str | None = None  # the preview's image URL


@dataclass(frozen=True)
class Published:
    remote_id: str
    url: str | None  # the public link to the post, when the outlet has one


class PublishError(Exception):
    """An attempt that did not publish; `str()` is a short reason for people."""


class TransientPublishError(PublishError):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class UncertainPublishError(PublishError):
    pass


class PermanentPublishError(PublishError):
    pass


class TokenRefusedError(PermanentPublishError):
    """The network refused the outlet's token (expired, revoked): `admin_key` is the
    catalog key of what the admins are told (with outlet, proposal, error, variable)."""

    def __init__(self, reason: str, admin_key: str) -> None:
        super().__init__(reason)
        self.admin_key = admin_key


class Publisher(Protocol):
    name: str

    async def publish(self, publication: Publication) -> Published: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class OutletContext:
    """What a publisher may use besides its spec."""

    db: Database
    public_url: str | None
    data_dir: Path
    timeout: float = 30.0  # seconds for one publish call
    # PINWALL_FETCH_ALLOWLIST, for a publisher that fetches a link preview's image
    fetch_allowlist: str = ""


class PublisherFactory(Protocol):
    """Each `jobs.outlets.<kind>` module has `create: PublisherFactory`."""

    def __call__(self, spec: OutletSpec, context: OutletContext) -> Publisher: ...


def wait_seconds(value: str | None) -> float | None:
    """Retry-After (seconds or an HTTP date) or X-RateLimit-Reset (an ISO time) as seconds."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return max(when.timestamp() - time.time(), 0.0)
