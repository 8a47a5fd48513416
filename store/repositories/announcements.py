"""Announcements, their recipients and confirmations; polls and their votes; live cards."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from store.models import (
    Account,
    Announcement,
    AnnouncementGroup,
    AnnouncementRecipient,
    InboxEvent,
    LiveCard,
    Membership,
    OutboxMessage,
    OutboxStatus,
    Person,
    Poll,
    PollVote,
    Role,
    table_of,
)
from store.repositories.base import Repo
from store.repositories.outbox import queue_one

_recipients = table_of(AnnouncementRecipient)
_people = table_of(Person)
_votes = table_of(PollVote)


def _pinned(since: datetime, now: datetime) -> ColumnElement[bool]:
    return or_(
        and_(Announcement.until.is_(None), Announcement.created_at > since),
        Announcement.until > now,
    )


class AnnouncementRepository(Repo):
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
        return list(
            self.s.scalars(
                select(AnnouncementGroup.item_id)
                .join(Announcement, Announcement.id == AnnouncementGroup.announcement_id)
                .where(
                    AnnouncementGroup.group_id == group_id,
                    AnnouncementGroup.item_id.is_not(None),
                    _pinned(since, now),
                )
                .order_by(Announcement.id.desc())
            )
        )

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
                    _pinned(since, now),
                )
                .order_by(Announcement.id)
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
        stmt = select(Announcement).where(Announcement.everyone)
        if person_id is not None:
            got = select(_recipients.c.announcement_id).where(_recipients.c.person_id == person_id)
            stmt = stmt.where(or_(Announcement.author_id == person_id, Announcement.id.in_(got)))
        for word in words:
            stmt = stmt.where(func.lower(Announcement.text).contains(word.lower(), autoescape=True))
        if pinned is not None:
            stmt = stmt.where(_pinned(*pinned))
        return list(self.s.scalars(stmt.order_by(Announcement.id.desc()).limit(limit)))

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
        used reachable account as (platform, external id): one query of plain rows, as
        the fan-out of a post does (loading a thousand accounts as objects took longer)."""
        accounts = table_of(Account)
        stmt = (
            select(accounts.c.person_id, accounts.c.platform, accounts.c.external_id)
            .join(_people, _people.c.id == accounts.c.person_id)
            .where(_people.c.active, accounts.c.reachable.is_(True))
            .order_by(accounts.c.person_id, accounts.c.last_seen_at.desc(), accounts.c.id.desc())
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

    # --- polls ----------------------------------------------------------------------

    def add_poll(self, poll: Poll) -> Poll:
        self._add_now(poll)
        return poll

    def poll(self, poll_id: int) -> Poll | None:
        return self.s.get(Poll, poll_id)

    def poll_of_item(self, item_id: int) -> Poll | None:
        return self.s.scalar(select(Poll).where(Poll.item_id == item_id))

    def vote(
        self,
        poll_id: int,
        voter: str,
        slot: int,
        option: int,
        now: datetime,
        person_id: int | None,
    ) -> None:
        """One upsert: a new vote, or the voter's changed one in place. Two voters at the
        same instant both count; one voter twice keeps one row per slot."""
        dialect = self.s.get_bind().dialect.name
        ins = (pg_insert if dialect == "postgresql" else sqlite_insert)(_votes)
        stmt = ins.values(
            poll_id=poll_id,
            voter=voter,
            slot=slot,
            option=option,
            created_at=now,
            person_id=person_id,
        ).on_conflict_do_update(
            index_elements=["poll_id", "voter", "slot"],
            set_={"option": ins.excluded.option, "created_at": ins.excluded.created_at},
        )
        self._run(stmt)

    def unvote(self, poll_id: int, voter: str, slot: int) -> bool:
        done = self._run(
            delete(_votes).where(
                _votes.c.poll_id == poll_id, _votes.c.voter == voter, _votes.c.slot == slot
            )
        )
        return done.rowcount == 1

    def has_slot(self, poll_id: int, voter: str, slot: int, option: int) -> bool:
        return (
            self.s.scalar(
                select(func.count()).where(
                    _votes.c.poll_id == poll_id,
                    _votes.c.voter == voter,
                    _votes.c.slot == slot,
                    _votes.c.option == option,
                )
            )
            or 0
        ) > 0

    def choices_of(self, poll_id: int, voter: str) -> set[int]:
        return {
            int(o)
            for o in self.s.scalars(
                select(_votes.c.option).where(_votes.c.poll_id == poll_id, _votes.c.voter == voter)
            )
        }

    def tally(self, poll_id: int) -> tuple[dict[int, int], int]:
        """Votes per option, and how many voted."""
        per = {
            int(o): int(n)
            for o, n in self.s.execute(
                select(_votes.c.option, func.count())
                .where(_votes.c.poll_id == poll_id)
                .group_by(_votes.c.option)
            )
        }
        voters = self.s.scalar(
            select(func.count(func.distinct(_votes.c.voter))).where(_votes.c.poll_id == poll_id)
        )
        return per, int(voters or 0)

    def clear_votes(self, poll_id: int, voter: str) -> int:
        done = self._run(delete(_votes).where(_votes.c.poll_id == poll_id, _votes.c.voter == voter))
        return int(done.rowcount)

    def anonymous_polls(self) -> Sequence[Poll]:
        return self.s.scalars(select(Poll).where(Poll.anonymous).order_by(Poll.id)).all()

    def voters_among(self, voters: Sequence[str]) -> set[str]:
        """Which of these voter keys have a vote (one query per 500 keys)."""
        found: set[str] = set()
        for start in range(0, len(voters), 500):
            chunk = voters[start : start + 500]
            found.update(self.s.scalars(select(_votes.c.voter).where(_votes.c.voter.in_(chunk))))
        return found

    def rekey_votes(self, poll_id: int, old: str, new: str) -> int:
        """The votes of voter `old` become `new`'s (two people merged into one); where
        `new` voted already, theirs stays and `old`'s go. How many were moved."""
        mine = (_votes.c.poll_id == poll_id, _votes.c.voter == old)
        if self.choices_of(poll_id, new):
            self._run(delete(_votes).where(*mine))
            return 0
        done = self._run(update(_votes).where(*mine).values(voter=new))
        return int(done.rowcount)

    def due_polls(self, now: datetime, limit: int = 20) -> list[int]:
        return list(
            self.s.scalars(
                select(Poll.id)
                .where(Poll.closed_at.is_(None), Poll.closes_at.is_not(None), Poll.closes_at <= now)
                .order_by(Poll.closes_at)
                .limit(limit)
            )
        )

    def close_poll(self, poll_id: int, now: datetime) -> bool:
        """False when it was closed already (by hand, or another instance's tick)."""
        polls = table_of(Poll)
        done = self._run(
            update(polls)
            .where(polls.c.id == poll_id, polls.c.closed_at.is_(None))
            .values(closed_at=now)
        )
        self._expire(Poll, [poll_id])
        return done.rowcount == 1

    def forget_event(self, platform: str, event_id: str) -> None:
        """An anonymous vote's inbox record keeps only that an event came (its platform
        and id, for recognising a redelivery): who pressed which button goes."""
        inbox = table_of(InboxEvent)
        self._run(
            update(inbox)
            .where(inbox.c.platform == platform, inbox.c.event_id == event_id)
            .values(payload={"redacted": "anonymous vote"})
        )

    def polls_of_author(self, person_id: int) -> Sequence[Poll]:
        return self.s.scalars(select(Poll).where(Poll.author_id == person_id)).all()

    def votes_of(self, voter: str) -> Sequence[PollVote]:
        return self.s.scalars(select(PollVote).where(PollVote.voter == voter)).all()

    def forget_votes(self, voter: str) -> int:
        done = self._run(delete(_votes).where(_votes.c.voter == voter))
        return int(done.rowcount)

    # --- live cards -----------------------------------------------------------------

    def add_card(
        self,
        kind: str,
        ref_id: int,
        *,
        platform: str,
        target_kind: str,
        target: str,
        person_id: int | None,
        payload: dict[str, object],
        now: datetime,
    ) -> LiveCard:
        """Queues the card (rendered when sent) and remembers where it went."""
        message = queue_one(
            self.s,
            platform=platform,
            target_kind=target_kind,
            target=target,
            person_id=person_id,
            payload=payload,
            now=now,
        )
        card = LiveCard(
            kind=kind,
            ref_id=ref_id,
            outbox_id=message.id,
            platform=platform,
            target_kind=target_kind,
            target=target,
            person_id=person_id,
            next_edit_at=None,
            created_at=now,
        )
        self.s.add(card)
        self.s.flush()
        return card

    def add_cards(
        self,
        kind: str,
        ref_id: int,
        targets: Sequence[tuple[str, str, str, int | None]],
        payload: dict[str, object],
        now: datetime,
    ) -> None:
        """Many cards at once ((platform, target kind, target, person) each): their outbox
        rows in one flush (SQLAlchemy batches the INSERTs and reads the ids back), then
        the cards in another — a poll's copy for each of a thousand members."""
        messages = [
            OutboxMessage(
                created_at=now,
                platform=platform,
                target_kind=target_kind,
                target=target,
                person_id=person_id,
                payload=payload,
                status=OutboxStatus.PENDING,
                attempts=0,
                next_attempt_at=now,
            )
            for platform, target_kind, target, person_id in targets
        ]
        self.s.add_all(messages)
        self.s.flush()
        self.s.add_all(
            LiveCard(
                kind=kind,
                ref_id=ref_id,
                outbox_id=message.id,
                platform=message.platform,
                target_kind=message.target_kind,
                target=message.target,
                person_id=message.person_id,
                next_edit_at=None,
                created_at=now,
            )
            for message in messages
        )
        self.s.flush()

    def cards(self, kind: str, ref_id: int) -> list[tuple[LiveCard, str | None]]:
        """The cards with the platform message id of each where it was delivered."""
        rows = self.s.execute(
            select(LiveCard, OutboxMessage.platform_message_id)
            .outerjoin(OutboxMessage, OutboxMessage.id == LiveCard.outbox_id)
            .where(LiveCard.kind == kind, LiveCard.ref_id == ref_id)
            .order_by(LiveCard.id)
        ).all()
        return [(card, message_id) for card, message_id in rows]

    def card(self, card_id: int) -> LiveCard | None:
        return self.s.get(LiveCard, card_id)

    def card_sent_by(self, outbox_id: int) -> LiveCard | None:
        return self.s.scalar(select(LiveCard).where(LiveCard.outbox_id == outbox_id))

    def card_message_id(self, card: LiveCard) -> str | None:
        if card.outbox_id is None:
            return None
        return self.s.scalar(
            select(OutboxMessage.platform_message_id).where(OutboxMessage.id == card.outbox_id)
        )

    def claim_edits(
        self, card_ids: Sequence[int], now: datetime, every: float
    ) -> dict[int, datetime]:
        """When each card's next edit may go, taking that slot, in two statements however
        many cards: now where its last edit is `every` seconds ago or more (or there was
        none), a second from now where it is more recent; a card with an edit queued for
        later already is left out (that edit will show this change too). Each UPDATE
        re-checks its condition on the row, so two claims at once take a slot once."""
        if not card_ids:
            return {}
        cards = table_of(LiveCard)
        gap = timedelta(seconds=every)
        ids = list(card_ids)
        claimed: dict[int, datetime] = {}
        # The recent ones first: once the others are set to now, they would match too.
        for condition, due in (
            (and_(cards.c.next_edit_at > now - gap, cards.c.next_edit_at <= now), now + gap),
            (or_(cards.c.next_edit_at.is_(None), cards.c.next_edit_at <= now - gap), now),
        ):
            done = self._run(
                update(cards)
                .where(cards.c.id.in_(ids), condition)
                .values(next_edit_at=due)
                .returning(cards.c.id)
            )
            claimed.update((int(row[0]), due) for row in done)
        self._expire(LiveCard, list(claimed))
        return claimed
