"""Groups and their memberships."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    and_,
    bindparam,
    delete,
    func,
    select,
    union_all,
)

from store.driver import Prebuilt
from store.models import (
    Account,
    Group,
    Membership,
    NotifyMode,
    Person,
    table_of,
    title_key,
)
from store.models.mail import MAIL_PLATFORM
from store.repositories import rows
from store.repositories.base import Repo

# The hot path runs prebuilt Core statements on the session's connection: SQLAlchemy
# compiles each once and then only binds parameters, with no ORM bookkeeping on the way.
_people = table_of(Person)
_accounts = table_of(Account)
_groups = table_of(Group)
_memberships = table_of(Membership)


def _with_membership_of_person() -> Select[Any]:
    return select(_groups, _memberships).outerjoin(
        _memberships,
        and_(
            _memberships.c.group_id == _groups.c.id,
            _memberships.c.person_id == bindparam("person_id", type_=Integer()),
        ),
    )


_GROUP_FOR = Prebuilt(_with_membership_of_person().where(_groups.c.slug == bindparam("slug")))
_GROUPS_FOR = (
    select(Group, Membership)
    .outerjoin(
        Membership,
        and_(Membership.group_id == Group.id, Membership.person_id == bindparam("person_id")),
    )
    .order_by(Group.slug)
)
_MEMBERSHIP = Prebuilt(
    select(_memberships).where(
        _memberships.c.person_id == bindparam("person_id", type_=Integer()),
        _memberships.c.group_id == bindparam("group_id", type_=Integer()),
    )
)
_PEOPLE_IN = (
    select(Person, Membership)
    .outerjoin(
        Membership,
        and_(Membership.person_id == Person.id, Membership.group_id == bindparam("group_id")),
    )
    .where(Person.id.in_(bindparam("person_ids", expanding=True)))
)
# Of every group: one prebuilt statement whatever groups are asked for (a list shows
# most of them), the counting is the same work. Memberships of active people are all of
# them less those of the deactivated: the first count reads only the group index, the
# second scans the people (no index on `active`) and reads the memberships of the
# deactivated by the primary key. Joining every membership to its person to test
# `active` made /groups the slowest command (SQLite: 0.53 ms against 0.12 ms, for 200
# people and 850 memberships; with far more people than memberships the scan costs more).
_MEMBER_COUNTS = Prebuilt(
    union_all(
        select(_memberships.c.group_id, func.count()).group_by(_memberships.c.group_id),
        select(_memberships.c.group_id, -func.count())
        .where(_memberships.c.person_id.in_(select(_people.c.id).where(~_people.c.active)))
        .group_by(_memberships.c.group_id),
    )
)
_MEMBERSHIP_DELETE = Prebuilt(
    delete(_memberships).where(
        _memberships.c.person_id == bindparam("person_id"),
        _memberships.c.group_id == bindparam("group_id"),
    )
)
_LOCK_GROUP = Prebuilt(
    select(_groups.c.id).where(_groups.c.id == bindparam("group_id")).with_for_update()
)
_INSTANT_ACCOUNTS = Prebuilt(
    select(_accounts.c.person_id, _accounts.c.platform, _accounts.c.external_id)
    .join(_memberships, _memberships.c.person_id == _accounts.c.person_id)
    .join(_people, _people.c.id == _memberships.c.person_id)
    .where(
        _memberships.c.group_id == bindparam("group_id"),
        _memberships.c.notify == NotifyMode.INSTANT.value,
        _people.c.active,
        _accounts.c.reachable.is_(True),
    )
    .order_by(
        _accounts.c.person_id,
        # mail only for who has no messenger, or who chose it (`notify <group> mail`)
        (_accounts.c.platform == MAIL_PLATFORM) != _memberships.c.by_mail,
        _accounts.c.last_seen_at.desc(),
        _accounts.c.id.desc(),
    )
)


class GroupRepository(Repo):
    def get(self, group_id: int) -> Group | None:
        return self.s.get(Group, group_id)

    def lock_membership(self, person_id: int, group_id: int) -> Membership | None:
        """The membership, read again once its group is locked: membership changes of one
        group queue behind each other (PostgreSQL; SQLite has one writer anyway), so two
        moderators leaving at once see each other gone."""
        conn = self._flushed_connection()
        if conn.dialect.name == "postgresql":
            _LOCK_GROUP.run(conn, [{"group_id": group_id}])
        row = _MEMBERSHIP.first(conn, {"person_id": person_id, "group_id": group_id})
        return None if row is None else rows.loaded(self.s, Membership, row, refresh=True)

    def by_slug_for(self, slug: str, person_id: int) -> tuple[Group, Membership | None] | None:
        """The group named `slug` and this person's membership of it, in one query."""
        row = _GROUP_FOR.first(
            self._flushed_connection(), {"slug": slug.lower(), "person_id": person_id}
        )
        return None if row is None else self._group_and_membership(row)

    def all_for(self, person_id: int) -> list[tuple[Group, Membership | None]]:
        """Every group, by slug, with this person's membership of it, in one query."""
        # An ORM query: for the twenty rows of a list its loading costs less per row.
        return [(g, m) for g, m in self.s.execute(_GROUPS_FOR, {"person_id": person_id})]

    def _group_and_membership(self, row: Sequence[Any]) -> tuple[Group, Membership | None]:
        split = len(_groups.columns)
        return (
            rows.loaded(self.s, Group, row[:split]),
            rows.loaded_or_none(self.s, Membership, row[split:]),
        )

    def by_slug(self, slug: str) -> Group | None:
        return self.s.scalar(select(Group).where(Group.slug == slug.lower()))

    def by_title(self, title: str) -> Group | None:
        """The group of this title, whatever its case (titles are unique so)."""
        return self.s.scalar(select(Group).where(Group.title_key == title_key(title)))

    def by_ids(self, ids: Iterable[int]) -> Sequence[Group]:
        wanted = list(ids)
        if not wanted:
            return []
        return self.s.scalars(select(Group).where(Group.id.in_(wanted)).order_by(Group.slug)).all()

    def all(self) -> Sequence[Group]:
        return self.s.scalars(select(Group).order_by(Group.slug)).all()

    def create(
        self,
        *,
        slug: str,
        name: str,
        visibility: str,
        admits_externals: bool,
        created_by: int,
        now: datetime,
    ) -> Group:
        group = Group(
            slug=slug,
            name=name,
            visibility=visibility,
            admits_externals=admits_externals,
            created_by=created_by,
            created_at=now,
        )
        self.s.add(group)
        self.s.flush()
        return group

    def membership(self, person_id: int, group_id: int) -> Membership | None:
        return self.s.get(Membership, (person_id, group_id))

    def people_in(
        self, group_id: int, person_ids: Iterable[int]
    ) -> list[tuple[Person, Membership | None]]:
        """These people (those that exist) with their membership of one group, in one query."""
        ids = list(person_ids)
        if not ids:
            return []
        rows = self.s.execute(_PEOPLE_IN, {"group_id": group_id, "person_ids": ids}).all()
        return [(p, m) for p, m in rows]

    def memberships_of(self, person_id: int) -> Sequence[Membership]:
        return self.s.scalars(select(Membership).where(Membership.person_id == person_id)).all()

    def members(self, group_id: int) -> Sequence[tuple[Person, Membership]]:
        rows = self.s.execute(
            select(Person, Membership)
            .join(Membership, Membership.person_id == Person.id)
            .where(Membership.group_id == group_id, Person.active)
            .order_by(Membership.moderator.desc(), Person.handle)
        ).all()
        return [(p, m) for p, m in rows]

    def member_counts(self, group_ids: Iterable[int]) -> dict[int, int]:
        ids = list(group_ids)
        if not ids:
            return {}
        wanted = set(ids)
        counts: dict[int, int] = {}
        for group_id, n in _MEMBER_COUNTS.all(self._flushed_connection()):
            if group_id in wanted:
                counts[group_id] = counts.get(group_id, 0) + int(n)
        return counts

    def add_member(
        self, person_id: int, group_id: int, *, now: datetime, moderator: bool = False
    ) -> Membership:
        m = Membership(
            person_id=person_id,
            group_id=group_id,
            notify=NotifyMode.DAILY,
            moderator=moderator,
            joined_at=now,
        )
        self._add_now(m)
        return m

    def remove_member(self, membership: Membership) -> None:
        _MEMBERSHIP_DELETE.run(
            self._flushed_connection(),
            [{"person_id": membership.person_id, "group_id": membership.group_id}],
        )
        if membership in self.s:
            self.s.expunge(membership)

    def instant_accounts(self, group_id: int) -> dict[int, tuple[str, str]]:
        """Each active member who gets the group's posts instantly, with their most
        recently used reachable account as (platform, external id): one query."""
        chosen: dict[int, tuple[str, str]] = {}
        for person_id, platform, external_id in _INSTANT_ACCOUNTS.all(
            self._flushed_connection(), {"group_id": group_id}
        ):
            chosen.setdefault(person_id, (platform, external_id))
        return chosen

    def instant_recipients(self, group_id: int) -> Sequence[int]:
        return self.s.scalars(
            select(Membership.person_id)
            .join(Person, Person.id == Membership.person_id)
            .where(
                Membership.group_id == group_id,
                Membership.notify == NotifyMode.INSTANT,
                Person.active,
            )
        ).all()
