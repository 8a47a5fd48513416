"""Polls and their votes: the part of AnnouncementRepository (uow.announcements) that
counts. A vote is one upsert keyed by poll, voter and slot."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from store.models import InboxEvent, Poll, PollVote, table_of
from store.repositories.base import Repo

_votes = table_of(PollVote)


class PollMethods(Repo):
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
