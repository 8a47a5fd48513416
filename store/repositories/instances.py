"""Running instances of Pinwall and their heartbeats (issue 19; see jobs.instances).

Each `pinwall run` has a row here, made at its start and touched every few seconds. The
delivery worker's claims carry the instance's id, so that the claims of an instance that
is gone are taken back at once instead of when their lease runs out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from store.models import Instance


class InstanceRepository:
    """Used through `UnitOfWork.instances`; shares the unit of work's session."""

    def __init__(self, session: Session) -> None:
        self.s = session

    def register(self, instance_id: str, *, home: str, pid: int, now: datetime) -> None:
        self.s.add(Instance(id=instance_id, home=home, pid=pid, started_at=now, heartbeat_at=now))
        self.s.flush()

    def beat(self, instance_id: str, now: datetime) -> bool:
        """The instance is alive at `now`; False when its row is gone (another instance
        found its heartbeat stale and took its claims back: it registers again)."""
        result = self.s.execute(
            update(Instance).where(Instance.id == instance_id).values(heartbeat_at=now),
            execution_options={"synchronize_session": False},
        )
        return int(getattr(result, "rowcount", 0)) == 1

    def of_home(self, home: str, *, besides: str) -> list[str]:
        """The other instances registered from this home (host and data directory)."""
        return list(
            self.s.scalars(
                select(Instance.id)
                .where(Instance.home == home, Instance.id != besides)
                .order_by(Instance.started_at)
            )
        )

    def silent_since(self, before: datetime) -> list[str]:
        """Instances whose last heartbeat is older than `before`."""
        return list(
            self.s.scalars(
                select(Instance.id)
                .where(Instance.heartbeat_at < before)
                .order_by(Instance.heartbeat_at)
            )
        )

    def drop(self, instance_ids: Sequence[str]) -> int:
        if not instance_ids:
            return 0
        result = self.s.execute(
            delete(Instance).where(Instance.id.in_(list(instance_ids))),
            execution_options={"synchronize_session": False},
        )
        return int(getattr(result, "rowcount", 0))

    def all(self) -> Sequence[Instance]:
        return self.s.scalars(select(Instance).order_by(Instance.started_at)).all()
