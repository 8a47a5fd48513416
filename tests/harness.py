"""A whole Pinwall in the test process: real database, MemoryAdapter, fake clock.

world = World(db)
out = await world.say("alice", "/join marketing")
assert "You joined" in out.text("alice")
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from adapters.memory import MemoryAdapter, Sent
from app.wiring import make_core
from bot.clock import FakeClock
from bot.core import CoreSettings
from bot.markup import to_plain
from bot.runtime import Hub
from jobs.delivery import DeliveryWorker
from jobs.ratelimit import RateLimiter
from store.db import Database
from store.models import Base

# Tables whose rows are the record of talking, not state: an error answer adds to them.
CHATTER = frozenset({"inbox_events", "outbox", "message_refs"})


@dataclass
class Said:
    """What the bot sent in answer to one line."""

    sent: list[Sent]

    def to(self, address: str) -> list[Sent]:
        return [s for s in self.sent if s.target.address == address]

    def text(self, address: str) -> str:
        """Everything `address` received, as plain text (title, text, button labels)."""
        parts = []
        for s in self.to(address):
            m = s.message
            parts.append(
                "\n".join(
                    p
                    for p in (
                        to_plain(m.title) if m.title else "",
                        to_plain(m.text),
                        "  ".join(b.label for b in m.buttons),
                    )
                    if p
                )
            )
        return "\n".join(parts)

    @property
    def addresses(self) -> list[str]:
        return [s.target.address for s in self.sent]


class World:
    def __init__(
        self,
        db: Database,
        *,
        admins: tuple[str, ...] = ("admin",),
        default_language: str = "en",
        public_url: str | None = None,
    ) -> None:
        self.db = db
        self.clock = FakeClock()
        self.core = make_core(
            db,
            self.clock,
            CoreSettings(
                default_language=default_language,
                admins=frozenset(("memory", a) for a in admins),
                public_url=public_url,
            ),
        )
        self.hub = Hub(self.core)
        self.adapter = MemoryAdapter()
        self.hub.register(self.adapter)
        # Unpaced: the limiter keeps real time (a second between two messages to one
        # Telegram chat), which the fake clock cannot skip, so every conversation with a
        # second messenger waited seconds for nothing. The pacing has tests of its own
        # (tests/jobs/test_ratelimit.py, test_delivery.py, the adapters' 429 tests).
        self.worker = DeliveryWorker(self.hub, limiter=RateLimiter())

    async def say(
        self, who: str, text: str, *, room: str | None = None, language: str | None = None
    ) -> Said:
        """One line from `who`, processed to the end with the deliveries it causes."""
        before = len(self.adapter.sent)
        await self.hub.submit(
            self.adapter.event(who, text, self.clock.now(), room=room, language=language)
        )
        await self.worker.drain()
        return Said(self.adapter.sent[before:])

    async def press(self, who: str, sent: Sent, index: int) -> Said:
        before = len(self.adapter.sent)
        await self.hub.submit(self.adapter.press(who, sent, index, self.clock.now()))
        await self.worker.drain()
        return Said(self.adapter.sent[before:])

    async def react(self, who: str, sent: Sent, emoji: str, *, room: str | None = None) -> Said:
        before = len(self.adapter.sent)
        await self.hub.submit(self.adapter.react(who, sent, emoji, self.clock.now(), room=room))
        await self.worker.drain()
        return Said(self.adapter.sent[before:])

    async def script(self, *lines: tuple[str, str]) -> None:
        for who, text in lines:
            await self.say(who, text)

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every state table: compare two to prove nothing changed."""
        out: dict[str, list[tuple[Any, ...]]] = {}
        with self.db.engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                if table.name in CHATTER:
                    continue
                rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
                out[table.name] = [tuple(r) for r in rows]
        return out

    def close(self) -> None:
        self.hub.close()
