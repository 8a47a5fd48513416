"""People, their accounts, groups and memberships, rooms, invitations, link codes and
requests to join closed groups."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from store.models.base import (
    Base,
    NotifyMode,
    Role,
    Visibility,
)


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
    # `settings digest mail`: digests go to the verified mail address (migration 0024).
    digest_by_mail: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
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
    # found by slug or title (migration 0020). Set with the name (see _title_key).
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
    # `notify <group> mail`: the group's posts come instantly to the person's verified
    # mail address rather than their messenger (migration 0024).
    by_mail: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


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
