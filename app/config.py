"""The program's settings: the core's (bot.config.Settings) and every messenger's, in one
class composed from the descriptors, so that PINWALL_* variables, pinwall.toml keys,
`pinwall config` and the one-line errors cover them all alike."""

from __future__ import annotations

import functools
from typing import Any, ClassVar

from app.messengers import MESSENGERS
from bot.config import Settings
from bot.config import load_settings as _load
from bot.messenger import Messenger


@functools.cache
def settings_class(messengers: tuple[Messenger[Any, Any], ...] = MESSENGERS) -> type[Settings]:
    """A Settings class that inherits every messenger's settings class."""
    bases = tuple(dict.fromkeys(m.settings for m in messengers)) or (Settings,)
    namespace = {
        "__module__": __name__,
        "__qualname__": "Settings",
        "__annotations__": {"MESSENGERS": ClassVar[tuple[Messenger[Any, Any], ...]]},
        "MESSENGERS": messengers,
    }
    composed: type[Settings] = type("Settings", bases, namespace)
    return composed


def load_settings(
    messengers: tuple[Messenger[Any, Any], ...] = MESSENGERS, /, **overrides: Any
) -> Settings:
    """The program's settings; a wrong value raises ConfigError naming it in one line."""
    return _load(settings_class(messengers), **overrides)
