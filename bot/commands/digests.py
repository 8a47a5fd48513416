"""Digests: digest now, digest daily HH:MM, digest weekly <day> HH:MM, digest off."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot import when as when_
from bot.core import Ctx
from bot.digest import (
    KINDS,
    DigestBatch,
    Kind,
    Times,
    clock_time,
    finish,
    reschedule,
    schedule_of,
)
from bot.errors import UserError
from bot.grammar import Command
from bot.handlers import Handlers
from bot.i18n import Translator
from bot.markup import Markup
from store.models import DigestSchedule

# Day names in English and German live in bot/when.py (DAYS), with the clock times.
DAYS = when_.DAYS


def parse_time(text: str, usage_of: str) -> int:
    """ "08:00", "8", "8 Uhr", "08.00", "8:30 pm" -> minutes after midnight."""
    minute = when_.clock_minutes(text)
    if minute is None:
        raise UserError("digest.bad_time", value=text, usage_of=usage_of)
    return minute


def parse_day(text: str) -> int:
    """ "monday", "Mon", "mo.", "Montag" -> 0 (Monday) ... 6 (Sunday)."""
    day = when_.weekday(text)
    if day is None:
        raise UserError("digest.bad_day", value=text, usage_of="digest weekly")
    return day


def when(t: Translator, due: datetime, zone: str) -> Markup:
    """A due instant in the person's zone, with its weekday: "Monday, 2026-11-30 08:00"."""
    local = due.astimezone(ZoneInfo(zone))
    return t("digest.when", day=t(f"digest.day.{local.weekday()}"), when=t.datetime(due, zone))


def times_line(
    t: Translator, schedule: DigestSchedule | None, key: str, **params: object
) -> Markup:
    """The person's digest times in one line (whoami, App Home)."""
    times = Times.of(schedule)
    return t(
        key + ("_paused" if times.paused else ""),
        daily=clock_time(times.daily_minute),
        day=t(f"digest.day.{times.weekly_day}"),
        weekly=clock_time(times.weekly_minute),
        **params,
    )


def _prefix(ctx: Ctx) -> str:
    return ctx.prefix


def _set(ctx: Ctx, schedule: DigestSchedule, key: str, kind: Kind, **params: object) -> None:
    was_paused = schedule.paused
    schedule.paused = False
    zone = ctx.core.timezone_of(ctx.person)
    # The other kind's due time stays, unless the digests were paused (then it had none).
    reschedule(schedule, zone, ctx.now, KINDS if was_paused else (kind,))
    due = schedule.daily_due if kind == "daily" else schedule.weekly_due
    assert due is not None
    text = ctx.t(key, next=when(ctx.t, due, zone), **params)
    if was_paused:
        text = Markup(f"{text}\n{ctx.t('digest.resumed')}")
    ctx.reply_markup(text)


def on_digest_daily(ctx: Ctx, cmd: Command) -> None:
    minute = parse_time(str(cmd.arg("time")), "digest daily")
    schedule = schedule_of(ctx.uow, ctx.person, ctx.core.timezone_of(ctx.person), ctx.now)
    schedule.daily_minute = minute
    _set(ctx, schedule, "digest.daily_set", "daily", time=clock_time(minute))


def on_digest_weekly(ctx: Ctx, cmd: Command) -> None:
    day = parse_day(str(cmd.arg("day")))
    minute = parse_time(str(cmd.arg("time")), "digest weekly")
    schedule = schedule_of(ctx.uow, ctx.person, ctx.core.timezone_of(ctx.person), ctx.now)
    schedule.weekly_day = day
    schedule.weekly_minute = minute
    _set(
        ctx,
        schedule,
        "digest.weekly_set",
        "weekly",
        day=ctx.t(f"digest.day.{day}"),
        time=clock_time(minute),
    )


def on_digest_off(ctx: Ctx, cmd: Command) -> None:
    schedule = schedule_of(ctx.uow, ctx.person, ctx.core.timezone_of(ctx.person), ctx.now)
    if schedule.paused:
        raise UserError("digest.already_off")
    schedule.paused = True
    reschedule(schedule, ctx.core.timezone_of(ctx.person), ctx.now)
    ctx.reply("digest.off", prefix=_prefix(ctx))


def on_digest_now(ctx: Ctx, cmd: Command) -> None:
    """What is new in the daily and weekly groups, now, as the answer; the watermarks
    move as after a scheduled digest, the due times stay."""
    batch = DigestBatch(ctx.uow, [ctx.person], ctx.now)
    if not batch.memberships.get(ctx.person.id):
        ctx.reply("digest.no_groups", prefix=_prefix(ctx))
        return
    digest = batch.build(ctx.person.id, "now")
    messages = finish(ctx.core, ctx.uow, batch, [digest], ctx.now, platform=ctx.platform)
    if not messages:
        ctx.reply("digest.nothing_new")
        return
    for message in messages:
        ctx.reply_message(message)


HANDLERS = Handlers(
    commands={
        "digest daily": on_digest_daily,
        "digest weekly": on_digest_weekly,
        "digest off": on_digest_off,
        "digest now": on_digest_now,
    },
)
