"""An in-process adapter for tests and benchmarks: events in, messages out, no I/O.

Not a messenger: it has no descriptor and `pinwall run` never builds it. It stays in
adapters/ because bench/ uses it as much as tests/ do, and it is the smallest complete
implementation of bot.ports.MessengerAdapter."""

from __future__ import annotations

import itertools
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from bot.events import (
    Actor,
    ButtonPressed,
    CommandInvoked,
    Conversation,
    Event,
    MessageReceived,
    MessageRefIn,
    Meta,
    ReactionAdded,
    Trust,
)
from bot.message import Capabilities, Delivered, Message, SendResult, Target


@dataclass
class Sent:
    target: Target
    message: Message
    message_id: str


@dataclass
class MemoryAdapter:
    """Records every message it is asked to send; `results` may script send outcomes."""

    platform: str = "memory"
    trust: Trust = "member"
    capabilities: Capabilities = field(default_factory=lambda: Capabilities(buttons=True))
    command_prefix: str = "/"
    # Sends the delivery worker may have in flight at once (None: its policy's). Nothing
    # here leaves the process, so a crash cannot make a send go out twice: a whole batch
    # may be in flight, and its outcomes are recorded in one transaction.
    max_in_flight: int | None = 1000
    sent: list[Sent] = field(default_factory=list)
    results: deque[SendResult] = field(default_factory=deque)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def healthy(self) -> bool:
        return True

    async def send(self, target: Target, message: Message, *, key: str = "") -> SendResult:
        if self.results:
            result = self.results.popleft()
            if not isinstance(result, Delivered):
                return result
        message_id = f"m{next(self._ids)}"
        self.sent.append(Sent(target, message, message_id))
        return Delivered(message_id=message_id, conversation=target.address)

    # --- building events ------------------------------------------------------------

    def meta(
        self, who: str, now: datetime, *, room: str | None = None, language: str | None = None
    ) -> Meta:
        return Meta(
            platform=self.platform,
            event_id=uuid.uuid4().hex,
            actor=Actor(
                platform=self.platform,
                external_id=who,
                username=who,
                display_name=who,
                language=language,
                trust=self.trust,
            ),
            conversation=Conversation(external_id=room or who, direct=room is None, name=room),
            time=now,
        )

    def event(
        self,
        who: str,
        text: str,
        now: datetime,
        *,
        room: str | None = None,
        language: str | None = None,
    ) -> Event:
        """`/cmd args` becomes a command, anything else a plain message."""
        meta = self.meta(who, now, room=room, language=language)
        if text.startswith("/"):
            name, _, args = text[1:].partition(" ")
            return CommandInvoked(meta=meta, name=name, arguments=args, raw=text)
        return MessageReceived(meta=meta, text=text)

    def press(self, who: str, sent: Sent, index: int, now: datetime) -> Event:
        button = sent.message.buttons[index]
        return ButtonPressed(
            meta=self.meta(who, now),
            action=button.action,
            value=button.value,
            message=MessageRefIn(conversation=sent.target.address, message_id=sent.message_id),
        )

    def react(
        self, who: str, sent: Sent, emoji: str, now: datetime, room: str | None = None
    ) -> Event:
        return ReactionAdded(
            meta=self.meta(who, now, room=room),
            emoji=emoji,
            message=MessageRefIn(conversation=sent.target.address, message_id=sent.message_id),
        )

    def to(self, address: str) -> list[Sent]:
        return [s for s in self.sent if s.target.address == address]

    def clear(self) -> None:
        self.sent.clear()

    @staticmethod
    def new_event_id() -> str:
        return uuid.uuid4().hex
