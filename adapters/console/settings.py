"""The console's setting (PINWALL_CONSOLE)."""

from __future__ import annotations

from typing import Literal

from bot.config import Settings


class ConsoleSettings(Settings):
    console: Literal["auto", "on", "off"] = "auto"

    @property
    def console_enabled(self) -> bool:
        """`on`, or `auto` with no messenger configured: a local Pinwall in the terminal."""
        return self.console == "on" or (self.console == "auto" and not self.messengers)
