"""The inbox: an event's outcome — its effects or its refusal, and the answer to it — is
recorded once, so that a redelivery is acknowledged and never answered again."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from adapters.memory import MemoryAdapter
from app.wiring import make_core
from bot.clock import SystemClock
from bot.core import Core
from bot.events import Event
from store.db import Database
from store.models import InboxEvent, InboxStatus, OutboxMessage, Role

ROUNDS = 60  # refused commands, each reaching both instances at the same moment


@pytest.fixture
def two_cores(db: Database) -> Iterator[tuple[Core, Core]]:
    """Two instances on one database: each its own Database (pool, connections) and Core."""
    other = Database(db.url)
    try:
        yield make_core(db, SystemClock()), make_core(other, SystemClock())
    finally:
        other.dispose()


def members(db: Database, *names: str) -> None:
    now = SystemClock().now()
    with db.uow() as uow:
        for name in names:
            person = uow.people.create(name=name, role=Role.MEMBER, now=now)
            uow.people.add_account(person, platform="memory", external_id=name, now=now)
        uow.commit()


def refused_commands(n: int) -> list[Event]:
    """Commands that each end in a user error (no such group), from a known member."""
    adapter = MemoryAdapter()
    now = SystemClock().now()
    return [adapter.event("alice", f"/join nosuchgroup{i}", now) for i in range(n)]


def at_once(first: Callable[[], bool], second: Callable[[], bool]) -> tuple[bool, bool]:
    """Both calls started together on two threads (as two instances take a redelivery)."""
    start = threading.Barrier(2)

    def go(fn: Callable[[], bool]) -> bool:
        start.wait()
        return fn()

    with ThreadPoolExecutor(2) as pool:
        a, b = pool.submit(go, first), pool.submit(go, second)
        return a.result(timeout=30), b.result(timeout=30)


def answers(db: Database) -> int:
    with db.uow() as uow:
        return len(uow.session.scalars(select(OutboxMessage.id)).all())


def inbox(db: Database) -> Counter[str]:
    with db.uow() as uow:
        return Counter(uow.session.scalars(select(InboxEvent.status)))


async def test_a_refused_command_sent_again_later_is_acknowledged_not_answered_again(
    db: Database,
) -> None:
    members(db, "alice")
    core = make_core(db, SystemClock())
    [event] = refused_commands(1)
    assert core.handle(event)
    assert answers(db) == 1
    assert not core.handle(event)  # the messenger's redelivery
    assert not core.record(event)  # or the same event recorded by an adapter
    assert core.apply_recorded() == 0
    assert answers(db) == 1
    assert inbox(db) == {InboxStatus.APPLIED: 1}


async def test_a_refused_command_that_reaches_two_instances_at_once_is_answered_once(
    db: Database, two_cores: tuple[Core, Core]
) -> None:
    """The messenger redelivers a command that fails with a user error to a second
    instance while the first applies it (on PostgreSQL their transactions truly race):
    one of them answers, the other acknowledges it as a redelivery."""
    members(db, "alice")
    first, second = two_cores
    events = refused_commands(ROUNDS)
    outcomes = [at_once(lambda e=e: first.handle(e), lambda e=e: second.handle(e)) for e in events]
    assert answers(db) == ROUNDS, f"{answers(db) - ROUNDS} refusals answered twice"
    assert all(sorted(pair) == [False, True] for pair in outcomes), Counter(outcomes)
    assert inbox(db) == {InboxStatus.APPLIED: ROUNDS}


async def test_a_refused_recorded_event_applied_by_two_instances_at_once_is_answered_once(
    db: Database, two_cores: tuple[Core, Core]
) -> None:
    """Events an adapter recorded (and acknowledged), applied by two instances at once
    (a restart of both, or the inbox tick of one beside an adapter of the other): each
    refusal is answered once."""
    members(db, "alice")
    first, second = two_cores
    events = refused_commands(ROUNDS)
    for event in events:
        assert first.record(event)

    def apply_all(core: Core) -> Callable[[], bool]:
        def run() -> bool:
            while core.apply_recorded(limit=5):
                pass
            return True

        return run

    at_once(apply_all(first), apply_all(second))
    assert answers(db) == ROUNDS, f"{answers(db) - ROUNDS} refusals answered twice"
    assert inbox(db) == {InboxStatus.APPLIED: ROUNDS}
