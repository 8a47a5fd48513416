"""Live cards: where a card whose count changes went, and when it may be edited next —
the part of AnnouncementRepository (uow.announcements) that bot.live uses."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update

from store.models import LiveCard, OutboxMessage, OutboxStatus, table_of
from store.repositories.base import Repo
from store.repositories.outbox import queue_one


class LiveCardMethods(Repo):
    def add_card(
        self,
        kind: str,
        ref_id: int,
        *,
        platform: str,
        target_kind: str,
        target: str,
        person_id: int | None,
        payload: dict[str, object],
        now: datetime,
    ) -> LiveCard:
        """Queues the card (rendered when sent) and remembers where it went."""
        message = queue_one(
            self.s,
            platform=platform,
            target_kind=target_kind,
            target=target,
            person_id=person_id,
            payload=payload,
            now=now,
        )
        card = LiveCard(
            kind=kind,
            ref_id=ref_id,
            outbox_id=message.id,
            platform=platform,
            target_kind=target_kind,
            target=target,
            person_id=person_id,
            next_edit_at=None,
            created_at=now,
        )
        self.s.add(card)
        self.s.flush()
        return card

    def add_cards(
        self,
        kind: str,
        ref_id: int,
        targets: Sequence[tuple[str, str, str, int | None]],
        payload: dict[str, object],
        now: datetime,
    ) -> None:
        """Many cards at once ((platform, target kind, target, person) each): their outbox
        rows in one flush (SQLAlchemy batches the INSERTs and reads the ids back), then
        the cards in another — a poll's copy for each of a thousand members."""
        messages = [
            OutboxMessage(
                created_at=now,
                platform=platform,
                target_kind=target_kind,
                target=target,
                person_id=person_id,
                payload=payload,
                status=OutboxStatus.PENDING,
                attempts=0,
                next_attempt_at=now,
            )
            for platform, target_kind, target, person_id in targets
        ]
        self.s.add_all(messages)
        self.s.flush()
        self.s.add_all(
            LiveCard(
                kind=kind,
                ref_id=ref_id,
                outbox_id=message.id,
                platform=message.platform,
                target_kind=message.target_kind,
                target=message.target,
                person_id=message.person_id,
                next_edit_at=None,
                created_at=now,
            )
            for message in messages
        )
        self.s.flush()

    def cards(self, kind: str, ref_id: int) -> list[tuple[LiveCard, str | None]]:
        """The cards with the platform message id of each where it was delivered."""
        rows = self.s.execute(
            select(LiveCard, OutboxMessage.platform_message_id)
            .outerjoin(OutboxMessage, OutboxMessage.id == LiveCard.outbox_id)
            .where(LiveCard.kind == kind, LiveCard.ref_id == ref_id)
            .order_by(LiveCard.id)
        ).all()
        return [(card, message_id) for card, message_id in rows]

    def card(self, card_id: int) -> LiveCard | None:
        return self.s.get(LiveCard, card_id)

    def card_sent_by(self, outbox_id: int) -> LiveCard | None:
        return self.s.scalar(select(LiveCard).where(LiveCard.outbox_id == outbox_id))

    def card_message_id(self, card: LiveCard) -> str | None:
        if card.outbox_id is None:
            return None
        return self.s.scalar(
            select(OutboxMessage.platform_message_id).where(OutboxMessage.id == card.outbox_id)
        )

    def claim_edits(
        self, card_ids: Sequence[int], now: datetime, every: float
    ) -> dict[int, datetime]:
        """When each card's next edit may go, taking that slot, in two statements however
        many cards: now where its last edit is `every` seconds ago or more (or there was
        none), a second from now where it is more recent; a card with an edit queued for
        later already is left out (that edit will show this change too). Each UPDATE
        re-checks its condition on the row, so two claims at once take a slot once."""
        if not card_ids:
            return {}
        cards = table_of(LiveCard)
        gap = timedelta(seconds=every)
        ids = list(card_ids)
        claimed: dict[int, datetime] = {}
        # The recent ones first: once the others are set to now, they would match too.
        for condition, due in (
            (and_(cards.c.next_edit_at > now - gap, cards.c.next_edit_at <= now), now + gap),
            (or_(cards.c.next_edit_at.is_(None), cards.c.next_edit_at <= now - gap), now),
        ):
            done = self._run(
                update(cards)
                .where(cards.c.id.in_(ids), condition)
                .values(next_edit_at=due)
                .returning(cards.c.id)
            )
            claimed.update((int(row[0]), due) for row in done)
        self._expire(LiveCard, list(claimed))
        return claimed
