"""The inbox: every inbound event, recorded before (or as) it is applied."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    bindparam,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from store.driver import Prebuilt
from store.models import (
    InboxEvent,
    InboxStatus,
    table_of,
)
from store.repositories.base import Repo

_INBOX_RECORD: dict[str, Prebuilt] = {}  # by dialect: INSERT ... ON CONFLICT DO NOTHING


class InboxRepository(Repo):
    def record(
        self,
        platform: str,
        event_id: str,
        payload: dict[str, Any],
        now: datetime,
        *,
        status: InboxStatus = InboxStatus.RECEIVED,
    ) -> int | None:
        """Records an inbound event; its row id, or None when it was recorded before (a
        redelivery). One INSERT ... ON CONFLICT DO NOTHING: no savepoint, no second look."""
        values = {
            "platform": platform,
            "event_id": event_id,
            "payload": payload,
            "status": status,
            "received_at": now,
            "applied_at": now if status != InboxStatus.RECEIVED else None,
        }
        if self.s.autoflush:
            self.s.flush()
        conn = self._connection()
        stmt = _INBOX_RECORD.get(conn.dialect.name)
        if stmt is None:
            dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            inbox = table_of(InboxEvent)
            stmt = _INBOX_RECORD[conn.dialect.name] = Prebuilt(
                dialect_insert(inbox)
                .values({c: bindparam(c) for c in values})
                .on_conflict_do_nothing(index_elements=["platform", "event_id"])
                .returning(inbox.c.id),
                {c: inbox.c[c].type for c in values},
            )
        result: int | None = stmt.scalar(conn, values)
        return result

    def mark(
        self, row_id: int, status: InboxStatus, now: datetime, error: str | None = None
    ) -> None:
        self.s.execute(
            update(InboxEvent)
            .where(InboxEvent.id == row_id)
            .values(status=status, applied_at=now, error=error)
        )

    def get(self, platform: str, event_id: str) -> InboxEvent | None:
        return self.s.scalar(
            select(InboxEvent).where(
                InboxEvent.platform == platform, InboxEvent.event_id == event_id
            )
        )

    def lock(self, row_id: int) -> InboxEvent | None:
        q = select(InboxEvent).where(InboxEvent.id == row_id)
        if self.s.bind is not None and self.s.bind.dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        return self.s.scalar(q)

    def unapplied(
        self,
        limit: int = 100,
        received_before: datetime | None = None,
        keys: Sequence[tuple[str, str]] | None = None,
    ) -> Sequence[InboxEvent]:
        """Recorded, not applied yet, oldest first; `keys` (platform, event id): of these."""
        query = select(InboxEvent).where(InboxEvent.status == InboxStatus.RECEIVED)
        if received_before is not None:
            query = query.where(InboxEvent.received_at < received_before)
        if keys is not None:
            query = query.where(tuple_(InboxEvent.platform, InboxEvent.event_id).in_(keys))
        return self.s.scalars(query.order_by(InboxEvent.id).limit(limit)).all()
