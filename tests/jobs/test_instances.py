"""Instances and their heartbeats (issue 19): claims carry their instance; a restart takes
back its home's earlier claims at once, and a silent instance's claims are taken back by
whichever instance looks next, within `gone_after + every` seconds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from adapters.memory import MemoryAdapter
from app.wiring import make_core
from bot.clock import FakeClock
from bot.message import Message, Target
from bot.runtime import Hub
from jobs.instances import Heartbeat, HeartbeatPolicy
from store.db import Database
from store.models import OutboxStatus
from tests.harness import World
from tests.jobs.test_delivery import row

LEASE = timedelta(minutes=2)
POLICY = HeartbeatPolicy(every=3.0, gone_after=10.0)
postgres_only = pytest.mark.parametrize(
    "db", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


@pytest.fixture
def hubs(db: Database) -> Iterator[list[tuple[Hub, Heartbeat]]]:
    """What `instance` made: closed after the test (home locks released)."""
    made: list[tuple[Hub, Heartbeat]] = []
    yield made
    for hub, beat in made:
        if beat._lock is not None:
            beat._lock.release()
        hub.close()


def instance(
    db: Database, clock: FakeClock, hubs: list[tuple[Hub, Heartbeat]], data_dir: Path | None
) -> tuple[Hub, Heartbeat]:
    """Another running Pinwall on the same database (its own hub, same fake clock)."""
    hub = Hub(make_core(db, clock))
    hub.register(MemoryAdapter())
    beat = Heartbeat(hub, data_dir=data_dir, policy=POLICY)
    hubs.append((hub, beat))
    return hub, beat


def queue(world: World, *addresses: str) -> list[int]:
    ids = []
    for address in addresses:
        with world.db.uow() as uow:
            world.core.enqueue(
                uow, Target("memory", "dm", address), Message(text="hi"), None, world.clock.now()
            )
            uow.commit()
        ids.append(max(r.id for r in outbox(world.db)))
    return ids


def outbox(db: Database) -> list[object]:
    with db.uow() as uow:
        rows = list(uow.outbox.listing(list(OutboxStatus), 1000))
        uow.session.expunge_all()
    return rows


def claim(world: World, by: str) -> list[int]:
    with world.db.uow() as uow:
        claimed = uow.outbox.claim_due(world.clock.now(), limit=50, lease=LEASE, by=by)
        uow.commit()
    return [c.id for c in claimed]


def claimed(world: World, owners: dict[int, str]) -> None:
    """Claims every due message, each for the instance given."""
    claim(world, "someone")
    with world.db.uow() as uow:
        for outbox_id, by in owners.items():
            uow.outbox.update_row(outbox_id, claimed_by=by)
        uow.commit()


def registered(db: Database) -> set[str]:
    with db.uow() as uow:
        return {i.id for i in uow.instances.all()}


async def test_on_sqlite_a_start_takes_back_every_claim_at_once(
    sqlite_db: Database, tmp_path: Path
) -> None:
    """SQLite serves one instance: whatever is claimed at a start is a dead process's."""
    world = World(sqlite_db)
    try:
        ids = queue(world, "alice", "bob")
        claim(world, "killed")
        hub = Hub(make_core(sqlite_db, world.clock))
        beat = Heartbeat(hub, data_dir=tmp_path, policy=POLICY)
        assert beat.start() == 2
        assert beat._lock is not None
        beat._lock.release()
        for outbox_id in ids:
            back = row(world, outbox_id)
            assert (back.status, back.attempts, back.takebacks) == (OutboxStatus.PENDING, 0, 1)
        assert registered(sqlite_db) == {beat.id}
        hub.close()
    finally:
        world.close()


@postgres_only
async def test_a_restart_takes_back_its_homes_claims_at_once_but_not_a_live_ones(
    db: Database, tmp_path: Path, hubs: list[tuple[Hub, Heartbeat]]
) -> None:
    """PostgreSQL, several instances: a Pinwall started in the data directory of one that
    died takes back that one's claims at once (it holds the home's lock, so no other
    Pinwall of that home is alive). While that one still runs, it does not; other homes'
    claims wait for their heartbeats."""
    world = World(db)
    clock = world.clock
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    _, first = instance(db, clock, hubs, home)
    _, other = instance(db, clock, hubs, elsewhere)
    first.start()
    other.start()
    alice, bob, carol = queue(world, "alice", "bob", "carol")
    claimed(world, {alice: first.id, bob: first.id, carol: other.id})

    # A second Pinwall in the first one's home while the first still runs: no take-back.
    _, twin = instance(db, clock, hubs, home)
    assert twin.start() == 0
    assert [row(world, i).status for i in (alice, bob)] == [OutboxStatus.SENDING] * 2

    # The first dies (its home's lock goes with its process); a restart there.
    assert first._lock is not None
    first._lock.release()
    _, restarted = instance(db, clock, hubs, home)
    assert restarted.start() == 2
    for outbox_id in (alice, bob):
        back = row(world, outbox_id)
        assert (back.status, back.attempts, back.takebacks) == (OutboxStatus.PENDING, 0, 1)
    assert row(world, carol).claimed_by == other.id  # another home's: its heartbeat decides
    assert registered(db) == {restarted.id, other.id, twin.id}  # the twin runs on
    world.close()


@postgres_only
async def test_a_silent_instances_claims_are_taken_back_by_the_next_heartbeat(
    db: Database, tmp_path: Path, hubs: list[tuple[Hub, Heartbeat]]
) -> None:
    """An instance stops answering: once its heartbeat is older than gone_after, the next
    look of another instance takes its claims back; the looker's own and a live one's
    claims stay. One that was only stalled registers again with its next heartbeat."""
    world = World(db)
    clock = world.clock
    for name in "abc":
        (tmp_path / name).mkdir()
    _, dies = instance(db, clock, hubs, tmp_path / "a")
    _, looks = instance(db, clock, hubs, tmp_path / "b")
    _, lives = instance(db, clock, hubs, tmp_path / "c")
    for beat in (dies, looks, lives):
        beat.start()
    alice, bob, carol = queue(world, "alice", "bob", "carol")
    claimed(world, {alice: dies.id, bob: looks.id, carol: lives.id})

    for _ in range(3):  # 9 s of silence: not gone yet
        clock.advance(seconds=POLICY.every)
        lives.beat()
        assert looks.beat() == 0
    assert row(world, alice).status == OutboxStatus.SENDING
    clock.advance(seconds=POLICY.every)  # 12 s since its last beat
    assert looks.beat() == 1  # the first to look takes them back
    back = row(world, alice)
    assert (back.status, back.attempts, back.takebacks) == (OutboxStatus.PENDING, 0, 1)
    assert row(world, bob).claimed_by == looks.id
    assert row(world, carol).claimed_by == lives.id
    assert dies.id not in registered(db)

    assert dies.beat() == 0  # it was only stalled: back among the instances
    assert dies.id in registered(db)
    world.close()


@postgres_only
async def test_a_busy_survivor_that_beats_late_still_takes_back_a_dead_ones_claims(
    db: Database, tmp_path: Path, hubs: list[tuple[Hub, Heartbeat]]
) -> None:
    """The survivor of a kill gets the dead one's load too and beats late (8 s apart,
    not every 3 s): it still takes back the dead one's claims once they are gone_after
    old, instead of waiting until its load is over."""
    world = World(db)
    clock = world.clock
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _, dies = instance(db, clock, hubs, tmp_path / "a")
    _, busy = instance(db, clock, hubs, tmp_path / "b")
    dies.start()
    busy.start()
    [alice] = queue(world, "alice")
    claimed(world, {alice: dies.id})
    busy.beat()
    clock.advance(seconds=8)
    assert busy.beat() == 0  # 8 s of silence: not gone yet
    clock.advance(seconds=8)
    assert busy.beat() == 1  # 16 s: gone, although this one beat late
    assert row(world, alice).status == OutboxStatus.PENDING
    world.close()


@postgres_only
async def test_after_the_database_was_away_nobody_takes_the_claims_of_live_instances(
    db: Database, tmp_path: Path, hubs: list[tuple[Hub, Heartbeat]]
) -> None:
    """Every heartbeat stopped while the database was away (longer than gone_after): the
    first instance back does not take the others' claims; they beat again in time."""
    world = World(db)
    clock = world.clock
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _, first = instance(db, clock, hubs, tmp_path / "a")
    _, second = instance(db, clock, hubs, tmp_path / "b")
    first.start()
    second.start()
    [alice] = queue(world, "alice")
    claimed(world, {alice: second.id})
    clock.advance(seconds=30)  # nobody could write a heartbeat meanwhile
    assert first.beat() == 0
    clock.advance(seconds=1)
    second.beat()
    clock.advance(seconds=POLICY.every)
    assert first.beat() == 0
    assert row(world, alice).claimed_by == second.id
    world.close()


@postgres_only
async def test_the_heartbeat_loop_wakes_the_delivery_worker_for_what_it_took_back(
    db: Database, tmp_path: Path, hubs: list[tuple[Hub, Heartbeat]]
) -> None:
    import asyncio

    world = World(db)
    clock = world.clock
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _, dies = instance(db, clock, hubs, tmp_path / "a")
    hub, looks = instance(db, clock, hubs, tmp_path / "b")
    looks.policy = HeartbeatPolicy(every=0.05, gone_after=10.0)
    dies.start()
    looks.start()
    [alice] = queue(world, "alice")
    claimed(world, {alice: dies.id})
    for _ in range(3):
        clock.advance(seconds=POLICY.every)
        looks.beat()
    clock.advance(seconds=2)  # 11 s since the silent one's last beat
    woken = asyncio.Event()
    hub.add_waker(woken)
    stop = asyncio.Event()
    task = asyncio.create_task(looks.run(stop))
    try:
        await asyncio.wait_for(woken.wait(), 2)
    finally:
        stop.set()
        await asyncio.wait_for(task, 2)
    await looks.stop()
    assert looks.id not in registered(db)
    world.close()
