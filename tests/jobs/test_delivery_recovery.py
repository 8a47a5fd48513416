"""The delivery worker after failures (issue 19): a failing message holds its room back for
two attempts at most, dead letters are told to the admins once, take-backs are not failed
attempts (but a message whose sends keep dying ends), and an idle lane sleeps until the
next message falls due instead of looking every second."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from adapters.memory import MemoryAdapter
from app.wiring import make_core
from bot.clock import SystemClock
from bot.markup import to_plain
from bot.message import DeliveryFailed, Message, SendResult, Target
from bot.runtime import Hub
from jobs.delivery import DeliveryPolicy, DeliveryWorker
from store.db import Database
from store.models import OutboxMessage, OutboxStatus
from tests.harness import World
from tests.jobs.test_delivery import enqueue, row, texts

LEASE = timedelta(minutes=2)


@dataclasses.dataclass
class Refusing(MemoryAdapter):
    """Refuses every send of the message whose text is `refused` (HTTP 500), takes the rest."""

    refused: str = "report.pdf"
    refusals: int = 0

    async def send(self, target: Target, message: Message, *, key: str = "") -> SendResult:
        if message.text == self.refused:
            self.refusals += 1
            return DeliveryFailed("HTTP 500: Internal Server Error")
        return await super().send(target, message, key=key)


@pytest.fixture
async def admins(db: Database) -> AsyncIterator[World]:
    """A World with two admins on the memory messenger: admin (English), anna (German)."""
    w = World(db, admins=("admin", "anna"))
    await w.say("admin", "/groups")
    await w.say("anna", "/settings language de")
    w.adapter.sent.clear()
    yield w
    w.close()


def notices(adapter: MemoryAdapter, who: str) -> list[str]:
    return [
        to_plain(s.message.text)
        for s in adapter.to(who)
        if s.message.meta.get("notice") == "dead_letters"
    ]


async def drain(world: World, worker: DeliveryWorker) -> None:
    await asyncio.wait_for(worker.drain(), timeout=10)


async def until_due(world: World, worker: DeliveryWorker, outbox_id: int) -> None:
    """Lets the fake clock reach the message's next attempt, then drains."""
    world.clock.set(max(world.clock.now(), row(world, outbox_id).next_attempt_at))
    await drain(world, worker)


# --- a failing message and its room ---------------------------------------------------------


async def test_a_message_that_keeps_failing_holds_its_room_back_for_two_attempts_only(
    admins: World,
) -> None:
    """A file the bridged room cannot take (HTTP 500 each time) and two text posts after
    it: the posts wait while the file failed once, and go once it failed twice; the file
    keeps retrying with backoff, and its dead letter is told to each admin once, in their
    language."""
    world = admins
    refusing = Refusing()
    world.hub.register(refusing)
    worker = DeliveryWorker(world.hub, DeliveryPolicy(max_attempts=5))
    room = "lobby"
    report = enqueue(world, room, "report.pdf", kind="room")
    enqueue(world, room, "post 1", kind="room")
    enqueue(world, room, "post 2", kind="room")

    await drain(world, worker)  # the file fails once: the posts wait behind it
    assert (refusing.refusals, texts(refusing, room)) == (1, [])

    await until_due(world, worker, report)  # fails twice: the posts go ahead
    assert (refusing.refusals, texts(refusing, room)) == (2, ["post 1", "post 2"])
    waiting = row(world, report)
    assert (waiting.status, waiting.attempts) == (OutboxStatus.PENDING, 2)
    assert waiting.next_attempt_at > world.clock.now()  # backoff, not at once

    # What comes later is not held back by it either.
    enqueue(world, room, "post 3", kind="room")
    await drain(world, worker)
    assert texts(refusing, room) == ["post 1", "post 2", "post 3"]
    assert refusing.refusals == 2

    for attempt in (3, 4, 5):
        await until_due(world, worker, report)
        assert refusing.refusals == attempt
    dead = row(world, report)
    assert (dead.status, dead.attempts) == (OutboxStatus.DEAD, 5)
    await drain(world, worker)  # the admins' notices go out

    [english] = notices(refusing, "admin")
    assert english.splitlines() == [
        "A delivery failed for good:",
        f"• {report} → memory:{room} · 5 attempts · HTTP 500: Internal Server Error",
        "/outbox failed lists the failed deliveries; /outbox retry [id] sends them again.",
    ]
    [german] = notices(refusing, "anna")
    assert german.splitlines()[0] == "Eine Zustellung ist endgültig gescheitert:"
    assert "5 Versuche" in german
    world.clock.advance(hours=2)
    await drain(world, worker)
    assert (len(notices(refusing, "admin")), len(notices(refusing, "anna"))) == (1, 1)  # once


async def test_a_message_that_failed_once_still_holds_its_conversation(world: World) -> None:
    """The order of a conversation is kept while a failure may be passing: one failure
    holds the rest back, and once the first goes through, they follow in order."""
    refusing = Refusing(refused="first")
    world.hub.register(refusing)
    worker = DeliveryWorker(world.hub)
    first = enqueue(world, "alice", "first")
    enqueue(world, "alice", "second")
    await drain(world, worker)
    assert texts(refusing, "alice") == []
    refusing.refused = "nothing"  # the platform is back
    await until_due(world, worker, first)
    assert texts(refusing, "alice") == ["first", "second"]


async def test_a_notice_of_dead_letters_that_dies_is_not_told_about(admins: World) -> None:
    """Admins are told about dead letters once; when their own notice cannot be delivered
    either, nobody is told about that (no notice about a notice, and no loop)."""
    world = admins

    class Down(MemoryAdapter):
        """Refuses for good the message "lost" and every notice of dead letters."""

        async def send(self, target: Target, message: Message, *, key: str = "") -> SendResult:
            if message.text == "lost" or message.meta.get("notice"):
                return DeliveryFailed("gone", permanent=True)
            return await super().send(target, message, key=key)

    world.hub.register(Down())
    worker = DeliveryWorker(world.hub)
    lost = enqueue(world, "bob", "lost")
    await drain(world, worker)
    await drain(world, worker)
    with world.db.uow() as uow:
        dead = uow.outbox.listing([OutboxStatus.DEAD], 10)
        assert dead[0].id == lost
        assert len(dead) == 3  # the message and the two admins' notices, nothing more
        assert uow.outbox.counts().get(OutboxStatus.PENDING, 0) == 0


async def test_someone_who_blocked_the_bot_is_no_dead_letter_for_the_admins(
    admins: World,
) -> None:
    world = admins
    enqueue(world, "bob", "hello")
    world.adapter.results.append(DeliveryFailed("blocked", unreachable=True))
    worker = DeliveryWorker(world.hub)
    await drain(world, worker)
    await drain(world, worker)
    assert notices(world.adapter, "admin") == []


# --- take-backs ---------------------------------------------------------------------------


async def test_taking_a_claim_back_is_not_a_failed_attempt(world: World) -> None:
    """Claims of an instance that died are taken back (at a restart, by its silent
    heartbeat, or when the lease ran out): the attempt they counted is not counted, the
    take-back is; a failure afterwards is the first attempt, a success the first too."""
    now = world.clock.now()
    first = enqueue(world, "alice", "one")
    second = enqueue(world, "bob", "two")
    with world.db.uow() as uow:  # an instance claims both, then dies
        claimed = uow.outbox.claim_due(now, limit=10, lease=LEASE, by="gone")
        assert [(c.attempts, c.takebacks) for c in claimed] == [(1, 0), (1, 0)]
        uow.commit()
    assert (row(world, first).claimed_by, row(world, first).status) == ("gone", "sending")
    with world.db.uow() as uow:
        assert uow.outbox.take_back(["gone"]) == 2
        uow.commit()
    back = row(world, first)
    assert (back.status, back.attempts, back.takebacks, back.claimed_by) == (
        OutboxStatus.PENDING,
        0,
        1,
        None,
    )
    assert back.claimed_until is None

    world.adapter.results.append(DeliveryFailed("HTTP 502"))  # alice's fails, bob's goes
    await drain(world, DeliveryWorker(world.hub))
    assert (row(world, first).status, row(world, first).attempts) == (OutboxStatus.PENDING, 1)
    assert (row(world, second).status, row(world, second).attempts) == (OutboxStatus.SENT, 1)


async def test_a_claim_whose_lease_ran_out_is_taken_back_not_attempted_again(
    world: World,
) -> None:
    now = world.clock.now()
    msg = enqueue(world, "alice", "hello")
    with world.db.uow() as uow:
        uow.outbox.claim_due(now, limit=10, lease=LEASE, by="hung")
        uow.commit()
    world.clock.advance(seconds=LEASE.total_seconds() + 1)
    await drain(world, DeliveryWorker(world.hub))
    sent = row(world, msg)
    assert (sent.status, sent.attempts, sent.takebacks) == (OutboxStatus.SENT, 1, 1)


async def test_a_message_whose_sends_keep_dying_is_dead_after_three_take_backs(
    admins: World,
) -> None:
    """No endless retry: a message taken back three times (its sending process died each
    time, maybe because of it) is a dead letter, and the admins are told."""
    world = admins
    msg = enqueue(world, "bob", "poison")
    for n in (1, 2, 3):
        with world.db.uow() as uow:
            [claimed] = uow.outbox.claim_due(world.clock.now(), limit=10, lease=LEASE, by="x")
            assert (claimed.attempts, claimed.takebacks) == (1, n - 1)
            assert uow.outbox.unclaim_all() == 1  # the restart after the crash
            uow.commit()
    worker = DeliveryWorker(world.hub)
    await drain(world, worker)
    dead = row(world, msg)
    assert (dead.status, dead.takebacks) == (OutboxStatus.DEAD, 3)
    assert dead.last_error == "taken back 3 times: its sends never finished"
    assert world.adapter.to("bob") == []
    await drain(world, worker)
    [notice] = notices(world.adapter, "admin")
    assert "taken back 3 times" in notice


# --- sleeping until the next message --------------------------------------------------------


class Counting(DeliveryWorker):
    """Counts the claims its lanes make."""

    claims = 0

    def _claim(self, platforms: list[str]) -> Any:
        self.claims += 1
        return super()._claim(platforms)


async def test_an_idle_lane_sleeps_until_the_next_message_falls_due(db: Database) -> None:
    """With the system clock: a message due in 1.5 s is sent then, with one claim before
    and one at its time (not one a second); a message written meanwhile is sent at once,
    woken by the hub."""
    hub = Hub(make_core(db, SystemClock()))
    adapter = MemoryAdapter()
    hub.register(adapter)
    worker = Counting(hub)
    due_in = 1.5
    started = time.monotonic()
    later = enqueue_at(hub, "alice", "later", seconds=due_in)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await asyncio.sleep(0.3)
        assert worker.claims == 1  # and asleep since: nothing was due

        with hub.db.uow() as uow:  # written now: the hub wakes the lane
            hub.core.enqueue(
                uow, Target("memory", "dm", "bob"), Message(text="now"), None, hub.clock.now()
            )
            uow.commit()
        hub.wake()
        await until(lambda: texts(adapter, "bob") == ["now"], within=1.0)
        assert time.monotonic() - started < 1.0

        await until(lambda: texts(adapter, "alice") == ["later"], within=3.0)
        took = time.monotonic() - started
        assert due_in - 0.01 <= took < due_in + 0.5, took
        # One claim at the start, two for "now" (the second finds nothing), two for
        # "later" at its time: none in between.
        assert worker.claims <= 5, worker.claims
        await until(lambda: row_of(db, later).status == OutboxStatus.SENT, within=1.0)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
        hub.close()


async def test_an_idle_lane_with_nothing_due_sleeps_up_to_its_longest_nap(db: Database) -> None:
    hub = Hub(make_core(db, SystemClock()))
    hub.register(MemoryAdapter())
    worker = Counting(hub, DeliveryPolicy(idle_poll=0.4))
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await asyncio.sleep(1.0)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
        hub.close()
    assert 2 <= worker.claims <= 3  # at the start, after 0.4 s and after 0.8 s


def enqueue_at(hub: Hub, address: str, text: str, *, seconds: float) -> int:
    now = hub.clock.now()
    with hub.db.uow() as uow:
        hub.core.enqueue(uow, Target("memory", "dm", address), Message(text=text), None, now)
        uow.flush()
        [outbox_id] = uow.session.scalars(
            update(OutboxMessage)
            .where(OutboxMessage.target == address)
            .values(next_attempt_at=now + timedelta(seconds=seconds))
            .returning(OutboxMessage.id)
        ).all()
        uow.commit()
    return outbox_id


def row_of(db: Database, outbox_id: int) -> OutboxMessage:
    with db.uow() as uow:
        found = uow.outbox.get(outbox_id)
        assert found is not None
        uow.session.expunge(found)
        return found


async def until(condition: Any, within: float) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "not in time"
        await asyncio.sleep(0.01)
