"""Issue 18 on Matrix, against a real Synapse: personal answers said in a shared room go to
a direct chat, and a link code someone else redeems links nothing until its owner says so."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from bot.message import Delivered, Message, Target
from store.db import Database
from tests.adapters.conftest import humans, matrix_running
from tests.adapters.test_matrix import prompt_saved
from tests.fakes.synapse import Synapse

T = TypeVar("T")


def body(event: dict[str, Any]) -> str:
    return str(event.get("content", {}).get("body", ""))


async def eventually(find: Callable[[], T | None], within: float = 20.0, *, what: str) -> T:
    deadline = asyncio.get_running_loop().time() + within
    while (found := find()) is None:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no {what} within {within} s")
        await asyncio.sleep(0.05)
    return found


async def test_a_link_code_asked_for_in_a_room_reaches_its_owner_alone(
    synapse: Synapse, sqlite_db: Database, tmp_path: Path
) -> None:
    bot = synapse.register("pinwall")
    async with (
        humans(synapse, "boss", "mallory") as [boss, mallory],
        matrix_running(sqlite_db, synapse, bot, tmp_path) as mx,
    ):
        boss.accept_invites = True
        room = await boss.room(bot.user_id, name="Lobby")
        await boss.client.room_invite(room, mallory.user_id)
        await mallory.client.join(room)
        await boss.joined(room, mallory.user_id)

        for line in ("!pw link", "!pw whoami", "!pw groups"):
            await boss.say(room, line)
        await boss.wait_for(
            room,
            lambda e: (
                e.get("sender") == bot.user_id and "answered you in our private chat" in body(e)
            ),
            what="the line that the answer went elsewhere",
        )
        # The answers arrive in a direct chat the bot opens with the boss.
        code_event = await eventually(
            lambda: next(
                (
                    e
                    for dm in boss.invited_to
                    for e in boss.events.get(dm, [])
                    if "Your link code" in body(e)
                ),
                None,
            ),
            what="the link code in a direct chat",
        )
        match = re.search(r"Your link code: ([A-Za-z0-9]{10})", body(code_event))
        assert match
        code = match.group(1)
        room_bodies = await eventually(
            lambda: (
                bodies
                if len(bodies := [body(e) for e in boss.from_bot(room, bot.user_id)]) == 3
                else None
            ),
            what="a line in the room for each of the three commands",
        )
        assert all("answered you in our private chat" in b for b in room_bodies)

        # Mallory, a member in the same room, redeems it: the boss is asked, and nothing
        # is linked.
        await mallory.say(room, "!pw help")
        await boss.bot_said(room, bot.user_id, "!pw")
        await mallory.say(room, f"!pw link {code}")
        dm = boss.invited_to[0]
        question = await boss.bot_said(dm, bot.user_id, "Is it yours?")
        assert mallory.user.localpart in body(question)
        with sqlite_db.uow() as uow:
            account = uow.people.account("matrix", mallory.user_id)
            owner = uow.people.account("matrix", boss.user_id)
            assert account is not None
            assert owner is not None
            assert account.person_id != owner.person_id
        # The boss says no with a keycap: no reaction of the bot offers it, but a
        # person's 2️⃣ still stands for the second button.
        await prompt_saved(mx, dm, question["event_id"])
        await boss.react(dm, question["event_id"], "2️⃣")
        await boss.wait_for(
            dm,
            lambda e: (
                "Not linked" in str(e.get("content", {}).get("m.new_content", {}))
                or "Not linked" in body(e)
            ),
            what="the outcome of the question",
        )
        with sqlite_db.uow() as uow:
            account = uow.people.account("matrix", mallory.user_id)
            owner = uow.people.account("matrix", boss.user_id)
            assert account is not None
            assert owner is not None
            assert account.person_id != owner.person_id


async def test_a_direct_chat_someone_else_joined_gets_no_private_answer_any_more(
    synapse: Synapse, sqlite_db: Database, tmp_path: Path
) -> None:
    """Review finding: boss invites mallory into her direct chat with the bot; boss's
    link code and every private answer went on landing there, where mallory reads them.
    Now a direct chat counts only while the bot and the person are alone in it (joined
    or invited): with a third person it is a room, forgotten as a direct chat (the bot
    stays), and what is for the boss alone goes to a new direct chat."""
    bot = synapse.register("pinwall")
    async with (
        humans(synapse, "boss", "mallory") as [boss, mallory],
        matrix_running(sqlite_db, synapse, bot, tmp_path) as mx,
    ):
        boss.accept_invites = True
        dm = await boss.dm(bot.user_id)
        await boss.say(dm, "whoami")
        await boss.bot_said(dm, bot.user_id, "")  # the DM is known to Pinwall now
        with sqlite_db.uow() as uow:
            assert uow.direct_chats.newest_for("matrix", boss.user_id) == dm
        await boss.client.room_invite(dm, mallory.user_id)
        await mallory.client.join(dm)
        await boss.joined(dm, mallory.user_id)

        def newest() -> str | None:
            with sqlite_db.uow() as uow:
                return uow.direct_chats.newest_for("matrix", boss.user_id)

        await eventually(lambda: True if newest() is None else None, what="the DM forgotten")

        await boss.say(dm, "!pw link")  # in what is now a room of three
        await boss.wait_for(
            dm,
            lambda e: (
                e.get("sender") == bot.user_id and "answered you in our private chat" in body(e)
            ),
            what="the line that the answer went elsewhere",
        )
        code_event = await eventually(
            lambda: next(
                (
                    e
                    for room in boss.invited_to
                    for e in boss.events.get(room, [])
                    if "Your link code" in body(e)
                ),
                None,
            ),
            what="the link code in a new direct chat",
        )
        new_dm = next(r for r in boss.invited_to if code_event in boss.events.get(r, []))
        assert new_dm != dm
        assert newest() == new_dm
        assert not any("Your link code" in body(e) for e in boss.events.get(dm, []))
        assert not any("Your link code" in body(e) for e in mallory.events.get(dm, []))

        # The sending side checks too: were the shared room still taken for her direct
        # chat (a send racing the sync that saw mallory come in), it is forgotten, and
        # the message goes to a direct chat with her alone.
        await mx.hub.state.add_direct_chat("matrix", dm, boss.user_id)
        mx.adapter.sender._dm_rooms[boss.user_id] = dm
        sent = await mx.adapter.send(
            Target("matrix", "dm", boss.user_id), Message(text="for the boss alone")
        )
        assert isinstance(sent, Delivered)
        assert sent.conversation == new_dm
        assert newest() == new_dm
        await boss.bot_said(new_dm, bot.user_id, "for the boss alone")
        assert not any("for the boss alone" in body(e) for e in mallory.events.get(dm, []))
