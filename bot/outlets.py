"""Outlets as the core sees them: names, kinds, limits and how text is measured.

An outlet is a public place a proposal is published to once gatekeepers approve it
(Mastodon, Bluesky, a Telegram channel, a signed webhook, the built-in newsroom Atom
feed). The core checks a proposal against its outlet's limits when it is made; the
publishing itself (with the outlets' SDKs) lives in `jobs.outlets`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Unit = Literal["characters", "graphemes"]
KINDS = ("mastodon", "bluesky", "telegram_channel", "webhook", "newsroom")


@dataclass(frozen=True)
class OutletLimits:
    max_length: int | None  # None: no limit
    unit: Unit = "characters"
    max_media: int = 0
    max_media_bytes: int = 0
    url_length: int | None = None  # Mastodon counts every URL as 23 characters


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
