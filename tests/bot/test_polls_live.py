"""Members' own poll copies as live cards: edited in place as others vote (an anonymous
poll's only once its results show), edited to the final result when it closes; a
native poll's whole selection (Matrix's m.poll.response); anonymous votes follow an
account merge — no second vote, none lost."""

from __future__ import annotations

from sqlalchemy import text

from adapters.memory import MemoryAdapter, Sent
from bot import polls
from bot.events import ButtonPressed
from tests.bot.conversation import link_accounts, other_messenger, say_on
from tests.bot.test_polls import QUESTION, cards, press
from tests.harness import World


def edits_of(adapter: MemoryAdapter, who: str, card: Sent) -> list[Sent]:
    return [s for s in cards(adapter, who) if s.message.replaces == card.message_id]


async def vote_on(
    world: World, adapter: MemoryAdapter, who: str, question: str, option: int
) -> None:
    card = next(s for s in cards(adapter, who) if question in s.message.text)
    await world.hub.submit(adapter.press(who, card, option, world.clock.now()))
    await world.worker.drain()


async def settle(world: World) -> None:
    """A second later: the coalesced edits of the live cards go."""
    world.clock.advance(2)
    await world.worker.drain()


async def test_members_copies_follow_the_tally_and_end_as_the_result(world: World) -> None:
    telegram = other_messenger(world, "telegram")
    matrix = other_messenger(world, "matrix")
    await world.say("admin", "/group create filialen Filialen")
    await say_on(world, telegram, "tina", "/join filialen")
    await say_on(world, matrix, "max", "/join filialen")
    await world.say("admin", QUESTION)
    (tina_card,) = cards(telegram, "tina")
    (max_card,) = cards(matrix, "max")

    shown = await press(world, telegram, "tina", 0)
    assert shown[-1].message.replaces == tina_card.message_id
    await settle(world)
    # Max, who has not voted, sees Tina's vote on his copy, edited in place ...
    (edit,) = edits_of(matrix, "max", max_card)
    assert "1. 12.1.: 1" in edit.message.text
    assert edit.message.buttons  # still open
    # ... and Tina's copy got no second edit beside the one her vote made.
    assert len(edits_of(telegram, "tina", tina_card)) == 1

    await press(world, matrix, "max", 1)
    await settle(world)
    latest = edits_of(telegram, "tina", tina_card)[-1]
    assert "✓ 1. 12.1.: 1" in latest.message.text  # her own choice stays marked
    assert "2. 19.1.: 1" in latest.message.text

    await world.say("admin", "/poll close V1")
    await settle(world)
    for adapter, who, card in ((telegram, "tina", tina_card), (matrix, "max", max_card)):
        final = edits_of(adapter, who, card)[-1]
        assert "Closed." in final.message.text
        assert not final.message.buttons
        assert "🏆" in final.message.text


async def test_an_anonymous_polls_copies_change_only_once_its_results_show(
    world: World,
) -> None:
    await world.say("admin", "/group create filialen Filialen")
    people = ["alice", "bob", "carol", "dave", "erin", "olga"]
    for who in people:
        await world.say(who, "/join filialen")
    await world.say("admin", QUESTION + " --anonymous")
    (olga_card,) = cards(world.adapter, "olga")
    for n, who in enumerate(people[:4]):
        await press(world, world.adapter, who, n % 3)
        await settle(world)
    assert edits_of(world.adapter, "olga", olga_card) == []  # four votes: nothing to see
    await press(world, world.adapter, "erin", 0)
    await settle(world)
    (edit,) = edits_of(world.adapter, "olga", olga_card)
    assert "1. 12.1.: 3" in edit.message.text
    assert "5 people voted" in edit.message.text


async def test_a_native_selection_replaces_the_voters_choices(world: World) -> None:
    await world.say("admin", "/group create filialen Filialen")
    await world.say("alice", "/join filialen")
    await world.say("admin", QUESTION + " --multi")

    async def choose(value: str) -> None:
        await world.hub.submit(
            ButtonPressed(
                meta=world.adapter.meta("alice", world.clock.now()),
                action=polls.CHOOSE_ACTION,
                value=value,
                message=None,
            )
        )
        await world.worker.drain()

    await choose("1:0,2")
    with world.db.uow() as uow:
        assert uow.announcements.tally(1) == ({0: 1, 2: 1}, 1)
    await choose("1:1")
    with world.db.uow() as uow:
        assert uow.announcements.tally(1) == ({1: 1}, 1)
    await choose("1:")  # taken back
    with world.db.uow() as uow:
        assert uow.announcements.tally(1) == ({}, 0)
    before = world.snapshot()
    await choose("1:0,9")  # no such option: nothing changes
    assert world.snapshot() == before


async def test_anonymous_votes_follow_an_account_merge(world: World) -> None:
    slack = other_messenger(world, "slack")
    await world.say("admin", "/group create filialen Filialen")
    await world.say("alice", "/join filialen")
    await say_on(world, slack, "U1", "/join filialen")  # a second person, @u1, on Slack
    await world.say("admin", "/poll filialen First? | a | b --anonymous")
    await world.say("admin", "/poll filialen Second? | a | b --anonymous")
    # Poll 1: only @u1 voted (her Slack self). Poll 2: both did, differently.
    await vote_on(world, slack, "U1", "First?", 1)
    await vote_on(world, slack, "U1", "Second?", 0)
    await vote_on(world, world.adapter, "alice", "Second?", 1)
    with world.db.uow() as uow:
        assert uow.announcements.tally(1) == ({1: 1}, 1)
        assert uow.announcements.tally(2) == ({0: 1, 1: 1}, 2)

    await link_accounts(world, "alice", slack, "U1")

    with world.db.uow() as uow:
        # Her vote on poll 1 is hers now (kept), on poll 2 one vote remains: her own.
        assert uow.announcements.tally(1) == ({1: 1}, 1)
        assert uow.announcements.tally(2) == ({1: 1}, 1)
        assert uow.session.execute(text("SELECT person_id FROM poll_votes")).all() == [
            (None,),
            (None,),
        ]
    # Voting on poll 1 again, from either messenger, changes her one vote.
    await vote_on(world, world.adapter, "alice", "First?", 0)
    with world.db.uow() as uow:
        assert uow.announcements.tally(1) == ({0: 1}, 1)
    await vote_on(world, slack, "U1", "Second?", 0)
    with world.db.uow() as uow:
        assert uow.announcements.tally(2) == ({0: 1}, 1)
