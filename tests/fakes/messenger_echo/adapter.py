"""Echo's adapter: events arrive as JSON on /echo/events, sends are kept in `sent`."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.events import Actor, CommandInvoked, Conversation, Event, MessageReceived, Meta
from bot.message import Capabilities, Delivered, Message, SendResult, Target
from bot.runtime import Hub


class EchoAdapter:
    platform = "echo"
    capabilities = Capabilities(buttons=False)
    command_prefix = "?"

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.sent: list[tuple[Target, Message]] = []
        self.broken: str | None = None  # a test makes Echo unhealthy by saying why
        self.started = False
        self._ids = itertools.count(1)

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False

    def healthy(self) -> bool:
        return self.started and self.broken is None

    def problem(self) -> str | None:
        return self.broken if self.started else "Echo is not running"

    async def send(self, target: Target, message: Message, *, key: str = "") -> SendResult:
        self.sent.append((target, message))
        return Delivered(message_id=f"e{next(self._ids)}", conversation=target.address)

    def routes(self) -> list[BaseRoute]:
        return [Route("/echo/events", self._event, methods=["POST"])]

    async def _event(self, request: Request) -> Response:
        body = await request.json()
        await self.hub.submit(self._translate(body))
        return JSONResponse({"ok": True})

    def _translate(self, body: dict[str, str]) -> Event:
        user, text = body["user"], body["text"]
        meta = Meta(
            platform=self.platform,
            event_id=body["id"],
            actor=Actor(
                platform=self.platform,
                external_id=user,
                username=user,
                display_name=user,
                trust="member",
            ),
            conversation=Conversation(external_id=user, direct=True),
            time=datetime.now(UTC),
        )
        if text.startswith(self.command_prefix):
            name, _, arguments = text[len(self.command_prefix) :].partition(" ")
            return CommandInvoked(meta=meta, name=name, arguments=arguments, raw=text)
        return MessageReceived(meta=meta, text=text)
