"""Digests: what is new in a person's daily or weekly groups, in one message.

When a digest is due. Each person has a daily time (default 08:00) and a weekly day
and time (default Monday 08:00) in their own time zone, and the next due instant of
each in UTC (`DigestSchedule`). Due instants are computed with zoneinfo, so 08:00 is
08:00 local time in summer and in winter. A time that a DST change skips (02:30 on
the night clocks go forward) comes at the same offset as before the change (03:30);
one that happens twice comes at its first occurrence. After a digest the next one is
the next occurrence *after now*: one that fell due while Pinwall was down is sent once,
and a long outage does not cause a burst of repeats.

What is in it. The groups where the person's notify mode is the digest's kind (daily
or weekly) and that they may still receive (bot.policy.may_receive: members only;
externals only groups that admit them; nobody an inactive person). Per group: the
posts after the person's watermark for it (with none yet: the posts since they
joined), except their own. Shares and feed entries alike — and a group on instant
without `--feeds` puts its feed entries (only) in the daily digest. `digest now` holds
all of these at once.

Ranking, per group (documented, so that people can predict it):

    score = 3 × comments + 2 × reactions + 10 × 0.5 ^ (age in hours / 24)

— a comment counts more than a reaction (it took more effort), and recency is worth up
to 10 points, halving every 24 hours, so a fresh post with no responses (10) ranks
with one from yesterday with a comment and a reaction (5 + 3 + 2). A feed entry's age
counts from the date its feed gives it (an old article fetched today is not fresh).
Equal scores: the newer post first. The best `PER_GROUP` posts are shown, then "and N more".

After a digest the person's watermark of each group moves to the newest post the
digest covered (also the ones behind "and N more", and their own), in the same
transaction as the digest message. Nothing is sent when there is nothing new.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from bot import announcements
from bot.delivery import CORE_PLATFORM_NAMES
from bot.i18n import Translator
from bot.linklabel import link_label
from bot.markup import Markup, esc, italic, link
from bot.message import Button, Message, Target
from bot.policy import may_receive
from store.models import (
    Account,
    DigestSchedule,
    Group,
    ItemKind,
    Membership,
    NotifyMode,
    Person,
)
from store.repositories.digests import DIGEST_MODES, NewPost, PostLine, ScheduleRow
from store.uow import UnitOfWork

if TYPE_CHECKING:
    from bot.core import Core

Kind = Literal["daily", "weekly", "now"]
KINDS: tuple[Kind, Kind] = ("daily", "weekly")

PER_GROUP = 5  # posts shown per group; the rest are counted
DEFAULT_MINUTE = 8 * 60
DEFAULT_DAY = 0  # Monday
COMMENT_WEIGHT, REACTION_WEIGHT, RECENCY_WEIGHT, HALF_LIFE_HOURS = 3.0, 2.0, 10.0, 24.0
LINE_MAX = 200  # characters of a note's first line in a digest
OPEN_BUTTONS_MAX = 10  # posts a digest offers to open with a button (the best first)


def score(post: NewPost, now: datetime) -> float:
    """The ranking formula of the module docstring."""
    age_hours = max(0.0, (now - post.dated_at).total_seconds() / 3600)
    return float(
        COMMENT_WEIGHT * post.comments
        + REACTION_WEIGHT * post.reactions
        + RECENCY_WEIGHT * 0.5 ** (age_hours / HALF_LIFE_HOURS)
    )


# --- due times ---------------------------------------------------------------------------


def _at(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """`minute` after local midnight of `day` in `zone`, as a UTC instant."""
    local = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=zone)
    return local.astimezone(UTC)


def next_daily(minute: int, zone: ZoneInfo, after: datetime) -> datetime:
    """The first instant after `after` when it is `minute` past midnight in `zone`."""
    day = after.astimezone(zone).date()
    for offset in range(3):
        due = _at(day + timedelta(days=offset), minute, zone)
        if due > after:
            return due
    raise AssertionError("a day has one of these")  # pragma: no cover


def next_weekly(weekday: int, minute: int, zone: ZoneInfo, after: datetime) -> datetime:
    """The first instant after `after` that is `weekday` (0 = Monday) at `minute` in `zone`."""
    today = after.astimezone(zone).date()
    first = today + timedelta(days=(weekday - today.weekday()) % 7)
    for weeks in range(3):
        due = _at(first + timedelta(weeks=weeks), minute, zone)
        if due > after:
            return due
    raise AssertionError("a week has one of these")  # pragma: no cover


@dataclass(frozen=True, slots=True)
class Times:
    """A schedule's times, whatever holds them (the model or a row the tick read)."""

    daily_minute: int = DEFAULT_MINUTE
    weekly_day: int = DEFAULT_DAY
    weekly_minute: int = DEFAULT_MINUTE
    paused: bool = False

    @classmethod
    def of(cls, schedule: DigestSchedule | ScheduleRow | None) -> Times:
        if schedule is None:
            return cls()
        return cls(
            schedule.daily_minute, schedule.weekly_day, schedule.weekly_minute, schedule.paused
        )

    def next_due(self, kind: str, zone: str, after: datetime) -> datetime | None:
        """When the digest of this kind is next due after `after`; None while paused."""
        if self.paused:
            return None
        tz = ZoneInfo(zone)
        if kind == "daily":
            return next_daily(self.daily_minute, tz, after)
        return next_weekly(self.weekly_day, self.weekly_minute, tz, after)


def clock_time(minute: int) -> str:
    """Minutes after midnight as HH:MM."""
    return f"{minute // 60:02d}:{minute % 60:02d}"


def next_digest(schedule: DigestSchedule | None, zone: str, now: datetime) -> datetime | None:
    """When the person's next digest (of either kind) comes; None while paused."""
    if schedule is None:
        times = Times()
        dues = [times.next_due(kind, zone, now) for kind in KINDS]
    else:
        dues = [schedule.daily_due, schedule.weekly_due]
    return min((d for d in dues if d is not None), default=None)


def new_schedule_row(person_id: int, zone: str, now: datetime) -> dict[str, object]:
    """Column values of a default schedule, due at the next defaults after `now`."""
    times = Times()
    return {
        "person_id": person_id,
        "daily_minute": times.daily_minute,
        "weekly_day": times.weekly_day,
        "weekly_minute": times.weekly_minute,
        "paused": False,
        "daily_due": times.next_due("daily", zone, now),
        "weekly_due": times.next_due("weekly", zone, now),
        "updated_at": now,
    }


def schedule_of(uow: UnitOfWork, person: Person, zone: str, now: datetime) -> DigestSchedule:
    """The person's schedule, made with the defaults when they have none yet."""
    schedule = uow.digests.schedule(person.id)
    if schedule is None:
        uow.digests.add_schedules([new_schedule_row(person.id, zone, now)])
        schedule = uow.digests.schedule(person.id)
        assert schedule is not None
    return schedule


def reschedule(
    schedule: DigestSchedule, zone: str, now: datetime, kinds: Sequence[Kind] = KINDS
) -> None:
    """Recomputes due times after the person changed a time (that kind's), a pause or
    their zone (both)."""
    times = Times.of(schedule)
    if "daily" in kinds:
        schedule.daily_due = times.next_due("daily", zone, now)
    if "weekly" in kinds:
        schedule.weekly_due = times.next_due("weekly", zone, now)
    schedule.updated_at = now


def timezone_changed(uow: UnitOfWork, person: Person, zone: str, now: datetime) -> None:
    """`settings timezone`: the due times follow the new zone (08:00 stays 08:00 there)."""
    schedule = uow.digests.schedule(person.id)
    if schedule is not None:
        reschedule(schedule, zone, now)


def notify_changed(uow: UnitOfWork, membership: Membership, mode: str, now: datetime) -> None:
    """`notify <group> daily|weekly` after instant or mute: the digest starts from the
    group's newest post, so what came instantly (or was not wanted) does not come again.
    (Between digests, feed entries that an instant member's daily digest would have
    shown are skipped with them: one watermark per person and group.)"""
    coming = mode in DIGEST_MODES
    if coming and membership.notify not in DIGEST_MODES:
        newest = uow.digests.newest_post_id(membership.group_id)
        if newest is not None:
            uow.digests.raise_watermarks(membership.person_id, {membership.group_id: newest}, now)


# --- building ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GroupPart:
    group: Group
    shown: tuple[int, ...]  # post ids, best first
    total: int  # new posts of others, shown or not

    @property
    def more(self) -> int:
        return self.total - len(self.shown)


@dataclass(frozen=True)
class Digest:
    person_id: int
    kind: Kind
    parts: tuple[GroupPart, ...]
    # group id -> the newest post id this digest covers (the watermarks after it)
    watermarks: dict[int, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.parts

    @property
    def post_ids(self) -> list[int]:
        return [i for part in self.parts for i in part.shown]


@dataclass
class _GroupPosts:
    """A group's new posts as loaded for a batch: ranked once, filtered per person."""

    by_score: list[NewPost]
    ids: list[int]  # ascending
    created: list[datetime]  # ascending
    own_ids: dict[int, list[int]]  # author -> their post ids, ascending
    own_created: dict[int, list[datetime]]  # author -> their posts' times, ascending
    newest: int

    @classmethod
    def of(cls, posts: list[NewPost], now: datetime) -> _GroupPosts:
        posts = sorted(posts, key=lambda p: p.id)
        by_time = sorted(posts, key=lambda p: p.created_at)
        own_ids: dict[int, list[int]] = defaultdict(list)
        own_created: dict[int, list[datetime]] = defaultdict(list)
        for p in posts:
            if p.author_id is not None:
                own_ids[p.author_id].append(p.id)
        for p in by_time:
            if p.author_id is not None:
                own_created[p.author_id].append(p.created_at)
        return cls(
            by_score=sorted(posts, key=lambda p: (-score(p, now), -p.id)),
            ids=[p.id for p in posts],
            created=[p.created_at for p in by_time],
            own_ids=own_ids,
            own_created=own_created,
            newest=posts[-1].id,
        )


def digest_kind(membership: Membership) -> str | None:
    """The digest a membership feeds: its notify mode's (daily, weekly); on instant
    without `--feeds`, the daily one, with the group's feed entries only (its shares
    came instantly); none when muted."""
    if membership.notify in DIGEST_MODES:
        return str(membership.notify)
    if membership.notify == NotifyMode.INSTANT and not membership.instant_feeds:
        return NotifyMode.DAILY.value
    return None


class DigestBatch:
    """Everything the digests of a batch of people need, loaded in a few queries; then
    `build` makes each person's digest without touching the database."""

    def __init__(self, uow: UnitOfWork, people: Sequence[Person], now: datetime) -> None:
        self.now = now
        self.people = {p.id: p for p in people}
        memberships = uow.digests.memberships(self.people)
        self.groups = uow.digests.groups(m.group_id for m in memberships)
        self.watermarks = uow.digests.watermarks(self.people)
        # Only what each person may still receive: the one visibility rule (bot.policy).
        self.memberships: dict[int, list[Membership]] = defaultdict(list)
        bounds: dict[int, tuple[int | None, datetime | None]] = {}
        for m in memberships:
            group = self.groups.get(m.group_id)
            person = self.people[m.person_id]
            if digest_kind(m) is None or group is None or not may_receive(person, group, m):
                continue
            self.memberships[m.person_id].append(m)
            after, since = bounds.get(m.group_id, (None, None))
            mark = self.watermarks.get((m.person_id, m.group_id))
            if mark is not None:
                after = mark if after is None else min(after, mark)
            else:
                since = m.joined_at if since is None else min(since, m.joined_at)
            bounds[m.group_id] = (after, since)
        self.posts: dict[int, _GroupPosts] = {}
        self.feed_posts: dict[int, _GroupPosts] = {}  # feed entries only
        self.by_id: dict[int, NewPost] = {}
        # Post lines rendered for one person, by (post id, language), for the others.
        self.rendered: dict[tuple[int, str], Markup] = {}
        by_group: dict[int, list[NewPost]] = defaultdict(list)
        for post in uow.digests.new_posts(bounds):
            by_group[post.group_id].append(post)
            self.by_id[post.id] = post
        for group_id, posts in by_group.items():
            self.posts[group_id] = _GroupPosts.of(posts, now)
            entries = [p for p in posts if p.kind == ItemKind.FEED_ENTRY]
            if entries:
                self.feed_posts[group_id] = _GroupPosts.of(entries, now)

    def build(self, person_id: int, kind: Kind) -> Digest:
        """The person's digest of this kind ("now": daily and weekly groups together)."""
        parts: list[GroupPart] = []
        watermarks: dict[int, int] = {}
        for m in self.memberships.get(person_id, ()):
            if kind != "now" and digest_kind(m) != kind:
                continue
            feeds_only = m.notify == NotifyMode.INSTANT
            posts = (self.feed_posts if feeds_only else self.posts).get(m.group_id)
            if posts is None:
                continue
            mark = self.watermarks.get((person_id, m.group_id))
            if mark is not None:
                start = bisect.bisect_right(posts.ids, mark)
                own = posts.own_ids.get(person_id, [])
                own_new = len(own) - bisect.bisect_right(own, mark)
                newer = len(posts.ids) - start
            else:
                joined = m.joined_at
                created = posts.own_created.get(person_id, [])
                own_new = len(created) - bisect.bisect_left(created, joined)
                newer = len(posts.created) - bisect.bisect_left(posts.created, joined)
            if newer == 0:
                continue
            watermarks[m.group_id] = posts.newest
            total = newer - own_new
            if total == 0:
                continue
            shown: list[int] = []
            for p in posts.by_score:
                if p.author_id == person_id:
                    continue
                if (p.id > mark) if mark is not None else (p.created_at >= m.joined_at):
                    shown.append(p.id)
                    if len(shown) == PER_GROUP:
                        break
            parts.append(GroupPart(self.groups[m.group_id], tuple(shown), total))
        parts.sort(key=lambda part: part.group.name.lower())
        return Digest(person_id, kind, tuple(parts), watermarks)


# --- rendering ---------------------------------------------------------------------------


def _short(text: str) -> str:
    """One line of at most LINE_MAX characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= LINE_MAX else flat[: LINE_MAX - 1].rstrip() + "…"


def _post_line(
    t: Translator, line: PostLine, post: NewPost | None, platform_names: Mapping[str, str]
) -> Markup:
    number = esc(f"#{line.id}")
    text = _short(line.text)
    parts: list[Markup] = []
    if line.url:
        # A share's own words, then its link (titled by its preview); a feed entry's
        # text is the article's summary: its title says enough.
        if text and line.kind != ItemKind.FEED_ENTRY:
            parts.append(esc(text))
        parts.append(link(line.url, _short(link_label(line.url, line.title, limit=LINE_MAX))))
    else:
        parts.append(esc(text or _short(line.title or "") or "…"))
    body = " · ".join(parts)
    if line.author_handle:
        by = esc("@" + line.author_handle)
    elif line.kind == ItemKind.FEED_ENTRY and line.site_name and line.site_name.strip():
        by = italic(" ".join(line.site_name.split()))
    elif line.kind != ItemKind.FEED_ENTRY:  # its author was forgotten
        by = t("author.former_member")
    else:
        by = esc(platform_names.get(line.source_platform or "", "Pinwall"))
    extras = [by]
    if post is not None and post.reactions:
        extras.append(t("digest.reactions", count=post.reactions))
    if post is not None and post.comments:
        extras.append(t("digest.comments", count=post.comments))
    return Markup(f"- {number} {body} · " + " · ".join(extras))


def render(
    digest: Digest,
    t: Translator,
    zone: str,
    now: datetime,
    lines: dict[int, PostLine],
    posts: dict[int, NewPost],
    *,
    prefix: str = "/",
    cache: dict[tuple[int, str], Markup] | None = None,
    platform_names: Mapping[str, str] = CORE_PLATFORM_NAMES,
    pinned: Sequence[str] = (),
    mentions: Mapping[str, Any] | None = None,
) -> Message:
    """The digest as one neutral message: a title, the announcements it carries (pinned
    on top), then per group its best posts.
    `cache`: post lines already rendered, by (post id, language), for a batch."""
    cache = {} if cache is None else cache
    local = now.astimezone(ZoneInfo(zone))
    day = local.strftime("%d.%m.%Y") if t.language == "de" else local.strftime("%Y-%m-%d")
    out: list[str] = list(pinned)
    shown: list[int] = []
    for part in digest.parts:
        if out:
            out.append("")
        out.append(t("digest.group", group=part.group.name, count=part.total))
        for item_id in part.shown:
            rendered = cache.get((item_id, t.language))
            if rendered is None:
                line = lines.get(item_id)
                if line is None:
                    continue  # deleted meanwhile
                rendered = cache[(item_id, t.language)] = _post_line(
                    t, line, posts.get(item_id), platform_names
                )
            out.append(rendered)
            shown.append(item_id)
        if part.more:
            out.append(t("digest.more", count=part.more, prefix=prefix, slug=part.group.slug))
    # Each post can be opened (its text, comments, and the actions on it: comment,
    # react, propose) where the messenger has buttons; elsewhere `show #12` does it.
    opens = tuple(
        Button(label=str(t("digest.open", item=f"#{i}")), action="item.open", value=str(i))
        for i in shown[:OPEN_BUTTONS_MAX]
    )
    # The authors shown, as real mentions where the messenger has them (`mentions`: what
    # bot.authors says of them, for the batch).
    authors = {
        line.author_handle
        for i in shown
        if (line := lines.get(i)) is not None and line.author_handle
    }
    named = {h: mentions[h] for h in sorted(authors) if mentions and h in mentions}
    return Message(
        title=t(f"digest.title.{digest.kind}", date=day),
        text="\n".join(out),
        buttons=opens,
        meta={"digest": digest.kind, "mentions": named} if named else {"digest": digest.kind},
    )


# --- sending -----------------------------------------------------------------------------


def preload(
    uow: UnitOfWork, digests: Iterable[Digest]
) -> tuple[dict[int, PostLine], dict[int, Account]]:
    """What `finish` needs to send these digests, read at once for all of them: the posts
    they show, and each person's most recently used reachable account."""
    digests = [d for d in digests if not d.empty]
    return (
        uow.digests.post_lines(i for d in digests for i in d.post_ids),
        uow.people.digest_accounts({d.person_id for d in digests}),
    )


def finish(
    core: Core,
    uow: UnitOfWork,
    batch: DigestBatch,
    digests: Iterable[Digest],
    now: datetime,
    *,
    platform: str | None = None,
    lines: dict[int, PostLine] | None = None,
    accounts: dict[int, Account] | None = None,
) -> list[Message]:
    """Moves the watermarks of these digests and renders the non-empty ones, in the
    caller's transaction. With no `platform`, each goes to its person's most recently
    used reachable account through the outbox; with one (an answer where the person
    asked), the messages are only returned, for that platform. Returns the messages.

    `lines` and `accounts`: what `preload` read for a whole batch (else read here)."""
    digests = list(digests)
    if lines is None:
        lines = uow.digests.post_lines(i for d in digests for i in d.post_ids)
    if accounts is None:
        accounts = (
            uow.people.digest_accounts({d.person_id for d in digests if not d.empty})
            if platform is None
            else {}
        )
    mentions = uow.people.mentions(line.author_handle or "" for line in lines.values())
    messages: list[Message] = []
    for digest in digests:
        uow.digests.raise_watermarks(digest.person_id, digest.watermarks, now)
        person = batch.people[digest.person_id]
        # Announcements to groups the person muted wait for this digest (bot.announcements).
        pinned, waiting = announcements.digest_lines(uow, core.translator(person), person, now)
        if digest.empty and not waiting:
            continue
        account = accounts.get(digest.person_id)
        if platform is None and (account is None or not person.active):
            continue  # nowhere to send it: covered all the same, as an instant post would be
        on = platform or (account.platform if account else "")
        message = render(
            digest,
            core.translator(person),
            core.timezone_of(person),
            now,
            lines,
            batch.by_id,
            prefix=core.prefix(on, core.translator(person)),
            cache=batch.rendered,
            platform_names=core.platform_names,
            pinned=pinned,
            mentions=mentions,
        )
        messages.append(message)
        if account is not None:
            core.enqueue(
                uow, Target(account.platform, "dm", account.external_id), message, person.id, now
            )
    return messages
