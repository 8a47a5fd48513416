"""OPML import and export of feeds, for `pinwall feeds import|export`.

Export writes one outline per group (its slug as `category`) holding an outline per
feed; Pinwall's own settings ride along as extra attributes (`include`, `exclude`,
`toRooms`), which other readers ignore. Import reads every outline with an `xmlUrl`,
at any depth, with defusedxml: a file declaring entities or a DTD is refused.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # builds documents only; parsing is defusedxml
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from store.models import Feed, Group


class OpmlError(Exception):
    """A file that is not usable OPML; the message says why."""


@dataclass(frozen=True)
class OpmlFeed:
    url: str
    title: str | None
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    to_rooms: bool = False


def _words(value: str | None) -> tuple[str, ...]:
    return tuple(w for w in (" ".join(p.split()).lower() for p in (value or "").split(",")) if w)


def read_opml(data: bytes) -> list[OpmlFeed]:
    """The feeds of an OPML document, in document order; OpmlError when it is none."""
    try:
        root = SafeET.fromstring(data)
    except DefusedXmlException as exc:
        raise OpmlError(
            f"refused: {type(exc).__name__} (entities and DTDs are not allowed)"
        ) from None
    except ET.ParseError as exc:
        raise OpmlError(f"not well-formed XML ({exc})") from None
    if root.tag.lower() != "opml":
        raise OpmlError(f"not OPML: the root element is <{root.tag}>")
    body = root.find("body")
    if body is None:
        raise OpmlError("not OPML: no <body>")
    feeds: list[OpmlFeed] = []
    for outline in body.iter("outline"):
        attrs = {k.lower(): v for k, v in outline.attrib.items()}
        url = (attrs.get("xmlurl") or "").strip()
        if not url:
            continue
        title = (attrs.get("title") or attrs.get("text") or "").strip() or None
        feeds.append(
            OpmlFeed(
                url=url,
                title=title[:300] if title else None,
                include=_words(attrs.get("include")),
                exclude=_words(attrs.get("exclude")),
                to_rooms=attrs.get("torooms", "").lower() == "true",
            )
        )
    return feeds


def write_opml(groups: Mapping[int, Group], feeds: Iterable[Feed], now: datetime) -> bytes:
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = "Pinwall feeds"
    ET.SubElement(head, "dateCreated").text = format_datetime(now)
    body = ET.SubElement(root, "body")
    folders: dict[int, ET.Element] = {}
    for feed in feeds:
        group = groups[feed.group_id]
        folder = folders.get(group.id)
        if folder is None:
            folder = folders[group.id] = ET.SubElement(
                body, "outline", text=group.name, title=group.name, category=f"/{group.slug}"
            )
        attrs = {
            "type": "rss",
            "text": feed.title or feed.url,
            "title": feed.title or feed.url,
            "xmlUrl": feed.url,
        }
        if feed.site_url:
            attrs["htmlUrl"] = feed.site_url
        if feed.include_words:
            attrs["include"] = ",".join(feed.include_words)
        if feed.exclude_words:
            attrs["exclude"] = ",".join(feed.exclude_words)
        if feed.to_rooms:
            attrs["toRooms"] = "true"
        ET.SubElement(folder, "outline", attrs)
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data + b"\n"
