"""The messengers of this build: one line each. A new messenger is a package in adapters/
that exports a descriptor (bot.messenger.Messenger) and its line here; nothing else."""

from __future__ import annotations

from typing import Any

from adapters import console, email, matrix, slack, teams, telegram
from bot.messenger import Messenger, PlatformLimits

# In the order they start (and are listed in /healthz); the console last.
MESSENGERS: tuple[Messenger[Any, Any], ...] = (
    telegram.MESSENGER,
    slack.MESSENGER,
    teams.MESSENGER,
    matrix.MESSENGER,
    email.MESSENGER,
    console.MESSENGER,
)


def default_limits(messengers: tuple[Messenger[Any, Any], ...]) -> dict[str, PlatformLimits]:
    """Each paced messenger's documented send limits, by name."""
    return {m.name: m.rate_limits for m in messengers if m.rate_limits is not None}
