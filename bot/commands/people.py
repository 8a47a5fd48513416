"""People: whoami, settings, role, link."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.commands.common import find_person
from bot.commands.digests import times_line
from bot.core import Ctx, command
from bot.delivery import PLATFORM_NAMES
from bot.digest import timezone_changed
from bot.errors import UserError
from bot.grammar import Command
from bot.i18n import Translator
from bot.markup import Markup
from store.models import Role

LINK_CODE_MINUTES = 15


@command("whoami")
def on_whoami(ctx: Ctx, cmd: Command) -> None:
    person = ctx.person
    accounts = ", ".join(
        f"{PLATFORM_NAMES.get(a.platform, a.platform)} ({a.username or a.external_id})"
        for a in ctx.uow.people.accounts_of(person.id)
    )
    groups = []
    for g in ctx.uow.groups.by_ids(ctx.policy.readable_group_ids()):
        m = ctx.policy.membership(g)
        if m is not None:
            mode = ctx.t(f"notify.mode.{m.notify}")
            groups.append(f"{g.slug} ({mode})")
    text = ctx.t(
        "whoami.text",
        handle=person.handle,
        role=ctx.t(f"role.name.{person.role}"),
        language=ctx.t(f"language.{ctx.t.language}"),
        timezone=ctx.core.timezone_of(person),
        accounts=accounts,
        groups=", ".join(groups) or "-",
    )
    digests = times_line(ctx.t, ctx.uow.digests.schedule(person.id), "digest.whoami")
    ctx.reply_markup(Markup(f"{text}\n{digests}"))


@command("settings language")
def on_settings_language(ctx: Ctx, cmd: Command) -> None:
    ctx.person.language = cmd.arg("language")
    ctx.t = Translator(ctx.person.language or "en")
    ctx.reply("settings.language_set", language=ctx.t(f"language.{ctx.t.language}"))


@command("settings timezone")
def on_settings_timezone(ctx: Ctx, cmd: Command) -> None:
    zone = str(cmd.arg("zone"))
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" is a directory
        raise UserError("error.bad_timezone", zone=zone, usage_of="settings timezone") from None
    ctx.person.timezone = zone
    timezone_changed(ctx.uow, ctx.person, zone, ctx.now)  # digests: 08:00 there now
    ctx.reply("settings.timezone_set", zone=zone, now=ctx.t.datetime(ctx.now, zone))


@command("role")
def on_role(ctx: Ctx, cmd: Command) -> None:
    ctx.policy.require_admin()
    person = find_person(ctx.uow, cmd.arg("person"))
    role = Role(cmd.arg("role"))
    if person.role == role:
        raise UserError(
            "error.role_unchanged", handle=person.handle, role=ctx.t(f"role.name.{role}")
        )
    if person.role == Role.ADMIN and ctx.uow.people.count_role(Role.ADMIN) <= 1:
        raise UserError("error.last_admin")
    before = person.role
    person.role = role
    ctx.audit("role.changed", person.handle, before=before, after=role.value)
    ctx.reply("role.done", handle=person.handle, role=ctx.t(f"role.name.{role}"))
    if person.id != ctx.person.id:
        t = ctx.core.translator(person)
        ctx.tell(person, "role.told", handle=ctx.person.handle, role=t(f"role.name.{role}"))


@command("link")
def on_link(ctx: Ctx, cmd: Command) -> None:
    code = cmd.arg("code")
    if not code:
        link = ctx.uow.links.create(ctx.person.id, ctx.now + timedelta(minutes=LINK_CODE_MINUTES))
        ctx.reply("link.code", code=link.code, minutes=LINK_CODE_MINUTES)
        return
    taken = ctx.uow.links.take(code, ctx.now)
    target = ctx.uow.people.get(taken.person_id) if taken else None
    if target is None:
        raise UserError("error.link_code_invalid")
    if target.id == ctx.person.id:
        raise UserError("error.link_same_person")
    source = ctx.person
    # The person who made the code keeps their handle; this account joins them.
    ctx.uow.people.merge(source, target)
    ctx.uow.audit.add(
        at=ctx.now,
        actor_id=target.id,
        action="account.linked",
        subject=target.handle,
        details={"platform": ctx.platform, "merged_person": source.id},
    )
    ctx.person = target
    ctx.t = ctx.core.translator(target)
    ctx.reply(
        "link.done",
        handle=target.handle,
        platform=Markup(PLATFORM_NAMES.get(ctx.platform, ctx.platform)),
    )
