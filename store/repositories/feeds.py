"""The feed repository: feeds of groups, their poll state, and the keys that de-duplicate
their entries within a group."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from store.models import Feed, FeedEntryKey, Membership, NotifyMode, Person

_KEYS_IN = select(FeedEntryKey.key).where(
    FeedEntryKey.group_id == bindparam("group_id"),
    FeedEntryKey.key.in_(bindparam("keys", expanding=True)),
)
_KEY_INSERT = insert(FeedEntryKey)


class FeedRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(self, feed: Feed) -> Feed:
        self.s.add(feed)
        self.s.flush()
        return feed

    def get(self, feed_id: int) -> Feed | None:
        return self.s.get(Feed, feed_id)

    def by_url(self, group_id: int, url: str) -> Feed | None:
        return self.s.scalar(select(Feed).where(Feed.group_id == group_id, Feed.url == url))

    def urls_of(self, group_id: int) -> set[str]:
        return set(self.s.scalars(select(Feed.url).where(Feed.group_id == group_id)))

    def of_groups(self, group_ids: Iterable[int]) -> Sequence[Feed]:
        ids = list(group_ids)
        if not ids:
            return []
        return self.s.scalars(
            select(Feed).where(Feed.group_id.in_(ids)).order_by(Feed.group_id, Feed.id)
        ).all()

    def all(self) -> Sequence[Feed]:
        return self.s.scalars(select(Feed).order_by(Feed.group_id, Feed.id)).all()

    def count_in(self, group_id: int) -> int:
        return int(self.s.scalar(select(func.count()).where(Feed.group_id == group_id)) or 0)

    def remove(self, feed: Feed) -> None:
        self.s.execute(delete(Feed).where(Feed.id == feed.id))
        if feed in self.s:
            self.s.expunge(feed)

    # --- polling ------------------------------------------------------------------------

    def claim_due(self, now: datetime, limit: int, lease: timedelta) -> list[Feed]:
        """Feeds due at `now` (not paused), oldest due first; each is held for `lease`
        (its next poll moved there), so a crash mid-poll only delays it."""
        stmt = (
            select(Feed)
            .where(Feed.paused_at.is_(None), Feed.next_poll_at <= now)
            .order_by(Feed.next_poll_at, Feed.id)
            .limit(limit)
        )
        if self.s.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        feeds = list(self.s.scalars(stmt))
        if feeds:
            self.s.execute(
                update(Feed)
                .where(Feed.id.in_([f.id for f in feeds]))
                .values(next_poll_at=now + lease)
                .execution_options(synchronize_session=False)
            )
            for f in feeds:
                self.s.expunge(f)
        return feeds

    def next_due_at(self) -> datetime | None:
        return self.s.scalar(select(func.min(Feed.next_poll_at)).where(Feed.paused_at.is_(None)))

    def lock(self, feed_id: int) -> Feed | None:
        stmt = select(Feed).where(Feed.id == feed_id)
        if self.s.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        return self.s.scalar(stmt)

    # --- entries --------------------------------------------------------------------------

    def known_keys(self, group_id: int, keys: Iterable[str]) -> set[str]:
        wanted = sorted(set(keys))
        if not wanted:
            return set()
        return set(self.s.scalars(_KEYS_IN, {"group_id": group_id, "keys": wanted}))

    def add_keys(self, rows: list[dict[str, Any]]) -> None:
        """Rows of group_id, key, item_id, created_at."""
        if rows:
            self.s.execute(_KEY_INSERT, rows)

    def instant_feed_readers(self, group_id: int) -> set[int]:
        """Members on instant notify who asked for feed entries too (`--feeds`)."""
        return set(
            self.s.scalars(
                select(Membership.person_id)
                .join(Person, Person.id == Membership.person_id)
                .where(
                    Membership.group_id == group_id,
                    Membership.notify == NotifyMode.INSTANT,
                    Membership.instant_feeds,
                    Person.active,
                )
            )
        )
