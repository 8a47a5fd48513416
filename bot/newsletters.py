"""A newsletter's mail as an entry of a group, like a feed's: shared by the mail bridge
(a mail that arrives authenticated) and `email release` (one that was held)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

from store.models import Item, ItemKind
from store.uow import UnitOfWork

Outcome = Literal["posted", "duplicate", "not_allowed"]


def _key(kind: str, value: str) -> str:
    """A dedup key in feed_entry_keys' shape (kind + SHA-256), shared with feeds."""
    return kind + hashlib.sha256(value.encode("utf-8", errors="replace")).hexdigest()[:63]


def add_entry(
    uow: UnitOfWork,
    slug: str,
    sender: str,
    *,
    title: str,
    url: str | None,
    text: str,
    message_id: str,
    now: datetime,
) -> Outcome:
    """The newsletter's entry in the group, as a feed entry (to digests, searchable), if
    the group allowed its sender; one per Message-ID and per link (the group's feeds and
    newsletters share the keys, so a mail delivered twice, or released after it came
    again, is one entry)."""
    group = uow.groups.by_slug(slug)
    if group is None or not uow.mail.sender_allowed(group.id, sender):
        return "not_allowed"
    keys = [_key("m", message_id.strip().lower())] if message_id.strip() else []
    if url:
        keys.append(_key("l", url))
    if not keys or uow.feeds.known_keys(group.id, keys):
        return "duplicate"
    item = uow.items.add(
        Item(
            group_id=group.id,
            author_id=None,
            kind=ItemKind.FEED_ENTRY,
            text=text,
            url=url,
            title=title or url or None,
            source_platform="feed",
            created_at=now,
            published_at=now,
            site_name=sender,
        )
    )
    uow.feeds.add_keys(
        [{"group_id": group.id, "key": k, "item_id": item.id, "created_at": now} for k in keys]
    )
    return "posted"
