"""The console adapter: a real, local Pinwall in the terminal, scriptable through stdin.

    /as NAME        speak as NAME (created as a member on first use)
    /room NAME      move into console room NAME;  /dm  back to the direct chat
    /press N        press button N of the newest message with buttons here
    /react EMOJI    react to the newest message received here
    /wait SECONDS   let time pass
    /quit           leave (or end of input)

Anything else starting with / is a Pinwall command; other lines are plain messages.
Bot messages print as `[NAME] ...` (a direct chat) or `[#ROOM] ...` (a room), with
continuation lines indented by two spaces and buttons as `[1] Label` choices.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

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
)
from bot.i18n import Translator
from bot.markup import to_plain
from bot.message import Button, Capabilities, Delivered, Message, SendResult, Target
from bot.runtime import Hub

log = logging.getLogger(__name__)

PLATFORM = "console"
NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def render_lines(message: Message) -> list[str]:
    """The neutral message as plain text lines (buttons as numbered choices)."""
    body = to_plain(message.text).split("\n") if message.text else []
    if message.title:
        title = to_plain(message.title)
        first = f"{title}: {body.pop(0)}" if body else title
    else:
        first = body.pop(0) if body else ""
    lines = [first, *body]
    lines += [f"{to_plain(f.label)}: {to_plain(f.value)}" for f in message.fields]
    lines += [f"📎 {f.name}" for f in message.files]
    if message.buttons:
        lines.append("  ".join(f"[{i}] {b.label}" for i, b in enumerate(message.buttons, 1)))
    return lines


class ConsoleAdapter:
    platform = PLATFORM
    capabilities = Capabilities(buttons=False, reactions=True, max_text=100_000)
    command_prefix = "/"

    def __init__(
        self,
        hub: Hub,
        *,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        interactive: bool | None = None,
        history: Path | None = None,
        first_person: str = "admin",
        language: str = "en",
    ) -> None:
        self.hub = hub
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self.interactive = self.stdin.isatty() if interactive is None else interactive
        self.history = history
        self.person = first_person
        self.room: str | None = None
        self.t = Translator(language)
        self._ids = itertools.count(1)
        # per conversation: the newest message id, and the newest buttons with their message
        self._last: dict[tuple[str, str], str] = {}
        self._buttons: dict[tuple[str, str], tuple[str, tuple[Button, ...]]] = {}
        self._stopped = asyncio.Event()

    # --- outbound -----------------------------------------------------------------

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self._stopped.set()

    def healthy(self) -> bool:
        return True

    async def send(self, target: Target, message: Message, *, key: str = "") -> SendResult:
        label = f"#{target.address}" if target.kind == "room" else target.address
        lines = render_lines(message)
        text = f"[{label}] {lines[0]}" + "".join(f"\n  {line}" for line in lines[1:])
        self._print(text)
        message_id = f"c{next(self._ids)}"
        conv = (target.kind, target.address)
        self._last[conv] = message_id
        if message.buttons:
            self._buttons[conv] = (message_id, message.buttons)
        return Delivered(message_id=message_id, conversation=target.address)

    def _print(self, text: str) -> None:
        print(text, file=self.stdout, flush=True)

    def _hint(self, key: str, **params: object) -> None:
        """The console's own remarks (not bot messages) go to stderr."""
        print(to_plain(self.t(key, **params)), file=sys.stderr, flush=True)

    # --- inbound ------------------------------------------------------------------

    @property
    def _conversation(self) -> tuple[str, str]:
        return ("room", self.room) if self.room else ("dm", self.person)

    def _meta(self) -> Meta:
        kind, address = self._conversation
        return Meta(
            platform=PLATFORM,
            event_id=uuid.uuid4().hex,
            actor=Actor(
                platform=PLATFORM,
                external_id=self.person,
                username=self.person,
                display_name=self.person,
                trust="local",
            ),
            conversation=Conversation(external_id=address, direct=kind == "dm", name=address),
            time=self.hub.clock.now(),
        )

    def event_for(self, line: str) -> Event | None:
        """Turns one input line into an event, or handles a console command itself."""
        line = line.strip()
        if not line:
            return None
        if not line.startswith("/"):
            return MessageReceived(meta=self._meta(), text=line)
        word, _, rest = line[1:].partition(" ")
        word, rest = word.lower(), rest.strip()
        match word:
            case "as":
                if not NAME.match(rest):
                    self._hint("console.bad_name")
                    return None
                self.person = rest.lower()
                return None
            case "room":
                if not NAME.match(rest.lstrip("#")):
                    self._hint("console.bad_room")
                    return None
                self.room = rest.lstrip("#").lower()
                return None
            case "dm":
                self.room = None
                return None
            case "press":
                return self._press(rest)
            case "react":
                return self._react(rest)
            case _:
                return CommandInvoked(meta=self._meta(), name=word, arguments=rest, raw=line)

    def _press(self, rest: str) -> Event | None:
        found = self._buttons.get(self._conversation)
        if found is None:
            self._hint("console.no_buttons")
            return None
        message_id, buttons = found
        if not rest.isdigit() or not 1 <= int(rest) <= len(buttons):
            self._hint("console.bad_button", count=len(buttons))
            return None
        button = buttons[int(rest) - 1]
        return ButtonPressed(
            meta=self._meta(),
            action=button.action,
            value=button.value,
            message=MessageRefIn(conversation=self._conversation[1], message_id=message_id),
        )

    def _react(self, rest: str) -> Event | None:
        message_id = self._last.get(self._conversation)
        if message_id is None or not rest:
            self._hint("console.nothing_to_react")
            return None
        return ReactionAdded(
            meta=self._meta(),
            emoji=rest.split()[0],
            message=MessageRefIn(conversation=self._conversation[1], message_id=message_id),
        )

    async def handle_line(self, line: str) -> bool:
        """Processes one line; False when the console should stop."""
        stripped = line.strip()
        if stripped.lower() in ("/quit", "/exit"):
            return False
        if stripped.lower().startswith("/wait"):
            arg = stripped[5:].strip() or "1"
            try:
                seconds = float(arg)
            except ValueError:
                self._hint("console.bad_wait")
                return True
            await asyncio.sleep(max(0.0, min(seconds, 3600.0)))
            return True
        event = self.event_for(line)
        if event is not None:
            await self.hub.submit(event)
        return True

    async def run(self, drain: Callable[[], object]) -> None:
        """Reads until end of input. Without a terminal, each line is processed to the
        end, its deliveries included (`drain`), before the next is read."""
        if self.interactive:
            await self._run_interactive(drain)
            return
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def reader() -> None:  # a daemon thread: a blocked read never holds up the exit
            for raw in self.stdin:
                loop.call_soon_threadsafe(lines.put_nowait, raw)
            loop.call_soon_threadsafe(lines.put_nowait, None)

        threading.Thread(target=reader, name="console-stdin", daemon=True).start()
        while not self._stopped.is_set():
            getter = asyncio.ensure_future(lines.get())
            stopper = asyncio.ensure_future(self._stopped.wait())
            done, _ = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if getter not in done:
                getter.cancel()
                break
            line = getter.result()
            if line is None or not await self.handle_line(line):
                break
            result = drain()
            if asyncio.iscoroutine(result):
                await result

    async def _run_interactive(self, drain: Callable[[], object]) -> None:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory, InMemoryHistory
        from prompt_toolkit.patch_stdout import patch_stdout

        history = FileHistory(str(self.history)) if self.history else InMemoryHistory()
        session: PromptSession[str] = PromptSession(history=history)
        self._hint("console.welcome")
        with patch_stdout():
            while not self._stopped.is_set():
                where = f"#{self.room}" if self.room else "dm"
                try:
                    line = await session.prompt_async(f"{self.person}@{where}> ")
                except (EOFError, KeyboardInterrupt):
                    break
                if not await self.handle_line(line):
                    break
                result = drain()
                if asyncio.iscoroutine(result):
                    await result
