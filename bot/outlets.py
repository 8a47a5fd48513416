"""Outlets as the core sees them: names, kinds, limits and how text is measured.

An outlet is a public place a proposal is published to once gatekeepers approve it
(Mastodon, Bluesky, a Telegram channel, a LinkedIn company page, a Facebook page, a
signed webhook, the built-in newsroom Atom feed). The core checks a proposal against
its outlet's limits when it is made; the publishing itself (with the outlets' SDKs)
lives in `jobs.outlets`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

import regex

Unit = Literal["characters", "graphemes"]
KINDS = ("mastodon", "bluesky", "telegram_channel", "linkedin", "facebook", "webhook", "newsroom")
NEWSROOM = "newsroom"  # the outlet that is always there

MB = 1024 * 1024


@dataclass(frozen=True)
class OutletLimits:
    max_length: int | None  # None: no limit
    unit: Unit = "characters"
    max_media: int = 0
    max_media_bytes: int = 0
    url_length: int | None = None  # Mastodon counts every URL as 23 characters
    # Telegram: a caption (text with media) is shorter than a message.
    max_length_with_media: int | None = None
    # The media types it takes, as MIME prefixes ("image/"); None: any.
    media_types: tuple[str, ...] | None = None


# What each kind takes, as its platform documents it (bytes per file).
DEFAULT_LIMITS: Mapping[str, OutletLimits] = {
    "mastodon": OutletLimits(
        500, "characters", max_media=4, max_media_bytes=16 * MB, url_length=23
    ),
    "bluesky": OutletLimits(
        300, "graphemes", max_media=4, max_media_bytes=1_000_000, media_types=("image/",)
    ),
    "telegram_channel": OutletLimits(
        4096, "characters", max_media=10, max_media_bytes=50 * MB, max_length_with_media=1024
    ),
    # LinkedIn's Posts API: commentary up to 3,000 characters; a multi-image post takes up
    # to 20 images (JPG, GIF, PNG), each at most 5 MB as LinkedIn's media guidelines say.
    "linkedin": OutletLimits(
        3000, "characters", max_media=20, max_media_bytes=5 * MB, media_types=("image/",)
    ),
    # Facebook: a post's message up to 63,206 characters; photos as Page photos
    # (/{page-id}/photos: "less than 4 MB"), several attached to one post (we take 10).
    "facebook": OutletLimits(
        63_206, "characters", max_media=10, max_media_bytes=4 * MB, media_types=("image/",)
    ),
    "webhook": OutletLimits(None, "characters", max_media=10, max_media_bytes=50 * MB),
    "newsroom": OutletLimits(None, "characters", max_media=0),
}

# Kinds whose publisher takes an idempotency key: a repeated call cannot post twice, so
# an attempt interrupted without an outcome may be made again with the same key.
IDEMPOTENT_KINDS = frozenset({"mastodon", "newsroom"})


@dataclass(frozen=True)
class OutletSpec:
    """One `[outlets.NAME]` table of pinwall.toml, its secret from the environment
    (`PINWALL_OUTLET_<NAME>_TOKEN`)."""

    name: str
    kind: str
    options: Mapping[str, Any] = field(default_factory=dict)
    token: str | None = None
    quorum: int = 1
    limits: OutletLimits = OutletLimits(None)

    def __repr__(self) -> str:  # the token never reaches a log line
        return f"OutletSpec(name={self.name!r}, kind={self.kind!r}, quorum={self.quorum})"


NEWSROOM_SPEC = OutletSpec(NEWSROOM, "newsroom", limits=DEFAULT_LIMITS["newsroom"])

# An outlet whose token lapses (LinkedIn's after 60 days) names the day in its table,
# `token_expires = 2027-02-05`; admins are told this long before, and `pinwall doctor`
# warns within it.
TOKEN_WARNING = timedelta(days=7)


def token_expires(spec: OutletSpec) -> date | None:
    """The day the outlet's token stops working, when its table names one (a TOML date or
    an ISO date string); None when it does not, or names no valid date."""
    value = spec.options.get("token_expires")
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


DEFAULT_EXPIRY = timedelta(days=7)


@dataclass(frozen=True)
class OutletSettings:
    """The configured outlets (the newsroom always among them) and how long a proposal
    waits for its gatekeepers."""

    outlets: tuple[OutletSpec, ...] = (NEWSROOM_SPEC,)
    expiry: timedelta = DEFAULT_EXPIRY

    def get(self, name: str) -> OutletSpec | None:
        wanted = name.strip().lower()
        return next((o for o in self.outlets if o.name == wanted), None)


_URL = re.compile(r"https?://[^\s<>\"]+", re.IGNORECASE)
_GRAPHEME = regex.compile(r"\X")


def measure(text: str, limits: OutletLimits) -> int:
    """The length of `text` in the outlet's own unit: characters (code points, as
    Mastodon and Telegram count them; Mastodon counts every URL as `url_length`) or
    graphemes (what a reader sees as one character, as Bluesky counts: 👩‍👩‍👧 is one)."""
    if limits.url_length is not None:
        text = _URL.sub("x" * limits.url_length, text)
    if limits.unit == "graphemes":
        return len(_GRAPHEME.findall(text))
    return len(text)


def publication_text(text: str, link: str | None) -> str:
    """The text as an outlet shows it: the shared item's link on its own last line."""
    return f"{text}\n{link}" if link and link not in text else text


@dataclass(frozen=True)
class LimitProblem:
    """Why a text or its media do not fit: `what` is length, media, media_size or
    media_type (then `kind` is the refused file's type)."""

    what: Literal["length", "media", "media_size", "media_type"]
    limit: int
    actual: int
    unit: Unit = "characters"
    kind: str = ""


def check(
    limits: OutletLimits,
    text: str,
    media_sizes: tuple[int, ...] = (),
    media_types: tuple[str, ...] = (),
) -> LimitProblem | None:
    """None when the text and its media fit the outlet; else the first limit they break."""
    if limits.media_types is not None:
        for mime in media_types:
            if not mime.startswith(limits.media_types):
                return LimitProblem("media_type", 0, 0, kind=mime)
    if len(media_sizes) > limits.max_media:
        return LimitProblem("media", limits.max_media, len(media_sizes))
    too_big = [s for s in media_sizes if limits.max_media_bytes and s > limits.max_media_bytes]
    if too_big:
        return LimitProblem("media_size", limits.max_media_bytes, max(too_big))
    max_length = limits.max_length
    if media_sizes and limits.max_length_with_media is not None:
        max_length = limits.max_length_with_media
    if max_length is not None:
        length = measure(text, limits)
        if length > max_length:
            return LimitProblem("length", max_length, length, limits.unit)
    return None
