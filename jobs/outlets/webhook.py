"""A generic webhook outlet: one signed JSON POST per publication (n8n, Zapier, Make, an
agency's system).

`[outlets.NAME]` options: `url` (required), `timeout` (seconds, default the context's).
The secret is `PINWALL_OUTLET_<NAME>_TOKEN`. Every request carries

    X-Pinwall-Timestamp: <unix seconds>
    X-Pinwall-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>." + body, keyed by the secret>
    Idempotency-Key: <the publication's key>   (a receiver may drop repeats by it)

so the receiver can check that the body is Pinwall's and fresh (see `verify`). What an
answer means: 2xx published (a JSON body may name its `id` and `url`); 429 and 5xx, or
no connection at all, nothing was posted (retried); 4xx refused for good; a timeout
after the request went out may have posted (uncertain: an admin decides).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp

from bot.errors import ConfigError
from bot.outlets import OutletSpec
from jobs.fetch import version
from jobs.outlets.base import (
    OutletContext,
    PermanentPublishError,
    Publication,
    Published,
    TransientPublishError,
    UncertainPublishError,
)

SIGNATURE_HEADER = "X-Pinwall-Signature"
TIMESTAMP_HEADER = "X-Pinwall-Timestamp"
ANSWER_MAX = 64 * 1024  # bytes of a receiver's answer that are read


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str, timestamp: str, body: bytes, signature: str, *, now: float, window: float = 300
) -> bool:
    """What a receiver checks: the signature, and a timestamp within `window` seconds."""
    try:
        fresh = abs(now - int(timestamp)) <= window
    except ValueError:
        return False
    return fresh and hmac.compare_digest(sign(secret, timestamp, body), signature)


def payload(outlet: str, publication: Publication) -> dict[str, Any]:
    return {
        "outlet": outlet,
        "proposal": f"P{publication.proposal_id}",
        "idempotency_key": publication.idempotency_key,
        "text": publication.text,
        "link": publication.link,
        "media": [
            {"name": m.name, "mime_type": m.mime_type, "size": m.size, "alt": m.alt}
            for m in publication.media
        ],
        "sent_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


class WebhookPublisher:
    idempotent = False  # whether the receiver honours Idempotency-Key is not ours to know

    def __init__(self, spec: OutletSpec, context: OutletContext) -> None:
        url = spec.options.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigError(f"PINWALL_OUTLETS_{spec.name.upper()}_URL: the webhook's URL")
        if not spec.token:
            raise ConfigError(f"PINWALL_OUTLET_{spec.name.upper()}_TOKEN: missing")
        self.name = spec.name
        self.url = url
        self.secret = spec.token
        timeout = float(spec.options.get("timeout", context.timeout))
        # Connecting has its own, shorter limit: a timeout there means nothing was sent.
        self.timeout = aiohttp.ClientTimeout(total=timeout, connect=min(10.0, timeout))

    async def publish(self, publication: Publication) -> Published:
        body = json.dumps(payload(self.name, publication), ensure_ascii=False).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self.secret, timestamp, body),
            "Idempotency-Key": publication.idempotency_key,
        }
        try:
            # A session per call: publications are rare, and nothing is left to close.
            async with (
                aiohttp.ClientSession(
                    timeout=self.timeout, headers={"User-Agent": f"Pinwall/{version()}"}
                ) as session,
                session.post(
                    self.url, data=body, headers=headers, allow_redirects=False
                ) as response,
            ):
                status = response.status
                answer = await response.content.read(ANSWER_MAX)
                retry_after = response.headers.get("Retry-After")
        except (aiohttp.ConnectionTimeoutError, aiohttp.ClientConnectorError) as exc:
            raise TransientPublishError(f"no connection to the webhook ({exc})") from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            # The request may have reached the receiver: whether it posted is unknown.
            raise UncertainPublishError(
                f"no answer from the webhook ({type(exc).__name__})"
            ) from exc
        if status == 429 or status >= 500:
            seconds = float(retry_after) if retry_after and retry_after.isdigit() else None
            raise TransientPublishError(f"the webhook answered {status}", retry_after=seconds)
        if status >= 300:
            raise PermanentPublishError(f"the webhook refused it ({status})")
        return _published(answer, publication)

    async def aclose(self) -> None:
        return None


def _published(answer: bytes, publication: Publication) -> Published:
    remote_id, url = publication.idempotency_key, None
    try:
        data = json.loads(answer) if answer else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        if isinstance(data.get("id"), str | int):
            remote_id = str(data["id"])
        if isinstance(data.get("url"), str) and data["url"].startswith(("https://", "http://")):
            url = data["url"]
    return Published(remote_id=remote_id[:255], url=url)


def create(spec: OutletSpec, context: OutletContext) -> WebhookPublisher:
    return WebhookPublisher(spec, context)
