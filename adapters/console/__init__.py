"""The console adapter: a real, local Pinwall in the terminal, scriptable through stdin.

adapter.py   reading lines (commands, /as, /room, /press ...), printing what is sent
settings.py  PINWALL_CONSOLE

MESSENGER is the package's descriptor (bot.messenger).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.console.settings import ConsoleSettings
from bot.messenger import Messenger

if TYPE_CHECKING:
    from adapters.console.adapter import ConsoleAdapter
    from bot.runtime import Hub


def _build(settings: ConsoleSettings, hub: Hub) -> ConsoleAdapter:
    from adapters.console.adapter import ConsoleAdapter

    return ConsoleAdapter(
        hub,
        history=settings.data_dir / "console_history",
        language=settings.default_language,
    )


MESSENGER = Messenger(
    name="console",
    display_name="Console",
    command_prefix="/",
    settings=ConsoleSettings,
    configured=lambda settings: settings.console_enabled,
    build=_build,
    local=True,  # not paced: nothing leaves the process
)

__all__ = ["MESSENGER"]
