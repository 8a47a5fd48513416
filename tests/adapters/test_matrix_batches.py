"""Matrix sync batches against a real Synapse (issue 22): the order of the events within
one batch holds — a 👍 taken back (redacted) before the bot synced again is no like."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from adapters.matrix.inbound import RoomView, translate
from adapters.matrix.sync import _Batch
from store.db import Database
from store.models import Reaction
from tests.adapters.conftest import MatrixPinwall, humans, matrix_running
from tests.adapters.test_native_story import _likes
from tests.fakes.synapse import Synapse


def _event(kind: str, event_id: str, sender: str, content: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": kind,
        "event_id": event_id,
        "sender": sender,
        "origin_server_ts": int(time.time() * 1000),
        "content": content,
        "unsigned": {},
    }


async def test_a_like_taken_back_before_the_bots_next_sync_is_no_like(
    synapse: Synapse, sqlite_db: Database, tmp_path: Path
) -> None:
    bot = synapse.register("pinwall")
    async with (
        humans(synapse, "bob") as [bob],
        matrix_running(sqlite_db, synapse, bot, tmp_path) as mx,
    ):
        me = mx.bot.user_id
        dm = await bob.dm(me)
        await mx.on_console("admin", "/group create marketing Marketing")
        await bob.say(dm, "join marketing")
        await bob.bot_said(dm, me, "You joined Marketing")
        await bob.say(dm, "notify marketing instant")
        await bob.bot_said(dm, me, "instantly")
        await mx.on_console("carla", "/join marketing", "/share marketing Poster")
        post = await bob.bot_said(dm, me, "Poster")

        # the bot away: Bob's 👍 and its redaction come in the same sync batch
        await mx.adapter.stop()
        liked = await bob.react(dm, post["event_id"], "👍")
        await bob.redact(dm, liked)
        sync = mx.adapter.sync
        # Synapse serves the 👍 pruned once its redaction is in; a batch made before
        # that (the sync built while Bob took it back) has it whole, then the redaction:
        # taken in the batch's order, it is given and taken back
        view = RoomView(room_id=dm, direct_with=bob.user_id)
        raced = [
            _event(
                "m.reaction",
                "$raced-like",
                bob.user_id,
                {
                    "m.relates_to": {
                        "rel_type": "m.annotation",
                        "event_id": post["event_id"],
                        "key": "👍",
                    }
                },
            ),
            _event("m.room.redaction", "$raced-redaction", bob.user_id, {"redacts": "$raced-like"}),
        ]
        token = await mx.hub.state.cursor(sync.since_cursor)
        batch = _Batch(str(token))
        for source in raced:
            inbound = translate(source, view, sync.me)
            assert inbound is not None
            batch.items.append((inbound, []))
        assert await sync._record(batch) == 2
        await sync._apply()
        assert _reactions(mx.db) == 0

        # and the batch Synapse itself serves once the bot syncs again
        await mx.adapter.start()
        await _synced_past(mx, token)
        assert _reactions(mx.db) == 0
        # the bot answers in the same direct chat after its restart (the new client had
        # no members of it when its first sync was not a full one: a new chat was opened)
        await bob.say(dm, "Thanks!")
        await bob.bot_said(dm, me, "You're welcome")
        # Bob likes it again, live: one like
        await bob.react(dm, post["event_id"], "👍")
        await _likes(mx, 1)
        assert _reactions(mx.db) == 1


def _reactions(db: Database) -> int:
    with db.uow() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(Reaction)) or 0)


async def _synced_past(mx: MatrixPinwall, token: str | None) -> None:
    """Until the bot recorded a sync batch after the one `token` ends."""
    for _ in range(500):
        if await mx.hub.state.cursor(mx.adapter.sync.since_cursor) != token:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the bot did not sync again")
