"""Files shared in Teams: an attachment of type file.download.info names a pre-signed
downloadUrl (SharePoint / OneDrive). Fetched without the bot's token, only over https
from SharePoint's hosts (or a Bot Connector host the request's JWT vouched for), capped
at the blob store's size (PINWALL_FILE_MAX_MB) while it streams; anything else is
refused and logged."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Collection
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from adapters.teams.inbound import WantedFile
from adapters.teams.render import activity
from bot.events import InboundFile
from bot.i18n import Translator
from bot.message import Message
from bot.signing import UrlSigner
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


# --- files to a personal chat: the FileConsentCard flow --------------------------------
# A bot uploads into a person's OneDrive only with their consent: it sends a consent card
# per file; on "Allow" Teams invokes fileConsent/invoke with an uploadUrl, the bot PUTs
# the bytes there and sends the file info card that shows the file in the chat. (To a
# channel a bot can upload only via Graph: there the signed download link stays.)

CONSENT = "application/vnd.microsoft.teams.card.file.consent"
FILE_CARD = "application/vnd.microsoft.teams.card.file.info"
CONSENT_TTL = 7 * 24 * 3600  # seconds an offer may be accepted


def consent_card(
    signer: UrlSigner, blob_id: str, name: str, size: int, now: float
) -> dict[str, Any]:
    """The consent card of one file; its context names the blob and the file's name,
    signed (so that an answer names only a file Pinwall offered, and not for ever)."""
    expires = int(now) + CONSENT_TTL
    sig = signer.signature(f"{blob_id}|{name}", expires)
    context = {"blob": blob_id, "name": name, "exp": expires, "sig": sig}
    return {
        "contentType": CONSENT,
        "name": name,
        "content": {
            "description": name,
            "sizeInBytes": size,
            "acceptContext": context,
            "declineContext": context,
        },
    }


def consent_activity(card: dict[str, Any]) -> dict[str, Any]:
    """A consent card goes alone in its activity: the answer's replyToId names it, and it
    is replaced in place by what came of it (answered())."""
    return {"type": "message", "attachments": [card]}


def offered(signer: UrlSigner, context: object, now: datetime) -> tuple[str, str] | None:
    """The blob and the file name an answered consent card offered; None for a forged
    or stale context. (Cards sent before the name was signed carry none: name "".)"""
    if not isinstance(context, dict):
        return None
    blob_id, name = context.get("blob"), context.get("name", "")
    expires, sig = context.get("exp"), context.get("sig")
    if not isinstance(blob_id, str) or not isinstance(name, str) or not isinstance(sig, str):
        return None
    signed = f"{blob_id}|{name}" if "name" in context else blob_id
    if signer.check(signed, str(expires), sig, now=now) is not None:
        return None
    return blob_id, name


def answered(t: Translator, name: str, *, uploaded: bool) -> dict[str, Any]:
    """What replaces an answered consent card: the file uploaded, or not sent."""
    key = "teams.file.uploaded" if uploaded else "teams.file.declined"
    return activity(Message(text=t(key, name=name)))


# OneDrive's upload session takes a file in byte ranges, each PUT with its Content-Range:
# under 60 MiB a request, each but the last a multiple of 320 KiB (Microsoft Graph,
# "driveItem: createUploadSession", upload bytes to the upload session); an answer 202
# asks for the next range, 200/201 (the driveItem) ends it. 10 MiB per request keeps
# memory small with PINWALL_FILE_MAX_MB up to 2048.
RANGE_UNIT = 320 * 1024
UPLOAD_CHUNK = 32 * RANGE_UNIT  # 10 MiB
MAX_REQUEST = 60 * 1024 * 1024  # exclusive


def _read(source: Path, start: int, size: int) -> bytes:
    with source.open("rb") as f:
        f.seek(start)
        return f.read(size)


async def upload(
    http: httpx.AsyncClient,
    url: str,
    source: Path,
    trusted_hosts: Collection[str],
    *,
    chunk: int = UPLOAD_CHUNK,
) -> bool:
    """The file PUT to the upload session Teams gave (OneDrive's, pre-authorized: no bot
    token goes there), in ranges of `chunk` bytes; only to SharePoint's hosts or a host
    a JWT vouched for."""
    assert chunk % RANGE_UNIT == 0, "OneDrive takes ranges in multiples of 320 KiB"
    assert 0 < chunk < MAX_REQUEST, "OneDrive takes under 60 MiB a request"
    if not allowed(url, trusted_hosts):
        log.warning("Teams: refused to upload to %s", url[:200])
        return False
    size = (await asyncio.to_thread(source.stat)).st_size
    start = 0
    while True:
        piece = await asyncio.to_thread(_read, source, start, chunk)
        end = start + len(piece)
        headers = {"Content-Range": f"bytes {start}-{max(end - 1, 0)}/{size}"}
        try:
            answer = await http.put(url, content=piece, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("Teams: upload failed (%s)", exc)
            return False
        done = end >= size
        if answer.status_code not in ((200, 201) if done else (202,)):
            log.warning("Teams: upload refused at byte %s (%s)", start, answer.status_code)
            return False
        if done:
            return True
        start = end


def file_card(info: dict[str, Any]) -> dict[str, Any]:
    """The message that shows an uploaded file in the chat (Teams' file info card)."""
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": FILE_CARD,
                "contentUrl": str(info.get("contentUrl") or ""),
                "name": str(info.get("name") or "file"),
                "content": {
                    "uniqueId": str(info.get("uniqueId") or ""),
                    "fileType": str(info.get("fileType") or ""),
                },
            }
        ],
    }
