"""Files people share on Slack: downloaded with the bot token (only from Slack's own
hosts) into the blob store, within the seconds Slack waits for its ack."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Literal
from urllib.parse import urlsplit

import aiohttp

from adapters.slack.inbound import WantedFile
from bot.events import InboundFile
from store.blobs import BlobStore, BlobTooLarge

log = logging.getLogger(__name__)

DOWNLOAD_BUDGET = 2.0  # seconds of Slack's 3 for fetching files before the ack


class NotYet(Exception):
    """Files still downloading: Slack is not acknowledged and sends the event again."""


class Downloads:
    """The files of the events being recorded; a download goes on while Slack retries."""

    def __init__(
        self, blobs: BlobStore | None, api_url: str, bot_token: str, max_download: int | None
    ) -> None:
        self.blobs = blobs
        self.api_url = api_url
        self.bot_token = bot_token
        self.max_download = max_download
        self._downloads: OrderedDict[str, asyncio.Task[InboundFile]] = OrderedDict()

    def cancel(self) -> None:
        for task in self._downloads.values():
            task.cancel()

    async def fetch_all(self, wanted: tuple[WantedFile, ...]) -> list[InboundFile]:
        if not wanted:
            return []
        tasks = []
        for w in wanted:
            task = self._downloads.get(w.id)
            if task is None:
                task = asyncio.create_task(self._download(w))
                self._downloads[w.id] = task
                while len(self._downloads) > 1000:
                    self._downloads.popitem(last=False)
            tasks.append(task)
        _done, pending = await asyncio.wait(tasks, timeout=DOWNLOAD_BUDGET)
        if pending:
            # Not acknowledged: Slack sends the event again, and the downloads go on.
            raise NotYet(f"{len(pending)} file(s) still downloading")
        return [t.result() for t in tasks]

    async def _download(self, wanted: WantedFile) -> InboundFile:
        blobs = self.blobs
        limit = min(
            self.max_download or (blobs.max_bytes if blobs else 0), blobs.max_bytes if blobs else 0
        )

        def refused(why: Literal["too_large", "unavailable"]) -> InboundFile:
            return InboundFile(
                name=wanted.name,
                blob_id="",
                mime_type=wanted.mime_type,
                size=wanted.size,
                refused=why,
                limit=limit if why == "too_large" else None,
            )

        if blobs is None or (wanted.size is not None and wanted.size > limit):
            return refused("too_large")
        host = urlsplit(wanted.url).hostname or ""
        if host != urlsplit(self.api_url).hostname and not host.endswith(".slack.com"):
            log.warning("Slack: refused to send the bot token to %s for file %s", host, wanted.id)
            return refused("unavailable")
        headers = {"Authorization": f"Bearer {self.bot_token}"}
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(wanted.url, headers=headers) as answer,
            ):
                kind = answer.headers.get("Content-Type", "")
                if answer.status != 200 or kind.startswith("text/html"):
                    # Slack answers a download without access with its login page.
                    log.warning("Slack: file %s not downloadable (%s)", wanted.id, answer.status)
                    return refused("unavailable")
                data = bytearray()
                async for chunk in answer.content.iter_chunked(65536):
                    data += chunk
                    if len(data) > limit:
                        return refused("too_large")
            blob = await asyncio.to_thread(blobs.put, bytes(data))
        except BlobTooLarge:
            return refused("too_large")
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("Slack: downloading file %s failed (%s)", wanted.id, exc)
            return refused("unavailable")
        return InboundFile(
            name=wanted.name, blob_id=blob.id, mime_type=blob.mime_type, size=blob.size
        )
