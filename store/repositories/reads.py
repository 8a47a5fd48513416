"""Read tracking (issue 9): which person was shown which post, the first time only.

The core asks for it only while an admin has switched it on; what is kept is one row
per post and person, and what is shown is a count per post, never who.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Executable, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from store.models import ItemRead, table_of

_reads = table_of(ItemRead)
_RECORD: dict[str, Executable] = {}  # by dialect: INSERT ... ON CONFLICT DO NOTHING


class ReadRepository:
    """Used through `UnitOfWork.reads`; shares the unit of work's session."""

    def __init__(self, session: Session) -> None:
        self.s = session

    def record(self, person_id: int, item_ids: Collection[int], now: datetime) -> None:
        """The person was shown these posts; a post they were shown before keeps its first
        time (also when two commands of theirs run at once: no error, no second row)."""
        if not item_ids:
            return
        dialect = self.s.get_bind().dialect.name
        stmt = _RECORD.get(dialect)
        if stmt is None:
            dialect_insert: Any = pg_insert if dialect == "postgresql" else sqlite_insert
            stmt = _RECORD[dialect] = dialect_insert(_reads).on_conflict_do_nothing(
                index_elements=["item_id", "person_id"]
            )
        self.s.execute(
            stmt,
            [
                {"item_id": item_id, "person_id": person_id, "first_read_at": now}
                for item_id in sorted(set(item_ids))  # one order: no deadlock between two
            ],
        )

    def counts(self, item_ids: Collection[int]) -> dict[int, int]:
        """How many people were shown each post (posts nobody was shown are left out)."""
        if not item_ids:
            return {}
        rows = self.s.execute(
            select(_reads.c.item_id, func.count())
            .where(_reads.c.item_id.in_(list(item_ids)))
            .group_by(_reads.c.item_id)
        )
        return dict(rows.all())
