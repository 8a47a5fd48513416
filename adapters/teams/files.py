"""Files shared in Teams: an attachment of type file.download.info names a pre-signed
downloadUrl (SharePoint / OneDrive). Fetched without the bot's token, only over https
from SharePoint's hosts (or a Bot Connector host the request's JWT vouched for), capped
at the blob store's size (PINWALL_FILE_MAX_MB) while it streams; anything else is
refused and logged."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Collection
from typing import Literal
from urllib.parse import urlsplit

import httpx

from adapters.teams.inbound import WantedFile
from bot.events import InboundFile
from store.blobs import BlobStore, BlobTooLarge

log = logging.getLogger(__name__)

FILE_HOSTS = (".sharepoint.com", ".sharepoint.de", ".sharepoint.cn", ".sharepoint.us")


def allowed(url: str, trusted_hosts: Collection[str]) -> bool:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.port is not None and host not in trusted_hosts:
        return False
    if host in trusted_hosts:
        return parts.scheme in ("https", "http")
    return parts.scheme == "https" and host.endswith(FILE_HOSTS)


async def fetch(
    http: httpx.AsyncClient,
    blobs: BlobStore | None,
    wanted: WantedFile,
    trusted_hosts: Collection[str],
) -> InboundFile:
    limit = blobs.max_bytes if blobs else 0

    def refused(why: Literal["too_large", "unavailable"]) -> InboundFile:
        return InboundFile(
            name=wanted.name,
            blob_id="",
            mime_type=wanted.mime_type,
            refused=why,
            limit=limit if why == "too_large" else None,
        )

    if blobs is None:
        return refused("too_large")
    if not allowed(wanted.url, trusted_hosts):
        log.warning("Teams: refused to fetch file %s from %s", wanted.name, wanted.url[:200])
        return refused("unavailable")
    try:
        async with http.stream("GET", wanted.url, follow_redirects=False) as answer:
            if answer.status_code != 200:
                log.warning("Teams: file %s not downloadable (%s)", wanted.name, answer.status_code)
                return refused("unavailable")
            size = answer.headers.get("content-length", "")
            if size.isdigit() and int(size) > limit:
                return refused("too_large")

            async def chunks() -> AsyncIterator[bytes]:
                async for chunk in answer.aiter_bytes(65536):
                    yield chunk

            blob = await blobs.put_async(chunks())
    except BlobTooLarge:
        log.warning("Teams: file %s is over %s bytes, refused", wanted.name, limit)
        return refused("too_large")
    except (httpx.HTTPError, OSError) as exc:
        log.warning("Teams: downloading file %s failed (%s)", wanted.name, exc)
        return refused("unavailable")
    return InboundFile(name=wanted.name, blob_id=blob.id, mime_type=blob.mime_type, size=blob.size)
