"""People's mail addresses: codes that verify them, and bounces that mark them failing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from store.models import HeldMail, MailAddress, MailSenderHit, NewsletterSender


class MailAddressRepository:
    """Used through `UnitOfWork.mail`; shares the unit of work's session."""

    def __init__(self, session: Session) -> None:
        self.s = session

    def request(
        self, person_id: int, address: str, code: str, expires_at: datetime, now: datetime
    ) -> MailAddress:
        """A code for `address`, for the person to confirm; their earlier unconfirmed
        requests stop counting (one open request per person)."""
        self.s.execute(
            delete(MailAddress).where(
                MailAddress.person_id == person_id, MailAddress.verified_at.is_(None)
            )
        )
        row = MailAddress(
            person_id=person_id,
            address=address,
            code=code,
            code_expires_at=expires_at,
            tries=0,
            created_at=now,
        )
        self.s.add(row)
        self.s.flush()
        return row

    def pending(self, person_id: int) -> MailAddress | None:
        """The person's address that waits for its code, if any."""
        return self.s.scalar(
            select(MailAddress).where(
                MailAddress.person_id == person_id, MailAddress.verified_at.is_(None)
            )
        )

    def verified(self, address: str) -> MailAddress | None:
        """Whose address this is, once verified."""
        return self.s.scalar(
            select(MailAddress).where(
                MailAddress.address == address, MailAddress.verified_at.is_not(None)
            )
        )

    def of_person(self, person_id: int) -> Sequence[MailAddress]:
        return self.s.scalars(
            select(MailAddress)
            .where(MailAddress.person_id == person_id, MailAddress.verified_at.is_not(None))
            .order_by(MailAddress.id)
        ).all()

    def mark_failing(self, address: str, reason: str, now: datetime) -> MailAddress | None:
        """A bounce for the verified `address`: failing since now (the first bounce counts),
        with the reason the remote server gave; None when no one has this address."""
        row = self.verified(address)
        if row is None:
            return None
        if row.failing_since is None:
            row.failing_since = now
        row.failure = reason[:500]
        return row

    # --- newsletters -----------------------------------------------------------------

    def allow_sender(self, group_id: int, address: str, added_by: int, now: datetime) -> bool:
        """Mails from `address` to the group's newsletter address become entries; False
        when it was allowed already."""
        if self.sender_allowed(group_id, address):
            return False
        self.s.add(
            NewsletterSender(group_id=group_id, address=address, added_by=added_by, created_at=now)
        )
        self.s.flush()
        return True

    def sender_allowed(self, group_id: int, address: str) -> bool:
        found = self.s.scalar(
            select(NewsletterSender.id).where(
                NewsletterSender.group_id == group_id, NewsletterSender.address == address
            )
        )
        return found is not None

    def newsletter_senders(self, group_id: int) -> Sequence[str]:
        return self.s.scalars(
            select(NewsletterSender.address)
            .where(NewsletterSender.group_id == group_id)
            .order_by(NewsletterSender.address)
        ).all()

    # --- held mails -------------------------------------------------------------------

    def hold(
        self,
        person_id: int | None,
        sender: str,
        subject: str,
        content: dict[str, Any],
        now: datetime,
    ) -> HeldMail:
        row = HeldMail(
            person_id=person_id,
            sender=sender[:320],
            subject=subject[:500],
            content=content,
            held_at=now,
            status="held",
        )
        self.s.add(row)
        self.s.flush()
        return row

    def held(self, limit: int = 20) -> Sequence[HeldMail]:
        """The mails waiting for a decision, oldest first."""
        return self.s.scalars(
            select(HeldMail).where(HeldMail.status == "held").order_by(HeldMail.id).limit(limit)
        ).all()

    def held_mail(self, held_id: int) -> HeldMail | None:
        return self.s.get(HeldMail, held_id)

    # --- the listener's per-sender rate limit ----------------------------------------------

    def count_sender(self, sender: str, now: datetime, window: timedelta) -> int:
        """Records one mail from `sender` and returns how many it sent within `window`
        (this one included). Written first, then counted: two instances taking mails of
        one sender at once both see both."""
        self.s.add(MailSenderHit(sender=sender[:320], at=now))
        self.s.flush()
        # the quiet past goes (a bounded sweep, so that a flood's rows do not pile up)
        self.s.execute(delete(MailSenderHit).where(MailSenderHit.at < now - 10 * window))
        return (
            self.s.scalar(
                select(func.count())
                .select_from(MailSenderHit)
                .where(MailSenderHit.sender == sender[:320], MailSenderHit.at > now - window)
            )
            or 0
        )
