"""Command and button handlers; importing this package registers them with the core."""

from bot.commands import (
    admin,
    digests,
    feeds,
    groups,
    help,
    invites,
    people,
    proposals,
    search,
    sharing,
)

__all__ = [
    "admin",
    "digests",
    "feeds",
    "groups",
    "help",
    "invites",
    "people",
    "proposals",
    "search",
    "sharing",
]
