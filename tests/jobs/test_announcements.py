"""The announcements tick: a due reminder and a poll whose --closes time came, once each,
also when the tick runs again (a restart, another instance)."""

from __future__ import annotations

from jobs.announcements import AnnouncementJob, Done
from tests.harness import World


async def test_the_tick_reminds_and_closes_once(world: World) -> None:
    await world.say("admin", "/group create filialen Filialen")
    await world.say("admin", "/bridge filialen", room="shop")
    for who in ("alice", "bob"):
        await world.say(who, "/join filialen")
    await world.say("admin", "/announce filialen Read me --confirm")
    await world.say("admin", "/poll filialen Date? | Mon | Tue --closes in 2 hours")
    job = AnnouncementJob(world.hub)
    assert await job.tick(world.clock.now()) == Done(0, 0)
    world.clock.advance(hours=3)
    assert await job.tick(world.clock.now()) == Done(0, 1)
    await world.worker.drain()
    results = [
        s for s in world.adapter.to("shop") if s.message.title and "Result" in s.message.title
    ]
    assert len(results) == 1
    world.clock.advance(hours=22)
    assert await job.tick(world.clock.now()) == Done(2, 0)
    assert await job.tick(world.clock.now()) == Done(0, 0)
    restarted = World(world.db)  # a new program on the same database
    try:
        again = AnnouncementJob(restarted.hub)
        assert await again.tick(world.clock.now()) == Done(0, 0)
    finally:
        restarted.close()
