"""Publishing to a Facebook page through the Graph API, with a page access token.

`[outlets.NAME]` options: `page` (the page's numeric id, required), `base_url` (default
https://graph.facebook.com; tests point it at a fake), `version` (the Graph API
version in the path, e.g. v24.0). `PINWALL_OUTLET_<NAME>_TOKEN` is a page access token
with `pages_manage_posts` (one derived from a long-lived user token does not expire).

One publication is one `POST /{page-id}/feed` with `message` and, for a link, `link`
(Facebook makes the link card itself from the page's Open Graph tags). Images go first
as unpublished page photos (`POST /{page-id}/photos`, `source` = the file,
`published=false`), then the post names them in `attached_media`; with images the link
goes into the message. The token travels as the `access_token` parameter. Errors come
as `{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}`: code 190 is
a token Facebook no longer accepts (told to the admins), codes 4, 17, 32 and 613 are
rate limits, and `is_transient` or a 5xx answer means try again later. Facebook has no
idempotency key: a timeout after the post was sent is uncertain, for an admin to decide.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx

from bot.config import outlet_token_variable
from bot.errors import ConfigError
from bot.messenger import Problem
from bot.outlets import OutletSpec, publication_text
from jobs.fetch import version as pinwall_version
from jobs.outlets.base import (
    MediaFile,
    OutletContext,
    PermanentPublishError,
    Publication,
    Published,
    PublishError,
    TokenRefusedError,
    TransientPublishError,
    UncertainPublishError,
    wait_seconds,
)

DEFAULT_BASE_URL = "https://graph.facebook.com"
DEFAULT_VERSION = "v24.0"
MAX_MESSAGE = 63_206
MAX_PHOTOS = 10
MAX_PHOTO_BYTES = 4 * 1024 * 1024
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613})
TRANSIENT_CODES = frozenset({1, 2})  # "unknown error", "service temporarily unavailable"
TOKEN_CODES = frozenset({190})
POST_URL = "https://www.facebook.com/{id}"
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)
_TOKEN_REFUSED = "outlet.facebook.token_refused"  # noqa: S105  # a catalog key, not a secret


def message(publication: Publication) -> str:
    """The post's message: with images the link goes on its own last line; without, the
    `link` parameter carries it (and Facebook shows its card)."""
    if publication.media:
        return publication_text(publication.text, publication.link)
    return publication.text


def _error(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, dict) else {}


class FacebookPublisher:
    idempotent = False

    def __init__(
        self,
        name: str,
        *,
        page: str,
        token: str,
        base_url: str = DEFAULT_BASE_URL,
        api_version: str = DEFAULT_VERSION,
        timeout: float = 30.0,
    ) -> None:
        self.name = name
        self.page = page
        self._token = token
        self.graph = f"{base_url.rstrip('/')}/{api_version}"
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={"User-Agent": f"Pinwall/{pinwall_version()}"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def check(self) -> list[Problem]:
        """For `pinwall doctor`: does the Graph API accept the token for the page."""
        try:
            response = await self._client.get(
                f"{self.graph}/{self.page}",
                params={"fields": "id,name", "access_token": self._token},
            )
        except httpx.HTTPError as exc:
            return [
                Problem(
                    f"Facebook does not answer for outlet {self.name} ({type(exc).__name__})",
                    "check that this machine reaches graph.facebook.com (proxy, firewall)",
                )
            ]
        if response.status_code < 300:
            return []
        error = _error(response)
        return [
            Problem(
                f"Facebook refuses outlet {self.name} for page {self.page} "
                f"({error.get('code')}: {error.get('message')})",
                f"create a page access token with pages_manage_posts and set "
                f"{outlet_token_variable(self.name)}; check page in [outlets.{self.name}]",
            )
        ]

    async def publish(self, publication: Publication) -> Published:
        self._check(publication)
        text = message(publication)
        if len(text) > MAX_MESSAGE:
            raise PermanentPublishError(f"Facebook takes at most {MAX_MESSAGE:,} characters")
        try:
            photos = [await self._photo(m) for m in publication.media]
        except httpx.HTTPError as exc:
            # Unpublished photos show nowhere: trying again is safe.
            raise TransientPublishError(
                f"Facebook: photo upload failed ({type(exc).__name__})"
            ) from exc
        form: dict[str, str] = {"access_token": self._token}
        if text:
            form["message"] = text
        if publication.link and not photos:
            form["link"] = publication.link
        for i, photo in enumerate(photos):
            form[f"attached_media[{i}]"] = json.dumps({"media_fbid": photo})
        try:
            response = await self._client.post(f"{self.graph}/{self.page}/feed", data=form)
        except _NOT_SENT as exc:
            raise TransientPublishError("Facebook: server not reachable") from exc
        except httpx.HTTPError as exc:
            what = "no answer in time" if isinstance(exc, httpx.TimeoutException) else "cut off"
            raise UncertainPublishError(
                f"Facebook: {what} after the post was sent; it may have been posted"
            ) from exc
        if response.status_code >= 300:
            raise self._failure(response, "the post")
        post_id = str(response.json().get("id") or "")
        if not post_id:
            raise UncertainPublishError("Facebook: the answer named no post id")
        return Published(remote_id=post_id, url=POST_URL.format(id=post_id))

    @staticmethod
    def _check(publication: Publication) -> None:
        if len(publication.media) > MAX_PHOTOS:
            raise PermanentPublishError(f"Facebook takes at most {MAX_PHOTOS} photos here")
        for media in publication.media:
            if not media.mime_type.startswith("image/"):
                raise PermanentPublishError(f"Facebook takes only images here, not {media.name}")
            if media.size > MAX_PHOTO_BYTES:
                raise PermanentPublishError(f"{media.name} is larger than Facebook's 4 MB")

    async def _photo(self, media: MediaFile) -> str:
        """An unpublished page photo, for attached_media; its id."""
        data = await asyncio.to_thread(media.path.read_bytes)
        fields = {"published": "false", "access_token": self._token}
        if media.alt:
            fields["alt_text_custom"] = media.alt
        response = await self._client.post(
            f"{self.graph}/{self.page}/photos",
            data=fields,
            files={"source": (media.name, data, media.mime_type)},
        )
        if response.status_code >= 300:
            raise self._failure(response, "a photo")
        photo = response.json().get("id")
        if not photo:
            raise TransientPublishError("Facebook: the photo upload named no id")
        return str(photo)

    def _failure(self, response: httpx.Response, what: str) -> PublishError:
        status = response.status_code
        error = _error(response)
        code = error.get("code")
        detail = f"{code}: {error.get('message') or status}"
        if status == 429 or code in RATE_LIMIT_CODES:
            return TransientPublishError(
                f"Facebook: too many requests ({detail})",
                retry_after=wait_seconds(response.headers.get("Retry-After")),
            )
        if code in TOKEN_CODES or status == 401:
            return TokenRefusedError(f"Facebook refused the page token ({detail})", _TOKEN_REFUSED)
        if status >= 500 or code in TRANSIENT_CODES or error.get("is_transient") is True:
            return TransientPublishError(f"Facebook: server error {status} ({detail})")
        return PermanentPublishError(f"Facebook refused {what} ({detail})")


def _setting(spec: OutletSpec, key: str) -> str:
    """How a setting of the outlet's [outlets.NAME] table is named in messages."""
    return f"PINWALL_OUTLETS_{spec.name.upper()}_{key.upper()}"


def create(spec: OutletSpec, context: OutletContext) -> FacebookPublisher:
    page = str(spec.options.get("page", "")).strip()
    if not page.isdigit():
        raise ConfigError(
            f"{_setting(spec, 'page')}: the Facebook page's numeric id is required "
            "(Page > About > Page transparency, or the Graph API Explorer)"
        )
    base_url = spec.options.get("base_url", DEFAULT_BASE_URL)
    if not isinstance(base_url, str) or not base_url.startswith(("https://", "http://")):
        raise ConfigError(f"{_setting(spec, 'base_url')}: must be an http:// or https:// URL")
    api_version = str(spec.options.get("version", DEFAULT_VERSION))
    if not re.fullmatch(r"v\d+\.\d+", api_version):
        raise ConfigError(f"{_setting(spec, 'version')}: a Graph API version such as v24.0")
    if not spec.token:
        raise ConfigError(
            f"{outlet_token_variable(spec.name)}: the Facebook page access token is missing "
            "(a page token with pages_manage_posts)"
        )
    return FacebookPublisher(
        spec.name,
        page=page,
        token=spec.token,
        base_url=base_url,
        api_version=api_version,
        timeout=context.timeout,
    )
