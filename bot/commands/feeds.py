"""Feeds of groups: feed add, feed list, feed remove.

Who may do what:
- `feed add`: internal members of the group (not guests or partners) and admins;
  `--to-rooms` (entries posted into the group's bridged rooms) only moderators and
  admins, since it speaks in rooms on everyone's behalf.
- `feed list`: the feeds of the groups the reader may see (so externals see only
  their own groups' feeds), with each feed's health.
- `feed remove`: whoever added the feed, the group's moderators, admins.

The handlers run inside the core's transaction and do no network I/O: `feed add`
stores the feed due now and answers at once; the poller (jobs.feeds), woken by the
hub after every applied event, checks it and tells the adder what it found.
"""

from __future__ import annotations

from datetime import datetime

from bot.core import Ctx
from bot.errors import UserError
from bot.feeds import MAX_FEEDS_PER_GROUP, describe_problem, feed_url, filter_words, new_feed
from bot.grammar import Command
from bot.handlers import Handlers
from bot.ids import parse_id, show_id
from bot.markup import Markup, esc


def on_feed_add(ctx: Ctx, cmd: Command) -> None:
    group = ctx.policy.readable_group(cmd.arg("group"))
    ctx.policy.require_feed_adder(group)
    url = feed_url(cmd.arg("url"))
    include = filter_words(cmd.flags.get("include"))
    exclude = filter_words(cmd.flags.get("exclude"))
    to_rooms = bool(cmd.flags.get("to-rooms"))
    if to_rooms and not ctx.policy.can_moderate(group):
        raise UserError("error.feed_to_rooms", group=group.name)
    existing = ctx.uow.feeds.by_url(group.id, url)
    if existing is not None:
        if existing.paused_at is None:
            raise UserError(
                "error.feed_exists", group=group.name, feed=show_id(existing.id, "feed")
            )
        # Adding a paused feed again is how it is resumed (its adder was told so).
        existing.paused_at = existing.failing_since = None
        existing.failures = 0
        existing.next_poll_at = ctx.now
        ctx.audit("feed.resumed", show_id(existing.id, "feed"), group=group.slug)
        ctx.reply("feeds.resumed", feed=show_id(existing.id, "feed"), group=group.name)
        return
    if ctx.uow.feeds.count_in(group.id) >= MAX_FEEDS_PER_GROUP:
        raise UserError("error.feed_limit", group=group.name, max=MAX_FEEDS_PER_GROUP)
    feed = ctx.uow.feeds.add(
        new_feed(
            group,
            url,
            added_by=ctx.person.id,
            now=ctx.now,
            include=include,
            exclude=exclude,
            to_rooms=to_rooms,
        )
    )
    ctx.audit(
        "feed.added",
        show_id(feed.id, "feed"),
        group=group.slug,
        url=url,
        include=include,
        exclude=exclude,
        to_rooms=to_rooms,
    )
    ctx.reply("feeds.added", feed=show_id(feed.id, "feed"), group=group.name)


def on_feed_list(ctx: Ctx, cmd: Command) -> None:
    slug = cmd.arg("group")
    groups = [ctx.policy.readable_group(slug)] if slug else ctx.policy.readable_groups()
    by_id = {g.id: g for g in groups}
    feeds = ctx.uow.feeds.of_groups(by_id)
    if not feeds:
        prefix = ctx.prefix
        if slug:
            ctx.reply("feeds.none", group=groups[0].name, slug=groups[0].slug, prefix=prefix)
        else:
            ctx.reply("feeds.none_anywhere", prefix=prefix)
        return
    t, tz = ctx.t, ctx.core.timezone_of(ctx.person)

    def when(at: datetime | None) -> str:
        return t.datetime(at, tz) if at is not None else str(t("feeds.never"))

    adders = {p.id: p.handle for p in ctx.uow.people.by_ids({f.added_by for f in feeds})}
    lines: list[str] = [t("feeds.header", count=len(feeds))]
    for f in feeds:
        feed_id = show_id(f.id, "feed")
        lines.append("")
        lines.append(
            t("feeds.line", feed=feed_id, group=by_id[f.group_id].name, title=f.title or f.url)
        )
        lines.append(esc(f.url))
        options: list[str] = []
        if f.include_words:
            options.append(t("feeds.include", words=", ".join(f.include_words)))
        if f.exclude_words:
            options.append(t("feeds.exclude", words=", ".join(f.exclude_words)))
        if f.to_rooms:
            options.append(t("feeds.to_rooms"))
        if f.added_by in adders:
            options.append(t("feeds.added_by", handle=adders[f.added_by]))
        if options:
            lines.append(" · ".join(options))
        if f.paused_at is not None:
            lines.append(t("feeds.paused", when=when(f.paused_at)))
        if not f.checked and f.last_error is None:
            lines.append(t("feeds.not_checked"))
            continue
        error: Markup = t("feeds.none_error")
        if f.last_error is not None:
            error = Markup(f"{describe_problem(t, f.last_error)} ({esc(when(f.last_error_at))})")
        lines.append(
            t(
                "feeds.health",
                success=when(f.last_success_at),
                error=error,
                next="-" if f.paused_at is not None else when(f.next_poll_at),
                entries=f.entries_seen,
            )
        )
    ctx.reply_markup(Markup("\n".join(lines)))


def on_feed_remove(ctx: Ctx, cmd: Command) -> None:
    feed_id = parse_id(cmd.arg("feed"), "feed")
    feed = ctx.uow.feeds.get(feed_id)
    group = ctx.uow.groups.get(feed.group_id) if feed is not None else None
    if feed is None or group is None or not ctx.policy.can_see(group):
        raise UserError("error.feed_not_found", feed=show_id(feed_id, "feed"))
    ctx.policy.require_read(group)
    if not ctx.policy.may_remove_feed(feed.added_by, group):
        raise UserError("error.feed_not_allowed", feed=show_id(feed_id, "feed"), group=group.name)
    title = feed.title or feed.url
    ctx.uow.feeds.remove(feed)
    ctx.audit("feed.removed", show_id(feed_id, "feed"), group=group.slug, url=feed.url)
    ctx.reply("feeds.removed", feed=show_id(feed_id, "feed"), title=title, group=group.name)


HANDLERS = Handlers(
    commands={
        "feed add": on_feed_add,
        "feed list": on_feed_list,
        "feed remove": on_feed_remove,
    },
)
