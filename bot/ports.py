"""What the core expects of a messenger adapter."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

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


# An adapter may also say what is wrong when it is not healthy, for /healthz:
#     def problem(self) -> str | None: ...   (None while it receives and sends)
# (optional, as `routes()` is: an adapter without it is reported "not healthy").


def task_problem(task: asyncio.Task[Any] | None, what: str) -> str | None:
    """Why the loop run by `task` (an adapter's receiving loop) does not run; None while
    it does. A loop that ended says how: "Telegram polling stopped: KeyError: 'date'"."""
    if task is None:
        return f"{what} is not running"
    if not task.done():
        return None
    if task.cancelled():
        return f"{what} stopped (cancelled)"
    error = task.exception()
    return f"{what} stopped: {type(error).__name__}: {error}" if error else f"{what} stopped"
