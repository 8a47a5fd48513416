"""The outbox as the delivery worker claims it: due messages, in order per conversation,
and the outcomes of sends, on a plain connection (OutboxLedger)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Executable,
    Integer,
    String,
    and_,
    bindparam,
    case,
    exists,
    insert,
    literal_column,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.orm import InstrumentedAttribute, aliased
from sqlalchemy.sql.expression import ClauseElement

from store.driver import Prebuilt
from store.models import (
    MessageRef,
    OutboxMessage,
    OutboxStatus,
    table_of,
)

# The hot path runs prebuilt Core statements on the session's connection: SQLAlchemy
# compiles each once and then only binds parameters, with no ORM bookkeeping on the way.
_outbox = table_of(OutboxMessage)
_refs = table_of(MessageRef)


# The statuses as SQL literals, not parameters: a plan PostgreSQL caches for a prepared
# statement then still knows which status it looks for (and can use an index on it).
PENDING_LITERAL = literal_column(f"'{OutboxStatus.PENDING.value}'", String)
SENDING_LITERAL = literal_column(f"'{OutboxStatus.SENDING.value}'", String)


def _due(m: type[OutboxMessage], now: datetime | ColumnElement[datetime]) -> ColumnElement[bool]:
    """Ready to be claimed: pending and due, or claimed and the lease ran out."""
    return or_(
        and_(m.status == PENDING_LITERAL, m.next_attempt_at <= now),
        and_(m.status == SENDING_LITERAL, m.claimed_until < now),
    )


# A message that has failed this often no longer holds back the later messages of its
# conversation: they go ahead while it keeps retrying (a file the room cannot take must
# not keep a text post waiting for minutes).
HOLDS_BACK_UNTIL_FAILED = 2


def _holds_back(
    status: ColumnElement[str] | InstrumentedAttribute[str],
    attempts: ColumnElement[int] | InstrumentedAttribute[int],
) -> ColumnElement[bool]:
    """An unfinished message with these columns still holds back the later ones of its
    conversation: it failed fewer than HOLDS_BACK_UNTIL_FAILED times. A claimed message's
    attempt is under way (counted, its outcome not known yet): it failed one time less."""
    return or_(
        attempts < HOLDS_BACK_UNTIL_FAILED,
        and_(status == SENDING_LITERAL, attempts <= HOLDS_BACK_UNTIL_FAILED),
    )


def earlier_unfinished(earlier: type[OutboxMessage], m: type[OutboxMessage]) -> ColumnElement[bool]:
    """`earlier` is an unfinished message to the same conversation as `m`, written before it,
    that holds it back."""
    return and_(
        earlier.platform == m.platform,
        earlier.target_kind == m.target_kind,
        earlier.target == m.target,
        earlier.id < m.id,
        # The condition of the partial index ix_outbox_unfinished, as it says it (IN, of
        # literals): only then do SQLite and PostgreSQL use that index.
        earlier.status.in_([PENDING_LITERAL, SENDING_LITERAL]),
        # Read from the row the index found, as the due check below is: no other plan.
        _holds_back(earlier.status, earlier.attempts),
    )


_OUTBOX_UPDATE = update(_outbox).where(_outbox.c.id == bindparam("outbox_id"))
# by dialect, and whether for all platforms (None), one, or several ("in")
_CLAIM: dict[tuple[str, str | None], Executable] = {}


_CLAIMED_COLUMNS = (
    _outbox.c.id,
    _outbox.c.platform,
    _outbox.c.target_kind,
    _outbox.c.target,
    _outbox.c.person_id,
    _outbox.c.item_id,
    _outbox.c.payload,
    _outbox.c.attempts,
    _outbox.c.takebacks,
)
# A claim that finds a message still claimed (its lease ran out: the instance that held
# it died or hangs) takes it back: that is not another attempt, but counts as a take-back.
_RECLAIMED = _outbox.c.status == SENDING_LITERAL
_CLAIM_VALUES: dict[str, Any] = {
    "status": OutboxStatus.SENDING.value,
    "claimed_until": bindparam("until"),
    "claimed_by": bindparam("by"),
    "attempts": _outbox.c.attempts + case((_RECLAIMED, 0), else_=1),
    "takebacks": _outbox.c.takebacks + case((_RECLAIMED, 1), else_=0),
}


def _claim_statement(dialect: str, by_platform: str | None) -> Executable:
    """PostgreSQL: the due rows, locked (claimed with _MARK_CLAIMED after _in_order).
    Elsewhere: one UPDATE ... RETURNING that claims them (the attempt counted)."""
    stmt = _CLAIM.get((dialect, by_platform))
    if stmt is None:
        now = bindparam("now", type_=OutboxMessage.next_attempt_at.type)
        m = OutboxMessage if dialect == "postgresql" else aliased(OutboxMessage)
        earlier = aliased(OutboxMessage)
        columns = (*_CLAIMED_COLUMNS, m.status) if m is OutboxMessage else (m.id,)
        q = select(*columns).where(
            # Literally ix_outbox_claim's condition: the platform's unfinished messages in
            # order, so a claim stops after its batch (not: every due message, each
            # checked and then sorted — seconds with a backlog of tens of thousands).
            m.status.in_([PENDING_LITERAL, SENDING_LITERAL]),
            _due(m, now),
            ~exists().where(earlier_unfinished(earlier, m), ~_due(earlier, now)),
        )
        if by_platform == "one":
            q = q.where(m.platform == bindparam("one_platform"))
        elif by_platform == "in":
            q = q.where(m.platform.in_(bindparam("platforms", expanding=True)))
        q = q.order_by(m.id).limit(bindparam("limit", type_=Integer()))
        if dialect == "postgresql":
            # Several instances claim at once; a row another one holds is skipped.
            stmt = q.with_for_update(skip_locked=True)
        else:
            stmt = (
                update(_outbox)
                .where(_outbox.c.id.in_(q.scalar_subquery()))
                .values(**_CLAIM_VALUES)
                .returning(*_CLAIMED_COLUMNS)
            )
        _CLAIM[(dialect, by_platform)] = stmt
    return stmt


# SQLite, one platform (what the delivery worker's lanes claim): the claim's UPDATE ...
# RETURNING handed to the driver as it is; the rows come back as the driver gives them,
# only the payload is decoded.
_CLAIM_ONE_PLATFORM: dict[str, Prebuilt] = {}


def _claim_one_platform(conn: Connection, params: dict[str, Any]) -> list[Any]:
    dialect = conn.dialect
    found = _CLAIM_ONE_PLATFORM.get(dialect.name)
    if found is None:
        claim = _claim_statement(dialect.name, "one")
        assert isinstance(claim, ClauseElement)
        statement = Prebuilt(
            claim,
            {
                "now": _outbox.c.next_attempt_at.type,
                "until": _outbox.c.claimed_until.type,
                "by": _outbox.c.claimed_by.type,
                "limit": Integer(),
                "one_platform": _outbox.c.platform.type,
            },
        )
        found = _CLAIM_ONE_PLATFORM[dialect.name] = statement
    return [_RawClaimed(*r) for r in found.all(conn, params)]


@dataclass(slots=True)
class _RawClaimed:
    """A claimed row as the driver returned it (the columns of _CLAIMED_COLUMNS)."""

    id: int
    platform: str
    target_kind: str
    target: str
    person_id: int | None
    item_id: int | None
    payload: Any
    attempts: int
    takebacks: int


_UNFINISHED_BEFORE = select(
    _outbox.c.id, _outbox.c.platform, _outbox.c.target_kind, _outbox.c.target
).where(
    _outbox.c.status.in_([PENDING_LITERAL, SENDING_LITERAL]),  # literals: see earlier_unfinished
    _outbox.c.id < bindparam("before"),
    _outbox.c.target.in_(bindparam("targets", expanding=True)),
    _outbox.c.id.not_in(bindparam("chosen", expanding=True)),
    _holds_back(_outbox.c.status, _outbox.c.attempts),
)
_MARK_CLAIMED = (
    update(_outbox)
    .where(_outbox.c.id.in_(bindparam("ids", expanding=True)))
    .values(**_CLAIM_VALUES)
)
_MARK_SENT = Prebuilt(
    update(_outbox)
    .where(_outbox.c.id == bindparam("outbox_id"))
    .values(
        status=literal_column(f"'{OutboxStatus.SENT.value}'", String),
        sent_at=bindparam("sent_at"),
        platform_message_id=bindparam("message_id"),
        claimed_until=null(),
        last_error=null(),
    ),
    {
        "outbox_id": _outbox.c.id.type,
        "sent_at": _outbox.c.sent_at.type,
        "message_id": _outbox.c.platform_message_id.type,
    },
)
# A ref of a delivered message, written only if the message is still there (purged
# meanwhile: nothing to point at).
_REF_COLUMNS = ("platform", "conversation", "message_id", "item_id", "created_at")
_REF_INSERT = Prebuilt(
    insert(_refs).from_select(
        [*_REF_COLUMNS, "outbox_id"],
        select(
            *(bindparam(c, type_=_refs.c[c].type) for c in _REF_COLUMNS),
            _outbox.c.id,
        ).where(_outbox.c.id == bindparam("outbox_id")),
    ),
    {**{c: _refs.c[c].type for c in _REF_COLUMNS}, "outbox_id": _outbox.c.id.type},
)


class OutboxLedger:
    """The delivery worker's bookkeeping on a plain connection, without an ORM session:
    claims, and the outcomes of sends that went through. `Database.ledger()` gives one in
    a transaction of its own; the outbox repository runs the same statements within a
    unit of work."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def claim_due(
        self,
        now: datetime,
        *,
        limit: int,
        lease: timedelta,
        platforms: Iterable[str] | None = None,
        by: str | None = None,
    ) -> list[ClaimedRow]:
        """Claims due messages for sending, for the instance `by`: pending ones, and ones
        whose lease ran out (taken back: not another attempt, but a take-back).

        Messages to one conversation go out in the order they were written: a message is
        claimed only when every earlier unfinished message to its conversation is claimed
        with it (one that waits for a retry or is being sent elsewhere holds the rest back),
        unless that one has failed HOLDS_BACK_UNTIL_FAILED times already.
        """
        conn = self.conn
        dialect = conn.dialect.name
        until = now + lease
        params: dict[str, Any] = {"now": now, "limit": limit, "until": until, "by": by}
        by_platform: str | None = None
        if platforms is not None:
            names = list(platforms)
            if len(names) == 1:
                by_platform, params["one_platform"] = "one", names[0]
            else:
                by_platform, params["platforms"] = "in", names
        rows: Sequence[Any]
        if dialect != "postgresql" and by_platform == "one":
            rows = _claim_one_platform(conn, params)
        else:
            rows = conn.execute(_claim_statement(dialect, by_platform), params).all()
        if dialect == "postgresql":
            rows = self._in_order(rows)
            if rows:
                conn.execute(_MARK_CLAIMED, {"ids": [r.id for r in rows], "until": until, "by": by})
            # Selected before the claim: what it counts is added here as it did in SQL.
            return [
                _claimed_row(
                    r,
                    until,
                    attempts=r.attempts + (r.status != OutboxStatus.SENDING),
                    takebacks=r.takebacks + (r.status == OutboxStatus.SENDING),
                )
                for r in rows
            ]
        # Claimed in one statement: claims are serialized (SQLite has one writer), so an
        # earlier unfinished message of a selected one was due and selected too.
        rows = sorted(rows, key=lambda r: int(r.id))
        return [_claimed_row(r, until, attempts=r.attempts, takebacks=r.takebacks) for r in rows]

    def _in_order(self, rows: Sequence[Any]) -> list[Any]:
        """Drops rows behind an earlier unfinished row of their conversation that was not
        selected with them: one locked by a concurrent claim (SKIP LOCKED skipped it)."""
        if not rows:
            return []
        chosen = {row.id for row in rows}
        targets = {row.target for row in rows}
        blocked_from: dict[tuple[str, str, str], int] = {}
        others = self.conn.execute(
            _UNFINISHED_BEFORE,
            {"before": max(chosen), "targets": list(targets), "chosen": list(chosen)},
        )
        for row_id, platform, kind, target in others:
            key = (platform, kind, target)
            blocked_from[key] = min(row_id, blocked_from.get(key, row_id))
        return [
            row
            for row in rows
            if row.id < blocked_from.get((row.platform, row.target_kind, row.target), row.id + 1)
        ]

    def update_row(self, outbox_id: int, **values: Any) -> None:
        """Sets these columns of one message (one UPDATE)."""
        self.conn.execute(_OUTBOX_UPDATE, {"outbox_id": outbox_id, **values})

    def mark_sent(self, sent: Sequence[tuple[int, str | None]], now: datetime) -> None:
        """(outbox id, platform message id) of messages delivered: sent, in one statement."""
        if sent:
            _MARK_SENT.run(
                self.conn, [{"outbox_id": i, "message_id": m, "sent_at": now} for i, m in sent]
            )

    def add_refs(self, refs: list[dict[str, Any]]) -> None:
        """Refs of delivered messages given as column values (all of them), at once; one
        of a message that is gone by now is left out."""
        if refs:
            _REF_INSERT.run(self.conn, refs)


@dataclass(frozen=True, slots=True)
class ClaimedRow:
    """An outbox message as claimed for sending (its state after the claim)."""

    id: int
    platform: str
    target_kind: str
    target: str
    person_id: int | None
    item_id: int | None
    payload: dict[str, Any]
    attempts: int
    claimed_until: datetime
    status: str = OutboxStatus.SENDING
    takebacks: int = 0


def _claimed_row(r: Any, until: datetime, *, attempts: int, takebacks: int) -> ClaimedRow:
    return ClaimedRow(
        id=r.id,
        platform=r.platform,
        target_kind=r.target_kind,
        target=r.target,
        person_id=r.person_id,
        item_id=r.item_id,
        payload=r.payload,
        attempts=attempts,
        claimed_until=until,
        takebacks=takebacks,
    )


@dataclass(frozen=True, slots=True)
class OutboxState:
    """What recording a send's outcome needs of its message."""

    id: int
    platform: str
    target: str
    person_id: int | None
    attempts: int
