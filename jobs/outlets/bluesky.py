"""Publishing to Bluesky with atproto: one app.bsky.feed.post record per publication.

`[outlets.NAME]` options: `handle` (the account, required), `base_url` (its PDS or the
entryway, default https://bsky.social), `language` (e.g. "de", optional: the post's
`langs`); `PINWALL_OUTLET_<NAME>_TOKEN` is an app password (Settings > App passwords).

The session is made once and reused: atproto refreshes its access token in time, and a
session the server no longer accepts is made again once (createSession is limited to
30 in 5 minutes per account). Links are rich-text facets with UTF-8 byte offsets; the
publication's link is shown shortened (as the Bluesky app does) and points to the full
URL; without images it also becomes a link card, with the title and description the
link preview stored for the shared item. Bluesky has no idempotency key: a timeout
after the record was sent is reported as uncertain, for an admin to decide.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import regex
from atproto_client import AsyncClient, models
from atproto_client.client.session import Session, SessionEvent
from atproto_client.exceptions import (
    BadRequestError,
    InvokeTimeoutError,
    LoginRequiredError,
    NetworkError,
    RateLimitExceededError,
    RequestErrorBase,
    RequestException,
    UnauthorizedError,
)
from atproto_client.models.common import XrpcError
from atproto_client.models.utils import get_response_model
from atproto_client.request import AsyncRequest
from atproto_client.utils import detect_facets
from atproto_core.exceptions import AtProtocolError
from atproto_core.uri import AtUri
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from bot.config import outlet_token_variable
from bot.errors import ConfigError
from bot.outlets import OutletSpec
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
from store.db import Database
from store.models import Item

log = logging.getLogger(__name__)

DEFAULT_PDS = "https://bsky.social"
MAX_GRAPHEMES = 300
MAX_TEXT_BYTES = 3000
MAX_IMAGES = 4
MAX_IMAGE_BYTES = 1_000_000
MAX_ALT = 2000  # graphemes the Bluesky app allows for an image description
LINK_SHOWN = 30  # characters of a link shown in the text (the app shortens likewise)
CARD_TITLE, CARD_DESCRIPTION = 300, 1000
_GRAPHEME = regex.compile(r"\X")
_SESSION_ERRORS = frozenset({"ExpiredToken", "InvalidToken", "AuthMissing"})
# Connecting, or waiting for a pooled connection: the request has not left.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def graphemes(text: str) -> int:
    """User-perceived characters (Unicode extended grapheme clusters), Bluesky's unit."""
    return len(_GRAPHEME.findall(text))


def shown_link(url: str) -> str:
    """https://www.example.com/a/long/path -> example.com/a/long/pa..."""
    shown = url.split("://", 1)[-1].removeprefix("www.").rstrip("/")
    return shown if len(shown) <= LINK_SHOWN else shown[: LINK_SHOWN - 3] + "..."


def _facet(start: int, end: int, uri: str) -> models.AppBskyRichtextFacet.Main:
    return models.AppBskyRichtextFacet.Main(
        features=[models.AppBskyRichtextFacet.Link(uri=uri)],
        index=models.AppBskyRichtextFacet.ByteSlice(byte_start=start, byte_end=end),
    )


def compose(publication: Publication) -> tuple[str, list[models.AppBskyRichtextFacet.Main]]:
    """The post's text and its facets: links and hashtags in the text, then the
    publication's link (unless the text has it) on a line of its own, shortened (so
    never longer than the core measured it, with the whole link)."""
    text = publication.text
    facets = detect_facets(text)
    link = publication.link
    if link and link not in text:
        prefix = f"{text}\n" if text else ""
        shown = shown_link(link)
        start = len(prefix.encode())
        text = prefix + shown
        facets.append(_facet(start, start + len(shown.encode()), link))
    return text, facets


def _status(exc: RequestErrorBase) -> tuple[int | None, str, str]:
    """(HTTP status, XRPC error name, message) of a failed call."""
    response = exc.response
    if response is None:
        return None, "", ""
    content = response.content
    if isinstance(content, XrpcError):
        return response.status_code, content.error, content.message or ""
    return response.status_code, "", ""


def _session_refused(exc: Exception) -> bool:
    if isinstance(exc, (UnauthorizedError, LoginRequiredError)):
        return True
    return isinstance(exc, BadRequestError) and _status(exc)[1] in _SESSION_ERRORS


class BlueskyPublisher:
    def __init__(
        self,
        name: str,
        *,
        handle: str,
        password: str,
        base_url: str = DEFAULT_PDS,
        language: str | None = None,
        timeout: float = 30.0,
        db: Database | None = None,
    ) -> None:
        self.name = name
        self.handle = handle
        self.language = language
        self.db = db
        self._password = password
        self._request = AsyncRequest(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)))
        self.client = AsyncClient(base_url=base_url, request=self._request)
        self._did: str | None = None  # the account's DID while a session is held
        self._login = asyncio.Lock()
        self.client.on_session_change(self._session_changed)

    async def aclose(self) -> None:
        await self._request.close()

    async def publish(self, publication: Publication) -> Published:
        self._check(publication)
        text, facets = compose(publication)
        if graphemes(text) > MAX_GRAPHEMES or len(text.encode()) > MAX_TEXT_BYTES:
            raise PermanentPublishError(f"Bluesky takes at most {MAX_GRAPHEMES} characters")
        images = [(m, await asyncio.to_thread(m.path.read_bytes)) for m in publication.media]
        card = None if images or not publication.link else await self._card(publication.link)
        for attempt in (1, 2):
            fresh = self._did is None
            try:
                async with self._login:  # one createSession, however many publish at once
                    if self._did is None:  # the session callback sets it
                        await self.client.login(
                            self.handle, self._password, fetch_bsky_profile=False
                        )
                if self._did is None:
                    raise LoginRequiredError
                embed = await self._embed(images, card)
            except AtProtocolError as exc:
                if _session_refused(exc) and not fresh and attempt == 1:
                    self._did = None  # the old session lapsed: make a new one, once
                    continue
                raise self._failure(exc, posting=False) from exc
            try:
                return await self._post(self._did, text, facets, embed)
            except AtProtocolError as exc:
                if _session_refused(exc) and not fresh and attempt == 1:
                    self._did = None  # refused before it was taken: nothing is posted
                    continue
                raise self._failure(exc, posting=True) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _session_changed(self, event: SessionEvent, session: Session) -> None:
        self._did = session.did

    @staticmethod
    def _check(publication: Publication) -> None:
        if len(publication.media) > MAX_IMAGES:
            raise PermanentPublishError(f"Bluesky takes at most {MAX_IMAGES} images")
        for media in publication.media:
            if not media.mime_type.startswith("image/"):
                raise PermanentPublishError(f"Bluesky takes only images, not {media.name}")
            if media.size > MAX_IMAGE_BYTES:
                raise PermanentPublishError(
                    f"{media.name} is larger than Bluesky's {MAX_IMAGE_BYTES:,} bytes per image"
                )

    def _preview(self, link: str) -> tuple[str, str]:
        """The title and description Pinwall's link preview stored for the link, if any."""
        if self.db is None:
            return "", ""
        try:
            with self.db.engine.connect() as conn:
                row = conn.execute(
                    select(Item.title, Item.description)
                    .where(Item.url == link)
                    .order_by(Item.id.desc())
                    .limit(1)
                ).first()
        except SQLAlchemyError:
            log.warning("Bluesky: no link preview for the card (database)", exc_info=True)
            return "", ""
        if row is None:
            return "", ""
        return (row.title if row.title and row.title != link else ""), row.description or ""

    async def _card(self, link: str) -> models.AppBskyEmbedExternal.Main:
        title, description = await asyncio.to_thread(self._preview, link)
        return models.AppBskyEmbedExternal.Main(
            external=models.AppBskyEmbedExternal.External(
                uri=link,
                title=title[:CARD_TITLE] or shown_link(link),
                description=description[:CARD_DESCRIPTION],
            )
        )

    async def _embed(
        self,
        images: Sequence[tuple[MediaFile, bytes]],
        card: models.AppBskyEmbedExternal.Main | None,
    ) -> models.AppBskyEmbedImages.Main | models.AppBskyEmbedExternal.Main | None:
        if not images:
            return card
        embedded = []
        for media, data in images:
            # As the SDK's upload_blob, but with the file's type (not */*) and the body as
            # httpx's `content` (atproto passes `data=`, which httpx deprecates).
            response = await self.client.invoke_procedure(
                "com.atproto.repo.uploadBlob",
                content=data,
                headers={"Content-Type": media.mime_type},
                output_encoding="application/json",
            )
            upload = get_response_model(response, models.ComAtprotoRepoUploadBlob.Response)
            embedded.append(
                models.AppBskyEmbedImages.Image(alt=media.alt[:MAX_ALT], image=upload.blob)
            )
        return models.AppBskyEmbedImages.Main(images=embedded)

    async def _post(
        self,
        did: str,
        text: str,
        facets: list[models.AppBskyRichtextFacet.Main],
        embed: Any,
    ) -> Published:
        record = models.AppBskyFeedPost.Record(
            created_at=self.client.get_current_time_iso(),
            text=text,
            facets=facets or None,
            embed=embed,
            langs=[self.language] if self.language else None,
        )
        created = await self.client.app.bsky.feed.post.create(did, record)
        rkey = AtUri.from_str(created.uri).rkey
        return Published(
            remote_id=created.uri, url=f"https://bsky.app/profile/{self.handle}/post/{rkey}"
        )

    @staticmethod
    def _failure(exc: AtProtocolError, *, posting: bool) -> PublishError:
        if isinstance(exc, RateLimitExceededError):
            wait = exc.retry_after
            if wait is None and exc.reset_at is not None:
                wait = max((exc.reset_at - datetime.now(UTC)).total_seconds(), 0.0)
            return TransientPublishError("Bluesky: too many requests", retry_after=wait)
        if isinstance(exc, NetworkError) and exc.response is None:
            cause = exc.__cause__
            if posting and not isinstance(cause, _NOT_SENT):
                what = "no answer in time" if isinstance(exc, InvokeTimeoutError) else "cut off"
                return UncertainPublishError(
                    f"Bluesky: {what} after the post was sent; it may have been posted"
                )
            return TransientPublishError("Bluesky: server not reachable")
        if _session_refused(exc):
            status, error, message = (
                _status(exc) if isinstance(exc, RequestErrorBase) else (None, "", "")
            )
            return PermanentPublishError(
                f"Bluesky refused the login ({status or ''} {error}: {message or 'app password?'})"
            )
        if isinstance(exc, RequestErrorBase):
            status, error, message = _status(exc)
            if status is not None and (status >= 500 or status in (408, 502)):
                return TransientPublishError(f"Bluesky: server error {status}")
            if isinstance(exc, (BadRequestError, RequestException, NetworkError)):
                return PermanentPublishError(
                    f"Bluesky refused the post ({status} {error}: {message})"
                )
        return PermanentPublishError(f"Bluesky: {exc}")


def _setting(spec: OutletSpec, key: str) -> str:
    """How a setting of the outlet's [outlets.NAME] table is named in messages."""
    return f"PINWALL_OUTLETS_{spec.name.upper()}_{key.upper()}"


def create(spec: OutletSpec, context: OutletContext) -> BlueskyPublisher:
    handle = spec.options.get("handle")
    if not isinstance(handle, str) or not handle.strip():
        raise ConfigError(
            f"{_setting(spec, 'handle')}: the Bluesky account is required (e.g. acme.bsky.social)"
        )
    base_url = spec.options.get("base_url", DEFAULT_PDS)
    if not isinstance(base_url, str) or not base_url.startswith(("https://", "http://")):
        raise ConfigError(f"{_setting(spec, 'base_url')}: must be an http:// or https:// URL")
    language = spec.options.get("language")
    if language is not None and not isinstance(language, str):
        raise ConfigError(f"{_setting(spec, 'language')}: a language code such as de or en")
    if not spec.token:
        raise ConfigError(
            f"{outlet_token_variable(spec.name)}: the Bluesky app password is missing "
            "(Settings > Privacy and security > App passwords)"
        )
    return BlueskyPublisher(
        spec.name,
        handle=handle.strip().removeprefix("@"),
        password=spec.token,
        base_url=base_url,
        language=language,
        timeout=context.timeout,
        db=context.db,
    )
