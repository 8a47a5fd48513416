"""What a messenger package tells the program about itself: one descriptor, `Messenger`.

Each package in adapters/ exports one (`MESSENGER`), and app/messengers.py lists them:
that line is all a new messenger adds outside its package. From the descriptors the top
floor takes the settings (their fields join Settings), builds the adapters that are
configured, serves their HTTP routes, paces their sends, and tells the core how each
is named and how commands are typed there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from bot.config import Settings
from bot.ports import MessengerAdapter

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from bot.runtime import Hub


@dataclass(frozen=True)
class Rate:
    per_second: float
    burst: float = 1.0


@dataclass(frozen=True)
class PlatformLimits:
    overall: Rate | None = None  # across the whole platform (bot or workspace)
    per_dm: Rate | None = None  # each direct chat
    per_room: Rate | None = None  # each group, channel or room


@dataclass(frozen=True)
class Problem:
    """What `pinwall doctor` found wrong, and the one thing to do about it."""

    what: str
    fix: str


S = TypeVar("S", bound=Settings)
A = TypeVar("A", bound=MessengerAdapter)


def no_routes(adapter: Any) -> Sequence[BaseRoute]:
    return ()


@dataclass(frozen=True)
class Messenger(Generic[S, A]):
    name: str  # the platform's id in the store and in PINWALL_ADMINS: "telegram"
    display_name: str  # as people read it: "Telegram"
    command_prefix: str  # how commands are typed there, for usage lines: "/", "!pw "
    # Its settings: a subclass of bot.config.Settings with its own PINWALL_* fields and
    # checks; the top floor's Settings class inherits from every messenger's.
    settings: type[S]
    configured: Callable[[S], bool]  # whether it runs (its credentials are set)
    build: Callable[[S, Hub], A]  # the adapter, not started yet
    routes: Callable[[A], Sequence[BaseRoute]] = no_routes  # webhooks on Pinwall's HTTP app
    # It can show a message in a shared room to one person alone (Slack's ephemeral
    # messages): a private answer then stays in the room, addressed to the asker.
    private_in_room: bool = False
    # How commands are typed in a shared room (a channel, a group chat) where that differs
    # from command_prefix: Teams' "@Pinwall " (only a mention reaches the bot there, while
    # its personal chat takes "join marketing" as typed). Usage lines, help and refusals
    # read in such a room show it; None: command_prefix everywhere.
    room_prefix: str | None = None
    # A like or an approval by reaction shows on the card itself, changed in place (a
    # post's "👍 3", "Approved by" on an approval card), so no message says it as well.
    shown_in_place: bool = False
    # An approval by reaction shows on the approval card itself ("✅ Approved by
    # @greta"), so no message says it as well: every messenger that edits in place,
    # Matrix too, whose posts show no like counter (so it is not `shown_in_place`).
    decided_in_place: bool = False
    # A button press in a shared room is an event everyone there sees (Matrix: a reaction
    # or a typed number), not one the bot alone gets: an anonymous poll takes no vote
    # in a room there (bot.polls), only in the private chat.
    presses_seen: bool = False
    # Its command menus depend on the person's role (Telegram's BotCommandScopeChat): a
    # role change queues a message that only changes the menu (meta "role_menu").
    menus_by_role: bool = False
    # Send pacing from the platform's documented limits (pinwall.toml's [rate_limits.NAME]
    # overrides); None: not paced (nothing leaves the process).
    rate_limits: PlatformLimits | None = None
    # What `pinwall doctor` asks of the platform with these settings (token accepted,
    # webhook registered, permissions granted), without starting the adapter.
    check: Callable[[S], Awaitable[Sequence[Problem]]] | None = None
    # Runs in this process's terminal (the console), not a service the company runs: not
    # counted among the configured messengers.
    local: bool = False

    def own(self, settings: Settings) -> S:
        """`settings` as this messenger's part of them."""
        if not isinstance(settings, self.settings):
            raise TypeError(f"these settings have no {self.name} part ({type(settings)})")
        return settings

    def is_configured(self, settings: Settings) -> bool:
        return self.configured(self.own(settings))

    def make(self, settings: Settings, hub: Hub) -> A:
        return self.build(self.own(settings), hub)
