"""Reading a feed: one conditional GET through the guarded client, discovery of the feed
behind a page, and parsing into entries (no database involved).

The client fetches (ETag / Last-Modified: a 304 costs one small request); the body is
parsed by feedparser from memory — feedparser never fetches anything itself — after a
check that refuses any document declaring XML entities, so entity expansion (a
"billion laughs") cannot happen whatever the parser would do with it.

The first fetch of a new feed also discovers: an HTML page is searched for
``<link rel="alternate" type="application/rss+xml|application/atom+xml">`` and the
feed's URL replaced by the (resolved) link. What went wrong is a FeedProblem; the poller
(jobs/feeds.py) stores the outcome and tells people.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import html
import io
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import feedparser

from bot.feeds import clean_url
from jobs.fetch import FetchError, FetchRefused, FetchResult, GuardedClient

log = logging.getLogger(__name__)

FEED_MAX_BYTES = 5 * 1024 * 1024
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.8, text/xml;q=0.8, text/html;q=0.5, */*;q=0.1"
)
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
FEED_LINK_TYPES = frozenset({"application/rss+xml", "application/atom+xml", "application/rdf+xml"})
TITLE_MAX, SUMMARY_MAX, FEED_TITLE_MAX = 500, 500, 300
MAX_NEW_PER_POLL = 100  # the newest entries of a poll that are considered

# --- what a poll found ----------------------------------------------------------------------


class FeedProblem(Exception):
    """Why a feed gave nothing usable. `kind` names a catalog text (feeds.error.<kind>);
    `permanent` problems end a new feed at its first check."""

    def __init__(
        self,
        kind: str,
        detail: str = "",
        *,
        permanent: bool = False,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail
        self.permanent = permanent
        self.retry_after = retry_after

    @property
    def code(self) -> str:
        """As stored in feeds.last_error."""
        return f"{self.kind}:{self.detail}"[:500] if self.detail else self.kind


@dataclass(frozen=True)
class Entry:
    title: str
    link: str | None
    summary: str
    entry_id: str | None
    date: datetime | None = None  # published, else updated, as the feed says (UTC)


@dataclass(frozen=True)
class ParsedFeed:
    title: str | None
    site_url: str | None
    entries: tuple[Entry, ...]


@dataclass(frozen=True)
class Polled:
    """The outcome of fetching one feed (no database involved yet)."""

    feed_id: int
    url: str | None = None  # set when discovery replaced the feed's URL
    parsed: ParsedFeed | None = None  # None: not modified
    etag: str | None = None
    last_modified: str | None = None
    max_age: int | None = None
    problem: FeedProblem | None = None


# --- reading feeds ----------------------------------------------------------------------------

_ENTITY = re.compile(rb"<!\s*ENTITY", re.IGNORECASE)
_WIDE = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00", "utf-16-le"),
    (b"\x00<", "utf-16-be"),
)


def declares_entities(body: bytes) -> bool:
    """Whether the document declares XML entities (in any encoding a feed may use)."""
    for mark, encoding in _WIDE:
        if body.startswith(mark):
            text = body.decode(encoding, errors="replace")
            return _ENTITY.search(text.encode("utf-8", errors="replace")) is not None
    if b"\x00" in body[:4]:  # UTF-16 or -32 that starts with something else (a blank line)
        wide = {encoding for _, encoding in _WIDE}
        return _ENTITY.search(body) is not None or any(
            _ENTITY.search(body.decode(encoding, errors="replace").encode("utf-8", "replace"))
            for encoding in sorted(wide)
        )
    return _ENTITY.search(body) is not None


_HTML_START = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html)[\s>]", re.I | re.S)
_FEED_MARK = re.compile(rb"<(rss|feed|rdf:RDF)[\s>]", re.I)


def _skip_bom(body: bytes) -> bytes:
    return body[3:] if body.startswith(codecs.BOM_UTF8) else body


def is_html(body: bytes, content_type: str) -> bool:
    """An HTML page rather than a feed (by its start; a feed served as text/html counts as
    a feed when it looks like one)."""
    head = _skip_bom(body[:2048])
    if _HTML_START.match(head):
        return True
    return content_type in HTML_TYPES and not _FEED_MARK.search(head)


class _AlternateParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.feeds: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "").strip() for k, v in attrs}
        if tag == "base" and a.get("href") and self.base is None:
            self.base = a["href"]
        elif (
            tag == "link"
            and "alternate" in a.get("rel", "").lower().split()
            and a.get("type", "").lower() in FEED_LINK_TYPES
            and a.get("href")
        ):
            self.feeds.append(a["href"])


def discover(page: bytes, charset: str | None, url: str) -> str | None:
    """The first feed an HTML page links to as an alternate, as an absolute URL."""
    from jobs.previews import decode_html

    parser = _AlternateParser()
    with contextlib.suppress(Exception):  # a broken page has no usable link, nothing more
        parser.feed(decode_html(page[: 512 * 1024], charset))
        parser.close()
    base = urljoin(url, parser.base) if parser.base else url
    for href in parser.feeds:
        found = clean_url(urljoin(base, href))
        if found is not None:
            return found
    return None


_TAG = re.compile(r"<[^>]*>")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")


def plain_text(value: str | None, limit: int) -> str:
    """HTML (as feedparser sanitized it) as one line of plain text, at most `limit` long."""
    if not value:
        return ""
    text = html.unescape(_TAG.sub(" ", value)) if "<" in value or "&" in value else value
    text = " ".join(_CONTROL.sub(" ", text).split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def _utc(parsed: Any) -> datetime | None:
    """feedparser's date (a time.struct_time in UTC) as an aware datetime; None when
    there is none or it is no real date."""
    try:
        if not parsed:
            return None
        year, month, day, hour, minute, second = (int(v) for v in parsed[:6])
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except (TypeError, ValueError):
        return None


def parse_feed(body: bytes, url: str, content_type: str = "") -> ParsedFeed:
    """The feed in `body` (fetched from `url`); FeedProblem when it is none, or when it
    declares entities (refused before any parsing)."""
    if declares_entities(body):
        raise FeedProblem("entities", permanent=True)
    data = feedparser.parse(
        io.BytesIO(body),  # a stream: feedparser must not take it for a URL or a path
        response_headers={
            "content-location": url,
            "content-type": content_type or "application/xml",
        },
    )
    entries = data.get("entries") or []
    if not data.get("version") and not entries:
        raise FeedProblem("not_a_feed", permanent=True)
    meta = data.get("feed") or {}
    out: list[Entry] = []
    for e in entries[:MAX_NEW_PER_POLL]:
        link = clean_url(e.get("link"))
        title = plain_text(e.get("title"), TITLE_MAX)
        summary = plain_text(e.get("summary"), SUMMARY_MAX)
        entry_id = (e.get("id") or "").strip()[:1000] or None
        if not (title or link or summary):
            continue
        date = _utc(e.get("published_parsed")) or _utc(e.get("updated_parsed"))
        out.append(Entry(title=title, link=link, summary=summary, entry_id=entry_id, date=date))
    return ParsedFeed(
        title=plain_text(meta.get("title"), FEED_TITLE_MAX) or None,
        site_url=clean_url(meta.get("link")),
        entries=tuple(out),
    )


# --- fetching ----------------------------------------------------------------------------------


def _max_age(result: FetchResult) -> int | None:
    m = re.search(r"max-age\s*=\s*(\d+)", result.headers.get("Cache-Control", ""), re.I)
    return int(m.group(1)) if m else None


def _retry_after(result: FetchResult, now: datetime) -> int | None:
    value = (result.headers.get("Retry-After") or "").strip()
    if value.isdigit():
        return int(value)
    with contextlib.suppress(TypeError, ValueError, IndexError):
        return max(0, int((parsedate_to_datetime(value) - now).total_seconds()))
    return None


@dataclass(frozen=True)
class PollTarget:
    """What a poll needs of a feed (a snapshot; the row is not held meanwhile)."""

    id: int
    url: str
    etag: str | None
    last_modified: str | None
    checked: bool


async def _get(client: GuardedClient, url: str, target: PollTarget | None) -> FetchResult:
    try:
        return await client.get(
            url,
            etag=target.etag if target else None,
            last_modified=target.last_modified if target else None,
            max_bytes=FEED_MAX_BYTES,
            accept=ACCEPT,
        )
    except FetchRefused as exc:
        raise FeedProblem("refused", exc.reason, permanent=True) from None
    except FetchError as exc:
        raise FeedProblem("unreachable", exc.reason) from None


def _check_status(result: FetchResult, now: datetime) -> None:
    if result.ok or result.not_modified:
        return
    raise FeedProblem(
        "http",
        str(result.status),
        permanent=result.status in (401, 403, 404, 410),
        retry_after=_retry_after(result, now) if result.status in (429, 503) else None,
    )


async def _parse(result: FetchResult) -> ParsedFeed:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        None, parse_feed, result.body, result.url, result.content_type
    )


async def poll(client: GuardedClient, target: PollTarget, now: datetime) -> Polled:
    """Fetches one feed (discovering it from a page at its first check) and parses it."""
    try:
        result = await _get(client, target.url, target if target.checked else None)
        _check_status(result, now)
        if result.not_modified:
            return Polled(target.id, max_age=_max_age(result))
        new_url = None
        if is_html(result.body, result.content_type):
            if target.checked:
                raise FeedProblem("html")
            new_url = discover(result.body, result.charset, result.url)
            if new_url is None:
                raise FeedProblem("no_feed", permanent=True)
            result = await _get(client, new_url, None)
            _check_status(result, now)
            if is_html(result.body, result.content_type):
                raise FeedProblem("html", permanent=True)
        parsed = await _parse(result)
        return Polled(
            target.id,
            url=new_url,
            parsed=parsed,
            etag=(result.etag or "")[:255] or None,
            last_modified=(result.last_modified or "")[:64] or None,
            max_age=_max_age(result),
        )
    except FeedProblem as problem:
        return Polled(target.id, problem=problem)
    except Exception as exc:  # a parser bug must not stop the other feeds
        log.exception("feed F%d (%s) failed", target.id, target.url)
        return Polled(target.id, problem=FeedProblem("unreachable", type(exc).__name__))


__all__ = [
    "Entry",
    "FeedProblem",
    "ParsedFeed",
    "PollTarget",
    "Polled",
    "declares_entities",
    "discover",
    "parse_feed",
    "poll",
]
