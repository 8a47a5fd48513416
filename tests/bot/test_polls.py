"""Polls as conversations: one tally across messengers, a changed vote, multiple choice,
an anonymous poll that stores no voter identity and hides results below the minimum,
closing posts the result, a partner sees only their group's polls, and two votes at
the same instant both count."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from sqlalchemy import select, text

from adapters.memory import MemoryAdapter, Sent
from bot import polls
from bot.events import ButtonPressed, MessageRefIn
from store.models import Person, Poll, PollVote
from tests.bot.conversation import de, en, other_messenger, refused, say_on
from tests.bot.test_visibility import _partner_paul
from tests.harness import World

QUESTION = "/poll filialen Which date? | 12.1. | 19.1. | 26.1."


def cards(adapter: MemoryAdapter, who: str) -> list[Sent]:
    return [s for s in adapter.to(who) if "poll" in s.message.meta]


async def press(world: World, adapter: MemoryAdapter, who: str, option: int) -> list[Sent]:
    sent = [s for s in cards(adapter, who) if s.message.buttons][-1]
    before = len(adapter.sent)
    await world.hub.submit(adapter.press(who, sent, option, world.clock.now()))
    await world.worker.drain()
    return [s for s in adapter.sent[before:] if s.target.address == who]


async def test_one_tally_across_messengers_and_a_changed_vote(world: World) -> None:
    telegram = other_messenger(world, "telegram")
    matrix = other_messenger(world, "matrix")
    await world.say("admin", "/group create filialen Filialen")
    await say_on(world, telegram, "tina", "/join filialen")
    await say_on(world, matrix, "max", "/join filialen")
    await say_on(world, telegram, "tina", "/notify filialen instant")
    await say_on(world, matrix, "max", "/notify filialen instant")
    await world.say("admin", QUESTION)
    assert len(cards(telegram, "tina")) == 1
    assert len(cards(matrix, "max")) == 1
    shown = await press(world, telegram, "tina", 0)
    assert "1. 12.1.: 1" in shown[-1].message.text
    shown = await press(world, matrix, "max", 0)
    assert "1. 12.1.: 2" in shown[-1].message.text
    shown = await press(world, telegram, "tina", 2)  # changed her mind
    assert "1. 12.1.: 1" in shown[-1].message.text
    assert "3. 26.1.: 1" in shown[-1].message.text
    world.clock.advance(2)
    await world.worker.drain()
    author = [s for s in cards(world.adapter, "admin") if s.message.replaces]
    assert "2 people voted" in author[-1].message.text
    with world.db.uow() as uow:
        assert uow.announcements.tally(1) == ({0: 1, 2: 1}, 2)
    out = await world.say("admin", "/poll close V1")
    result = [s for s in out.to("admin") if s.message.title and "Result" in s.message.title]
    assert "🏆 1. 12.1.: 1" in result[-1].message.text


async def test_multiple_choice_toggles(world: World) -> None:
    await world.say("admin", "/group create filialen Filialen")
    await world.say("alice", "/join filialen")
    await world.say("alice", "/notify filialen instant")
    await world.say("admin", QUESTION + " --multi")
    await press(world, world.adapter, "alice", 0)
    await press(world, world.adapter, "alice", 1)
    shown = await press(world, world.adapter, "alice", 0)  # taken back
    assert "1. 12.1.: 0" in shown[-1].message.text
    assert "✓ 2. 19.1.: 1" in shown[-1].message.text


async def test_an_anonymous_poll_stores_no_voter_identity(world: World) -> None:
    await world.say("admin", "/group create filialen Filialen")
    people = ["alice", "bob", "carol", "dave", "erin"]
    for who in people:
        await world.say(who, "/join filialen")
        await world.say(who, "/notify filialen instant")
    await world.say("admin", QUESTION + " --anonymous")
    for n, who in enumerate(people[:4]):
        world.clock.advance(60)
        shown = await press(world, world.adapter, who, n % 3)
        assert ": 1" not in shown[-1].message.text  # hidden below five votes
        assert shown[-1].message.replaces  # her card, in place
    shown = await press(world, world.adapter, "erin", 0)
    assert "1. 12.1.: 3" in shown[-1].message.text
    again = await press(world, world.adapter, "erin", 0)  # twice counts once
    assert "5 people voted" in again[-1].message.text
    with world.db.uow() as uow:
        ids = {str(p.id) for p in uow.session.scalars(select(Person))}
        handles = {p.handle for p in uow.session.scalars(select(Person))}
        rows = uow.session.execute(text("SELECT * FROM poll_votes")).all()
        assert len(rows) == 5
        for row in rows:
            vote = dict(row._mapping)
            assert vote["person_id"] is None
            assert vote["voter"] not in ids
            assert not any(h in vote["voter"] for h in handles)
            assert not vote["voter"].startswith("p")
    # nor anywhere else: the audit log has no vote, the inbox no event of a vote (who
    # pressed what), no stored message marks a choice, no vote has the time it was cast
    with world.db.uow() as uow:
        actions = [r[0] for r in uow.session.execute(text("SELECT action FROM audit_log"))]
        assert not any("vote" in a for a in actions)
        inbox = [str(r[0]) for r in uow.session.execute(text("SELECT payload FROM inbox_events"))]
        assert not any(polls.VOTE_ACTION in p for p in inbox)
        assert sum("anonymous vote" in p for p in inbox) == 6
        outbox = [str(r[0]) for r in uow.session.execute(text("SELECT payload FROM outbox"))]
        assert not any("✓" in p or "\\u2713" in p for p in outbox)
        times = {r[0] for r in uow.session.execute(text("SELECT created_at FROM poll_votes"))}
        assert len(times) == 1


async def test_a_partner_sees_only_their_groups_polls(world: World) -> None:
    await _partner_paul(world)
    await world.say("admin", "/poll agencies Which agency? | A | B")
    await world.say("admin", "/poll franchise Which date? | Mon | Tue")
    text = await refused(world, "paul", "/poll close V1")
    assert "no poll V1" in text
    await refused(world, "paul", "/poll agencies Hack? | x | y")
    # the poll of their group they may vote on
    press_other = ButtonPressed(
        meta=world.adapter.meta("paul", world.clock.now()),
        action=polls.VOTE_ACTION,
        value="1:0",
        message=None,
    )
    before = world.snapshot()
    await world.hub.submit(press_other)
    await world.worker.drain()
    assert world.snapshot() == before
    with world.db.uow() as uow:
        assert uow.announcements.tally(1) == ({}, 0)
    found = await world.say("paul", "/search agency")
    assert "Which agency" not in found.text("paul")
    # `show` opens a poll by its V number too: their group's, not the other.
    shown = await world.say("paul", "/show v2")
    [card] = shown.to("paul")
    assert "Which date?" in card.message.text
    assert card.message.meta["native_poll"]["view"]  # a look, not a second copy
    text = await refused(world, "paul", "/show V1")
    assert "no poll V1" in text


async def test_two_votes_at_the_same_instant_both_count(world: World) -> None:
    await world.say("admin", "/group create filialen Filialen")
    await world.say("alice", "/join filialen")
    await world.say("bob", "/join filialen")
    await world.say("admin", QUESTION)
    with world.db.uow() as uow:
        voters = [p.id for p in uow.session.scalars(select(Person)) if p.handle in ("alice", "bob")]
    # On PostgreSQL both transactions are open at once when they vote; SQLite takes one
    # writer at a time (its transactions begin immediately), so there they follow.
    together = world.db.backend == "postgresql"
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []
    now = datetime.now(UTC)

    def vote(person_id: int) -> None:
        try:
            with world.db.uow() as uow:
                uow.announcements.poll(1)
                if together:
                    barrier.wait(timeout=5)
                uow.announcements.vote(1, f"p{person_id}", 0, 1, now, person_id)
                uow.commit()
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=vote, args=(p,)) for p in voters]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with world.db.uow() as uow:
        assert uow.announcements.tally(1) == ({1: 2}, 2)
        assert len(uow.session.scalars(select(PollVote)).all()) == 2
        assert uow.session.scalars(select(Poll)).one().closed_at is None


async def test_a_poll_is_found_by_search_and_opened_by_show(world: World) -> None:
    await world.say("admin", "/group create filialen Filialen")
    await world.say("alice", "/join filialen")
    await world.say("admin", "/umfrage filialen Welcher Termin für das Regionaltreffen? | Mo | Di")
    found = await world.say("alice", "/search Regionaltreffen")
    assert "#1" in found.text("alice")
    shown = await world.say("alice", "/show #1")
    card = shown.to("alice")[-1]
    assert [b.label for b in card.message.buttons] == ["1. Mo", "2. Di"]
    voted = await world.press("alice", card, 1)
    assert "✓ 2. Di: 1" in voted.text("alice")


async def test_show_of_an_anonymous_poll_marks_no_choice_in_any_stored_message(
    world: World,
) -> None:
    """Review finding: `show` marked the asker's own choice on an anonymous poll, and
    that answer was stored in the outbox ("✓ 1. 12.1."): alice's vote, in plain text."""
    await world.say("admin", "/group create filialen Filialen")
    people = ["alice", "bob", "carol", "dave", "erin"]
    for who in people:
        await world.say(who, "/join filialen")
        await world.say(who, "/notify filialen instant")
    await world.say("admin", QUESTION + " --anonymous")
    for n, who in enumerate(people):
        await press(world, world.adapter, who, n % 2)  # alice: 12.1.
    for lang, cmd in (("en", "/show #1"), ("de", "/zeigen #1")):
        await world.say("alice", f"/settings language {lang}")
        shown = (await world.say("alice", cmd)).to("alice")[-1].message
        assert "1. 12.1.: 3" in shown.text  # the tally shows (five voted) ...
        assert ("Umfrage" in shown.title) == (lang == "de")
        assert "✓" not in shown.text  # ... but not what she chose
    with world.db.uow() as uow:
        outbox = [str(r[0]) for r in uow.session.execute(text("SELECT payload FROM outbox"))]
    assert any("12.1.: 3" in p for p in outbox)
    assert not any("✓" in p or "\\u2713" in p for p in outbox)


async def _press_in_room(
    world: World, adapter: MemoryAdapter, who: str, room: str, value: str
) -> list[Sent]:
    card = [s for s in adapter.to(room) if "poll" in s.message.meta][-1]
    before = len(adapter.sent)
    await world.hub.submit(
        ButtonPressed(
            meta=adapter.meta(who, world.clock.now(), room=room),
            action=polls.VOTE_ACTION,
            value=value,
            message=MessageRefIn(conversation=room, message_id=card.message_id),
        )
    )
    await world.worker.drain()
    return adapter.sent[before:]


async def test_an_anonymous_poll_refuses_a_vote_the_room_would_see(world: World) -> None:
    """Review finding: an anonymous poll counted a vote given in a Matrix room, where
    the reaction or number shows who chose what. Where a press in a room is seen by the
    room (Matrix), the room's card says to vote privately, the vote is not counted and
    the voter told so privately, in their language, with the card to vote on; where a
    press is the bot's alone (Telegram's buttons), a vote in a room counts."""
    matrix = other_messenger(world, "matrix")
    telegram = other_messenger(world, "telegram")
    await world.say("admin", "/group create filialen Filialen")
    for adapter, who in ((matrix, "mara"), (telegram, "tina")):
        await say_on(world, adapter, who, "/join filialen")
    await say_on(world, matrix, "mara", "/settings language de")
    with world.db.uow() as uow:
        group = uow.groups.by_slug("filialen")
        assert group is not None
        for adapter, room in ((matrix, "!mx-room"), (telegram, "tg-room")):
            uow.rooms.get_or_create(adapter.platform, room, name=room, now=world.clock.now())
            found = uow.rooms.find(adapter.platform, room)
            assert found is not None
            found.group_id = group.id
        uow.commit()
    await world.say("admin", QUESTION + " --anonymous")
    [mx_card] = [s for s in matrix.to("!mx-room") if "poll" in s.message.meta]
    assert en("poll.vote_in_private") in mx_card.message.text
    [tg_card] = [s for s in telegram.to("tg-room") if "poll" in s.message.meta]
    assert en("poll.vote_in_private") not in tg_card.message.text
    assert en("poll.vote_in_private") not in cards(matrix, "mara")[-1].message.text

    sent = await _press_in_room(world, matrix, "mara", "!mx-room", "1:1")
    assert [s.target.address for s in sent] == ["mara", "mara"]  # nothing to the room
    told, card = sent
    assert de("poll.voted_in_room", ref="V1") in told.message.text
    assert de("poll.vote_here") in told.message.text
    assert "Umfrage V1" in (card.message.title or "")
    assert card.message.buttons  # to vote on, here
    with world.db.uow() as uow:
        assert uow.announcements.tally(1) == ({}, 0)
        inbox = [str(r[0]) for r in uow.session.execute(text("SELECT payload FROM inbox_events"))]
    assert not any(polls.VOTE_ACTION in p for p in inbox)
    await press(world, matrix, "mara", 1)  # in her private chat: counted
    await _press_in_room(world, telegram, "tina", "tg-room", "1:0")  # a button: unseen
    with world.db.uow() as uow:
        assert uow.announcements.tally(1) == ({0: 1, 1: 1}, 2)


async def test_one_anonymous_vote_cannot_be_read_off_two_tallies(world: World) -> None:
    """Review finding: once an anonymous poll's results showed, each vote changed the
    shown tally by one (a `show` before and after a colleague voted gave their choice),
    and every live card was edited at that moment. Now the tally shows in steps: the
    first at five voters, the next once five more (different) people voted; between,
    neither `show` nor any card changes, and the voter's own card only says the vote
    is in."""
    await world.say("admin", "/group create filialen Filialen")
    people = ["alice", "bob", "carol", "dave", "erin", "frank", "gina", "hugo", "ida", "jan"]
    for who in people:
        await world.say(who, "/join filialen")
        await world.say(who, "/notify filialen instant")
    await world.say("admin", QUESTION + " --anonymous")
    for n, who in enumerate(people[:5]):
        world.clock.advance(60)
        await press(world, world.adapter, who, n % 2)  # 3 x 12.1., 2 x 19.1.
    before = (await world.say("alice", "/show #1")).to("alice")[-1].message.text
    assert "1. 12.1.: 3" in before
    assert "3. 26.1.: 0" in before
    assert "5 people voted" in before

    world.clock.advance(600)
    with world.db.uow() as uow:
        rows_before = uow.session.execute(text("SELECT count(*) FROM outbox")).scalar_one()
    mine = await press(world, world.adapter, "frank", 2)  # frank's secret choice: 26.1.
    assert "3. 26.1.: 0" in mine[-1].message.text  # his own card: the same step ...
    assert en("poll.noted") in mine[-1].message.text  # ... and that his vote is in
    with world.db.uow() as uow:
        new = uow.session.execute(
            text("SELECT target FROM outbox ORDER BY id"),
        ).all()[rows_before:]
    assert [r.target for r in new] == ["frank"]  # no live card edited at his vote
    after = (await world.say("alice", "/show #1")).to("alice")[-1].message.text
    assert after == before  # nothing to read off

    for who in people[6:9]:  # three more: still the same step
        await press(world, world.adapter, who, 2)
    assert (await world.say("alice", "/show #1")).to("alice")[-1].message.text == before
    await press(world, world.adapter, "jan", 2)  # the fifth since the step
    stepped = (await world.say("alice", "/show #1")).to("alice")[-1].message.text
    assert "3. 26.1.: 5" in stepped
    assert "10 people voted" in stepped
    for option in (0, 1, 0, 1, 2):  # one person's changes, however many, make no step
        await press(world, world.adapter, "alice", option)
    assert (await world.say("alice", "/show #1")).to("alice")[-1].message.text == stepped
    # Closing shows the true tally.
    await world.say("admin", "/poll close V1")
    world.clock.advance(2)
    await world.worker.drain()
    final = [s for s in cards(world.adapter, "admin") if s.message.replaces][-1]
    assert "🏆 3. 26.1.: 6" in final.message.text  # alice's last change counts
