"""Command and button handlers; importing this package registers them with the core."""

from bot.commands import admin, groups, help, invites, people, search, sharing

__all__ = ["admin", "groups", "help", "invites", "people", "search", "sharing"]
