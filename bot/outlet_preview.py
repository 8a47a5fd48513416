"""How a proposal will look on its network, for the approval card: the text as the feed
cuts it ("… see more"), the link card, the image count, so that gatekeepers approve
what will really appear.

A hook per outlet kind (`PREVIEWS`), platform-free: it takes a `Draft` (what the
publisher will send) and returns a `Preview`. It mirrors the publisher's own choices
(jobs/outlets/<kind>.py): on LinkedIn and Facebook a link without images becomes a
card and stays out of the text; with images the link goes on the text's last line and
there is no card. Where the feed folds a long text is not documented by either
network; the figures below are what their web feeds show today (LinkedIn about 210
characters or three lines, Facebook about 480 characters or five lines).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from bot.outlets import publication_text


@dataclass(frozen=True)
class Draft:
    text: str
    link: str | None = None
    link_title: str | None = None
    picture: bool = False  # the link preview has an image
    images: int = 0


@dataclass(frozen=True)
class LinkCard:
    source: str  # the host a reader sees: acme.example
    title: str | None
    picture: bool


@dataclass(frozen=True)
class Preview:
    network: str  # catalog key of the network's name
    shown: str  # the text above the fold
    folded: bool  # more follows behind "see more"
    card: LinkCard | None
    images: int


def fold(text: str, characters: int, lines: int) -> tuple[str, bool]:
    """The part of `text` a feed shows before "see more", and whether anything is cut."""
    kept = "\n".join(text.split("\n")[:lines])
    if len(kept) > characters:
        cut = kept[:characters]
        space = cut.rfind(" ")
        kept = cut[:space] if space > characters // 2 else cut
    kept = kept.rstrip()
    return kept, kept != text.rstrip()


def source_of(url: str) -> str:
    host = urlsplit(url).hostname or url
    return host.removeprefix("www.")


def _page_post(network: str, characters: int, lines: int) -> Callable[[Draft], Preview]:
    def preview(draft: Draft) -> Preview:
        card = None
        if draft.images:
            text = publication_text(draft.text, draft.link)
        else:
            text = draft.text
            if draft.link:
                card = LinkCard(source_of(draft.link), draft.link_title, draft.picture)
        shown, folded = fold(text, characters, lines)
        return Preview(network, shown, folded, card, draft.images)

    return preview


PREVIEWS: Mapping[str, Callable[[Draft], Preview]] = {
    "linkedin": _page_post("outlet.linkedin.network", 210, 3),
    "facebook": _page_post("outlet.facebook.network", 480, 5),
}


def preview(kind: str, draft: Draft) -> Preview | None:
    """The outlet kind's preview of the draft; None for a kind without one."""
    hook = PREVIEWS.get(kind)
    return hook(draft) if hook is not None else None
