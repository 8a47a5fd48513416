"""The handler table of this build: every command module's part, combined into one value
that the Core is given (see bot/handlers.py)."""

from __future__ import annotations

from bot.commands import (
    admin,
    announcements,
    digests,
    feeds,
    groups,
    guide,
    help,
    invites,
    mail,
    people,
    polls,
    proposals,
    search,
    sharing,
    show,
)
from bot.handlers import Handlers

# In this order: reactions go to a post's like (sharing) before an approval card's vote.
PARTS = (
    sharing.HANDLERS,
    show.HANDLERS,
    proposals.HANDLERS,
    groups.HANDLERS,
    people.HANDLERS,
    invites.HANDLERS,
    feeds.HANDLERS,
    digests.HANDLERS,
    search.HANDLERS,
    admin.HANDLERS,
    help.HANDLERS,
    guide.HANDLERS,
    announcements.HANDLERS,
    polls.HANDLERS,
    mail.HANDLERS,
)

# Commands of the grammar that this build deliberately has no handler for: they are
# answered "not available yet" and left out of help and the messengers' command menus.
NOT_AVAILABLE: frozenset[str] = frozenset()


def build_handlers(*extra: Handlers) -> Handlers:
    """The table; a command, button action, prompt kind or outbox kind claimed twice
    (also by `extra`) raises bot.handlers.DuplicateHandler: the program does not start."""
    return Handlers.combine(*PARTS, *extra)
