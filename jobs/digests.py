"""The digest tick: finds everyone whose daily or weekly digest is due and sends it.

Every `Tick.every` seconds (app.wiring registers it; APScheduler ticks it where the
scheduler lock is held) `tick(now)`:

1. gives a schedule to everyone with a daily or weekly group who has none yet (new
   people, and people from before digests existed), due at the next default times;
2. finds who is due (`next due <= now`, not paused) in one query, a bounded batch at a
   time, and loads what their digests need in a few queries for the whole batch;
3. per person, in its own transaction: moves each due time to its next occurrence
   *after now* — a conditional update, so a digest is never sent twice — and, in the
   same transaction, queues the digest message and moves the watermarks. Nothing is
   queued when there is nothing new, but the due time moves on all the same.

So a digest that fell due while Pinwall was down goes out once at the first tick after
start, and a long outage does not cause a burst of repeats. A person whose digest
fails is logged and left due; the next tick tries again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from bot.core import Core
from bot.digest import (
    KINDS,
    Digest,
    DigestBatch,
    Kind,
    Times,
    finish,
    new_schedule_row,
    preload,
)
from bot.runtime import Hub
from store.repositories.digests import ScheduleRow

log = logging.getLogger(__name__)

BATCH = 200  # people per read of what their digests need
MAX_BATCHES = 100  # per tick: 20,000 people; the rest at the next tick


@dataclass
class Pass:
    """What one batch came to."""

    due: int = 0  # people found due
    sent: int = 0  # digest messages queued
    failed: set[int] = field(default_factory=set)  # people whose digest failed


def schedule_everyone(core: Core, now: datetime, limit: int = 1000) -> int:
    """Schedules for people with a daily or weekly group who have none; how many."""
    made = 0
    while True:
        with core.db.uow() as uow:
            missing = uow.digests.unscheduled(limit)
            if not missing:
                return made
            default = core.settings.default_timezone
            uow.digests.add_schedules(
                [new_schedule_row(pid, tz or default, now) for pid, tz in missing]
            )
            uow.commit()
        made += len(missing)
        if len(missing) < limit:
            return made


def run_batch(
    core: Core, now: datetime, limit: int = BATCH, exclude: frozenset[int] = frozenset()
) -> Pass:
    """One bounded batch of the people due at `now` (but those in `exclude`)."""
    result = Pass()
    with core.db.uow() as uow:
        due = uow.digests.due(now, limit, exclude)
        result.due = len(due)
        if not due:
            return result
        people = uow.people.by_ids(row.person_id for row in due)
        batch = DigestBatch(uow, people, now)
        digests: dict[int, list[Digest]] = {}
        for row in due:
            if row.person_id in batch.people:
                digests[row.person_id] = [
                    batch.build(row.person_id, kind) for kind in due_kinds(row, now)
                ]
        lines, accounts = preload(uow, (d for ds in digests.values() for d in ds))
        uow.commit()  # nothing written; what was read stays loaded for the writes below
    for row in due:
        try:
            with core.db.uow() as uow:
                person = batch.people.get(row.person_id)
                zone = core.timezone_of(person) if person else core.settings.default_timezone
                times = Times.of(row)
                claimed: list[Digest] = []
                for digest in digests.get(row.person_id, []):
                    expected = row.daily_due if digest.kind == "daily" else row.weekly_due
                    new = times.next_due(digest.kind, zone, now)
                    if uow.digests.advance(row.person_id, digest.kind, expected, new):
                        claimed.append(digest)
                if person is None:  # gone meanwhile: the schedule went with them
                    continue
                result.sent += len(
                    finish(core, uow, batch, claimed, now, lines=lines, accounts=accounts)
                )
                uow.commit()
        except Exception:
            log.exception(
                "digest of person %s failed; it is tried again at the next tick", row.person_id
            )
            result.failed.add(row.person_id)
    return result


def due_kinds(row: ScheduleRow, now: datetime) -> list[Kind]:
    return [
        kind
        for kind, at in zip(KINDS, (row.daily_due, row.weekly_due), strict=True)
        if at is not None and at <= now
    ]


class DigestJob:
    """The tick of app.wiring: `await job.tick(now)`."""

    def __init__(self, hub: Hub, *, batch: int = BATCH, max_batches: int = MAX_BATCHES) -> None:
        self.hub = hub
        self.batch = batch
        self.max_batches = max_batches

    async def tick(self, now: datetime) -> int:
        """Sends every digest due at `now`; returns how many were queued."""
        core = self.hub.core
        await self.hub.call(schedule_everyone, core, now)
        sent = 0
        failed: set[int] = set()
        for _ in range(self.max_batches):
            done = await self.hub.call(run_batch, core, now, self.batch, frozenset(failed))
            sent += done.sent
            failed |= done.failed
            if done.sent:
                self.hub.wake()
            if done.due < self.batch:
                break
        return sent
