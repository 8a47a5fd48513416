"""Matrix's native poll on a real Synapse: the poll card goes as the text card (the tally,
edited in place) and, beside it, an `org.matrix.msc3381.poll.start` that Element shows
with its own buttons. Answers come back as `m.poll.response` (unstable or stable form)
into the one tally, a member's copy follows the votes of others live, and closing ends
the native poll and edits every copy to the final result."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import text

from adapters.matrix import polls as native
from store.db import Database
from tests.adapters.conftest import Human, MatrixPinwall, humans, matrix_running
from tests.adapters.test_announcements import delivered
from tests.fakes.synapse import Synapse


def edit_of(event_id: str, needle: str) -> Any:
    def check(e: dict[str, Any]) -> bool:
        content = e.get("content", {})
        relates = content.get("m.relates_to", {})
        return (
            relates.get("rel_type") == "m.replace"
            and relates.get("event_id") == event_id
            and needle in content.get("m.new_content", {}).get("body", "")
        )

    return check


async def answer(human: Human, room: str, start: str, *ids: str, stable: bool = False) -> None:
    relates = {"rel_type": "m.reference", "event_id": start}
    if stable:
        await human.send(room, "m.poll.response", {"m.relates_to": relates, "m.selections": ids})
    else:
        await human.send(
            room,
            "org.matrix.msc3381.poll.response",
            {"m.relates_to": relates, "org.matrix.msc3381.poll.response": {"answers": list(ids)}},
        )


@asynccontextmanager
async def bridged(
    synapse: Synapse, db: Database, tmp_path: Path
) -> AsyncIterator[tuple[MatrixPinwall, Human, str, str, str]]:
    """A running Pinwall on the real Synapse; Mara (an admin) in filialen, joined from her
    direct chat with the bot, and a room of hers bridged to it. Yields the Pinwall, Mara,
    the bot's user id, the direct chat and the room."""
    account = synapse.register("pinwall")
    bot = account.user_id
    async with (
        humans(synapse, "mara") as [mara],
        matrix_running(
            db, synapse, account, tmp_path, admins=frozenset({("matrix", mara.user_id)})
        ) as mx,
    ):
        dm = await mara.dm(bot)
        room = await mara.room(bot, "Filialen room")
        await mx.on_console("admin", "/group create filialen Filialen")
        await mara.say(dm, "join filialen")
        await mara.bot_said(dm, bot, "Filialen")
        await mara.say(room, "!pw bridge filialen")
        await mara.bot_said(room, bot, "now connected")
        yield mx, mara, bot, dm, room


async def test_a_native_matrix_poll_counts_in_the_one_tally_and_ends_on_close(
    synapse: Synapse, sqlite_db: Database, tmp_path: Path
) -> None:
    bot = synapse.register("pinwall")
    async with (
        humans(synapse, "mara") as [mara],
        matrix_running(sqlite_db, synapse, bot, tmp_path) as mx,
    ):
        dm = await mara.dm(bot.user_id)
        await mx.on_console("admin", "/group create filialen Filialen")
        await mara.say(dm, "join filialen")
        await mara.bot_said(dm, bot.user_id, "Filialen")
        await mx.on_console("alice", "/join filialen")

        await mx.on_console("admin", "/poll filialen Which date? | 12.1. | 19.1.")
        card = await mara.bot_said(dm, bot.user_id, "Which date?")
        start = await mara.wait_for(
            dm,
            lambda e: e.get("sender") == bot.user_id and e.get("type") == native.START_TYPE,
            what="the native poll",
        )
        poll = start["content"][native.START_TYPE]
        assert poll["question"] == {native.TEXT: "Which date?"}
        assert poll["kind"] == native.DISCLOSED
        assert poll["max_selections"] == 1
        assert [(a["id"], a[native.TEXT]) for a in poll["answers"]] == [
            ("1", "12.1."),
            ("2", "19.1."),
        ]
        assert start["content"][native.TEXT] == "Which date?\n1. 12.1.\n2. 19.1."
        # The text card, for clients without polls, still lists the numbered options.
        assert "[2] 2. 19.1." in card["content"]["body"]
        await delivered(sqlite_db, card["event_id"])

        # Mara answers in Element's (unstable) form: her text card shows her vote.
        await answer(mara, dm, start["event_id"], "2")
        await mara.wait_for(dm, edit_of(card["event_id"], "✓ 2. 19.1.: 1"), what="her vote")
        # She changes it in the stable form: one vote, moved.
        await answer(mara, dm, start["event_id"], "1", stable=True)
        await mara.wait_for(dm, edit_of(card["event_id"], "✓ 1. 12.1.: 1"), what="her change")
        with sqlite_db.uow() as uow:
            assert uow.announcements.tally(1) == ({0: 1}, 1)

        # Alice votes on the console: Mara's copy follows live, edited in place.
        await mx.printed_eventually("alice", "Which date?")
        await mx.on_console("alice", "/press 1")
        await mara.wait_for(dm, edit_of(card["event_id"], "12.1.: 2"), what="the live tally")
        # An answer that is no option of the poll changes nothing.
        await answer(mara, dm, start["event_id"], "7")
        await mara.bot_said(dm, bot.user_id, "no longer valid")
        with sqlite_db.uow() as uow:
            assert uow.announcements.tally(1) == ({0: 2}, 2)

        await mx.on_console("admin", "/poll close V1")
        end = await mara.wait_for(
            dm,
            lambda e: e.get("sender") == bot.user_id and e.get("type") == native.END_TYPE,
            what="the end of the native poll",
        )
        assert end["content"]["m.relates_to"] == {
            "rel_type": "m.reference",
            "event_id": start["event_id"],
        }
        final = await mara.wait_for(dm, edit_of(card["event_id"], "Closed."), what="the result")
        body = final["content"]["m.new_content"]["body"]
        assert "🏆 ✓ 1. 12.1.: 2" in body
        assert "[1]" not in body  # no choices left on the closed card
        # A late answer to the ended poll is refused, the tally unchanged.
        await answer(mara, dm, start["event_id"], "2")
        await mara.bot_said(dm, bot.user_id, "closed")
        with sqlite_db.uow() as uow:
            assert uow.announcements.tally(1) == ({0: 2}, 2)


async def test_an_anonymous_poll_is_native_only_in_direct_chats(
    synapse: Synapse, sqlite_db: Database, tmp_path: Path
) -> None:
    async with bridged(synapse, sqlite_db, tmp_path) as (mx, mara, bot, dm, room):
        await mx.on_console("admin", "/poll filialen Secret? | yes | no --anonymous")
        await mara.bot_said(room, bot, "Secret?")
        card = await mara.bot_said(dm, bot, "Secret?")
        start = await mara.wait_for(
            dm, lambda e: e.get("type") == native.START_TYPE, what="the native poll"
        )
        assert start["content"][native.START_TYPE]["kind"] == native.UNDISCLOSED
        assert not [e for e in mara.events.get(room, []) if e.get("type") == native.START_TYPE]
        await delivered(sqlite_db, card["event_id"])
        await answer(mara, dm, start["event_id"], "1")
        await mara.wait_for(dm, edit_of(card["event_id"], "1 person voted"), what="her vote")
        # Her answer is taken back from the direct chat once counted: no trace of it there.
        answered = next(
            e for e in mara.events[dm] if e.get("type") == "org.matrix.msc3381.poll.response"
        )
        await mara.wait_for(
            dm,
            lambda e: (
                e.get("type") == "m.room.redaction"
                and answered["event_id"] in (e.get("redacts"), e.get("content", {}).get("redacts"))
            ),
            what="her answer redacted",
        )
        with sqlite_db.uow() as uow:
            assert uow.announcements.tally(1) == ({0: 1}, 1)
            assert uow.session.execute(text("SELECT person_id FROM poll_votes")).all() == [(None,)]


async def test_show_of_a_poll_on_matrix_shows_the_card_and_starts_no_second_native_poll(
    synapse: Synapse, sqlite_db: Database, tmp_path: Path
) -> None:
    async with bridged(synapse, sqlite_db, tmp_path) as (mx, mara, bot, dm, room):

        def starts(where: str) -> list[dict[str, Any]]:
            return [
                e
                for e in mara.events.get(where, [])
                if e.get("sender") == bot and e.get("type") == native.START_TYPE
            ]

        await mx.on_console("admin", "/poll filialen Which date? | 12.1. | 19.1.")
        card = await mara.bot_said(dm, bot, "Which date?")
        await mara.wait_for(dm, lambda e: bool(starts(dm)), what="the native poll")
        await mara.wait_for(room, lambda e: bool(starts(room)), what="the room's native poll")
        [start] = starts(dm)
        await delivered(sqlite_db, card["event_id"])

        # `show` in the room: the card (with the tally) comes to her direct chat, as
        # `show` answers do, and no second native poll, there or in the room.
        await mara.say(room, "!pw show V1")
        shown = await mara.wait_for(
            dm,
            lambda e: (
                e.get("sender") == bot
                and e.get("type") == "m.room.message"
                and e["event_id"] != card["event_id"]
                and "m.relates_to" not in e.get("content", {})
                and "Which date?" in e.get("content", {}).get("body", "")
            ),
            what="the card `show` opened",
        )
        assert "No votes yet." in shown["content"]["body"]
        await delivered(sqlite_db, shown["event_id"])
        # An answer to the first native poll still counts: the cards show it.
        await answer(mara, dm, start["event_id"], "2")
        await mara.wait_for(dm, edit_of(card["event_id"], "✓ 2. 19.1.: 1"), what="her vote")
        with sqlite_db.uow() as uow:
            assert uow.announcements.tally(1) == ({1: 1}, 1)
        assert len(starts(dm)) == 1
        assert len(starts(room)) == 1


def redaction_of(event_id: str) -> Any:
    def check(e: dict[str, Any]) -> bool:
        return e.get("type") == "m.room.redaction" and event_id in (
            e.get("redacts"),
            e.get("content", {}).get("redacts"),
        )

    return check


async def test_an_anonymous_poll_takes_no_vote_the_room_sees(
    synapse: Synapse, sqlite_db: Database, tmp_path: Path
) -> None:
    """Review finding: in a bridged room an anonymous poll's card took votes as keycap
    reactions and numbers, which everyone in the room sees with the voter's name. Now
    the room's card says to vote in the private chat; a reaction or a number there is
    not counted, taken back where the bot may redact, and answered privately (with the
    card, to vote on there), and the inbox keeps nothing of it."""
    async with bridged(synapse, sqlite_db, tmp_path) as (mx, mara, bot, dm, room):
        # Mara lets the bot moderate her room (as a room admin would): it may redact.
        levels = await mara.client.room_get_state_event(room, "m.room.power_levels")
        content = dict(levels.content)
        content["users"] = {**content.get("users", {}), bot: 50}
        await mara.client.room_put_state(room, "m.room.power_levels", content)

        await mx.on_console("admin", "/poll filialen Secret? | yes | no --anonymous")
        card = await mara.bot_said(room, bot, "Vote in our private chat")
        assert "Secret?" in card["content"]["body"]
        mine = await mara.bot_said(dm, bot, "Secret?")
        assert "Vote in our private chat" not in mine["content"]["body"]
        await delivered(sqlite_db, card["event_id"])
        reaction = await mara.react(room, card["event_id"], "2️⃣")
        told = await mara.bot_said(dm, bot, "your vote in the room was not counted")
        assert "Vote here, in our private chat" in told["content"]["body"]
        await mara.wait_for(room, redaction_of(reaction), what="the reaction taken back")
        number = await mara.say(room, "1", reply_to=card["event_id"])
        await mara.wait_for(room, redaction_of(number), what="the number taken back")
        await mara.wait_for(
            dm,
            lambda e: (
                e.get("sender") == bot
                and "not counted" in e.get("content", {}).get("body", "")
                and e["event_id"] != told["event_id"]
            ),
            what="the second refusal",
        )
        with sqlite_db.uow() as uow:
            assert uow.announcements.tally(1) == ({}, 0)  # neither counted
            inbox = [
                str(r[0]) for r in uow.session.execute(text("SELECT payload FROM inbox_events"))
            ]
        assert not any("poll.vote" in p for p in inbox)  # who pressed what: forgotten
        # In the private chat the same vote counts (and is taken back from there too).
        cards = [
            e
            for e in mara.events.get(dm, [])
            if e.get("sender") == bot and "Secret?" in e.get("content", {}).get("body", "")
        ]
        fresh = cards[-1]
        await delivered(sqlite_db, fresh["event_id"])
        vote = await mara.react(dm, fresh["event_id"], "2️⃣")
        await mara.wait_for(dm, redaction_of(vote), what="her private vote taken back")
        await mara.wait_for(dm, edit_of(fresh["event_id"], "1 person voted"), what="counted")
        with sqlite_db.uow() as uow:
            assert uow.announcements.tally(1) == ({1: 1}, 1)
