"""Linking accounts: one-time link codes, the requests their owners confirm, and the
wrong codes (link and invite) that throttle guessing."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from store.codes import new_code
from store.models import CodeFailure, LinkCode, LinkRequest

CodeKind = Literal["link", "invite"]


class LinkCodeRepository:
    """Used through `UnitOfWork.links`; shares the unit of work's session."""

    def __init__(self, session: Session) -> None:
        self.s = session

    # --- codes ------------------------------------------------------------------------

    def create(
        self,
        person_id: int,
        expires_at: datetime,
        *,
        platform: str | None = None,
        external_id: str | None = None,
    ) -> LinkCode:
        """A new code for the person (their earlier one stops working), made on the
        account (platform, external_id): that account is asked when it is redeemed."""
        self.s.execute(delete(LinkCode).where(LinkCode.person_id == person_id))
        link = LinkCode(
            code=new_code(),
            person_id=person_id,
            expires_at=expires_at,
            platform=platform,
            external_id=external_id,
        )
        self.s.add(link)
        self.s.flush()
        return link

    def take(self, code: str, now: datetime) -> LinkCode | None:
        """Returns and consumes a valid code (an expired one is consumed too).

        The row is deleted with a statement whose row count decides: of two concurrent
        takes of one code, only the one that deleted it gets it.
        """
        link = self.s.get(LinkCode, code)
        if link is None:
            return None
        result = self.s.execute(
            delete(LinkCode)
            .where(LinkCode.code == code)
            .execution_options(synchronize_session=False)
        )
        self.s.expunge(link)
        if not getattr(result, "rowcount", 0):
            return None
        return link if link.expires_at > now else None

    # --- requests ---------------------------------------------------------------------

    def request(self, request: LinkRequest) -> LinkRequest:
        self.s.add(request)
        self.s.flush()
        return request

    def get_request(self, request_id: int) -> LinkRequest | None:
        return self.s.get(LinkRequest, request_id)

    def open_request(self, person_id: int, now: datetime) -> LinkRequest | None:
        """The newest request to this person that is still waiting for them."""
        return self.s.scalars(
            select(LinkRequest)
            .where(
                LinkRequest.person_id == person_id,
                LinkRequest.decided_at.is_(None),
                LinkRequest.expires_at > now,
            )
            .order_by(LinkRequest.id.desc())
            .limit(1)
        ).first()

    def decide(self, request: LinkRequest, outcome: str, now: datetime) -> bool:
        """Settles a waiting request; False when it was settled meanwhile (of two presses
        at once, one decides)."""
        result = self.s.execute(
            update(LinkRequest)
            .where(LinkRequest.id == request.id, LinkRequest.decided_at.is_(None))
            .values(decided_at=now, outcome=outcome)
            .execution_options(synchronize_session=False)
        )
        self.s.expire(request)
        return bool(getattr(result, "rowcount", 0))

    def prune_requests(self, before: datetime) -> int:
        result = self.s.execute(delete(LinkRequest).where(LinkRequest.expires_at < before))
        return int(getattr(result, "rowcount", 0))

    # --- wrong codes ------------------------------------------------------------------

    def failed(self, platform: str, external_id: str, kind: CodeKind, now: datetime) -> None:
        self.s.add(CodeFailure(platform=platform, external_id=external_id, kind=kind, at=now))
        self.s.flush()

    def failures_since(self, platform: str, external_id: str, since: datetime) -> list[datetime]:
        """When this account tried wrong codes since `since`, oldest first."""
        return list(
            self.s.scalars(
                select(CodeFailure.at)
                .where(
                    CodeFailure.platform == platform,
                    CodeFailure.external_id == external_id,
                    CodeFailure.at >= since,
                )
                .order_by(CodeFailure.at)
            ).all()
        )

    def count_failures(self) -> int:
        return int(self.s.scalar(select(func.count()).select_from(CodeFailure)) or 0)

    def prune_failures(self, before: datetime) -> int:
        result = self.s.execute(delete(CodeFailure).where(CodeFailure.at < before))
        return int(getattr(result, "rowcount", 0))
