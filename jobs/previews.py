"""Link previews: the title, description, image, site name and canonical URL of a shared link.

A share is answered at once with the URL as the post's title; this worker then picks
the links whose preview is due, fetches each through the guarded client (HTML only,
the first 512 KB), and stores what it found in one transaction. Deliveries are
rendered when sent, so one sent after that shows the preview. The post's copies wait
for it a moment (CoreSettings.preview_wait, 2 s): the worker lets them go in the same
transaction that stores the preview, or finds that it will not come, so live copies
show it when the page answers quickly and are held no longer than that when it does
not. A failed fetch is tried once more later; after that, or after a refusal, the
post keeps its URL as title.

OpenGraph first, then Twitter cards, then plain HTML (<title>, meta description,
link rel=canonical), read by the standard library's HTML parser.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

from bot.runtime import Hub
from jobs.fetch import FetchError, FetchFailed, FetchRefused, GuardedClient
from store.uow import UnitOfWork

log = logging.getLogger(__name__)

MAX_HTML = 512 * 1024
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"
TITLE_MAX, DESCRIPTION_MAX, SITE_MAX, URL_MAX = 300, 1000, 200, 2048


@dataclass(frozen=True)
class Preview:
    title: str | None = None
    description: str | None = None
    image_url: str | None = None
    site_name: str | None = None
    canonical_url: str | None = None


# --- reading HTML ------------------------------------------------------------------------

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-z0-9_.:-]+)""", re.IGNORECASE)
# What browsers decode these labels as (the WHATWG Encoding Standard).
_WHATWG = {"iso-8859-1": "cp1252", "latin-1": "cp1252", "ascii": "cp1252", "us-ascii": "cp1252"}


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    return _WHATWG.get(label, _WHATWG.get(name, name))


def decode_html(body: bytes, charset: str | None) -> str:
    """The page as text: a byte order mark, else the HTTP charset, else a <meta> one,
    else UTF-8 when it is valid, else Windows-1252 (what browsers assume)."""
    for bom, name in (
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if body.startswith(bom):
            return body[len(bom) :].decode(name, errors="replace")
    codec = _codec(charset)
    if codec is None:
        m = _META_CHARSET.search(body[:4096])
        codec = _codec(m.group(1).decode("ascii")) if m else None
    if codec in ("utf-16", "utf-16-le", "utf-16-be"):
        codec = "utf-8"  # a <meta> in ASCII cannot be UTF-16 (WHATWG does the same)
    if codec is None:
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start >= len(body) - 3:  # only the cut at the size limit is broken
                return body.decode("utf-8", errors="replace")
            codec = "cp1252"
    return body.decode(codec, errors="replace")


class _Done(Exception):
    """The head is over: what a preview needs has been read."""


class _HeadParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, str] = {}
        self.canonical: str | None = None
        self.base: str | None = None
        self.title: str | None = None
        self._title: list[str] | None = None
        self._svg = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): v or "" for k, v in attrs}
        if tag == "meta":
            key = (a.get("property") or a.get("name") or "").strip().lower()
            if key and "content" in a:
                self.meta.setdefault(key, a["content"])
        elif tag == "link":
            if "canonical" in a.get("rel", "").lower().split() and a.get("href"):
                self.canonical = self.canonical or a["href"]
        elif tag == "title" and self.title is None and self._title is None and not self._svg:
            self._title = []
        elif tag == "base" and a.get("href"):
            self.base = self.base or a["href"]
        elif tag == "svg":
            self._svg += 1
        elif tag == "body":
            raise _Done

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self._title is not None:
            self.title, self._title = "".join(self._title), None
        elif tag == "svg":
            self._svg = max(0, self._svg - 1)
        elif tag == "head":
            raise _Done

    def handle_data(self, data: str) -> None:
        if self._title is not None and sum(map(len, self._title)) < 4 * TITLE_MAX:
            self._title.append(data)

    def finish(self) -> None:
        if self._title is not None:  # <title> never closed
            self.title, self._title = "".join(self._title), None


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]+")


def _text(value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    text = " ".join(_CONTROL.sub(" ", value).split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text or None


def _url(value: str | None, base: str) -> str | None:
    if not value or not value.strip():
        return None
    try:
        url = urljoin(base, value.strip())
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > URL_MAX:
        return None
    if any(c.isspace() or ord(c) < 32 for c in url):
        return None
    return url


def _first(*values: str | None) -> str | None:
    return next((v for v in values if v), None)


def parse_html(html: str, url: str) -> Preview:
    """The preview of a page at `url` (its final URL, which relative links resolve to)."""
    parser = _HeadParser()
    with contextlib.suppress(_Done):
        parser.feed(html)
        parser.close()
    parser.finish()
    meta = parser.meta
    base = _url(parser.base, url) or url
    return Preview(
        title=_first(
            _text(meta.get("og:title"), TITLE_MAX),
            _text(meta.get("twitter:title"), TITLE_MAX),
            _text(parser.title, TITLE_MAX),
        ),
        description=_first(
            _text(meta.get("og:description"), DESCRIPTION_MAX),
            _text(meta.get("twitter:description"), DESCRIPTION_MAX),
            _text(meta.get("description"), DESCRIPTION_MAX),
        ),
        image_url=_first(
            _url(meta.get("og:image:secure_url"), base),
            _url(meta.get("og:image"), base),
            _url(meta.get("og:image:url"), base),
            _url(meta.get("twitter:image"), base),
            _url(meta.get("twitter:image:src"), base),
        ),
        site_name=_first(
            _text(meta.get("og:site_name"), SITE_MAX),
            _text(meta.get("application-name"), SITE_MAX),
        ),
        canonical_url=_first(_url(parser.canonical, base), _url(meta.get("og:url"), base)),
    )


async def fetch_preview(client: GuardedClient, url: str) -> Preview:
    """Fetches `url` and reads its preview; FetchError when there is no page to read."""
    result = await client.get(
        url,
        max_bytes=MAX_HTML,
        partial=True,  # the head is at the start: the rest is not needed
        body_types=HTML_TYPES | {""},
        accept=ACCEPT,
    )
    if not result.ok:
        raise FetchFailed(f"HTTP {result.status}")
    body, kind = result.body, result.content_type
    if kind in HTML_TYPES or (kind == "" and body.lstrip()[:1] == b"<"):
        return parse_html(decode_html(body, result.charset), result.url)
    if kind.startswith("image/"):
        return Preview(image_url=_url(result.url, result.url))
    return Preview()


# --- the worker ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PreviewPolicy:
    concurrency: int = 4  # fetches at once
    batch: int = 16  # links claimed at once
    lease: timedelta = timedelta(minutes=2)  # a claim not finished by then is a failed try
    retry_after: timedelta = timedelta(minutes=10)  # the one retry of a failed preview
    idle_poll: float = 5.0


class PreviewWorker:
    """Fetches due link previews: `run` until stopped (serve), `pass_once` / `drain` in tests."""

    def __init__(
        self, hub: Hub, client: GuardedClient, policy: PreviewPolicy | None = None
    ) -> None:
        self.hub = hub
        self.client = client
        self.policy = policy or PreviewPolicy()
        self._running: dict[int, int] = {}  # item id -> try: claimed, not yet done

    # --- store side (the hub's DB thread) ----------------------------------------

    def _claim(self, limit: int) -> list[tuple[int, str, int]]:
        with self.hub.db.uow() as uow:
            claimed = uow.items.claim_previews(self.hub.clock.now(), limit, self.policy.lease)
            uow.commit()
        return claimed

    def _let_go(self, uow: UnitOfWork, item_id: int) -> int:
        """The post's copies held back for its preview go now (see fan_out)."""
        wait = self.hub.core.settings.preview_wait
        if wait <= 0:
            return 0
        now = self.hub.clock.now()
        return uow.outbox.release_held(item_id, now, now + timedelta(seconds=wait))

    def _store(self, item_id: int, attempt: int, preview: Preview) -> int:
        with self.hub.db.uow() as uow:
            uow.items.store_preview(
                item_id,
                attempt,
                self.hub.clock.now(),
                title=preview.title,
                description=preview.description,
                image_url=preview.image_url,
                site_name=preview.site_name,
                canonical_url=preview.canonical_url,
            )
            released = self._let_go(uow, item_id)
            uow.commit()
        return released

    def _failed(self, item_id: int, attempt: int, retry: bool) -> int:
        now = self.hub.clock.now()
        with self.hub.db.uow() as uow:
            uow.items.preview_failed(
                item_id, attempt, now, now + self.policy.retry_after if retry else None
            )
            released = self._let_go(uow, item_id)  # without a preview, but not held longer
            uow.commit()
        return released

    async def _finish(self, fn: Callable[..., int], *args: Any) -> None:
        """Runs _store or _failed; copies it let go wake the delivery worker."""
        if await self.hub.call(fn, *args):
            self.hub.wake()

    def _release(self, claims: list[tuple[int, int]]) -> None:
        now = self.hub.clock.now()
        with self.hub.db.uow() as uow:
            for item_id, attempt in claims:
                uow.items.release_preview(item_id, attempt, now)
            uow.commit()

    # --- fetching ----------------------------------------------------------------

    async def _one(
        self, item_id: int, url: str, attempt: int, gate: asyncio.Semaphore | None = None
    ) -> None:
        async with gate or contextlib.nullcontext():
            try:
                preview = await fetch_preview(self.client, url)
            except FetchRefused:
                self._running.pop(item_id, None)
                await self._finish(self._failed, item_id, attempt, False)  # logged by the client
                return
            except FetchError as exc:
                self._running.pop(item_id, None)
                retry = attempt == 1
                log.info(
                    "link preview of post %d failed: %s (%s)%s",
                    item_id,
                    exc.reason,
                    url,
                    "; trying once more later" if retry else "",
                )
                await self._finish(self._failed, item_id, attempt, retry)
                return
            except Exception:
                self._running.pop(item_id, None)
                log.exception("link preview of post %d (%s) failed", item_id, url)
                await self._finish(self._failed, item_id, attempt, False)
                return
            # Cancelled (stopping): it stays in _running, and run() gives its claim back.
            self._running.pop(item_id, None)
            await self._finish(self._store, item_id, attempt, preview)

    async def pass_once(self) -> int:
        """Claims a batch of the links whose preview is due and fetches them, a few at a
        time; returns how many it claimed."""
        claimed = await self.hub.call(self._claim, self.policy.batch)
        self._running.update((item_id, attempt) for item_id, _, attempt in claimed)
        if claimed:
            gate = asyncio.Semaphore(self.policy.concurrency)
            await asyncio.gather(*(self._one(i, url, a, gate) for i, url, a in claimed))
        return len(claimed)

    async def drain(self) -> None:
        """Until no preview is due (what failed waits for its retry)."""
        while await self.pass_once():
            pass

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`: keeps up to `concurrency` fetches running, claiming more as
        slots free up; woken by every event the hub applies, and every `idle_poll`.
        Fetches still running at the stop are given back, to be done after a restart."""
        wake = asyncio.Event()
        self.hub.add_waker(wake)
        await self.client.open()
        tasks: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                wake.clear()
                free = self.policy.concurrency - len(tasks)
                if free > 0:
                    try:
                        claimed = await self.hub.call(self._claim, free)
                    except Exception:
                        log.exception("claiming link previews failed; trying again shortly")
                        claimed = []
                    for item_id, url, attempt in claimed:
                        self._running[item_id] = attempt
                        tasks.add(asyncio.create_task(self._one(item_id, url, attempt)))
                waiters = {asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())}
                await asyncio.wait(
                    waiters | tasks,
                    timeout=self.policy.idle_poll,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for waiter in waiters:
                    waiter.cancel()
                for task in [t for t in tasks if t.done()]:
                    tasks.discard(task)
                    if not task.cancelled() and task.exception() is not None:
                        log.error("a link preview failed", exc_info=task.exception())
        finally:
            self.hub.remove_waker(wake)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            left = list(self._running.items())
            self._running.clear()
            if left:
                try:
                    await self.hub.call(self._release, left)
                except Exception:
                    log.exception("giving back %d link previews failed", len(left))
            await self.client.close()
