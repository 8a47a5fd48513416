"""The typed SQLAlchemy models: Pinwall's whole persistent state."""

from __future__ import annotations

import enum
import re
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates


class _SQLiteDateTime(sqlite.DATETIME):
    """SQLite's DATETIME in its usual text form ("2026-11-27 08:00:00.000000"), written and
    read with the standard library's isoformat()/fromisoformat() instead of SQLAlchemy's
    %-formatting and regular expression: a command writes and reads a dozen of them."""

    def bind_processor(self, dialect: Dialect) -> Any:
        def process(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat(" ", "microseconds")

        return process

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        def process(value: str | None) -> datetime | None:
            return None if value is None else datetime.fromisoformat(value)

        return process


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite would drop the zone)."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return _SQLiteDateTime()  # type: ignore[no-untyped-call]
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


def table_of(model: type[Base]) -> Table:
    """A mapped class's Table, typed as one: for the prebuilt Core statements."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


class Role(enum.StrEnum):
    MEMBER = "member"
    GATEKEEPER = "gatekeeper"
    ADMIN = "admin"
    GUEST = "guest"
    PARTNER = "partner"

    @property
    def is_external(self) -> bool:
        return self in (Role.GUEST, Role.PARTNER)


class Visibility(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    SECRET = "secret"  # noqa: S105  (a group kind, not a password)


class NotifyMode(enum.StrEnum):
    INSTANT = "instant"
    DAILY = "daily"
    WEEKLY = "weekly"
    MUTE = "mute"


class ItemKind(enum.StrEnum):
    LINK = "link"
    NOTE = "note"
    FILE = "file"
    FEED_ENTRY = "feed_entry"


class PreviewStatus(enum.StrEnum):
    """Where a link's preview stands. A link starts with none (NULL): its preview is due."""

    FETCHING = "fetch1"  # the first try runs; preview_at: until when the claim holds
    RETRY = "retry"  # the first try failed; the second is due at preview_at
    REFETCHING = "fetch2"  # the second try runs
    DONE = "done"  # stored (it may have found nothing better than the URL)
    FAILED = "failed"  # gave up: the post shows its URL
    SKIPPED = "skipped"  # shared before previews existed


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    SKIPPED = "skipped"  # the recipient may no longer see what it carried
    DEAD = "dead"


class InboxStatus(enum.StrEnum):
    RECEIVED = "received"
    APPLIED = "applied"
    FAILED = "failed"


class Person(Base):
    __tablename__ = "people"

    id: Mapped[int] = mapped_column(primary_key=True)
    handle: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), default=Role.MEMBER)
    # The language the person chose; None means "as the messenger says" (language_hint).
    language: Mapped[str | None] = mapped_column(String(8))
    language_hint: Mapped[str | None] = mapped_column(String(8))
    timezone: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]

    accounts: Mapped[list[Account]] = relationship(back_populates="person")

    @property
    def role_enum(self) -> Role:
        return Role(self.role)


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("platform", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(255))
    username: Mapped[str | None] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(255))
    reachable: Mapped[bool] = mapped_column(Boolean, default=True)
    last_seen_at: Mapped[datetime]
    created_at: Mapped[datetime]

    person: Mapped[Person] = relationship(back_populates="accounts")


class Group(Base):
    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # The title case-folded: a title names one group, whatever its case, so groups are
    # found by slug or title (migration 0019_c1). Set with the name (see _title_key).
    title_key: Mapped[str] = mapped_column(String(200), unique=True)
    visibility: Mapped[str] = mapped_column(String(8), default=Visibility.OPEN)
    admits_externals: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]

    @validates("name")
    def _title_key(self, _key: str, name: str) -> str:
        self.title_key = title_key(name)
        return name


def title_key(title: str) -> str:
    """How a title is compared: "Sales Team", "SALES TEAM" and "sales team" are one."""
    return " ".join(title.casefold().split())[:200]


class Membership(Base):
    __tablename__ = "memberships"

    person_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[int] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    notify: Mapped[str] = mapped_column(String(8), default=NotifyMode.DAILY)
    moderator: Mapped[bool] = mapped_column(Boolean, default=False)
    joined_at: Mapped[datetime]
    # With notify instant: feed entries come instantly too (`notify <group> instant --feeds`);
    # otherwise they go to digests only (migration 0007).
    instant_feeds: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Room(Base):
    """A conversation on a messenger that Pinwall knows; bridged when group_id is set."""

    __tablename__ = "rooms"
    __table_args__ = (UniqueConstraint("platform", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("groups.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime]


class Item(Base):
    """A post of a group: a link, a note, a file or a feed entry."""

    __tablename__ = "items"
    __table_args__ = (
        Index("ix_items_group_id_id", "group_id", "id"),
        # The preview worker's look-up: links whose preview is due (see PreviewStatus).
        Index("ix_items_kind_preview_status", "kind", "preview_status", "preview_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str | None] = mapped_column(String(2048))
    title: Mapped[str | None] = mapped_column(String(500))
    source_platform: Mapped[str | None] = mapped_column(String(16))
    source_room_id: Mapped[int | None] = mapped_column(ForeignKey("rooms.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]
    # The link preview (jobs.previews); `title` holds its title, else the URL.
    description: Mapped[str | None] = mapped_column(Text)
    image_url: Mapped[str | None] = mapped_column(String(2048))
    site_name: Mapped[str | None] = mapped_column(String(200))
    canonical_url: Mapped[str | None] = mapped_column(String(2048))
    preview_status: Mapped[str | None] = mapped_column(String(8))  # PreviewStatus
    preview_at: Mapped[datetime | None]  # when fetched; or when a claim/retry falls due
    # A feed entry's own date (published, else updated; never after it was fetched); NULL
    # for other posts and for entries whose feed gives none. See `dated_at`.
    published_at: Mapped[datetime | None]

    @hybrid_property
    def dated_at(self) -> datetime:
        """When the post is from, as lists show and order it: a feed entry's own date,
        else when it was stored. (Numbers and digest watermarks follow the storing.)"""
        return self.published_at or self.created_at

    @dated_at.inplace.expression
    @classmethod
    def _dated_at(cls) -> ColumnElement[datetime]:
        return func.coalesce(cls.published_at, cls.created_at)


class Comment(Base):
    __tablename__ = "comments"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL"), index=True
    )
    text: Mapped[str] = mapped_column(Text)
    source_platform: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime]


class Reaction(Base):
    __tablename__ = "reactions"
    __table_args__ = (UniqueConstraint("item_id", "person_id", "emoji"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    emoji: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


class Invite(Base):
    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL"), index=True
    )
    max_uses: Mapped[int] = mapped_column(Integer, default=1)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class InviteGroup(Base):
    __tablename__ = "invite_groups"

    invite_id: Mapped[int] = mapped_column(
        ForeignKey("invites.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[int] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class LinkCode(Base):
    """A one-time code that links a second messenger account to a person."""

    __tablename__ = "link_codes"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[datetime]
    # The account that asked for the code: where its owner is asked to confirm a link.
    platform: Mapped[str | None] = mapped_column(String(32))
    external_id: Mapped[str | None] = mapped_column(String(255))


class LinkRequest(Base):
    """A link code redeemed by an account, waiting for the code's owner to confirm that
    the account is theirs: until then it links nothing (a leaked code is harmless)."""

    __tablename__ = "link_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    # where the owner was asked (the account that made the code)
    owner_platform: Mapped[str] = mapped_column(String(32))
    owner_external_id: Mapped[str] = mapped_column(String(255))
    # the account that redeemed the code
    platform: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(255))
    username: Mapped[str | None] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(255))
    language: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(16))  # confirmed, denied


class CodeFailure(Base):
    """A wrong link or invite code, by the account that tried it: after a few in a short
    time that account waits (code guessing is throttled). Kept a day."""

    __tablename__ = "code_failures"
    __table_args__ = (Index("ix_code_failures_account", "platform", "external_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))  # link, invite
    at: Mapped[datetime]


class WebLogin(Base):
    """A one-time link into the operator's window (`admin web`), kept as the hash of its
    token: it works once, for a few minutes, for a person who is still an admin."""

    __tablename__ = "web_logins"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class Draft(Base):
    """Something sent to the bot that waits for the sender to pick a group."""

    __tablename__ = "drafts"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    # [{"blob_id", "name", "mime_type", "size"}]: files sent with it, already stored
    files: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    source_platform: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime]
    # The album it was started by: the album's other files join this draft.
    album: Mapped[str | None] = mapped_column(String(64))


class Prompt(Base):
    """The bot asked a person for input; their next plain message answers it."""

    __tablename__ = "prompts"

    person_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    ref: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    # What a guided command collected so far and offers now (bot.guide); None otherwise.
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


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
        # query uses it only where its condition says the same, literally (uow._earlier_unfinished).
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
        # (uow._claim_statement says the condition, literally, too).
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


class AuditEntry(Base):
    """Append-only. People are referred to by id (no foreign key), so forgetting keeps it."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    actor_id: Mapped[int | None] = mapped_column(Integer, index=True)
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(255))
    details: Mapped[dict[str, Any]]


class Blob(Base):
    """A stored file's content, once, by its SHA-256 (bytes live in the blob store)."""

    __tablename__ = "blobs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    mime_type: Mapped[str] = mapped_column(String(127))
    created_at: Mapped[datetime]


class ItemFile(Base):
    """A file attached to a post, under the name its sender gave it."""

    __tablename__ = "item_files"

    item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    blob_id: Mapped[str] = mapped_column(ForeignKey("blobs.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))


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


# --- search (migration 0010) -------------------------------------------------------------


class SearchDoc(Base):
    """One searchable post or comment: its stemmed terms (store.search). On SQLite an
    FTS5 table (`search_fts`, not mapped: see UNMAPPED_TABLES) indexes `terms`; on
    PostgreSQL `terms` is a tsvector with a GIN index (made by the migration only)."""

    __tablename__ = "search_docs"
    __table_args__ = (UniqueConstraint("kind", "ref_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # "item" | "comment"
    ref_id: Mapped[int] = mapped_column(Integer)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    group_id: Mapped[int] = mapped_column(Integer, index=True)
    created_at: Mapped[datetime]
    terms: Mapped[str] = mapped_column(Text().with_variant(TSVECTOR(), "postgresql"))


# Tables and indexes the migrations create that no model maps (SQLite's FTS5 index and
# its shadow tables, PostgreSQL's GIN index of the terms); the drift check between
# models and migrations leaves them out.
UNMAPPED_TABLES = re.compile(r"^(search_fts(_.*)?|ix_search_docs_terms)$")


# --- read tracking (issue 9) ---------------------------------------------------------------


class ItemRead(Base):
    """That a person was shown a post (by `items` or `search`), the first time only.
    Written only while an admin has switched read tracking on (PINWALL_READ_TRACKING);
    retention erases every row while it is off. Shown only as a count, never by name."""

    __tablename__ = "item_reads"

    item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    first_read_at: Mapped[datetime]


# --- requests to join closed groups (issue 18) ----------------------------------------------


class JoinOutcome(enum.StrEnum):
    APPROVED = "approved"  # by a moderator's button, or their `add` of the requester
    DECLINED = "declined"


class JoinRequest(Base):
    """A person asked to join a closed group; a moderator (an admin where it has none)
    decides. Kept after the decision, as its record (who decided, when, how)."""

    __tablename__ = "join_requests"
    __table_args__ = (
        # One open request per person and group, also when two `join`s race.
        Index(
            "ix_join_requests_pending",
            "group_id",
            "person_id",
            unique=True,
            sqlite_where=text("decided_at IS NULL"),
            postgresql_where=text("decided_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL"), index=True
    )
    outcome: Mapped[str | None] = mapped_column(String(16))  # JoinOutcome, once decided
