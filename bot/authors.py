"""How a post, comment or proposal names its author.

A person who was forgotten (`pinwall privacy forget`) keeps no link to what they wrote:
their posts, comments and proposals stay without an author. They are shown as by a
"former member" in the reader's language, never as by a feed, a messenger or "@?".
"""

from __future__ import annotations

from bot.i18n import Translator
from store.models import ItemKind, Person


def author_label(t: Translator, handle: str | None) -> str:
    """`@handle`, or "former member" where the author was forgotten."""
    return f"@{handle}" if handle else str(t("author.former_member"))


def forgotten(kind: str, author_id: int | None) -> bool:
    """Whether a post without an author lost it (a feed entry never had one)."""
    return author_id is None and kind != ItemKind.FEED_ENTRY


def mentions_of(person: Person | None) -> dict[str, dict[str, str]]:
    """For a message's meta ("mentions"): the person's handle with their accounts by
    platform, so that a messenger with real mentions (Slack's <@U…>) can name them
    natively where they have an account there; the others show the handle."""
    if person is None:
        return {}
    return {person.handle: {a.platform: a.external_id for a in person.accounts if a.reachable}}
