"""A messenger that exists only in the tests: "Echo", one package and one descriptor.

It proves DESIGN's promise that a new messenger is one package plus one registration
line: tests/app/test_messenger_echo.py adds MESSENGER to the tuple of messengers it
builds Pinwall with, and Echo gets commands (POST /echo/events), delivery, its own rate
limits and a place in /healthz, with no other file changed.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import BaseRoute

from bot.config import Settings
from bot.messenger import Messenger, PlatformLimits, Rate
from bot.runtime import Hub
from tests.fakes.messenger_echo.adapter import EchoAdapter


class EchoSettings(Settings):
    echo_enabled: bool = False  # PINWALL_ECHO_ENABLED: Echo runs


def _build(settings: EchoSettings, hub: Hub) -> EchoAdapter:
    return EchoAdapter(hub)


def _routes(adapter: EchoAdapter) -> Sequence[BaseRoute]:
    return adapter.routes()


MESSENGER = Messenger(
    name="echo",
    display_name="Echo",
    command_prefix="?",
    settings=EchoSettings,
    configured=lambda settings: settings.echo_enabled,
    build=_build,
    routes=_routes,
    rate_limits=PlatformLimits(per_dm=Rate(5, 1)),
)
