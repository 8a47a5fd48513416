"""How a post, comment or proposal names its author.

A person who was forgotten (`pinwall privacy forget`) keeps no link to what they wrote:
their posts, comments and proposals stay without an author. They are shown as by a
"former member" in the reader's language, never as by a feed, a messenger or "@?".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bot.i18n import Translator
from store.models import ItemKind, Person


def author_label(t: Translator, handle: str | None) -> str:
    """`@handle`, or "former member" where the author was forgotten."""
    return f"@{handle}" if handle else str(t("author.former_member"))


def forgotten(kind: str, author_id: int | None) -> bool:
    """Whether a post without an author lost it (a feed entry never had one)."""
    return author_id is None and kind != ItemKind.FEED_ENTRY


def mentions_of(person: Person | None) -> dict[str, dict[str, Any]]:
    """For a message's meta ("mentions"): the person's handle with their display name and
    their accounts by platform, so that a messenger with real mentions (Slack's <@U…>)
    names them natively where they have an account there, and by name where not."""
    if person is None:
        return {}
    accounts = {a.platform: a.external_id for a in person.accounts if a.reachable}
    return {person.handle: {"name": person.display_name, "accounts": accounts}}


def mentions_of_all(people: Iterable[Person | None]) -> dict[str, dict[str, Any]]:
    """mentions_of for several people at once (a card's author and voters, a digest's
    or a home's authors)."""
    found: dict[str, dict[str, Any]] = {}
    for person in people:
        found.update(mentions_of(person))
    return found
