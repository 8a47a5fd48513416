"""What the core expects of a messenger adapter."""

from __future__ import annotations

from typing import Protocol

from bot.message import Capabilities, Message, SendResult, Target


class MessengerAdapter(Protocol):
    """One messenger. Inbound, it turns platform events into bot.events and hands them to
    the hub; outbound, it renders neutral messages natively and reports each send."""

    platform: str
    capabilities: Capabilities
    command_prefix: str  # how commands are typed there: "/", "/pinwall ", "!pw "

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, target: Target, message: Message, *, key: str = "") -> SendResult:
        """`key` is unique per outbox message: a platform with idempotent sends (Matrix
        transaction ids) uses it, so that a send retried after a crash posts once."""
        ...

    def healthy(self) -> bool: ...
