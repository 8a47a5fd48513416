"""Feeds of groups, the part shared by the commands (bot/commands/feeds.py), the poller
(jobs/feeds.py) and `pinwall feeds import` (app/cli_feeds.py): checking a feed's address
and filter words, a new feed as stored, and a stored problem in the reader's language."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from bot.errors import UserError
from bot.i18n import Translator
from bot.markup import Markup
from bot.reasons import reason
from store.models import Feed, Group

URL_MAX = 2048
MAX_WORDS, WORD_MAX = 20, 50
MAX_FEEDS_PER_GROUP = 200
FIRST_INTERVAL = timedelta(minutes=30)


def clean_url(value: str | None) -> str | None:
    """An absolute http(s) URL without spaces and within the length limit, else None."""
    if not value:
        return None
    url = value.strip().strip("<>")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host or len(url) > URL_MAX:
        return None
    if any(c.isspace() or ord(c) < 32 for c in url):
        return None
    return url


def feed_url(text: str | None, usage_of: str | None = "feed add") -> str:
    url = clean_url(text)
    if url is None:
        params: dict[str, Any] = {"url": text or "", "max": URL_MAX}
        if usage_of:
            params["usage_of"] = usage_of
        raise UserError("error.feed_bad_url", **params)
    return url


def filter_words(values: Sequence[str] | None) -> list[str]:
    """Plain filter words: split on commas, lower case, each once."""
    words: list[str] = []
    for value in values or ():
        for word in value.split(","):
            word = " ".join(word.split()).lower()
            if word and word not in words:
                words.append(word)
    if len(words) > MAX_WORDS or any(len(w) > WORD_MAX for w in words):
        raise UserError("error.feed_words", max=MAX_WORDS, length=WORD_MAX, usage_of="feed add")
    return words


def new_feed(
    group: Group,
    url: str,
    *,
    added_by: int | None,
    now: datetime,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    to_rooms: bool = False,
    title: str | None = None,
) -> Feed:
    """A feed not yet checked, due at once."""
    return Feed(
        group_id=group.id,
        url=url,
        title=title,
        added_by=added_by,
        include_words=list(include),
        exclude_words=list(exclude),
        to_rooms=to_rooms,
        checked=False,
        interval_seconds=int(FIRST_INTERVAL.total_seconds()),
        next_poll_at=now,
        failures=0,
        entries_seen=0,
        created_at=now,
    )


# What can be wrong with a feed (jobs.feeds.FeedProblem kinds), each a catalog text.
PROBLEM_KINDS = ("refused", "unreachable", "http", "html", "no_feed", "not_a_feed", "entities")


def describe_problem(t: Translator, problem: str) -> Markup:
    """A feed's stored problem ("kind" or "kind:detail") in the reader's language."""
    kind, _, detail = problem.partition(":")
    if kind not in PROBLEM_KINDS:
        kind = "unreachable"
    if kind in ("refused", "unreachable") and detail:
        return t(f"feeds.error.{kind}", detail=reason(t, detail))
    return t(f"feeds.error.{kind}", detail=detail or "?")
