"""Invitations: codes that let someone in, with a role and groups."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import (
    select,
    update,
)

from store.codes import new_code
from store.models import (
    Invite,
    InviteGroup,
    Role,
)
from store.repositories.base import Repo


class InviteRepository(Repo):
    def create(
        self,
        *,
        role: Role,
        group_ids: Sequence[int],
        created_by: int,
        max_uses: int,
        expires_at: datetime,
        now: datetime,
    ) -> Invite:
        while True:
            code = new_code()
            if self.by_code(code) is None:
                break
        invite = Invite(
            code=code,
            role=role,
            created_by=created_by,
            max_uses=max_uses,
            uses=0,
            expires_at=expires_at,
            created_at=now,
        )
        self.s.add(invite)
        self.s.flush()
        self.s.add_all(InviteGroup(invite_id=invite.id, group_id=g) for g in group_ids)
        self.s.flush()
        return invite

    def by_code(self, code: str) -> Invite | None:
        return self.s.scalar(select(Invite).where(Invite.code == code))

    def group_ids(self, invite_id: int) -> list[int]:
        return list(
            self.s.scalars(select(InviteGroup.group_id).where(InviteGroup.invite_id == invite_id))
        )

    def active(self, now: datetime, created_by: int | None = None) -> Sequence[Invite]:
        q = select(Invite).where(
            Invite.revoked_at.is_(None), Invite.expires_at > now, Invite.uses < Invite.max_uses
        )
        if created_by is not None:
            q = q.where(Invite.created_by == created_by)
        return self.s.scalars(q.order_by(Invite.id)).all()

    def redeem(self, invite: Invite) -> bool:
        """Counts one use atomically; False when the last use was taken meanwhile."""
        result = self.s.execute(
            update(Invite)
            .where(Invite.id == invite.id, Invite.uses < Invite.max_uses)
            .values(uses=Invite.uses + 1)
            .execution_options(synchronize_session=False)
        )
        self.s.refresh(invite)
        return bool(getattr(result, "rowcount", 0))
