"""Requests to join closed groups (issue 18): asked by a person, decided by a moderator.

A request is open until decided; a decided one stays as the record of who decided it.
The core decides who may ask and who may decide (bot.policy); this only keeps them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import JoinOutcome, JoinRequest, Membership, Person, Role


class JoinRequestRepository:
    """Used through `UnitOfWork.join_requests`; shares the unit of work's session."""

    def __init__(self, session: Session) -> None:
        self.s = session

    def add(self, group_id: int, person_id: int, now: datetime) -> JoinRequest:
        request = JoinRequest(group_id=group_id, person_id=person_id, created_at=now)
        self.s.add(request)
        self.s.flush()
        return request

    def lock(self, request_id: int) -> JoinRequest | None:
        """The request, read again and held until the unit of work ends (PostgreSQL;
        SQLite has one writer anyway): two moderators deciding at once take turns, and
        the second sees the first's decision."""
        return self.s.scalar(
            select(JoinRequest)
            .where(JoinRequest.id == request_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )

    def pending(self, group_id: int, person_id: int) -> JoinRequest | None:
        """The person's open request to join the group, if any."""
        return self.s.scalar(
            select(JoinRequest).where(
                JoinRequest.group_id == group_id,
                JoinRequest.person_id == person_id,
                JoinRequest.decided_at.is_(None),
            )
        )

    def pending_in(self, group_id: int) -> Sequence[tuple[JoinRequest, Person]]:
        """The group's open requests of active people who are not members meanwhile
        (an invite may have let them in), oldest first."""
        member = select(Membership.person_id).where(Membership.group_id == group_id)
        rows = self.s.execute(
            select(JoinRequest, Person)
            .join(Person, Person.id == JoinRequest.person_id)
            .where(
                JoinRequest.group_id == group_id,
                JoinRequest.decided_at.is_(None),
                Person.active,
                JoinRequest.person_id.not_in(member),
            )
            .order_by(JoinRequest.created_at, JoinRequest.id)
        ).all()
        return [(r, p) for r, p in rows]

    def decide(
        self, request: JoinRequest, outcome: JoinOutcome, decided_by: int | None, now: datetime
    ) -> None:
        request.decided_at = now
        request.decided_by = decided_by
        request.outcome = outcome.value
        self.s.flush()  # the open-request index frees the pair: a new request may follow

    def settle(self, group_id: int, person_id: int, decided_by: int, now: datetime) -> bool:
        """The person became a member another way (a moderator's `add`): their open
        request, if any, is approved by that. True when there was one."""
        request = self.pending(group_id, person_id)
        if request is None:
            return False
        self.decide(request, JoinOutcome.APPROVED, decided_by, now)
        return True

    def deciders(self, group_id: int) -> Sequence[Person]:
        """Who decides the group's requests: its active moderators who may moderate
        (not guests or partners), else the admins, by handle."""
        moderators = self.s.scalars(
            select(Person)
            .join(Membership, Membership.person_id == Person.id)
            .where(
                Membership.group_id == group_id,
                Membership.moderator,
                Person.active,
                Person.role.not_in([Role.GUEST.value, Role.PARTNER.value]),
            )
            .order_by(Person.handle)
        ).all()
        if moderators:
            return moderators
        return self.s.scalars(
            select(Person)
            .where(Person.role == Role.ADMIN.value, Person.active)
            .order_by(Person.handle)
        ).all()

    def move(self, source_id: int, target_id: int) -> None:
        """Account linking: the source's requests become the target's. An open request
        of the source for a group the target already asked to join is dropped."""
        theirs = select(JoinRequest.group_id).where(
            JoinRequest.person_id == target_id, JoinRequest.decided_at.is_(None)
        )
        for request in self.s.scalars(
            select(JoinRequest).where(
                JoinRequest.person_id == source_id,
                JoinRequest.decided_at.is_(None),
                JoinRequest.group_id.in_(theirs),
            )
        ).all():
            self.s.delete(request)
        self.s.flush()
        for request in self.s.scalars(
            select(JoinRequest).where(
                (JoinRequest.person_id == source_id) | (JoinRequest.decided_by == source_id)
            )
        ).all():
            if request.person_id == source_id:
                request.person_id = target_id
            if request.decided_by == source_id:
                request.decided_by = target_id
        self.s.flush()
