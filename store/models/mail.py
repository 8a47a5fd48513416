"""Mail addresses of people: verified by a code sent to them, marked failing by bounces
(migration 0022); held mails and the per-sender counts of the mail listener (0024)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base


class MailAddress(Base):
    """One address a person gave with `email <address>`. It is theirs (an Account of the
    platform "email" exists) only from `verified_at` on; until then `code` (the code mailed
    to it) and `code_expires_at` wait for `email confirm <code>`."""

    __tablename__ = "mail_addresses"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    # Lower-cased: the local part is case-insensitive at every mail system Pinwall meets.
    address: Mapped[str] = mapped_column(String(320), index=True)
    code: Mapped[str | None] = mapped_column(String(16))
    code_expires_at: Mapped[datetime | None]
    tries: Mapped[int] = mapped_column(Integer, default=0)
    verified_at: Mapped[datetime | None]
    # A delivery status notification said mail to it fails: since when, and why.
    failing_since: Mapped[datetime | None]
    failure: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]


# The platform name of mail accounts (adapters/email's descriptor uses the same): a mail
# address is a person's way to hear from Pinwall only when they have no messenger.
MAIL_PLATFORM = "email"


class NewsletterSender(Base):
    """A sender whose mails to a group's newsletter address (newsletter+<slug>@...)
    become entries of the group, as a feed's do; allowed by a moderator or admin."""

    __tablename__ = "newsletter_senders"
    __table_args__ = (UniqueConstraint("group_id", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(String(320))
    added_by: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]


class HeldMail(Base):
    """A mail whose sender could not be verified (no DKIM/DMARC pass): not posted, kept
    for a moderator or admin to release (posted as the person it claims to be from) or
    drop (`mail held`, `mail release <id>`, `mail drop <id>`)."""

    __tablename__ = "held_mails"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The verified person the From: claims (None: a newsletter, nobody's).
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), index=True
    )
    sender: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(500))
    # {"to": ["group:vertrieb", "item:12"], "text": ..., "files": [...]} or, for a
    # newsletter, {"newsletter": ["slug"], ...}: what releasing it needs.
    content: Mapped[dict[str, Any]]
    held_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(8), default="held", index=True)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None]


class MailSenderHit(Base):
    """One mail the listener took from a sender: the per-sender rate limit counts these
    (in the store, so it holds across restarts and instances)."""

    __tablename__ = "mail_sender_hits"

    id: Mapped[int] = mapped_column(primary_key=True)
    sender: Mapped[str] = mapped_column(String(320), index=True)
    at: Mapped[datetime] = mapped_column(index=True)
