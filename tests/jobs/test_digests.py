"""The digest tick with a fake clock: due at the person's local time (DST included), sent
once — across restarts, repeated ticks and long outages — never when there is nothing
new, to the messenger the person used last, in bounded batches."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from bot.markup import to_plain
from jobs.digests import DigestJob
from store.db import Database
from tests.bot.conversation import en, link_accounts, other_messenger, say_on
from tests.harness import Said, World

FRIDAY = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)  # the fake clock's start: 09:00 in Berlin
SATURDAY_08_BERLIN = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)


async def tick(world: World, job: DigestJob | None = None) -> Said:
    """One digest tick at the world's time, with the deliveries it causes."""
    before = len(world.adapter.sent)
    await (job or DigestJob(world.hub)).tick(world.clock.now())
    await world.worker.drain()
    return Said(world.adapter.sent[before:])


def titles(out: Said, who: str) -> list[str]:
    return [to_plain(s.message.title or "") for s in out.to(who)]


def dues(world: World, handle: str) -> tuple[datetime | None, datetime | None]:
    with world.db.uow() as uow:
        person = uow.people.by_handle(handle)
        assert person is not None
        row = uow.digests.schedule(person.id)
        return (row.daily_due, row.weekly_due) if row is not None else (None, None)


async def marketing_with_a_post(world: World) -> None:
    await world.say("admin", "/group create marketing Marketing")
    await world.say("alice", "/join marketing")
    await world.say("bob", "/join marketing")
    await world.say("bob", "/share marketing New poster at the station")


async def test_due_at_08_00_in_berlin_fires_at_07_00_utc_in_winter(world: World) -> None:
    await marketing_with_a_post(world)
    # alice, bob and admin have no schedule yet: the first tick gives them one.
    assert dues(world, "alice") == (None, None)
    assert (await tick(world)).sent == []
    assert dues(world, "alice") == (SATURDAY_08_BERLIN, datetime(2026, 11, 30, 7, 0, tzinfo=UTC))

    world.clock.set(datetime(2026, 11, 28, 6, 59, 59, tzinfo=UTC))
    assert (await tick(world)).sent == []
    world.clock.set(SATURDAY_08_BERLIN)
    out = await tick(world)
    assert sorted(out.addresses) == ["admin", "alice"]  # bob gets none: it is his own post
    [digest] = out.to("alice")
    assert to_plain(digest.message.title or "") == en("digest.title.daily", date="2026-11-28")
    assert to_plain(digest.message.text).splitlines() == [
        en("digest.group", group="Marketing", count=1),
        "• #1 New poster at the station · @bob",
    ]
    assert dues(world, "alice")[0] == datetime(2026, 11, 29, 7, 0, tzinfo=UTC)
    assert dues(world, "bob")[0] == datetime(2026, 11, 29, 7, 0, tzinfo=UTC)


async def test_two_ticks_send_a_digest_once(world: World) -> None:
    await marketing_with_a_post(world)
    await tick(world)
    world.clock.set(SATURDAY_08_BERLIN)
    assert titles(await tick(world), "alice") == ["Your daily digest · 2026-11-28"]
    assert (await tick(world)).sent == []
    # Two ticks at once (two jobs, as two instances would run them): still once.
    await world.say("bob", "/share marketing another one")
    world.clock.set(datetime(2026, 11, 29, 7, 0, tzinfo=UTC))
    before = len(world.adapter.sent)
    await asyncio.gather(
        DigestJob(world.hub).tick(world.clock.now()),
        DigestJob(world.hub).tick(world.clock.now()),
    )
    await world.worker.drain()
    assert titles(Said(world.adapter.sent[before:]), "alice") == ["Your daily digest · 2026-11-29"]


async def test_a_restart_across_the_due_time_sends_exactly_once(db: Database) -> None:
    before = World(db)
    await marketing_with_a_post(before)
    await tick(before)  # schedules made: due Saturday 07:00 UTC
    before.close()

    # Pinwall was down from Friday until Saturday 09:30 UTC; a new program starts.
    after = World(db)
    after.clock.set(datetime(2026, 11, 28, 9, 30, tzinfo=UTC))
    out = await tick(after)
    assert titles(out, "alice") == ["Your daily digest · 2026-11-28"]
    assert (await tick(after)).sent == []
    after.close()

    again = World(db)  # and another restart at the same time: nothing twice
    again.clock.set(datetime(2026, 11, 28, 9, 31, tzinfo=UTC))
    assert (await tick(again)).sent == []
    assert dues(again, "alice")[0] == datetime(2026, 11, 29, 7, 0, tzinfo=UTC)
    again.close()


async def test_a_long_outage_sends_one_digest_not_a_burst(world: World) -> None:
    await marketing_with_a_post(world)
    await tick(world)
    world.clock.set(datetime(2026, 12, 9, 12, 0, tzinfo=UTC))  # 11 days later
    out = await tick(world)
    assert titles(out, "alice") == ["Your daily digest · 2026-12-09"]
    assert (await tick(world)).sent == []
    # The next ones are the next occurrences after now, not the ones missed.
    assert dues(world, "alice") == (
        datetime(2026, 12, 10, 7, 0, tzinfo=UTC),
        datetime(2026, 12, 14, 7, 0, tzinfo=UTC),
    )


async def test_nothing_new_sends_nothing_but_the_due_time_moves_on(world: World) -> None:
    await marketing_with_a_post(world)
    await world.say("alice", "/digest now")  # alice has read it all
    await tick(world)
    world.clock.set(SATURDAY_08_BERLIN)
    assert (await tick(world)).to("alice") == []
    assert dues(world, "alice")[0] == datetime(2026, 11, 29, 7, 0, tzinfo=UTC)


async def test_weekly_groups_come_in_the_weekly_digest_only(world: World) -> None:
    await marketing_with_a_post(world)
    await world.say("alice", "/notify marketing weekly")
    await tick(world)
    world.clock.set(SATURDAY_08_BERLIN)
    assert (await tick(world)).to("alice") == []
    world.clock.set(datetime(2026, 11, 30, 7, 0, tzinfo=UTC))  # Monday 08:00 in Berlin
    out = await tick(world)
    assert titles(out, "alice") == ["Your weekly digest · 2026-11-30"]
    assert "New poster at the station" in to_plain(out.to("alice")[0].message.text)


async def test_a_paused_digest_is_not_sent(world: World) -> None:
    await marketing_with_a_post(world)
    await world.say("alice", "/digest off")
    world.clock.set(datetime(2026, 12, 1, 7, 0, tzinfo=UTC))
    assert (await tick(world)).to("alice") == []
    await world.say("alice", "/digest daily 09:00")  # on again: 09:00 Berlin is 08:00 UTC
    world.clock.set(datetime(2026, 12, 1, 8, 0, tzinfo=UTC))
    assert titles(await tick(world), "alice") == ["Your daily digest · 2026-12-01"]


async def test_the_due_time_follows_dst(world: World) -> None:
    world.clock.set(datetime(2026, 3, 27, 12, 0, tzinfo=UTC))
    await marketing_with_a_post(world)
    await tick(world)
    assert dues(world, "alice")[0] == datetime(2026, 3, 28, 7, 0, tzinfo=UTC)  # CET
    world.clock.set(datetime(2026, 3, 28, 7, 0, tzinfo=UTC))
    assert titles(await tick(world), "alice") == ["Your daily digest · 2026-03-28"]
    # The clocks went forward on Sunday: 08:00 in Berlin is 06:00 UTC now.
    assert dues(world, "alice")[0] == datetime(2026, 3, 29, 6, 0, tzinfo=UTC)
    await world.say("bob", "/share marketing spring")
    world.clock.set(datetime(2026, 3, 29, 6, 0, tzinfo=UTC))
    assert titles(await tick(world), "alice") == ["Your daily digest · 2026-03-29"]


async def test_a_new_time_zone_moves_the_tick(world: World) -> None:
    await marketing_with_a_post(world)
    await tick(world)
    # At 17:00 in Tokyo; the next 08:00 there is Saturday 08:00 JST, Friday 23:00 UTC.
    await world.say("alice", "/settings timezone Asia/Tokyo")
    world.clock.set(datetime(2026, 11, 27, 22, 59, tzinfo=UTC))
    assert (await tick(world)).to("alice") == []
    world.clock.set(datetime(2026, 11, 27, 23, 0, tzinfo=UTC))
    assert titles(await tick(world), "alice") == ["Your daily digest · 2026-11-28"]
    assert dues(world, "alice")[0] == datetime(2026, 11, 28, 23, 0, tzinfo=UTC)


async def test_the_digest_goes_to_the_messenger_used_last(world: World) -> None:
    await marketing_with_a_post(world)
    telegram = other_messenger(world, "telegram")
    await link_accounts(world, "alice", telegram, "4711")
    world.clock.advance(minutes=2)
    await say_on(world, telegram, "4711", "/whoami")  # Telegram is used last
    await tick(world)
    world.clock.set(SATURDAY_08_BERLIN)
    before = len(telegram.sent)
    out = await tick(world)
    assert out.to("alice") == []
    [digest] = telegram.sent[before:]
    assert digest.target.address == "4711"
    assert to_plain(digest.message.title or "") == "Your daily digest · 2026-11-28"


async def test_many_people_are_served_in_bounded_batches(world: World) -> None:
    await world.say("admin", "/group create marketing Marketing")
    people = [f"p{n}" for n in range(7)]
    for who in people:
        await world.say(who, "/join marketing")
    await world.say("admin", "/share marketing for everyone")
    job = DigestJob(world.hub, batch=2)
    await tick(world, job)
    world.clock.set(SATURDAY_08_BERLIN)
    out = await tick(world, job)
    assert sorted(out.addresses) == people
    assert (await tick(world, job)).sent == []


async def test_people_from_before_digests_existed_get_their_digests(sqlite_db: Database) -> None:
    world = World(sqlite_db)
    await marketing_with_a_post(world)
    # The database as it was before migration 0008, with these people in it; then 0008.
    sqlite_db.downgrade("0007")
    sqlite_db.upgrade()
    assert dues(world, "alice") == (None, None)
    await tick(world)
    assert dues(world, "alice")[0] == SATURDAY_08_BERLIN
    world.clock.set(SATURDAY_08_BERLIN)
    out = await tick(world)
    assert titles(out, "alice") == ["Your daily digest · 2026-11-28"]
    world.close()
