"""Publishing to Mastodon with Mastodon.py: media with alt text, then one status.

`[outlets.NAME]` options: `base_url` (the server, required), `visibility` (public,
unlisted, private or direct; default public); `PINWALL_OUTLET_<NAME>_TOKEN` is an access
token with the `write:statuses` and `write:media` scopes.

The status carries the publication's idempotency key as Mastodon's Idempotency-Key
header: the server answers a repeat with the same key (for an hour) with the status it
already made, so an admin's retry after an uncertain outcome cannot post twice.
Mastodon.py is blocking (requests); each attempt runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import requests
from mastodon import (
    Mastodon,
    MastodonAPIError,
    MastodonError,
    MastodonNetworkError,
    MastodonRatelimitError,
)
from urllib3.exceptions import NewConnectionError

from bot.config import outlet_token_variable
from bot.errors import ConfigError
from bot.messenger import Problem
from bot.outlets import OutletSpec, publication_text
from jobs.fetch import version
from jobs.outlets.base import (
    MediaFile,
    OutletContext,
    PermanentPublishError,
    Publication,
    Published,
    PublishError,
    TransientPublishError,
    UncertainPublishError,
    wait_seconds,
)

VISIBILITIES = ("public", "unlisted", "private", "direct")
MAX_MEDIA = 4
MAX_MEDIA_BYTES = 16 * 1024 * 1024  # Mastodon's image limit (videos may be larger)
MAX_ALT = 1500  # characters of a media description
ASSUMED_VERSION = "4.0.0"  # every call used here exists since (media: since 3.1.4)
PROCESSING_POLL = (0.2, 2.0)  # first and longest pause while an upload is processed


def full_text(publication: Publication) -> str:
    """The status as the core measured it: the text, the link on a line of its own."""
    return publication_text(publication.text, publication.link)


def _not_sent(exc: BaseException | None) -> bool:
    """True when requests failed before the request could reach the server."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError):
        reason = exc.args[0] if exc.args else None
        inner = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
        return isinstance(inner, NewConnectionError)
    return False


class MastodonPublisher:
    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        token: str,
        visibility: str = "public",
        timeout: float = 30.0,
    ) -> None:
        self.name = name
        self.visibility = visibility
        self.timeout = timeout
        self._last = threading.local()  # the last response each worker thread received
        self._session = requests.Session()
        self._session.hooks["response"].append(self._remember)
        self.client = Mastodon(
            access_token=token,
            api_base_url=base_url,
            request_timeout=(min(timeout, 10.0), timeout),  # type: ignore[arg-type]  # requests takes (connect, read)
            ratelimit_method="throw",  # a 429 is the caller's to schedule, not a sleep here
            # Taken as the server's version, not asked for: /api/v2/media (asynchronous
            # processing) rather than the old synchronous /api/v1/media.
            version_check_mode="created",
            mastodon_version=ASSUMED_VERSION,
            session=self._session,
            user_agent=f"Pinwall/{version()}",
        )

    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._last.response = response

    async def publish(self, publication: Publication) -> Published:
        return await asyncio.to_thread(self._publish, publication)

    async def aclose(self) -> None:
        self._session.close()

    async def check(self) -> list[Problem]:
        """For `pinwall doctor`: does the server accept the token (verify_credentials)."""
        try:
            await asyncio.to_thread(self.client.account_verify_credentials)
        except MastodonNetworkError as exc:
            return [
                Problem(
                    f"the Mastodon server of outlet {self.name} does not answer ({exc})",
                    f"check {_setting_of(self.name, 'base_url')}",
                )
            ]
        except MastodonError as exc:
            return [
                Problem(
                    f"Mastodon does not accept the token of outlet {self.name} ({exc})",
                    f"create an access token (Preferences > Development, scopes write:statuses "
                    f"write:media) and set {outlet_token_variable(self.name)}",
                )
            ]
        return []

    # --- in the worker thread ----------------------------------------------------

    def _publish(self, publication: Publication) -> Published:
        if len(publication.media) > MAX_MEDIA:
            raise PermanentPublishError(f"Mastodon takes at most {MAX_MEDIA} media files")
        for media in publication.media:
            if media.size > MAX_MEDIA_BYTES:
                raise PermanentPublishError(
                    f"{media.name} is larger than Mastodon's {MAX_MEDIA_BYTES // 2**20} MB"
                )
        self._last.response = None
        try:
            media_ids = [self._upload(m) for m in publication.media]
        except MastodonError as exc:
            # Nothing is public yet: whatever happened, trying again is safe.
            raise self._failure(exc, posting=False) from exc
        try:
            status = self.client.status_post(
                full_text(publication),
                media_ids=media_ids or None,
                visibility=self.visibility,
                idempotency_key=publication.idempotency_key,
            )
        except MastodonError as exc:
            raise self._failure(exc, posting=True) from exc
        url = status.get("url") or status.get("uri")
        return Published(remote_id=str(status["id"]), url=str(url) if url else None)

    def _upload(self, file: MediaFile) -> Any:
        name = file.name
        data = file.path.read_bytes()  # bytes, not a path: Mastodon.py would leave it open
        media = self.client.media_post(
            data, mime_type=file.mime_type, description=file.alt[:MAX_ALT] or None, file_name=name
        )
        # /api/v2/media answers 202 with url null while the server still converts the file;
        # a status naming an unprocessed attachment is refused (422).
        deadline = time.monotonic() + self.timeout
        pause = PROCESSING_POLL[0]
        while media.get("url") is None:
            if time.monotonic() + pause > deadline:
                raise TransientPublishError(f"Mastodon is still processing {name}")
            time.sleep(pause)
            pause = min(pause * 2, PROCESSING_POLL[1])
            media = self.client.media(media["id"])
        return media["id"]

    def _failure(self, exc: MastodonError, *, posting: bool) -> PublishError:
        if isinstance(exc, MastodonRatelimitError):
            response = getattr(self._last, "response", None)
            headers = response.headers if response is not None else {}
            wait = wait_seconds(headers.get("Retry-After")) or wait_seconds(
                headers.get("X-RateLimit-Reset")
            )
            return TransientPublishError("Mastodon: too many requests", retry_after=wait)
        if isinstance(exc, MastodonNetworkError):
            cause = exc.__context__
            if posting and not _not_sent(cause):
                what = "no answer in time" if isinstance(cause, requests.Timeout) else "cut off"
                return UncertainPublishError(
                    f"Mastodon: {what} after the status was sent; it may have been posted"
                )
            return TransientPublishError("Mastodon: server not reachable")
        if isinstance(exc, MastodonAPIError):
            code = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else None
            detail = exc.args[3] if len(exc.args) > 3 and exc.args[3] else exc.args[0]
            if code is not None and (code >= 500 or code == 408):
                return TransientPublishError(f"Mastodon: server error {code}")
            if code in (401, 403):
                return PermanentPublishError(
                    f"Mastodon refused the access token ({code}: {detail})"
                )
            return PermanentPublishError(f"Mastodon refused the post ({code}: {detail})")
        return PermanentPublishError(f"Mastodon: {exc}")


def _setting(spec: OutletSpec, key: str) -> str:
    """How a setting of the outlet's [outlets.NAME] table is named in messages."""
    return _setting_of(spec.name, key)


def _setting_of(name: str, key: str) -> str:
    return f"PINWALL_OUTLETS_{name.upper()}_{key.upper()}"


def create(spec: OutletSpec, context: OutletContext) -> MastodonPublisher:
    base_url = spec.options.get("base_url")
    if not isinstance(base_url, str) or not base_url.startswith(("https://", "http://")):
        raise ConfigError(
            f"{_setting(spec, 'base_url')}: the Mastodon server's address is required (https://...)"
        )
    visibility = spec.options.get("visibility", "public")
    if visibility not in VISIBILITIES:
        raise ConfigError(f"{_setting(spec, 'visibility')}: use one of {', '.join(VISIBILITIES)}")
    if not spec.token:
        raise ConfigError(
            f"{outlet_token_variable(spec.name)}: the Mastodon access token is missing "
            "(Preferences > Development > New application, scopes write:statuses write:media)"
        )
    return MastodonPublisher(
        spec.name,
        base_url=base_url,
        token=spec.token,
        visibility=str(visibility),
        timeout=context.timeout,
    )
