"""Feeds of groups and digests (migrations 0007 and 0008)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import (
    Base,
)

# --- feeds (migration 0007) --------------------------------------------------------------


class Feed(Base):
    """An RSS/Atom feed a group subscribes to; its entries become the group's posts.

    Polled by jobs.feeds when `next_poll_at` is due and it is not paused. `checked` is
    False until the first fetch, which may replace `url` by a feed the page links to.
    """

    __tablename__ = "feeds"
    __table_args__ = (
        UniqueConstraint("group_id", "url"),
        Index("ix_feeds_paused_at_next_poll_at", "paused_at", "next_poll_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2048))
    title: Mapped[str | None] = mapped_column(String(300))
    site_url: Mapped[str | None] = mapped_column(String(2048))
    added_by: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL"), index=True
    )
    include_words: Mapped[list[str]] = mapped_column(JSON, default=list)
    exclude_words: Mapped[list[str]] = mapped_column(JSON, default=list)
    to_rooms: Mapped[bool] = mapped_column(Boolean, default=False)
    checked: Mapped[bool] = mapped_column(Boolean, default=False)
    etag: Mapped[str | None] = mapped_column(String(255))
    last_modified: Mapped[str | None] = mapped_column(String(64))
    interval_seconds: Mapped[int] = mapped_column(Integer)
    next_poll_at: Mapped[datetime]
    last_polled_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)  # "kind" or "kind:detail"
    last_error_at: Mapped[datetime | None]
    failures: Mapped[int] = mapped_column(Integer, default=0)  # in a row
    failing_since: Mapped[datetime | None]
    paused_at: Mapped[datetime | None]
    entries_seen: Mapped[int] = mapped_column(Integer, default=0)  # posts it brought in
    created_at: Mapped[datetime]


class FeedEntryKey(Base):
    """What makes a feed entry the same article, per group (see jobs.feeds.entry_keys):
    an entry with a key already here is not posted again, from any feed of the group."""

    __tablename__ = "feed_entry_keys"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # kind + SHA-256, hex
    item_id: Mapped[int | None] = mapped_column(
        ForeignKey("items.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime]


# --- digests (migration 0008) ------------------------------------------------------------


class DigestSchedule(Base):
    """A person's digest times (in their time zone) and when each digest is next due (UTC).

    Made when first needed (the digest tick makes one for everyone with a daily or weekly
    group who has none yet, so people from before digests existed get one too). The due
    times are recomputed when the person changes a time or their time zone; NULL while
    paused ("digest off").
    """

    __tablename__ = "digest_schedules"
    __table_args__ = (
        Index("ix_digest_schedules_daily_due", "daily_due"),
        Index("ix_digest_schedules_weekly_due", "weekly_due"),
    )

    person_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True
    )
    daily_minute: Mapped[int] = mapped_column(Integer, default=8 * 60)  # minutes after midnight
    weekly_day: Mapped[int] = mapped_column(Integer, default=0)  # 0 = Monday ... 6 = Sunday
    weekly_minute: Mapped[int] = mapped_column(Integer, default=8 * 60)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    daily_due: Mapped[datetime | None]
    weekly_due: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class DigestWatermark(Base):
    """The newest post of a group that a person's digests have covered (one row per person
    and group, not one per post): the next digest holds the group's posts after it."""

    __tablename__ = "digest_watermarks"

    person_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[int] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    last_item_id: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime]
