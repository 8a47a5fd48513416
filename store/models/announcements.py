"""Announcements that reach every member of their groups once, with their read
confirmations; polls with their votes; and the live cards that show either's count
(migration 0023)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base


class Announcement(Base):
    """What a moderator or an admin announced to groups (or everyone). Each target group
    holds it as a post of kind "announcement" (announcement_groups.item_id), so it is
    searchable and shown where the group's posts are."""

    __tablename__ = "announcements"
    __table_args__ = (Index("ix_announcements_remind_at", "remind_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL"), index=True
    )
    text: Mapped[str] = mapped_column(Text)
    everyone: Mapped[bool] = mapped_column(Boolean, default=False)
    confirm: Mapped[bool] = mapped_column(Boolean, default=False)
    until: Mapped[datetime | None]  # pinned (and confirmable) until then
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]
    # The reminder to those who have not confirmed: due then (NULL: none due), and the
    # moment it went — set in the transaction that queued it, so it goes exactly once.
    remind_at: Mapped[datetime | None]
    reminded_at: Mapped[datetime | None]


class AnnouncementGroup(Base):
    """A target group of an announcement, and the post that holds it there."""

    __tablename__ = "announcement_groups"

    announcement_id: Mapped[int] = mapped_column(
        ForeignKey("announcements.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[int] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    item_id: Mapped[int | None] = mapped_column(
        ForeignKey("items.id", ondelete="SET NULL"), index=True
    )


class AnnouncementRecipient(Base):
    """One person an announcement reached (once, however many of its groups they are
    in), how (a direct message, or their next digest when they muted every target),
    and their confirmation: an explicit act, never inferred from reading."""

    __tablename__ = "announcement_recipients"

    announcement_id: Mapped[int] = mapped_column(
        ForeignKey("announcements.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    via: Mapped[str] = mapped_column(String(8))  # "dm" | "digest"
    digested_at: Mapped[datetime | None]  # when a digest carried it (via "digest")
    confirmed_at: Mapped[datetime | None]
    confirmed_on: Mapped[str | None] = mapped_column(String(16))  # the messenger


class Poll(Base):
    """A question to a group with its options; also a post of the group (item_id)."""

    __tablename__ = "polls"
    __table_args__ = (Index("ix_polls_closes_at", "closed_at", "closes_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL"), index=True
    )
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id", ondelete="SET NULL"))
    question: Mapped[str] = mapped_column(Text)
    options: Mapped[list[str]] = mapped_column(JSON)
    multi: Mapped[bool] = mapped_column(Boolean, default=False)
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    closes_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]


class PollVote(Base):
    """One choice of one voter. `voter` is "p<person id>", or for an anonymous poll an
    HMAC of poll and person under the server's secret: enough to refuse a second vote,
    nothing that names anyone. `slot` is 0 for a single-choice poll (a changed vote
    replaces the row: one upsert), the option for a multiple-choice one. The unique key
    makes two votes at the same instant both count, and one person's twice count once."""

    __tablename__ = "poll_votes"

    poll_id: Mapped[int] = mapped_column(
        ForeignKey("polls.id", ondelete="CASCADE"), primary_key=True
    )
    voter: Mapped[str] = mapped_column(String(64), primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, primary_key=True)
    option: Mapped[int] = mapped_column(Integer)
    # Whose vote it is, in a poll that is not anonymous (so their data export has it);
    # NULL in an anonymous one.
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime]


class LiveCard(Base):
    """A message whose count changes (an announcement's card for its author, a poll's
    card): where it went, to edit it in place, and when it may be edited next — at
    most once a second, whatever the rate of confirmations or votes."""

    __tablename__ = "live_cards"
    __table_args__ = (Index("ix_live_cards_kind_ref_id", "kind", "ref_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # "announce" | "poll"
    ref_id: Mapped[int] = mapped_column(Integer)
    outbox_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbox.id", ondelete="SET NULL"), index=True
    )
    platform: Mapped[str] = mapped_column(String(16))
    target_kind: Mapped[str] = mapped_column(String(8))
    target: Mapped[str] = mapped_column(String(255))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    # An edit is queued for then (rendered when it goes, with the count as it is then):
    # a change before it needs no edit of its own.
    next_edit_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
