"""Mail addresses of people: verified by a code sent to them, marked failing by bounces
(migration 0022)."""

from __future__ import annotations

from datetime import datetime

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
