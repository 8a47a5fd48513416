"""The audit log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    select,
)

from store.models import (
    AuditEntry,
)
from store.repositories.base import Repo


class AuditRepository(Repo):
    def add(
        self,
        *,
        at: datetime,
        actor_id: int | None,
        action: str,
        subject: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.s.add(
            AuditEntry(
                at=at, actor_id=actor_id, action=action, subject=subject, details=details or {}
            )
        )

    def newest(self, limit: int) -> Sequence[AuditEntry]:
        return self.s.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)).all()
