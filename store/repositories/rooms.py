"""Rooms of the messengers, and the groups they are bridged to."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import (
    bindparam,
    select,
)

from store.driver import Prebuilt
from store.models import (
    Room,
    table_of,
)
from store.repositories.base import Repo

# The hot path runs prebuilt Core statements on the session's connection: SQLAlchemy
# compiles each once and then only binds parameters, with no ORM bookkeeping on the way.
_rooms = table_of(Room)


_ROOM = select(Room).where(
    Room.platform == bindparam("platform"), Room.external_id == bindparam("external_id")
)
_BRIDGED = Prebuilt(
    select(_rooms.c.id, _rooms.c.platform, _rooms.c.external_id)
    .where(_rooms.c.group_id == bindparam("group_id"))
    .order_by(_rooms.c.id)
)


class RoomRepository(Repo):
    def get(self, room_id: int) -> Room | None:
        return self.s.get(Room, room_id)

    def find(self, platform: str, external_id: str) -> Room | None:
        return self.s.scalar(_ROOM, {"platform": platform, "external_id": external_id})

    def get_or_create(
        self, platform: str, external_id: str, *, name: str | None, now: datetime
    ) -> Room:
        room = self.find(platform, external_id)
        if room is None:
            room = Room(platform=platform, external_id=external_id, name=name, created_at=now)
            self.s.add(room)
            self.s.flush()
        return room

    def bridged(self, group_id: int) -> Sequence[Room]:
        return self.s.scalars(select(Room).where(Room.group_id == group_id).order_by(Room.id)).all()

    def bridged_addresses(self, group_id: int) -> list[tuple[int, str, str]]:
        """(room id, platform, external id) of the rooms bridged to the group, by id."""
        return [
            (i, p, e)
            for i, p, e in _BRIDGED.all(self._flushed_connection(), {"group_id": group_id})
        ]
