"""Command and button handlers; importing this package registers them with the core."""

from bot.commands import groups, help, invites, people, sharing

__all__ = ["groups", "help", "invites", "people", "sharing"]
