"""Feed polling: RSS/Atom entries become posts of their group.

A scheduler tick (`FeedPoller.tick`) claims the feeds whose poll is due and reads
them, up to `concurrency` at once (jobs/feed_read.py: a conditional GET through the
guarded client, discovery, parsing). The outcome of a new feed's first check is told to
the person who added the feed; a feed that cannot work (no feed at that page, not a feed, refused by
the guard, gone) is removed then. Later, a feed that fails again and again is backed
off, and paused after `pause_after_failures` failures or `pause_after` of failing;
its adder is told.

De-duplication, per group, across all its feeds (`entry_keys`): an entry is the same
article as one posted before when its entry id, or else its canonical link, is known
in the group; an entry with neither id nor link is matched by the hash of its title
and summary. Ids that look global (URLs, URNs, tags: anything with a colon) count
across feeds; bare ones ("42") only within their feed.

All new entries of one feed become items in one transaction with the feed's new state
and the messages they cause. Entries go to digests; instantly only to members on
instant notify who asked for feeds (`notify <group> instant --feeds`), and to the
group's bridged rooms for feeds added with `--to-rooms`.

Intervals adapt: a poll that brought new entries halves the interval, one that did
not makes it 1.5 times longer, within `min_interval` .. `max_interval`; a
Cache-Control max-age (or a Retry-After) longer than that is honoured within the same
bounds. Errors back off exponentially from `min_interval`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from bot.feeds import describe_problem
from bot.ids import show_id
from bot.message import Message
from bot.policy import may_read
from bot.runtime import Hub
from jobs.feed_read import Entry, FeedProblem, Polled, PollTarget, poll
from jobs.fetch import GuardedClient
from store.models import Feed, Item, ItemKind
from store.uow import UnitOfWork

log = logging.getLogger(__name__)


# --- the same article -------------------------------------------------------------------------

_TRACKING = re.compile(r"^(utm_[a-z]+|fbclid|gclid|mc_cid|mc_eid)$", re.I)


def canonical_link(url: str) -> str:
    """A link as the same article's other links would be: lower-case scheme and host,
    no default port, no fragment, no tracking parameters, no trailing slash."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    netloc = (
        host
        if port is None or (scheme, port) in (("http", 80), ("https", 443))
        else (f"{host}:{port}")
    )
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, True) if not _TRACKING.match(k)])
    path = parts.path.rstrip("/") or "/"
    return urlunsplit((scheme, netloc, path, query, ""))


def _digest(kind: str, value: str) -> str:
    return kind + hashlib.sha256(value.encode("utf-8", errors="replace")).hexdigest()[:63]


@dataclass(frozen=True)
class EntryKeys:
    match: tuple[str, ...]  # any of these known in the group: the entry is a duplicate
    record: tuple[str, ...]  # remembered for the entries that come later


def entry_keys(feed_id: int, entry: Entry) -> EntryKeys:
    ident = link = None
    if entry.entry_id:
        scoped = entry.entry_id if ":" in entry.entry_id else f"F{feed_id}:{entry.entry_id}"
        ident = _digest("i", scoped)
    if entry.link:
        link = _digest("l", canonical_link(entry.link))
    content = _digest("h", " ".join(f"{entry.title}\n{entry.summary}".lower().split()))
    strong = tuple(k for k in (ident, link) if k)
    return EntryKeys(match=strong or (content,), record=(*strong, content))


def _word_pattern(words: Sequence[str]) -> re.Pattern[str] | None:
    if not words:
        return None
    return re.compile(
        "|".join(rf"(?<!\w){re.escape(w.lower())}(?!\w)" for w in words), re.IGNORECASE
    )


def wanted(entry: Entry, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """Plain words (no patterns), case-insensitive, whole words, in title and summary: one
    include word must be there (when there are any) and no exclude word."""
    text = f"{entry.title}\n{entry.summary}"
    inc, exc = _word_pattern(include), _word_pattern(exclude)
    if inc is not None and not inc.search(text):
        return False
    return exc is None or not exc.search(text)


# --- the poller ----------------------------------------------------------------------------


def published(entry: Entry, fetched: datetime) -> datetime | None:
    """An entry's date as its post keeps it: a date after the fetch (a feed that schedules
    its posts, or a wrong clock) would list it above everything that comes later, so it is
    the fetch time; no date, None (the post is then dated by its storing, the fetch)."""
    if entry.date is None:
        return None
    return min(entry.date, fetched)


@dataclass(frozen=True)
class FeedPolicy:
    concurrency: int = 20  # fetches at once
    batch: int = 500  # feeds claimed at once
    lease: timedelta = timedelta(minutes=10)  # a claimed feed not stored by then is due again
    first_interval: timedelta = timedelta(minutes=30)
    min_interval: timedelta = timedelta(minutes=10)
    max_interval: timedelta = timedelta(hours=6)
    pause_after_failures: int = 10
    pause_after: timedelta = timedelta(hours=24)
    look_every: timedelta = timedelta(minutes=1)  # without a wake-up: for feeds added elsewhere


@dataclass
class _State:
    next_due: datetime | None = None
    looked_at: datetime | None = None
    running: set[int] = field(default_factory=set)


class FeedPoller:
    """Polls due feeds: `tick(now)` is the scheduler's job (tests call it directly).

    Ticked often (every few seconds), it costs nothing until a feed is due: it knows
    when the next one is, and looks again when woken (every event the hub applies may
    have added a feed) or after `look_every`.
    """

    def __init__(self, hub: Hub, client: GuardedClient, policy: FeedPolicy | None = None) -> None:
        self.hub = hub
        self.client = client
        self.policy = policy or FeedPolicy()
        self._state = _State()
        self._wake = asyncio.Event()
        hub.add_waker(self._wake)
        self._store_lock = asyncio.Lock()

    def _should_look(self, now: datetime) -> bool:
        s = self._state
        if (
            self._wake.is_set()
            or s.next_due is None
            or s.looked_at is None
            or now >= s.next_due
            or now - s.looked_at >= self.policy.look_every
        ):
            self._wake.clear()
            return True
        return False

    async def tick(self, now: datetime) -> int:
        """Polls every feed due at `now`; returns how many."""
        if not self._should_look(now):
            return 0
        total = 0
        while True:
            claimed = await self.hub.call(self._claim, now)
            if not claimed:
                break
            total += len(claimed)
            await self._poll_all(claimed, now)
            if len(claimed) < self.policy.batch:
                break
        self._state.next_due = await self.hub.call(self._next_due)
        self._state.looked_at = now
        if total:
            woken = self._wake.is_set()  # by an event meanwhile: it may have added a feed
            self.hub.wake()  # the delivery worker: messages wait
            if not woken:
                self._wake.clear()  # that wake-up was ours
        return total

    async def _poll_all(self, targets: Sequence[PollTarget], now: datetime) -> None:
        gate = asyncio.Semaphore(self.policy.concurrency)

        async def one(target: PollTarget) -> None:
            async with gate:
                polled = await poll(self.client, target, now)
            async with self._store_lock:
                try:
                    await self.hub.call(self._store, polled, now)
                except Exception:
                    log.exception("storing what feed F%d gave failed", target.id)

        async with self.client:
            await asyncio.gather(*(one(t) for t in targets))

    # --- store side (the hub's DB thread) ----------------------------------------------

    def _claim(self, now: datetime) -> list[PollTarget]:
        with self.hub.db.uow() as uow:
            feeds = uow.feeds.claim_due(now, self.policy.batch, self.policy.lease)
            uow.commit()
        return [PollTarget(f.id, f.url, f.etag, f.last_modified, f.checked) for f in feeds]

    def _next_due(self) -> datetime | None:
        with self.hub.db.uow() as uow:
            return uow.feeds.next_due_at()

    def _store(self, polled: Polled, now: datetime) -> None:
        with self.hub.db.uow() as uow:
            feed = uow.feeds.lock(polled.feed_id)
            if feed is None or feed.paused_at is not None:
                return  # removed (or paused) while it was fetched
            feed.last_polled_at = now
            if polled.problem is not None:
                self._failed(uow, feed, polled.problem, now)
            else:
                self._succeeded(uow, feed, polled, now)
            uow.commit()

    def _clamp(self, seconds: float) -> int:
        low = self.policy.min_interval.total_seconds()
        high = self.policy.max_interval.total_seconds()
        return int(min(max(seconds, low), high))

    def _succeeded(self, uow: UnitOfWork, feed: Feed, polled: Polled, now: datetime) -> None:
        if polled.url is not None and polled.url != feed.url:
            other = uow.feeds.by_url(feed.group_id, polled.url)
            if other is not None:
                self._tell(uow, feed, "feeds.told.duplicate", now, other=show_id(other.id, "feed"))
                self._drop(uow, feed, now, "duplicate")
                return
            feed.url = polled.url
        created: list[Item] = []
        parsed = polled.parsed
        if parsed is not None:
            feed.etag, feed.last_modified = polled.etag, polled.last_modified
            feed.title = parsed.title or feed.title
            feed.site_url = parsed.site_url or feed.site_url
            created = self._take(uow, feed, parsed.entries, now)
        factor = 0.5 if created else 1.5  # busy: more often; quiet: less
        feed.interval_seconds = self._clamp(feed.interval_seconds * factor)
        delay = max(feed.interval_seconds, polled.max_age or 0)
        feed.next_poll_at = now + timedelta(seconds=self._clamp(delay))
        feed.failures, feed.failing_since = 0, None
        feed.last_success_at = now
        feed.entries_seen += len(created)
        if not feed.checked:
            feed.checked = True
            found = len(parsed.entries) if parsed is not None else 0
            self._tell(uow, feed, "feeds.told.checked", now, count=found, new=len(created))
        self._fan_out(uow, feed, created, now)

    def _take(
        self, uow: UnitOfWork, feed: Feed, entries: Iterable[Entry], now: datetime
    ) -> list[Item]:
        """The entries new to the group as its posts, their keys kept: numbered oldest
        first by their own date (clamped to `now`, the fetch); undated ones as fetched now,
        in the feed's order from its end (feeds list the newest first)."""
        fresh = sorted(
            (
                e
                for e in reversed(list(entries))
                if wanted(e, feed.include_words, feed.exclude_words)
            ),
            key=lambda e: published(e, now) or now,
        )
        keyed = [(e, entry_keys(feed.id, e)) for e in fresh]
        known = uow.feeds.known_keys(feed.group_id, (k for _, ks in keyed for k in ks.record))
        created: list[Item] = []
        key_rows: list[dict[str, Any]] = []
        for entry, keys in keyed:
            if any(k in known for k in keys.match):
                continue
            item = uow.items.add(
                Item(
                    group_id=feed.group_id,
                    author_id=None,
                    kind=ItemKind.FEED_ENTRY,
                    text=entry.summary,
                    url=entry.link,
                    title=entry.title or entry.link or None,
                    source_platform="feed",
                    created_at=now,
                    published_at=published(entry, now),
                    site_name=feed.title,
                )
            )
            created.append(item)
            for k in keys.record:
                if k not in known:
                    known.add(k)
                    key_rows.append(
                        {"group_id": feed.group_id, "key": k, "item_id": item.id, "created_at": now}
                    )
        uow.feeds.add_keys(key_rows)
        return created

    def _fan_out(self, uow: UnitOfWork, feed: Feed, items: Sequence[Item], now: datetime) -> None:
        """Entries reach bridged rooms (for --to-rooms feeds) and instant members who asked
        for feeds; everyone else gets them in digests."""
        if not items:
            return
        targets: list[tuple[str, str, str, int | None]] = []
        if feed.to_rooms:
            targets += [
                (p, "room", e, None) for _, p, e in uow.rooms.bridged_addresses(feed.group_id)
            ]
        readers = uow.feeds.instant_feed_readers(feed.group_id)
        if readers:
            accounts = uow.groups.instant_accounts(feed.group_id)
            targets += [
                (platform, "dm", external_id, person_id)
                for person_id, (platform, external_id) in accounts.items()
                if person_id in readers
            ]
        uow.outbox.insert_many(
            [
                {
                    "created_at": now,
                    "platform": platform,
                    "target_kind": kind,
                    "target": address,
                    "person_id": person_id,
                    "item_id": item.id,
                    "payload": {"t": "item"},
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                }
                for item in items
                for platform, kind, address, person_id in targets
            ]
        )

    def _failed(self, uow: UnitOfWork, feed: Feed, problem: FeedProblem, now: datetime) -> None:
        feed.last_error, feed.last_error_at = problem.code, now
        feed.failures += 1
        feed.failing_since = feed.failing_since or now
        if not feed.checked and problem.permanent:
            self._tell(uow, feed, "feeds.told.unusable", now, problem=problem)
            self._drop(uow, feed, now, problem.code)
            return
        if not feed.checked and feed.failures == 1:
            self._tell(uow, feed, "feeds.told.retrying", now, problem=problem)
        if (
            feed.failures >= self.policy.pause_after_failures
            or now - feed.failing_since >= self.policy.pause_after
        ):
            feed.paused_at = now
            self._tell(uow, feed, "feeds.told.paused", now, problem=problem, count=feed.failures)
            uow.audit.add(
                at=now,
                actor_id=None,
                action="feed.paused",
                subject=show_id(feed.id, "feed"),
                details={"error": problem.code, "failures": feed.failures},
            )
            return
        backoff = self.policy.min_interval.total_seconds() * 2 ** min(feed.failures - 1, 16)
        delay = max(backoff, problem.retry_after or 0)
        feed.next_poll_at = now + timedelta(seconds=self._clamp(delay))

    def _drop(self, uow: UnitOfWork, feed: Feed, now: datetime, why: str) -> None:
        uow.audit.add(
            at=now,
            actor_id=None,
            action="feed.removed",
            subject=show_id(feed.id, "feed"),
            details={"url": feed.url, "why": why},
        )
        uow.feeds.remove(feed)

    def _tell(
        self,
        uow: UnitOfWork,
        feed: Feed,
        key: str,
        now: datetime,
        *,
        problem: FeedProblem | None = None,
        **params: Any,
    ) -> None:
        """A message to whoever added the feed, if they still may read its group."""
        if feed.added_by is None:
            return
        person = uow.people.get(feed.added_by)
        group = uow.groups.get(feed.group_id)
        if person is None or group is None:
            return
        if not may_read(person, group, uow.groups.membership(person.id, group.id)):
            return
        core = self.hub.core
        t = core.translator(person)
        if problem is not None:
            params["reason"] = describe_problem(t, problem.code)
        text = t(
            key,
            feed=show_id(feed.id, "feed"),
            title=feed.title or feed.url,
            url=feed.url,
            group=group.name,
            **params,
        )
        core.send_to_person(uow, person, Message(text=text), now)


__all__ = ["FeedPolicy", "FeedPoller", "canonical_link", "entry_keys", "published", "wanted"]
