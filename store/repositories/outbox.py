"""The outbox within a unit of work: messages written with what caused them, claims,
retries, purges, and the refs of delivered messages."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    bindparam,
    case,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session, aliased

from store.driver import insert_into
from store.models import (
    MessageRef,
    OutboxMessage,
    OutboxStatus,
    table_of,
)
from store.repositories.base import Repo
from store.repositories.ledger import (
    PENDING_LITERAL,
    SENDING_LITERAL,
    ClaimedRow,
    OutboxLedger,
    OutboxState,
    earlier_unfinished,
)

# The hot path runs prebuilt Core statements on the session's connection: SQLAlchemy
# compiles each once and then only binds parameters, with no ORM bookkeeping on the way.
_outbox = table_of(OutboxMessage)


# Claims given back unfinished (their instance is gone): pending again, the attempt they
# had counted not counted, the take-back counted.
_TAKE_BACK_VALUES: dict[str, Any] = {
    "status": OutboxStatus.PENDING.value,
    "claimed_until": None,
    "claimed_by": None,
    "attempts": case((_outbox.c.attempts > 0, _outbox.c.attempts - 1), else_=0),
    "takebacks": _outbox.c.takebacks + 1,
}
_OUTBOX_STATES = select(
    _outbox.c.id, _outbox.c.platform, _outbox.c.target, _outbox.c.person_id, _outbox.c.attempts
).where(_outbox.c.id.in_(bindparam("ids", expanding=True)))


def queue_one(
    session: Session,
    *,
    platform: str,
    target_kind: str,
    target: str,
    person_id: int | None,
    payload: dict[str, Any],
    now: datetime,
) -> OutboxMessage:
    """One message queued with this unit of work and flushed, so that its id can be kept
    (where a card went, to change it in place later: approval cards, live cards)."""
    message = OutboxMessage(
        created_at=now,
        platform=platform,
        target_kind=target_kind,
        target=target,
        person_id=person_id,
        payload=payload,
        status=OutboxStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
    )
    session.add(message)
    session.flush()
    return message


class OutboxRepository(Repo):
    def add(self, message: OutboxMessage) -> None:
        self.s.add(message)

    def add_all(self, messages: Iterable[OutboxMessage]) -> None:
        self.s.add_all(messages)

    def insert_many(self, rows: list[dict[str, Any]]) -> None:
        """Inserts outbox rows given as column values (every row the same columns), in
        order, with one prebuilt statement (ids are not needed back)."""
        if rows:
            columns = tuple(rows[0])
            insert_into(_outbox, columns).run(self._flushed_connection(), rows)

    def get(self, outbox_id: int) -> OutboxMessage | None:
        return self.s.get(OutboxMessage, outbox_id)

    def claim_due(
        self,
        now: datetime,
        *,
        limit: int,
        lease: timedelta,
        platforms: Iterable[str] | None = None,
        by: str | None = None,
    ) -> list[ClaimedRow]:
        """Claims due messages for sending (see OutboxLedger.claim_due)."""
        rows = OutboxLedger(self._flushed_connection()).claim_due(
            now, limit=limit, lease=lease, platforms=platforms, by=by
        )
        if rows:
            self._expire(OutboxMessage, [r.id for r in rows])
        return rows

    def states(self, outbox_ids: Iterable[int]) -> dict[int, OutboxState]:
        """The messages among these that still exist, in one query."""
        ids = list(outbox_ids)
        if not ids:
            return {}
        return {
            row.id: OutboxState(row.id, row.platform, row.target, row.person_id, row.attempts)
            for row in self._run(_OUTBOX_STATES, {"ids": ids})
        }

    def mark_sent(self, sent: Sequence[tuple[int, str | None]], now: datetime) -> None:
        """(outbox id, platform message id) of messages delivered: sent, in one statement."""
        if sent:
            OutboxLedger(self._flushed_connection()).mark_sent(sent, now)
            self._expire(OutboxMessage, [i for i, _ in sent])

    def update_row(self, outbox_id: int, **values: Any) -> None:
        """Sets these columns of one message (one UPDATE)."""
        OutboxLedger(self._flushed_connection()).update_row(outbox_id, **values)
        self._expire(OutboxMessage, [outbox_id])

    def release(self, outbox_id: int, *, until: datetime | None = None) -> None:
        """Puts a claimed message back unsent, not counted as an attempt (an earlier one
        to its conversation waits, or its conversation may not be sent to before `until`)."""
        row = self.s.get(OutboxMessage, outbox_id)
        if row is not None and row.status == OutboxStatus.SENDING:
            row.status = OutboxStatus.PENDING
            row.claimed_until = None
            row.attempts = max(0, row.attempts - 1)
            if until is not None:
                row.next_attempt_at = until
            self.s.flush()

    def release_held(self, item_id: int, now: datetime, latest: datetime) -> int:
        """The copies of a post held back for its link preview (due after `now`, by
        `latest`) due now: the preview is in, or will not come."""
        result = self._run(
            update(_outbox)
            .where(
                # Through ix_outbox_status_next_attempt_at: only what falls due by `latest`.
                _outbox.c.status == PENDING_LITERAL,
                _outbox.c.next_attempt_at > now,
                _outbox.c.next_attempt_at <= latest,
                _outbox.c.item_id == item_id,
                _outbox.c.attempts == 0,
            )
            .values(next_attempt_at=now)
        )
        return int(result.rowcount)

    def unclaim_all(self) -> int:
        """Takes back every claim: they are a process's that is gone (SQLite: this is the
        only instance). Not counted as attempts; counted as take-backs."""
        result = self._run(
            update(_outbox).where(_outbox.c.status == SENDING_LITERAL).values(**_TAKE_BACK_VALUES)
        )
        self.s.expire_all()
        return int(result.rowcount)

    def take_back(self, instances: Sequence[str]) -> int:
        """Takes back the claims of these instances, which are gone (as unclaim_all)."""
        if not instances:
            return 0
        result = self._run(
            update(_outbox)
            .where(_outbox.c.status == SENDING_LITERAL, _outbox.c.claimed_by.in_(list(instances)))
            .values(**_TAKE_BACK_VALUES)
        )
        self.s.expire_all()
        return int(result.rowcount)

    def next_due_at(self, platforms: Iterable[str]) -> datetime | None:
        """When the next message for one of these platforms falls due (or its lease ends).

        Only the first unfinished message of each conversation counts: the ones behind it
        cannot go before it.
        """
        names = list(platforms)
        earlier = aliased(OutboxMessage)
        first = ~exists().where(earlier_unfinished(earlier, OutboxMessage))
        pending = self.s.scalar(
            select(func.min(OutboxMessage.next_attempt_at)).where(
                OutboxMessage.status == OutboxStatus.PENDING,
                OutboxMessage.platform.in_(names),
                first,
            )
        )
        leased = self.s.scalar(
            select(func.min(OutboxMessage.claimed_until)).where(
                OutboxMessage.status == OutboxStatus.SENDING,
                OutboxMessage.platform.in_(names),
                first,
            )
        )
        return min((t for t in (pending, leased) if t is not None), default=None)

    def oldest_pending(self) -> datetime | None:
        return self.s.scalar(
            select(func.min(OutboxMessage.created_at)).where(
                OutboxMessage.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING])
            )
        )

    def counts(self) -> dict[str, int]:
        rows = self.s.execute(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        ).all()
        return dict(rows)

    def listing(self, statuses: Sequence[str], limit: int) -> Sequence[OutboxMessage]:
        return self.s.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.status.in_(list(statuses)))
            .order_by(OutboxMessage.id)
            .limit(limit)
        ).all()

    def retry_dead(self, now: datetime, ids: Sequence[int] | None = None) -> int:
        q = update(OutboxMessage).where(OutboxMessage.status == OutboxStatus.DEAD)
        if ids:
            q = q.where(OutboxMessage.id.in_(list(ids)))
        result = self.s.execute(
            q.values(
                status=OutboxStatus.PENDING, next_attempt_at=now, attempts=0, claimed_until=None
            )
        )
        return int(getattr(result, "rowcount", 0))

    def purge(self, statuses: Sequence[str], before: datetime) -> int:
        result = self.s.execute(
            delete(OutboxMessage).where(
                OutboxMessage.status.in_(list(statuses)), OutboxMessage.created_at < before
            )
        )
        return int(getattr(result, "rowcount", 0))

    def add_ref(
        self,
        *,
        platform: str,
        conversation: str,
        message_id: str,
        item_id: int | None,
        outbox_id: int | None,
        now: datetime,
    ) -> None:
        self.s.add(
            MessageRef(
                platform=platform,
                conversation=conversation,
                message_id=message_id,
                item_id=item_id,
                outbox_id=outbox_id,
                created_at=now,
            )
        )

    def add_refs(self, refs: list[dict[str, Any]]) -> None:
        """Refs of delivered messages given as column values (all of them), at once; one
        of a message that is gone by now is left out."""
        if refs:
            OutboxLedger(self._flushed_connection()).add_refs(refs)

    def room_copies(self, item_id: int) -> Sequence[MessageRef]:
        """Where an item shows in rooms: the bridged copies and the message it came from."""
        direct = select(OutboxMessage.id).where(OutboxMessage.target_kind == "dm")
        return self.s.scalars(
            select(MessageRef)
            .where(
                MessageRef.item_id == item_id,
                or_(MessageRef.outbox_id.is_(None), MessageRef.outbox_id.not_in(direct)),
            )
            .order_by(MessageRef.id)
        ).all()

    def delivered_cards(
        self, item_id: int, platforms: Iterable[str]
    ) -> list[tuple[str, str, str, str, int | None]]:
        """Where the bot showed the post as its card on these messengers (a room's copy,
        a member's): (message id, platform, target kind, target, person) of each, oldest
        first, so that each can be shown again in place (a like's new count)."""
        rows = self.s.execute(
            select(
                MessageRef.message_id,
                OutboxMessage.platform,
                OutboxMessage.target_kind,
                OutboxMessage.target,
                OutboxMessage.person_id,
                OutboxMessage.payload,
            )
            .join(OutboxMessage, OutboxMessage.id == MessageRef.outbox_id)
            .where(MessageRef.item_id == item_id, MessageRef.platform.in_(list(platforms)))
            .order_by(MessageRef.id)
        ).all()
        return [
            (r.message_id, r.platform, r.target_kind, r.target, r.person_id)
            for r in rows
            if isinstance(r.payload, dict) and r.payload.get("t") == "item"
        ]

    def sending_on(self, platform: str) -> bool:
        """Whether a message to this messenger is being sent right now (claimed, its
        outcome not yet recorded)."""
        found = self.s.scalar(
            select(OutboxMessage.id)
            .where(
                OutboxMessage.status == OutboxStatus.SENDING,
                OutboxMessage.platform == platform,
            )
            .limit(1)
        )
        return found is not None

    def reached_directly(self, person_id: int, platform: str) -> bool:
        """Whether a direct message on this messenger has reached the person (so their
        private chat with the bot is open: Telegram lets a bot write only to people who
        started it)."""
        found = self.s.scalar(
            select(OutboxMessage.id)
            .where(
                OutboxMessage.person_id == person_id,
                OutboxMessage.platform == platform,
                OutboxMessage.target_kind == "dm",
                OutboxMessage.status == OutboxStatus.SENT,
            )
            .limit(1)
        )
        return found is not None

    def sent_as(self, platform: str, conversation: str, message_id: str) -> OutboxMessage | None:
        """The outbox message that became this platform message in this conversation (a
        room's; a direct chat's is addressed to the person), if it was one."""
        return self.s.scalar(
            select(OutboxMessage)
            .where(
                OutboxMessage.platform == platform,
                OutboxMessage.target == conversation,
                OutboxMessage.platform_message_id == message_id,
            )
            .order_by(OutboxMessage.id.desc())
            .limit(1)
        )

    def find_ref(self, platform: str, conversation: str, message_id: str) -> MessageRef | None:
        return self.s.scalar(
            select(MessageRef).where(
                MessageRef.platform == platform,
                MessageRef.conversation == conversation,
                MessageRef.message_id == message_id,
            )
        )
