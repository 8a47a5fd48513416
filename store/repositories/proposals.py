"""The proposals repository: proposals, gatekeepers' votes, approval cards, the newsroom.

Deciding is atomic: a vote first locks its proposal (FOR UPDATE on PostgreSQL; SQLite
has one writer), and every change of status is a conditional UPDATE on the status and
revision it expects, so two gatekeepers pressing at once yield one outcome.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from store.models import (
    ApprovalCard,
    AuditEntry,
    GatekeeperRoom,
    NewsroomEntry,
    OutboxMessage,
    Person,
    Proposal,
    ProposalStatus,
    ProposalVote,
    Role,
    Room,
    table_of,
)
from store.repositories.outbox import queue_one

_votes = table_of(ProposalVote)

OPEN = (ProposalStatus.PENDING, ProposalStatus.CHANGES)  # waiting for people
# What `pending` lists: everything not finished yet, and what needs an admin.
UNFINISHED = (
    ProposalStatus.PENDING,
    ProposalStatus.CHANGES,
    ProposalStatus.APPROVED,
    ProposalStatus.PUBLISHING,
    ProposalStatus.UNCERTAIN,
)


class ProposalRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    # --- proposals ------------------------------------------------------------------

    def add(self, proposal: Proposal) -> Proposal:
        self.s.add(proposal)
        self.s.flush()
        return proposal

    def get(self, proposal_id: int) -> Proposal | None:
        return self.s.get(Proposal, proposal_id)

    def lock(self, proposal_id: int) -> Proposal | None:
        """The proposal, locked until the end of the unit of work: votes on it queue."""
        return self.s.scalar(
            select(Proposal)
            .where(Proposal.id == proposal_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )

    def transition(
        self,
        proposal_id: int,
        expected: Iterable[str],
        at_revision: int | None = None,
        **values: Any,
    ) -> bool:
        """Sets `values` only if the proposal is still in one of the `expected` statuses
        (and at revision `at_revision`): True for the one caller that moved it."""
        q = update(Proposal).where(
            Proposal.id == proposal_id, Proposal.status.in_([str(e) for e in expected])
        )
        if at_revision is not None:
            q = q.where(Proposal.revision == at_revision)
        result = self.s.execute(q.values(**values).execution_options(synchronize_session=False))
        obj = self.s.identity_map.get((Proposal, (proposal_id,), None))
        if obj is not None:
            self.s.expire(obj)
        return int(getattr(result, "rowcount", 0)) == 1

    def listing(self, statuses: Sequence[str], limit: int) -> Sequence[Proposal]:
        return self.s.scalars(
            select(Proposal)
            .where(Proposal.status.in_([str(s) for s in statuses]))
            .order_by(Proposal.id)
            .limit(limit)
        ).all()

    def of_author(self, person_id: int, statuses: Sequence[str], limit: int) -> Sequence[Proposal]:
        return self.s.scalars(
            select(Proposal)
            .where(
                Proposal.author_id == person_id,
                Proposal.status.in_([str(s) for s in statuses]),
            )
            .order_by(Proposal.id)
            .limit(limit)
        ).all()

    def expiring(self, now: datetime, limit: int = 100) -> list[int]:
        return list(
            self.s.scalars(
                select(Proposal.id)
                .where(Proposal.status.in_([str(s) for s in OPEN]), Proposal.expires_at <= now)
                .order_by(Proposal.id)
                .limit(limit)
            )
        )

    def due(self, now: datetime, limit: int = 20) -> list[int]:
        """Approved proposals whose publish time (or next attempt) has come."""
        return list(
            self.s.scalars(
                select(Proposal.id)
                .where(
                    Proposal.status == ProposalStatus.APPROVED,
                    or_(Proposal.next_attempt_at.is_(None), Proposal.next_attempt_at <= now),
                )
                .order_by(Proposal.next_attempt_at, Proposal.id)
                .limit(limit)
            )
        )

    def interrupted(self, started_before: datetime) -> list[int]:
        """Attempts recorded as started long ago with no outcome: cut short by a crash."""
        return list(
            self.s.scalars(
                select(Proposal.id).where(
                    Proposal.status == ProposalStatus.PUBLISHING,
                    Proposal.attempt_started_at < started_before,
                )
            )
        )

    def decided_between(self, since: datetime, until: datetime) -> Sequence[Proposal]:
        return self.s.scalars(
            select(Proposal).where(
                Proposal.decided_at > since,
                Proposal.decided_at <= until,
                Proposal.decided_by.is_not(None),
            )
        ).all()

    # --- votes ----------------------------------------------------------------------

    def add_vote(
        self,
        proposal_id: int,
        revision: int,
        gatekeeper_id: int,
        vote: str,
        comment: str | None,
        now: datetime,
    ) -> bool:
        """False when this gatekeeper already voted on this revision (a double click)."""
        values = {
            "proposal_id": proposal_id,
            "revision": revision,
            "gatekeeper_id": gatekeeper_id,
            "vote": vote,
            "comment": comment,
            "created_at": now,
        }
        table = _votes
        insert = (
            pg_insert(table)
            if self.s.get_bind().dialect.name == "postgresql"
            else sqlite_insert(table)
        )
        stmt = insert.values(**values).on_conflict_do_nothing().returning(table.c.id)
        return self.s.execute(stmt).scalar() is not None

    def votes(self, proposal_id: int, revision: int) -> Sequence[ProposalVote]:
        return self.s.scalars(
            select(ProposalVote)
            .where(ProposalVote.proposal_id == proposal_id, ProposalVote.revision == revision)
            .order_by(ProposalVote.id)
        ).all()

    def approval_counts(self, proposals: Iterable[Proposal]) -> dict[int, int]:
        """How many approved the current revision of each of these proposals, in one query
        (a proposal nobody approved yet is not in it)."""
        revisions = {p.id: p.revision for p in proposals}
        if not revisions:
            return {}
        rows = self.s.execute(
            select(_votes.c.proposal_id, _votes.c.revision, func.count())
            .where(_votes.c.proposal_id.in_(revisions), _votes.c.vote == "approve")
            .group_by(_votes.c.proposal_id, _votes.c.revision)
        )
        return {pid: int(n) for pid, revision, n in rows if revisions[pid] == revision}

    # --- gatekeepers and their cards -------------------------------------------------

    def people_with_role(self, role: Role) -> Sequence[Person]:
        return self.s.scalars(
            select(Person).where(Person.role == role, Person.active.is_(True)).order_by(Person.id)
        ).all()

    def gatekeeper_rooms(self) -> Sequence[Room]:
        return self.s.scalars(
            select(Room)
            .join(GatekeeperRoom, GatekeeperRoom.room_id == Room.id)
            .order_by(GatekeeperRoom.created_at, Room.id)
        ).all()

    def add_gatekeeper_room(self, room_id: int, now: datetime) -> bool:
        if self.s.get(GatekeeperRoom, room_id) is not None:
            return False
        self.s.add(GatekeeperRoom(room_id=room_id, created_at=now))
        self.s.flush()
        return True

    def add_card(
        self,
        proposal: Proposal,
        *,
        platform: str,
        target_kind: str,
        target: str,
        person_id: int | None,
        payload: dict[str, Any],
        now: datetime,
    ) -> ApprovalCard:
        """Queues a card (in the outbox, with this unit of work) and remembers where."""
        message = queue_one(
            self.s,
            platform=platform,
            target_kind=target_kind,
            target=target,
            person_id=person_id,
            payload=payload,
            now=now,
        )
        card = ApprovalCard(
            proposal_id=proposal.id,
            outbox_id=message.id,
            platform=platform,
            target_kind=target_kind,
            target=target,
            person_id=person_id,
            revision=proposal.revision,
            closed=False,
            created_at=now,
        )
        self.s.add(card)
        self.s.flush()
        return card

    def card_sent_by(self, outbox_id: int) -> ApprovalCard | None:
        """The card an outbox message carries."""
        return self.s.scalar(select(ApprovalCard).where(ApprovalCard.outbox_id == outbox_id))

    def open_cards(self, proposal_id: int) -> list[tuple[ApprovalCard, str | None]]:
        """The cards not yet showing an outcome, with the platform message id of each
        where it was delivered."""
        rows = self.s.execute(
            select(ApprovalCard, OutboxMessage.platform_message_id)
            .outerjoin(OutboxMessage, OutboxMessage.id == ApprovalCard.outbox_id)
            .where(ApprovalCard.proposal_id == proposal_id, ApprovalCard.closed.is_(False))
            .order_by(ApprovalCard.id)
        ).all()
        return [(card, message_id) for card, message_id in rows]

    def all_cards(self, proposal_id: int) -> list[tuple[ApprovalCard, str | None]]:
        rows = self.s.execute(
            select(ApprovalCard, OutboxMessage.platform_message_id)
            .outerjoin(OutboxMessage, OutboxMessage.id == ApprovalCard.outbox_id)
            .where(ApprovalCard.proposal_id == proposal_id)
            .order_by(ApprovalCard.id)
        ).all()
        return [(card, message_id) for card, message_id in rows]

    def card_at(self, platform: str, conversation: str, message_id: str) -> ApprovalCard | None:
        """The card shown by this platform message (a reaction on it votes)."""
        rows = self.s.scalars(
            select(ApprovalCard)
            .join(OutboxMessage, OutboxMessage.id == ApprovalCard.outbox_id)
            .where(
                OutboxMessage.platform == platform,
                OutboxMessage.platform_message_id == message_id,
            )
            .order_by(ApprovalCard.id.desc())
        ).all()
        # Message ids are unique per conversation on some platforms (Telegram): the card
        # sent to this conversation first; a DM's conversation may differ from its address.
        exact = [c for c in rows if c.target == conversation]
        if exact:
            return exact[0]
        return rows[0] if len(rows) == 1 else None

    def close_cards(self, ids: Iterable[int]) -> None:
        wanted = list(ids)
        if wanted:
            self.s.execute(
                update(ApprovalCard)
                .where(ApprovalCard.id.in_(wanted))
                .values(closed=True)
                .execution_options(synchronize_session=False)
            )

    # --- the newsroom -----------------------------------------------------------------

    def newsroom_entry(
        self,
        *,
        outlet: str,
        key: str,
        proposal_id: int | None,
        text: str,
        link: str | None,
        now: datetime,
    ) -> NewsroomEntry:
        """Stores the entry once per key: publishing it again finds the first one."""
        found = self.s.scalar(
            select(NewsroomEntry).where(NewsroomEntry.outlet == outlet, NewsroomEntry.key == key)
        )
        if found is not None:
            return found
        entry = NewsroomEntry(
            outlet=outlet,
            key=key,
            proposal_id=proposal_id,
            text=text,
            link=link,
            published_at=now,
        )
        self.s.add(entry)
        self.s.flush()
        return entry

    def newsroom_entries(self, outlet: str, limit: int = 50) -> Sequence[NewsroomEntry]:
        return self.s.scalars(
            select(NewsroomEntry)
            .where(NewsroomEntry.outlet == outlet)
            .order_by(NewsroomEntry.published_at.desc(), NewsroomEntry.id.desc())
            .limit(limit)
        ).all()

    # --- the audit log, for export --------------------------------------------------------

    def audit_entries(self, limit: int | None = None) -> Sequence[AuditEntry]:
        """The whole audit log (or its newest `limit` entries), oldest first."""
        q = select(AuditEntry).order_by(AuditEntry.id.desc())
        if limit is not None:
            q = q.limit(limit)
        return list(reversed(self.s.scalars(q).all()))

    def handles(self, person_ids: Iterable[int | None]) -> dict[int, str]:
        ids = {i for i in person_ids if i is not None}
        if not ids:
            return {}
        rows = self.s.execute(select(Person.id, Person.handle).where(Person.id.in_(ids))).all()
        return {int(pid): str(handle) for pid, handle in rows}


__all__ = ["OPEN", "UNFINISHED", "ProposalRepository"]
