"""The tick of announcements and polls (app.wiring, under the scheduler's lock): reminders
that fell due to those who have not confirmed, and polls whose --closes time came.

Each reminder is marked sent in the transaction that queues it (bot.announcements), and
each poll closed in the one that posts its result (bot.polls): a tick repeated after a
restart, or on another instance, finds them done and sends nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.announcements import remind_due
from bot.polls import close_due
from bot.runtime import Hub


@dataclass(frozen=True)
class Done:
    reminded: int  # people
    closed: int  # polls


class AnnouncementJob:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def tick(self, now: datetime) -> Done:
        core = self.hub.core
        reminded = await self.hub.call(remind_due, core, now)
        closed = await self.hub.call(close_due, core, now)
        if reminded or closed:
            self.hub.wake()
        return Done(reminded, closed)
