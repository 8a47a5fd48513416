"""The newsroom: Pinwall's own public Atom feed at /public/<outlet>.atom, always there.

Publishing stores an entry, once per idempotency key (a repeated attempt finds the
entry it made), so an attempt cut short by a crash is simply made again. The feed is
Atom 1.0 written with ElementTree (which escapes every text), its ids tag URIs that
never change.
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET  # writing XML only; never parsing it
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bot.outlets import OutletSettings, OutletSpec
from bot.runtime import Hub
from jobs.outlets.base import OutletContext, Publication, Published
from store.db import Database
from store.models import NewsroomEntry

ATOM = "http://www.w3.org/2005/Atom"
FEED_ENTRIES = 50
TITLE_MAX = 100


def feed_path(outlet: str) -> str:
    return f"/public/{outlet}.atom"


def feed_url(public_url: str | None, outlet: str) -> str | None:
    return f"{public_url.rstrip('/')}{feed_path(outlet)}" if public_url else None


def entry_url(public_url: str | None, outlet: str, entry_id: int) -> str | None:
    feed = feed_url(public_url, outlet)
    return f"{feed}#entry-{entry_id}" if feed else None


class NewsroomPublisher:
    idempotent = True  # one entry per idempotency key

    def __init__(self, spec: OutletSpec, context: OutletContext) -> None:
        self.name = spec.name
        self.db = context.db
        self.public_url = context.public_url

    def _store(self, publication: Publication) -> int:
        with self.db.uow() as uow:
            entry = uow.proposals.newsroom_entry(
                outlet=self.name,
                key=publication.idempotency_key,
                proposal_id=publication.proposal_id,
                text=publication.text,
                link=publication.link,
                now=datetime.now(UTC),
            )
            uow.commit()
            return entry.id

    async def publish(self, publication: Publication) -> Published:
        entry_id = await asyncio.to_thread(self._store, publication)
        return Published(
            remote_id=f"{self.name}:{entry_id}",
            url=entry_url(self.public_url, self.name, entry_id),
        )

    async def aclose(self) -> None:
        return None


def create(spec: OutletSpec, context: OutletContext) -> NewsroomPublisher:
    return NewsroomPublisher(spec, context)


# --- the feed ---------------------------------------------------------------------------


def _tag(public_url: str | None, outlet: str, day: datetime, what: str) -> str:
    """A tag URI (RFC 4151): stable, unique, and no address someone must serve."""
    host = urlsplit(public_url).hostname if public_url else None
    return f"tag:{host or 'pinwall.invalid'},{day:%Y-%m-%d}:{outlet}/{what}"


def _time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _title(text: str) -> str:
    first = " ".join(text.strip().split("\n")[0].split())
    return first if len(first) <= TITLE_MAX else first[: TITLE_MAX - 1].rstrip() + "…"


def render_feed(
    spec: OutletSpec,
    entries: Sequence[NewsroomEntry],
    public_url: str | None,
    *,
    now: datetime,
    links_url: str | None = None,
) -> bytes:
    """The Atom 1.0 document of the newest entries (newest first). Its ids are made from
    PINWALL_PUBLIC_URL alone, so they never change with the HTTP address; its links point
    at `links_url` (the public URL, else the local address) where given."""
    ET.register_namespace("", ATOM)

    def sub(parent: ET.Element, name: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{ATOM}}}{name}", attrs)
        if text is not None:
            element.text = text
        return element

    feed = ET.Element(f"{{{ATOM}}}feed")
    title = str(spec.options.get("title") or "Newsroom")
    sub(feed, "title", title)
    if spec.options.get("subtitle"):
        sub(feed, "subtitle", str(spec.options["subtitle"]))
    # The feed's id must never change: it is made from a fixed day, not from "now".
    sub(feed, "id", _tag(public_url, spec.name, datetime(2026, 1, 1, tzinfo=UTC), "feed"))
    updated = max((e.published_at for e in entries), default=now)
    sub(feed, "updated", _time(updated))
    self_url = feed_url(links_url or public_url, spec.name)
    if self_url:
        sub(feed, "link", rel="self", href=self_url, type="application/atom+xml")
    if spec.options.get("site_url"):
        sub(feed, "link", rel="alternate", href=str(spec.options["site_url"]))
    author = sub(feed, "author")
    sub(author, "name", str(spec.options.get("author") or title))
    sub(feed, "generator", "Pinwall")
    for e in entries:
        entry = sub(feed, "entry")
        sub(entry, "id", _tag(public_url, spec.name, e.published_at, f"entry/{e.id}"))
        sub(entry, "title", _title(e.text), type="text")
        sub(entry, "published", _time(e.published_at))
        sub(entry, "updated", _time(e.published_at))
        if e.link:
            sub(entry, "link", rel="alternate", href=e.link)
        elif self_url:
            sub(entry, "link", rel="alternate", href=f"{self_url}#entry-{e.id}")
        sub(entry, "content", e.text, type="text")
    body: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return body


def feed_routes(
    hub: Hub, outlets: OutletSettings, public_url: str | None, links_url: str | None = None
) -> list[Route]:
    """GET /public/<outlet>.atom for every newsroom outlet (served by Pinwall's app)."""

    def _load(name: str) -> bytes | None:
        spec = outlets.get(name)
        if spec is None or spec.kind != "newsroom":
            return None
        db: Database = hub.db
        with db.uow() as uow:
            entries = uow.proposals.newsroom_entries(spec.name, FEED_ENTRIES)
            return render_feed(spec, entries, public_url, now=hub.clock.now(), links_url=links_url)

    async def feed(request: Request) -> Response:
        body = await hub.call(_load, request.path_params["outlet"])
        if body is None:
            return PlainTextResponse("not found", status_code=404)
        return Response(
            body,
            media_type="application/atom+xml; charset=utf-8",
            headers={"Cache-Control": "public, max-age=60"},
        )

    return [Route("/public/{outlet}.atom", feed)]
