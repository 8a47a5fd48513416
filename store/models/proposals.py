"""Proposals, gatekeepers' votes, approval cards and the newsroom (migration 0009)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
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

# --- proposals and outlets (migration 0009) ----------------------------------------------


class ProposalStatus(enum.StrEnum):
    """Where a proposal stands. pending -> approved -> publishing -> published, with
    the ways off it: rejected, changes (the author is asked to revise), withdrawn,
    expired; failed (the outlet refused) and uncertain (it may have been posted: an
    admin decides, it is never repeated blindly)."""

    PENDING = "pending"
    CHANGES = "changes"
    APPROVED = "approved"
    PUBLISHING = "publishing"
    PUBLISHED = "published"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    FAILED = "failed"
    UNCERTAIN = "uncertain"


class Proposal(Base):
    """A post proposed for an outlet; gatekeepers decide on each revision of it."""

    __tablename__ = "proposals"
    __table_args__ = (
        # The publish tick's look-ups: approved ones due, pending ones expiring.
        Index("ix_proposals_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_proposals_status_expires_at", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    outlet: Mapped[str] = mapped_column(String(32))
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL"), index=True
    )
    text: Mapped[str] = mapped_column(Text)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id", ondelete="SET NULL"))
    publish_at: Mapped[datetime | None]  # None: as soon as approved
    status: Mapped[str] = mapped_column(String(12), default=ProposalStatus.PENDING)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]
    revised_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[int | None] = mapped_column(Integer)  # a person id, kept when forgotten
    reason: Mapped[str | None] = mapped_column(Text)  # of a rejection or a change request
    # Publishing: each attempt is recorded (attempt_started_at) before the outlet is
    # called, and its outcome after; an attempt found started with no outcome was cut
    # short by a crash.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    attempt_started_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    remote_id: Mapped[str | None] = mapped_column(String(255))
    url: Mapped[str | None] = mapped_column(String(2048))
    published_at: Mapped[datetime | None]


class ProposalVote(Base):
    """One gatekeeper's vote on one revision: a double click counts once."""

    __tablename__ = "proposal_votes"
    __table_args__ = (UniqueConstraint("proposal_id", "revision", "gatekeeper_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposals.id", ondelete="CASCADE"))
    revision: Mapped[int] = mapped_column(Integer)
    gatekeeper_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), index=True
    )
    vote: Mapped[str] = mapped_column(String(8))  # approve, reject, changes
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class ApprovalCard(Base):
    """Where an approval card of a proposal was sent, so every copy can be updated once
    it is decided; the platform's message id is the outbox row's once delivered."""

    __tablename__ = "approval_cards"

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(
        ForeignKey("proposals.id", ondelete="CASCADE"), index=True
    )
    outbox_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbox.id", ondelete="SET NULL"), index=True
    )
    platform: Mapped[str] = mapped_column(String(16))
    target_kind: Mapped[str] = mapped_column(String(8))
    target: Mapped[str] = mapped_column(String(255))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    revision: Mapped[int] = mapped_column(Integer)
    closed: Mapped[bool] = mapped_column(Boolean, default=False)  # shows the outcome
    created_at: Mapped[datetime]


class GatekeeperRoom(Base):
    """A room where an admin said `bridge gatekeepers`: approval cards go there."""

    __tablename__ = "gatekeeper_rooms"

    room_id: Mapped[int] = mapped_column(
        ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime]


class NewsroomEntry(Base):
    """A post published to a newsroom outlet (the public Atom feed Pinwall serves)."""

    __tablename__ = "newsroom_entries"
    __table_args__ = (
        # The publication's idempotency key: publishing it again finds this entry.
        UniqueConstraint("outlet", "key"),
        Index("ix_newsroom_entries_outlet_published_at", "outlet", "published_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    outlet: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(128))
    proposal_id: Mapped[int | None] = mapped_column(ForeignKey("proposals.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(2048))
    published_at: Mapped[datetime]
