"""Publishing to a LinkedIn company page through LinkedIn's versioned REST Posts API.

`[outlets.NAME]` options: `organization` (the page's numeric id or its URN
`urn:li:organization:<id>`, required), `token_expires` (the day the access token
lapses, e.g. 2027-02-05: LinkedIn's tokens last 60 days), `base_url` (default
https://api.linkedin.com; tests point it at a fake), `version` (the `LinkedIn-Version`
header, YYYYMM). `PINWALL_OUTLET_<NAME>_TOKEN` is a page admin's access token with the
`w_organization_social` scope.

Why a date setting and not token introspection: LinkedIn answers introspection
(`/oauth/v2/introspectToken`) only with the app's client id and secret, a second
secret Pinwall would hold just for this, served from www.linkedin.com rather than the
API; the Developer Portal's token generator shows the expiry date when it makes the
token, so the operator writes it down beside the token.

One publication is one `POST /rest/posts` (author = the organization URN, commentary
in LinkedIn's "little text" format with its reserved characters escaped, since
LinkedIn cuts the text at the first unescaped one), preceded for images by one
`POST /rest/images?action=initializeUpload` and a PUT of the bytes to its uploadUrl
each. The post's URN comes back in the `x-restli-id` header; its public address is
https://www.linkedin.com/feed/update/<urn>. A link without images becomes an article
card (source, title, description from Pinwall's link preview, and its image as the
thumbnail, fetched through the guarded client and uploaded); with images the link goes
into the text. LinkedIn has no idempotency key: a timeout after the post was sent
is uncertain, for an admin to decide.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import date
from typing import Any

import httpx

from bot.config import outlet_token_variable
from bot.errors import ConfigError
from bot.messenger import Problem
from bot.outlets import TOKEN_WARNING, OutletSpec, publication_text, token_expires
from jobs.fetch import FetchError, GuardedClient
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

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.linkedin.com"
DEFAULT_VERSION = "202511"
MAX_COMMENTARY = 3000
MAX_IMAGES = 20
MAX_IMAGE_BYTES = 5 * 1024 * 1024
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif"})
MAX_TITLE, MAX_DESCRIPTION, MAX_ALT = 400, 4086, 4086
POST_URL = "https://www.linkedin.com/feed/update/{urn}"
# Reserved in the little text format; unescaped, LinkedIn cuts the commentary there.
_RESERVED = re.compile(r"([\\|{}@\[\]()<>#*_~])")
_URL = re.compile(r"https?://[^\s<>\"]+")
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)
_TOKEN_REFUSED = "outlet.linkedin.token_refused"  # noqa: S105  # a catalog key, not a secret


def escape_little_text(text: str) -> str:
    """The text with every reserved character backslash-escaped, except inside URLs (they
    stay as they are, so LinkedIn still makes them links)."""
    out: list[str] = []
    end = 0
    for match in _URL.finditer(text):
        out.append(_RESERVED.sub(r"\\\1", text[end : match.start()]))
        out.append(match.group(0))
        end = match.end()
    out.append(_RESERVED.sub(r"\\\1", text[end:]))
    return "".join(out)


def commentary(publication: Publication) -> str:
    """The post's text, unescaped: with images the link goes on its own last line; with a
    link alone the article card carries it."""
    if publication.media:
        return publication_text(publication.text, publication.link)
    return publication.text


def organization_urn(value: str | int) -> str | None:
    raw = str(value).strip()
    number = raw.removeprefix("urn:li:organization:")
    return f"urn:li:organization:{number}" if number.isdigit() else None


def _detail(response: httpx.Response) -> tuple[str, str]:
    """(LinkedIn's error code, its message) of an error answer."""
    try:
        data = response.json()
    except ValueError:
        return "", response.text[:200]
    if not isinstance(data, dict):
        return "", ""
    return str(data.get("code") or data.get("serviceErrorCode") or ""), str(
        data.get("message") or ""
    )


class LinkedInPublisher:
    idempotent = False

    def __init__(
        self,
        name: str,
        *,
        organization: str,
        token: str,
        base_url: str = DEFAULT_BASE_URL,
        api_version: str = DEFAULT_VERSION,
        expires: date | None = None,
        timeout: float = 30.0,
        fetch_allowlist: str = "",
    ) -> None:
        self.name = name
        self.author = organization
        self.expires = expires
        self.fetch_allowlist = fetch_allowlist
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={
                "Authorization": f"Bearer {token}",
                "LinkedIn-Version": api_version,
                "X-Restli-Protocol-Version": "2.0.0",
                "User-Agent": f"Pinwall/{pinwall_version()}",
            },
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def check(self) -> list[Problem]:
        """For `pinwall doctor`: the token's expiry date, and whether LinkedIn accepts the
        token for the organization (GET /rest/organizations/<id>)."""
        problems: list[Problem] = []
        variable = outlet_token_variable(self.name)
        renew = (
            f"create a new token in the LinkedIn Developer Portal (scope w_organization_social), "
            f"set {variable} and token_expires in [outlets.{self.name}]"
        )
        if self.expires is None:
            problems.append(
                Problem(
                    f"outlet {self.name} does not say when its LinkedIn token expires "
                    "(they last 60 days)",
                    f"set token_expires = YYYY-MM-DD in [outlets.{self.name}]",
                )
            )
        else:
            days = (self.expires - date.today()).days
            if days < 0:
                problems.append(
                    Problem(
                        f"the LinkedIn token of outlet {self.name} expired on {self.expires}", renew
                    )
                )
            elif days <= TOKEN_WARNING.days:
                problems.append(
                    Problem(
                        f"the LinkedIn token of outlet {self.name} expires on {self.expires} "
                        f"(in {days} days)",
                        renew,
                    )
                )
        number = self.author.rsplit(":", 1)[-1]
        try:
            response = await self._client.get(f"{self.base_url}/rest/organizations/{number}")
        except httpx.HTTPError as exc:
            problems.append(
                Problem(
                    f"LinkedIn does not answer for outlet {self.name} ({type(exc).__name__})",
                    "check that this machine reaches api.linkedin.com (proxy, firewall)",
                )
            )
            return problems
        if response.status_code in (401, 403):
            code, message = _detail(response)
            problems.append(
                Problem(
                    f"LinkedIn refuses the token of outlet {self.name} for {self.author} "
                    f"({response.status_code} {code}: {message})",
                    renew,
                )
            )
        elif response.status_code == 404:
            problems.append(
                Problem(
                    f"LinkedIn knows no organization {self.author} (outlet {self.name})",
                    f"check organization in [outlets.{self.name}] (the number in the page's "
                    "admin address)",
                )
            )
        return problems

    async def publish(self, publication: Publication) -> Published:
        self._check(publication)
        text = commentary(publication)
        if len(text) > MAX_COMMENTARY:
            raise PermanentPublishError(f"LinkedIn takes at most {MAX_COMMENTARY} characters")
        try:
            images = [await self._upload(m) for m in publication.media]
            thumbnail = None
            if not images and publication.link and publication.link_image:
                thumbnail = await self._thumbnail(publication.link_image)
        except httpx.HTTPError as exc:
            # Nothing is public yet: trying again is safe.
            raise TransientPublishError(
                f"LinkedIn: image upload failed ({type(exc).__name__})"
            ) from exc
        body: dict[str, Any] = {
            "author": self.author,
            "commentary": escape_little_text(text),
            "visibility": "PUBLIC",
            "distribution": {
                "feedDistribution": "MAIN_FEED",
                "targetEntities": [],
                "thirdPartyDistributionChannels": [],
            },
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": False,
        }
        content = self._content(publication, images, thumbnail)
        if content is not None:
            body["content"] = content
        try:
            response = await self._client.post(f"{self.base_url}/rest/posts", json=body)
        except _NOT_SENT as exc:
            raise TransientPublishError("LinkedIn: server not reachable") from exc
        except httpx.HTTPError as exc:
            what = "no answer in time" if isinstance(exc, httpx.TimeoutException) else "cut off"
            raise UncertainPublishError(
                f"LinkedIn: {what} after the post was sent; it may have been posted"
            ) from exc
        if response.status_code >= 300:
            raise self._failure(response, "the post")
        urn = response.headers.get("x-restli-id") or ""
        if not urn:
            raise UncertainPublishError("LinkedIn: the answer named no post (x-restli-id)")
        return Published(remote_id=urn, url=POST_URL.format(urn=urn))

    @staticmethod
    def _content(
        publication: Publication, images: list[tuple[str, str]], thumbnail: str | None = None
    ) -> dict[str, Any] | None:
        if len(images) == 1:
            urn, alt = images[0]
            return {"media": {"id": urn, **({"altText": alt} if alt else {})}}
        if images:
            return {
                "multiImage": {
                    "images": [
                        {"id": urn, **({"altText": alt} if alt else {})} for urn, alt in images
                    ]
                }
            }
        if publication.link:
            article: dict[str, Any] = {
                "source": publication.link,
                "title": (publication.link_title or publication.link)[:MAX_TITLE],
            }
            if publication.link_description:
                article["description"] = publication.link_description[:MAX_DESCRIPTION]
            if thumbnail is not None:
                article["thumbnail"] = thumbnail
            return {"article": article}
        return None

    @staticmethod
    def _check(publication: Publication) -> None:
        if len(publication.media) > MAX_IMAGES:
            raise PermanentPublishError(f"LinkedIn takes at most {MAX_IMAGES} images")
        for media in publication.media:
            if media.mime_type not in IMAGE_TYPES:
                raise PermanentPublishError(
                    f"LinkedIn takes only JPG, PNG and GIF images, not {media.name}"
                )
            if media.size > MAX_IMAGE_BYTES:
                raise PermanentPublishError(f"{media.name} is larger than LinkedIn's 5 MB")

    async def _thumbnail(self, url: str) -> str | None:
        """The link preview's image for the article card, fetched through the guarded
        client (a URL a user's link supplied) and uploaded; None when it cannot be had
        (the card then goes without a picture, as LinkedIn allows)."""
        try:
            async with GuardedClient(
                allowlist=self.fetch_allowlist, max_bytes=MAX_IMAGE_BYTES
            ) as client:
                found = await client.get(url, body_types=IMAGE_TYPES, accept="image/*")
        except FetchError as exc:
            log.info("LinkedIn outlet %s: no thumbnail from %s (%s)", self.name, url, exc.reason)
            return None
        if found.status != 200 or found.content_type not in IMAGE_TYPES or not found.body:
            return None
        return await self._upload_bytes(found.body, found.content_type)

    async def _upload(self, media: MediaFile) -> tuple[str, str]:
        """One image: initializeUpload, then its bytes PUT to the upload URL; its URN."""
        data = await asyncio.to_thread(media.path.read_bytes)
        return await self._upload_bytes(data, media.mime_type), media.alt[:MAX_ALT]

    async def _upload_bytes(self, data: bytes, mime_type: str) -> str:
        response = await self._client.post(
            f"{self.base_url}/rest/images",
            params={"action": "initializeUpload"},
            json={"initializeUploadRequest": {"owner": self.author}},
        )
        if response.status_code >= 300:
            raise self._failure(response, "the image upload")
        value = response.json().get("value") or {}
        upload_url, urn = value.get("uploadUrl"), value.get("image")
        if not isinstance(upload_url, str) or not isinstance(urn, str):
            raise TransientPublishError("LinkedIn: initializeUpload named no upload URL")
        put = await self._client.put(upload_url, content=data, headers={"Content-Type": mime_type})
        if put.status_code >= 300:
            raise self._failure(put, "the image upload")
        return urn

    def _failure(self, response: httpx.Response, what: str) -> PublishError:
        status = response.status_code
        code, message = _detail(response)
        if status == 429:
            return TransientPublishError(
                "LinkedIn: too many requests",
                retry_after=wait_seconds(response.headers.get("Retry-After")),
            )
        if status >= 500 or status == 408:
            return TransientPublishError(f"LinkedIn: server error {status}")
        if status == 401:
            return TokenRefusedError(
                f"LinkedIn refused the access token ({status} {code}: {message})", _TOKEN_REFUSED
            )
        return PermanentPublishError(f"LinkedIn refused {what} ({status} {code}: {message})")


def _setting(spec: OutletSpec, key: str) -> str:
    """How a setting of the outlet's [outlets.NAME] table is named in messages."""
    return f"PINWALL_OUTLETS_{spec.name.upper()}_{key.upper()}"


def create(spec: OutletSpec, context: OutletContext) -> LinkedInPublisher:
    organization = spec.options.get("organization")
    urn = organization_urn(organization) if isinstance(organization, str | int) else None
    if urn is None:
        raise ConfigError(
            f"{_setting(spec, 'organization')}: the LinkedIn page's organization id is required "
            "(a number, or urn:li:organization:<number>)"
        )
    base_url = spec.options.get("base_url", DEFAULT_BASE_URL)
    if not isinstance(base_url, str) or not base_url.startswith(("https://", "http://")):
        raise ConfigError(f"{_setting(spec, 'base_url')}: must be an http:// or https:// URL")
    api_version = str(spec.options.get("version", DEFAULT_VERSION))
    if not re.fullmatch(r"20\d{4}", api_version):
        raise ConfigError(f"{_setting(spec, 'version')}: LinkedIn's API version as YYYYMM")
    if "token_expires" in spec.options and token_expires(spec) is None:
        raise ConfigError(f"{_setting(spec, 'token_expires')}: a date such as 2027-02-05")
    if not spec.token:
        raise ConfigError(
            f"{outlet_token_variable(spec.name)}: the LinkedIn access token is missing "
            "(LinkedIn Developer Portal, scope w_organization_social)"
        )
    return LinkedInPublisher(
        spec.name,
        organization=urn,
        token=spec.token,
        base_url=base_url,
        api_version=api_version,
        expires=token_expires(spec),
        timeout=context.timeout,
        fetch_allowlist=context.fetch_allowlist,
    )
