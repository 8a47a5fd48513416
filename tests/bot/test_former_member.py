"""A forgotten person's remaining posts, comments and proposals (issue 19): shown as by a
"former member" / "ehemaliges Mitglied" wherever an author is shown — never as by "Feed",
a messenger, or "@?"."""

from __future__ import annotations

from adapters.memory import Sent
from bot import privacy
from bot.markup import to_plain
from tests.bot.conversation import en
from tests.harness import World


async def setup(world: World, *, instant: bool = False) -> None:
    """alice shares, comments and proposes; bob (English) and carol (German) read, in
    their daily digest (a new member's mode) or instantly."""
    await world.say("admin", "/group create marketing Marketing")
    for who in ("alice", "bob", "carol"):
        await world.say(who, "/join marketing")
    await world.say("carol", "/settings language de")
    await world.say("alice", "/share marketing Poster draft for the station")
    await world.say("alice", "/comment #1 Second version at the station tomorrow")
    await world.say("alice", "/propose newsroom Our new poster is at the station")
    if instant:
        for who in ("bob", "carol"):
            await world.say(who, "/notify marketing instant")


def forget(world: World, handle: str) -> None:
    with world.db.uow() as uow:
        person = uow.people.by_handle(handle)
        assert person is not None
        privacy.forget(uow, person, world.clock.now(), posts="anonymize")
        uow.commit()


def titles(sent: list[Sent]) -> list[str]:
    return [to_plain(s.message.title or "") for s in sent]


async def test_a_forgotten_authors_post_is_by_a_former_member_in_copies_sent_later(
    world: World,
) -> None:
    await setup(world, instant=True)
    await world.hub.submit(
        world.adapter.event("alice", "/share marketing Last words", world.clock.now())
    )
    forget(world, "alice")  # her post's copies are still in the outbox
    before = len(world.adapter.sent)
    await world.worker.drain()
    sent = world.adapter.sent[before:]
    assert titles([s for s in sent if s.target.address == "bob"]) == ["former member in Marketing"]
    assert titles([s for s in sent if s.target.address == "carol"]) == [
        "ehemaliges Mitglied in Marketing"
    ]


async def test_items_search_digests_and_proposals_show_a_former_member(world: World) -> None:
    await setup(world)
    forget(world, "alice")

    items = (await world.say("bob", "/items marketing")).text("bob")
    assert "#1 · former member · " in items
    assert "Feed" not in items
    assert "#1 · ehemaliges Mitglied · " in (await world.say("carol", "/items marketing")).text(
        "carol"
    )

    found = (await world.say("bob", "/search station")).text("bob")
    assert "#1 · Marketing · former member: Poster draft for the station" in found
    assert "#1 · Marketing · 💬 former member: Second version at the station" in found
    assert "@?" not in found
    assert "Feed" not in found
    gefunden = (await world.say("carol", "/search station")).text("carol")
    assert "💬 ehemaliges Mitglied: Second version" in gefunden

    digest = (await world.say("carol", "/digest now")).text("carol")
    assert "ehemaliges Mitglied" in digest
    assert "Memory" not in digest

    # Her proposal was withdrawn by forget (nothing of hers goes public afterwards).
    pending = (await world.say("admin", "/pending")).text("admin")
    assert pending == en("pending.none")


async def test_an_author_who_is_not_forgotten_keeps_the_handle(world: World) -> None:
    await setup(world)
    assert "#1 · @alice · " in (await world.say("bob", "/items marketing")).text("bob")
    assert "💬 @alice: Second version" in (await world.say("bob", "/search station")).text("bob")
    assert "P1 → newsroom · @alice · " in (await world.say("admin", "/pending")).text("admin")
