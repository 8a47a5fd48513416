"""The inbox and the outbox, the refs of delivered messages, the audit log, running
instances, and what adapters keep (cursors, direct chats, button prompts, uploads)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import (
    Base,
    InboxStatus,
    OutboxStatus,
)


class InboxEvent(Base):
    __tablename__ = "inbox_events"
    __table_args__ = (
        UniqueConstraint("platform", "event_id"),
        Index("ix_inbox_events_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(255))
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(12), default=InboxStatus.RECEIVED)
    received_at: Mapped[datetime]
    applied_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


class OutboxMessage(Base):
    """One message to one conversation, written in the transaction that caused it."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
        # A message waits for the earlier unfinished ones of its conversation: found here.
        # Only unfinished messages are in it, so it stays small however many were sent: a
        # claim does not change it, a sent message leaves it, and a fan-out's conversations
        # share a few pages of it (in one over every message each had its own page). A
        # query uses it only where its condition says the same, literally
        # (store.repositories.ledger.earlier_unfinished).
        Index(
            "ix_outbox_unfinished",
            "target",
            "platform",
            "target_kind",
            "id",
            sqlite_where=text("status IN ('pending', 'sending')"),
            postgresql_where=text("status IN ('pending', 'sending')"),
        ),
        # A lane's claim: its platform's unfinished messages in the order they were
        # written, so that it stops after a batch however large the backlog
        # (ledger._claim_statement says the condition, literally, too).
        Index(
            "ix_outbox_claim",
            "platform",
            "id",
            sqlite_where=text("status IN ('pending', 'sending')"),
            postgresql_where=text("status IN ('pending', 'sending')"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime]
    platform: Mapped[str] = mapped_column(String(16))
    target_kind: Mapped[str] = mapped_column(String(8))  # "dm" or "room"
    target: Mapped[str] = mapped_column(String(255))
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL"), index=True
    )
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(12), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    claimed_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    platform_message_id: Mapped[str | None] = mapped_column(String(255))
    # The instance (Instance.id) whose claim holds the message while it is being sent: a
    # claim of an instance that is gone is taken back without waiting for its lease.
    claimed_by: Mapped[str | None] = mapped_column(String(32))
    # How often a claim of it was taken back unfinished (its instance died, or its lease
    # ran out). Not a failed attempt, but a message whose sends keep dying is dead after
    # DeliveryPolicy.max_takebacks. (A server default only: the prebuilt inserts of
    # store.driver leave it out.)
    takebacks: Mapped[int] = mapped_column(Integer, server_default=text("0"))


class Instance(Base):
    """A running Pinwall (`pinwall run`), alive as long as its heartbeat goes on."""

    __tablename__ = "instances"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # The host and data directory it runs in: a Pinwall started there again knows the
    # earlier ones of the same home are gone (see jobs.instances).
    home: Mapped[str] = mapped_column(String(1024))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]


class MessageRef(Base):
    """Which platform message shows which item: replies and reactions find their post."""

    __tablename__ = "message_refs"
    __table_args__ = (UniqueConstraint("platform", "conversation", "message_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    conversation: Mapped[str] = mapped_column(String(255))
    message_id: Mapped[str] = mapped_column(String(255))
    item_id: Mapped[int | None] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), index=True
    )
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]
    # The 👍 given to this copy without saying by whom (a Telegram channel's readers):
    # the platform's total, counted in the post's likes.
    anonymous_likes: Mapped[int] = mapped_column(Integer, server_default=text("0"))


class AuditEntry(Base):
    """Append-only. People are referred to by id (no foreign key), so forgetting keeps it."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    actor_id: Mapped[int | None] = mapped_column(Integer, index=True)
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(255))
    details: Mapped[dict[str, Any]]


class Cursor(Base):
    """A position or a flag an adapter keeps across restarts (Matrix: its sync token)."""

    __tablename__ = "cursors"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]


class DirectChat(Base):
    """A platform conversation that is the direct chat between the bot and one person
    (Matrix: a room invited into as a direct chat); the newest one is where DMs go."""

    __tablename__ = "direct_chats"
    __table_args__ = (Index("ix_direct_chats_platform_address", "platform", "address"),)

    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    conversation: Mapped[str] = mapped_column(String(255), primary_key=True)
    address: Mapped[str] = mapped_column(String(255))  # the person's account id
    created_at: Mapped[datetime]


class ButtonPrompt(Base):
    """The buttons of a message the bot sent where the platform has none (Matrix): a
    reaction or a numbered answer to the message presses one, also after a restart."""

    __tablename__ = "button_prompts"
    __table_args__ = (
        UniqueConstraint("platform", "conversation", "message_id"),
        Index("ix_button_prompts_conversation", "platform", "conversation", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    conversation: Mapped[str] = mapped_column(String(255))
    message_id: Mapped[str] = mapped_column(String(255))
    # [{"key": "1️⃣", "label", "action", "value", "reaction": the bot's reaction event}]
    buttons: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    post: Mapped[bool] = mapped_column(Boolean, default=False)  # the message shows a post
    created_at: Mapped[datetime]


class Upload(Base):
    """A stored file uploaded to a messenger's server once; later sends reuse its URI."""

    __tablename__ = "uploads"

    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    server: Mapped[str] = mapped_column(String(255), primary_key=True)
    blob_id: Mapped[str] = mapped_column(
        ForeignKey("blobs.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    uri: Mapped[str] = mapped_column(String(1024))
    created_at: Mapped[datetime]
