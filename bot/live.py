"""Live cards: messages whose count changes (an announcement's confirmations on its
author's card, a poll's tally), edited in place as it changes — at most once a second
per card, however fast the confirmations or votes come (the edit is rendered when it
goes, so it shows every change before it).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.delivery import OutboxRow
from bot.message import Message, Target
from store.uow import UnitOfWork

if TYPE_CHECKING:
    from bot.core import Core

EDIT_EVERY = 1.0  # seconds between two edits of one card


def refresh(
    core: Core,
    uow: UnitOfWork,
    kind: str,
    ref_id: int,
    payload: dict[str, Any],
    now: datetime,
    *,
    skip: tuple[str, int] | None = None,
) -> int:
    """Queues an edit of each delivered card of this thing, unless one is queued already
    (it will show this change too); returns how many were queued. A card not delivered
    yet needs none: it is rendered with the count of when it goes. `skip`: (platform,
    person) whose direct-chat card the change itself shows again (a voter's)."""
    delivered = [
        card
        for card, message_id in uow.announcements.cards(kind, ref_id)
        if message_id is not None
        and not (card.target_kind == "dm" and (card.platform, card.person_id) == skip)
    ]
    claimed = uow.announcements.claim_edits([c.id for c in delivered], now, EDIT_EVERY)
    rows: list[dict[str, Any]] = []
    for card in delivered:
        due = claimed.get(card.id)
        if due is None:
            continue
        rows.append(
            {
                "created_at": now,
                "platform": card.platform,
                "target_kind": card.target_kind,
                "target": card.target,
                "person_id": card.person_id,
                "item_id": None,
                "payload": {**payload, "card": card.id},
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": due,
            }
        )
    uow.outbox.insert_many(rows)
    return len(rows)


def as_edit(uow: UnitOfWork, row: OutboxRow, message: Message) -> Message | None:
    """The card as the row carries it: the first copy as it is, an edit in place of the
    delivered card (nothing where that cannot be edited any more)."""
    card_id = row.payload.get("card")
    if card_id is None:
        return message
    card = uow.announcements.card(int(card_id))
    message_id = uow.announcements.card_message_id(card) if card is not None else None
    if message_id is None:
        return None
    return replace(message, replaces=message_id, edit_only=True)


def enqueue_ref(
    uow: UnitOfWork, target: Target, payload: dict[str, Any], person_id: int | None, now: datetime
) -> None:
    """A message that references something (a poll, its result): rendered when it is
    sent, by the renderer of its kind (Handlers.renderers)."""
    uow.outbox.insert_many(
        [
            {
                "created_at": now,
                "platform": target.platform,
                "target_kind": target.kind,
                "target": target.address,
                "person_id": person_id,
                "item_id": None,
                "payload": payload,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
            }
        ]
    )
