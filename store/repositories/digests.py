"""The digest repository: schedules (when each person's digests are due) and watermarks
(the newest post of each group that a person's digests have covered).

Everything the digest tick needs for a batch of people comes in a few queries, whatever
the batch's size: who is due, their memberships, watermarks, the new posts of their
groups with their comment and reaction counts, and the posts to show.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CursorResult,
    Executable,
    and_,
    bindparam,
    case,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from store.models import (
    Comment,
    DigestSchedule,
    DigestWatermark,
    Group,
    Item,
    Membership,
    NotifyMode,
    Person,
    table_of,
)
from store.repositories.items import reactions_of

DIGEST_MODES = (NotifyMode.DAILY.value, NotifyMode.WEEKLY.value)
# Groups per statement when new posts are looked up for a batch of people.
GROUPS_PER_QUERY = 200


_schedules = table_of(DigestSchedule)
_watermarks = table_of(DigestWatermark)
_items = table_of(Item)
_comments = table_of(Comment)
_people = table_of(Person)

_SCHEDULE_COLUMNS = (
    _schedules.c.person_id,
    _schedules.c.daily_minute,
    _schedules.c.weekly_day,
    _schedules.c.weekly_minute,
    _schedules.c.paused,
    _schedules.c.daily_due,
    _schedules.c.weekly_due,
)


@dataclass(frozen=True, slots=True)
class ScheduleRow:
    """A person's digest schedule as the tick reads it."""

    person_id: int
    daily_minute: int
    weekly_day: int
    weekly_minute: int
    paused: bool
    daily_due: datetime | None
    weekly_due: datetime | None


@dataclass(frozen=True, slots=True)
class NewPost:
    """A post that may go into digests, with what ranks it."""

    id: int
    group_id: int
    author_id: int | None
    kind: str
    created_at: datetime  # when it was stored: whether it is new to a member
    comments: int
    reactions: int
    dated_at: datetime  # Item.dated_at: how recent it is, for the ranking


@dataclass(frozen=True, slots=True)
class PostLine:
    """What a digest shows of a post."""

    id: int
    kind: str
    text: str
    url: str | None
    title: str | None
    site_name: str | None
    source_platform: str | None
    author_handle: str | None


_DUE = (
    select(*_SCHEDULE_COLUMNS)
    .where(
        _schedules.c.paused.is_(False),
        or_(
            _schedules.c.daily_due <= bindparam("now"), _schedules.c.weekly_due <= bindparam("now")
        ),
        _schedules.c.person_id.not_in(bindparam("exclude", expanding=True)),
    )
    .order_by(_schedules.c.person_id)
    .limit(bindparam("limit"))
)

# A membership that feeds a digest: daily, weekly, or instant without `--feeds` (its
# feed entries come in the daily digest).
_FEEDS_DIGESTS = or_(
    Membership.notify.in_(DIGEST_MODES),
    and_(Membership.notify == NotifyMode.INSTANT.value, Membership.instant_feeds.is_(False)),
)

_UNSCHEDULED = (
    select(_people.c.id, _people.c.timezone)
    .where(
        _people.c.active.is_(True),
        exists().where(Membership.person_id == _people.c.id, _FEEDS_DIGESTS),
        ~exists().where(_schedules.c.person_id == _people.c.id),
    )
    .order_by(_people.c.id)
    .limit(bindparam("limit"))
)

_WATERMARKS = select(
    _watermarks.c.person_id, _watermarks.c.group_id, _watermarks.c.last_item_id
).where(_watermarks.c.person_id.in_(bindparam("ids", expanding=True)))

# Item.dated_at, on the Core table.
_DATED = func.coalesce(_items.c.published_at, _items.c.created_at)

_COMMENT_COUNT = (
    select(func.count()).where(_comments.c.item_id == _items.c.id).correlate(_items)
).scalar_subquery()
_REACTION_COUNT = reactions_of(_items.c.id)  # people's and a channel's anonymous likes

_POST_LINES = (
    select(
        _items.c.id,
        _items.c.kind,
        _items.c.text,
        _items.c.url,
        _items.c.title,
        _items.c.site_name,
        _items.c.source_platform,
        _people.c.handle,
    )
    .select_from(_items)
    .outerjoin(_people, _people.c.id == _items.c.author_id)
    .where(_items.c.id.in_(bindparam("ids", expanding=True)))
)

_ADVANCE = {
    kind: update(_schedules)
    .where(_schedules.c.person_id == bindparam("pid"), column == bindparam("expected"))
    .values({column.key: bindparam("new")})
    for kind, column in (("daily", _schedules.c.daily_due), ("weekly", _schedules.c.weekly_due))
}
_UPSERT: dict[str, Executable] = {}  # by dialect: a watermark that only moves forward
_ADD_SCHEDULES: dict[str, Executable] = {}  # by dialect: INSERT ... ON CONFLICT DO NOTHING


class DigestRepository:
    """Used through `UnitOfWork.digests`; shares the unit of work's session."""

    def __init__(self, session: Session) -> None:
        self.s = session

    def _run(
        self, stmt: Executable, params: dict[str, Any] | list[dict[str, Any]] | None = None
    ) -> CursorResult[*tuple[Any, ...]]:
        """A Core statement on the session's connection (pending ORM changes flushed first)."""
        if self.s.autoflush:
            self.s.flush()
        return self.s.connection().execute(stmt, params)

    def _expire(self, model: type[Any], keys: Iterable[Any]) -> None:
        """Objects of these rows loaded in this session load again when next used."""
        for key in keys:
            obj = self.s.identity_map.get(identity_key(model, key))
            if obj is not None:
                self.s.expire(obj)

    # --- schedules ------------------------------------------------------------------------

    def schedule(self, person_id: int) -> DigestSchedule | None:
        return self.s.get(DigestSchedule, person_id)

    def add_schedules(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Schedules given as column values (all of them); one that exists meanwhile (made
        by a command at the same time) stays as it is."""
        if not rows:
            return
        dialect = self.s.connection().dialect.name
        stmt = _ADD_SCHEDULES.get(dialect)
        if stmt is None:
            dialect_insert = pg_insert if dialect == "postgresql" else sqlite_insert
            stmt = _ADD_SCHEDULES[dialect] = dialect_insert(_schedules).on_conflict_do_nothing(
                index_elements=["person_id"]
            )
        self._run(stmt, [dict(r) for r in rows])
        self._expire(DigestSchedule, [r["person_id"] for r in rows])

    def unscheduled(self, limit: int) -> list[tuple[int, str | None]]:
        """(person id, their time zone) of active people with a group on daily or weekly
        notify and no schedule yet — new people, and people from before digests existed."""
        return [(pid, tz) for pid, tz in self._run(_UNSCHEDULED, {"limit": limit})]

    def due(self, now: datetime, limit: int, exclude: Iterable[int] = ()) -> list[ScheduleRow]:
        """Everyone with a digest due at `now` (not paused), in one query, by person id."""
        rows = self._run(_DUE, {"now": now, "limit": limit, "exclude": list(exclude) or [0]})
        return [ScheduleRow(*row) for row in rows]

    def advance(
        self, person_id: int, kind: str, expected: datetime | None, new: datetime | None
    ) -> bool:
        """Moves one due time from `expected` to `new`; False when it is not `expected`
        any more (someone else sent that digest, or the person changed their times)."""
        if expected is None:
            return False  # not due: nothing to move on from
        result = self._run(_ADVANCE[kind], {"pid": person_id, "expected": expected, "new": new})
        self._expire(DigestSchedule, [person_id])
        return result.rowcount == 1

    # --- what goes into digests ------------------------------------------------------

    def memberships(self, person_ids: Iterable[int]) -> Sequence[Membership]:
        """These people's memberships that may feed a digest (not muted), in one query."""
        ids = list(person_ids)
        if not ids:
            return []
        return self.s.scalars(
            select(Membership).where(Membership.person_id.in_(ids), _FEEDS_DIGESTS)
        ).all()

    def groups(self, group_ids: Iterable[int]) -> dict[int, Group]:
        ids = list(set(group_ids))
        if not ids:
            return {}
        return {g.id: g for g in self.s.scalars(select(Group).where(Group.id.in_(ids)))}

    def watermarks(self, person_ids: Iterable[int]) -> dict[tuple[int, int], int]:
        """(person id, group id) -> the newest post id their digests covered."""
        ids = list(person_ids)
        if not ids:
            return {}
        return {(p, g): int(last) for p, g, last in self._run(_WATERMARKS, {"ids": ids})}

    def new_posts(self, bounds: Mapping[int, tuple[int | None, datetime | None]]) -> list[NewPost]:
        """The posts of each group after its bound, with their comment and reaction
        counts: group id -> (after this post id, or also since this time). The time serves
        members without a watermark yet (since they joined)."""
        out: list[NewPost] = []
        groups = list(bounds.items())
        for start in range(0, len(groups), GROUPS_PER_QUERY):
            conditions = []
            for group_id, (after_id, since) in groups[start : start + GROUPS_PER_QUERY]:
                newer = []
                if after_id is not None:
                    newer.append(_items.c.id > after_id)
                if since is not None:
                    newer.append(_items.c.created_at >= since)
                if newer:
                    conditions.append(and_(_items.c.group_id == group_id, or_(*newer)))
            if not conditions:
                continue
            rows = self._run(
                select(
                    _items.c.id,
                    _items.c.group_id,
                    _items.c.author_id,
                    _items.c.kind,
                    _items.c.created_at,
                    _COMMENT_COUNT,
                    _REACTION_COUNT,
                    _DATED,
                ).where(or_(*conditions))
            )
            for item_id, group_id, author_id, kind, created, comments, reactions, dated in rows:
                counts = (int(comments), int(reactions))
                out.append(NewPost(item_id, group_id, author_id, kind, created, *counts, dated))
        return out

    def newest_post_id(self, group_id: int) -> int | None:
        newest: int | None = self._run(
            select(func.max(_items.c.id)).where(_items.c.group_id == group_id)
        ).scalar()
        return newest

    def post_lines(self, item_ids: Iterable[int]) -> dict[int, PostLine]:
        ids = list(set(item_ids))
        if not ids:
            return {}
        return {row[0]: PostLine(*row) for row in self._run(_POST_LINES, {"ids": ids})}

    # --- watermarks ------------------------------------------------------------------

    def raise_watermarks(self, person_id: int, marks: Mapping[int, int], now: datetime) -> None:
        """Moves this person's watermarks of these groups forward to these post ids (never
        back), in one statement."""
        if not marks:
            return
        dialect = self.s.connection().dialect.name
        stmt = _UPSERT.get(dialect)
        if stmt is None:
            dialect_insert = pg_insert if dialect == "postgresql" else sqlite_insert
            ins = dialect_insert(_watermarks)
            stmt = _UPSERT[dialect] = ins.on_conflict_do_update(
                index_elements=["person_id", "group_id"],
                set_={
                    "last_item_id": case(
                        (
                            ins.excluded.last_item_id > _watermarks.c.last_item_id,
                            ins.excluded.last_item_id,
                        ),
                        else_=_watermarks.c.last_item_id,
                    ),
                    "updated_at": ins.excluded.updated_at,
                },
            )
        self._run(
            stmt,
            [
                {"person_id": person_id, "group_id": g, "last_item_id": i, "updated_at": now}
                for g, i in sorted(marks.items())
            ],
        )
        self._expire(DigestWatermark, [(person_id, g) for g in marks])
