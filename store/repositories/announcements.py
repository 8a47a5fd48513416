"""Announcements, their recipients and confirmations (uow.announcements, which also has
the polls of store.repositories.polls and the live cards of store.repositories.live_cards)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Integer, and_, bindparam, func, or_, select, update

from store.driver import Prebuilt
from store.models import (
    MAIL_PLATFORM,
    Account,
    Announcement,
    AnnouncementGroup,
    AnnouncementRecipient,
    Membership,
    Person,
    Role,
    table_of,
)
from store.repositories.live_cards import LiveCardMethods
from store.repositories.polls import PollMethods

_recipients = table_of(AnnouncementRecipient)
_people = table_of(Person)
_announcements = table_of(Announcement)
_announcement_groups = table_of(AnnouncementGroup)


# Still pinned: until its --until, or made after :since when it has none. The statements
# `items` runs on every call are built once (building one costs more than running it).
_PINNED: ColumnElement[bool] = or_(
    and_(Announcement.until.is_(None), Announcement.created_at > bindparam("since")),
    Announcement.until > bindparam("now"),
)
# Prebuilt (store/driver.py): `items` asks both on every call, and through the ORM they
# cost it more than its own list (bench/commands.py).
_STILL_PINNED: ColumnElement[bool] = or_(
    and_(_announcements.c.until.is_(None), _announcements.c.created_at > bindparam("since")),
    _announcements.c.until > bindparam("now"),
)
_PINNED_ITEMS = Prebuilt(
    select(_announcement_groups.c.item_id)
    .join(_announcements, _announcements.c.id == _announcement_groups.c.announcement_id)
    .where(
        _announcement_groups.c.group_id == bindparam("group_id"),
        _announcement_groups.c.item_id.is_not(None),
        _STILL_PINNED,
    )
    .order_by(_announcements.c.id.desc())
)
_PINNED_TO_EVERYONE_FOR = Prebuilt(
    select(_announcements.c.id, _announcements.c.text)
    .where(
        _announcements.c.everyone,
        or_(
            _announcements.c.author_id == bindparam("person_id"),
            _announcements.c.id.in_(
                select(_recipients.c.announcement_id).where(
                    _recipients.c.person_id == bindparam("person_id")
                )
            ),
        ),
        _STILL_PINNED,
    )
    .order_by(_announcements.c.id.desc())
    .limit(bindparam("limit", type_=Integer()))
)
_TO_EVERYONE = select(Announcement).where(Announcement.everyone)
_GOT_OR_MADE = or_(
    Announcement.author_id == bindparam("person_id"),
    Announcement.id.in_(
        select(_recipients.c.announcement_id).where(
            _recipients.c.person_id == bindparam("person_id")
        )
    ),
)


class AnnouncementRepository(PollMethods, LiveCardMethods):
    """uow.announcements: announcements here, polls (store.repositories.polls) and live
    cards (store.repositories.live_cards) from their modules."""

    # --- announcements --------------------------------------------------------------

    def add(self, announcement: Announcement, groups: Sequence[tuple[int, int | None]]) -> None:
        """The announcement with its target groups ((group id, the post there))."""
        self._add_now(announcement)
        for group_id, item_id in groups:
            self.s.add(
                AnnouncementGroup(
                    announcement_id=announcement.id, group_id=group_id, item_id=item_id
                )
            )
        self.s.flush()

    def get(self, announcement_id: int) -> Announcement | None:
        return self.s.get(Announcement, announcement_id)

    def group_ids(self, announcement_id: int) -> list[int]:
        return list(
            self.s.scalars(
                select(AnnouncementGroup.group_id)
                .where(AnnouncementGroup.announcement_id == announcement_id)
                .order_by(AnnouncementGroup.group_id)
            )
        )

    def of_item(self, item_id: int) -> Announcement | None:
        """The announcement a post of kind "announcement" holds."""
        return self.s.scalar(
            select(Announcement)
            .join(AnnouncementGroup, AnnouncementGroup.announcement_id == Announcement.id)
            .where(AnnouncementGroup.item_id == item_id)
        )

    def pinned_items(self, group_id: int, since: datetime, now: datetime) -> list[int]:
        """The posts of the group's announcements that are still pinned (until their
        --until, or made after `since` when they have none), newest first."""
        found = _PINNED_ITEMS.all(
            self._flushed_connection(), {"group_id": group_id, "since": since, "now": now}
        )
        return [item_id for (item_id,) in found]

    def pinned_for(self, person_id: int, since: datetime, now: datetime) -> list[Announcement]:
        """Announcements this person received, still pinned, not confirmed by them."""
        return list(
            self.s.scalars(
                select(Announcement)
                .join(
                    AnnouncementRecipient,
                    AnnouncementRecipient.announcement_id == Announcement.id,
                )
                .where(
                    AnnouncementRecipient.person_id == person_id,
                    AnnouncementRecipient.confirmed_at.is_(None),
                    _PINNED,
                )
                .order_by(Announcement.id),
                {"since": since, "now": now},
            )
        )

    def to_everyone(
        self,
        person_id: int | None,
        *,
        words: Sequence[str] = (),
        pinned: tuple[datetime, datetime] | None = None,
        limit: int = 5,
    ) -> list[Announcement]:
        """Announcements to everyone (`all`: no post in any group) this person got or
        made (None: any, for an admin), newest first; with every one of `words` in the
        text, and/or still pinned ((since, now): see pinned_items)."""
        stmt = _TO_EVERYONE
        params: dict[str, Any] = {"limit": limit}
        if person_id is not None:
            stmt = stmt.where(_GOT_OR_MADE)
            params["person_id"] = person_id
        for word in words:
            stmt = stmt.where(func.lower(Announcement.text).contains(word.lower(), autoescape=True))
        if pinned is not None:
            stmt = stmt.where(_PINNED)
            params["since"], params["now"] = pinned
        stmt = stmt.order_by(Announcement.id.desc()).limit(bindparam("limit"))
        return list(self.s.scalars(stmt, params))

    def pinned_to_everyone(
        self, person_id: int, since: datetime, now: datetime, limit: int
    ) -> list[tuple[int, str]]:
        """(id, text) of what to_everyone(person_id, pinned=(since, now)) gives: the
        announcements to everyone this person got or made, still pinned, newest first."""
        params = {"person_id": person_id, "since": since, "now": now, "limit": limit}
        return [
            (a, text) for a, text in _PINNED_TO_EVERYONE_FOR.all(self._flushed_connection(), params)
        ]

    def members_of(self, group_ids: Sequence[int]) -> dict[int, list[str]]:
        """Each active member of any of these groups with their notify modes there."""
        out: dict[int, list[str]] = {}
        rows = self.s.execute(
            select(Membership.person_id, Membership.notify)
            .join(Person, Person.id == Membership.person_id)
            .where(Membership.group_id.in_(list(group_ids)), Person.active)
        )
        for person_id, notify in rows:
            out.setdefault(person_id, []).append(notify)
        return out

    def addresses(self, group_ids: Sequence[int] | None) -> dict[int, tuple[str, str]]:
        """Each active member of these groups (everyone: None) with their most recently
        used reachable account as (platform, external id), a mail address only for those
        without a reachable messenger account (as preferred_accounts): one query of plain
        rows, as the fan-out of a post does (loading a thousand accounts as objects took
        longer)."""
        accounts = table_of(Account)
        stmt = (
            select(accounts.c.person_id, accounts.c.platform, accounts.c.external_id)
            .join(_people, _people.c.id == accounts.c.person_id)
            .where(_people.c.active, accounts.c.reachable.is_(True))
            .order_by(
                accounts.c.person_id,
                accounts.c.platform == MAIL_PLATFORM,
                accounts.c.last_seen_at.desc(),
                accounts.c.id.desc(),
            )
        )
        if group_ids is not None:
            memberships = table_of(Membership)
            stmt = stmt.where(
                accounts.c.person_id.in_(
                    select(memberships.c.person_id).where(
                        memberships.c.group_id.in_(list(group_ids))
                    )
                )
            )
        chosen: dict[int, tuple[str, str]] = {}
        for person_id, platform, external_id in self._run(stmt):
            chosen.setdefault(person_id, (platform, external_id))
        return chosen

    def staff(self) -> list[int]:
        """Everyone in the company: the active people who are no partner or guest."""
        externals = [Role.GUEST.value, Role.PARTNER.value]
        return list(
            self.s.scalars(
                select(Person.id)
                .where(Person.active, Person.role.not_in(externals))
                .order_by(Person.id)
            )
        )

    def add_recipients(self, announcement_id: int, via: dict[int, str]) -> None:
        """One row per person (the primary key keeps it once), in one statement."""
        if via:
            self._run(
                _recipients.insert(),
                [
                    {"announcement_id": announcement_id, "person_id": p, "via": v}
                    for p, v in via.items()
                ],
            )

    def recipient(self, announcement_id: int, person_id: int) -> AnnouncementRecipient | None:
        return self.s.get(AnnouncementRecipient, (announcement_id, person_id))

    def recipients(self, announcement_id: int) -> Sequence[AnnouncementRecipient]:
        return self.s.scalars(
            select(AnnouncementRecipient)
            .where(AnnouncementRecipient.announcement_id == announcement_id)
            .order_by(AnnouncementRecipient.person_id)
        ).all()

    def confirm(self, announcement_id: int, person_id: int, platform: str, now: datetime) -> bool:
        """Records the confirmation; False when there was nothing to confirm (not a
        recipient) or it was confirmed before (a double press counts once)."""
        done = self._run(
            update(_recipients)
            .where(
                _recipients.c.announcement_id == announcement_id,
                _recipients.c.person_id == person_id,
                _recipients.c.confirmed_at.is_(None),
            )
            .values(confirmed_at=now, confirmed_on=platform)
        )
        self._expire(AnnouncementRecipient, [(announcement_id, person_id)])
        return done.rowcount == 1

    def counts(self, announcement_id: int) -> tuple[int, int]:
        """(confirmed, recipients)."""
        row = self.s.execute(
            select(func.count(_recipients.c.confirmed_at), func.count()).where(
                _recipients.c.announcement_id == announcement_id
            )
        ).one()
        return int(row[0]), int(row[1])

    def missing(self, announcement_id: int) -> list[Person]:
        """Who has not confirmed, by handle."""
        return list(
            self.s.scalars(
                select(Person)
                .join(AnnouncementRecipient, AnnouncementRecipient.person_id == Person.id)
                .where(
                    AnnouncementRecipient.announcement_id == announcement_id,
                    AnnouncementRecipient.confirmed_at.is_(None),
                    Person.active,
                )
                .order_by(Person.handle)
            )
        )

    def due_reminders(self, now: datetime, limit: int = 20) -> list[int]:
        return list(
            self.s.scalars(
                select(Announcement.id)
                .where(
                    Announcement.remind_at.is_not(None),
                    Announcement.remind_at <= now,
                    Announcement.reminded_at.is_(None),
                )
                .order_by(Announcement.remind_at)
                .limit(limit)
            )
        )

    def take_reminder(self, announcement_id: int, now: datetime) -> bool:
        """Marks the reminder as sent; False when it was already (another instance, or
        before a restart): the reminder then goes no second time."""
        done = self._run(
            update(table_of(Announcement))
            .where(
                table_of(Announcement).c.id == announcement_id,
                table_of(Announcement).c.reminded_at.is_(None),
            )
            .values(reminded_at=now)
        )
        self._expire(Announcement, [announcement_id])
        return done.rowcount == 1

    def in_digest(self, person_id: int) -> list[Announcement]:
        """The announcements waiting for this person's next digest (they muted them)."""
        return list(
            self.s.scalars(
                select(Announcement)
                .join(
                    AnnouncementRecipient, AnnouncementRecipient.announcement_id == Announcement.id
                )
                .where(
                    AnnouncementRecipient.person_id == person_id,
                    AnnouncementRecipient.via == "digest",
                    AnnouncementRecipient.digested_at.is_(None),
                )
                .order_by(Announcement.id)
            )
        )

    def mark_digested(self, person_id: int, ids: Iterable[int], now: datetime) -> None:
        wanted = list(ids)
        if wanted:
            self._run(
                update(_recipients)
                .where(
                    _recipients.c.person_id == person_id,
                    _recipients.c.announcement_id.in_(wanted),
                )
                .values(digested_at=now)
            )

    def of_author(self, person_id: int) -> Sequence[Announcement]:
        return self.s.scalars(
            select(Announcement)
            .where(Announcement.author_id == person_id)
            .order_by(Announcement.id)
        ).all()

    def received_by(self, person_id: int) -> Sequence[AnnouncementRecipient]:
        return self.s.scalars(
            select(AnnouncementRecipient)
            .where(AnnouncementRecipient.person_id == person_id)
            .order_by(AnnouncementRecipient.announcement_id)
        ).all()
