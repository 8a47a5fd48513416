"""People: whoami, settings, role, link."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot import linking, settings_menu
from bot.access import CONSOLE_ADMIN, admin_by_setting, check_code_tries
from bot.commands.common import find_person, mail_account
from bot.commands.digests import times_line
from bot.core import Ctx
from bot.digest import timezone_changed
from bot.errors import UserError
from bot.grammar import Command
from bot.handlers import Handlers
from bot.i18n import Translator
from bot.markup import Markup
from bot.message import Message
from bot.role_menus import queue_role_menus
from store.models import LinkRequest, Role


def on_whoami(ctx: Ctx, cmd: Command) -> None:
    person = ctx.person
    accounts = ", ".join(
        f"{ctx.core.platform_names.get(a.platform, a.platform)} ({a.username or a.external_id})"
        for a in ctx.uow.people.accounts_of(person.id)
    )
    groups = []
    for g in ctx.uow.groups.by_ids(ctx.policy.readable_group_ids()):
        m = ctx.policy.membership(g)
        if m is not None:
            mode = ctx.t("notify.mode.mail" if m.by_mail else f"notify.mode.{m.notify}")
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


def on_settings_language(ctx: Ctx, cmd: Command) -> None:
    ctx.person.language = cmd.arg("language")
    ctx.t = Translator(ctx.person.language or "en")
    ctx.reply("settings.language_set", language=ctx.t(f"language.{ctx.t.language}"))


def on_settings_timezone(ctx: Ctx, cmd: Command) -> None:
    zone = str(cmd.arg("zone"))
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" is a directory
        raise UserError("error.bad_timezone", zone=zone, usage_of="settings timezone") from None
    ctx.person.timezone = zone
    timezone_changed(ctx.uow, ctx.person, zone, ctx.now)  # digests: 08:00 there now
    ctx.reply("settings.timezone_set", zone=zone, now=ctx.t.datetime(ctx.now, zone))


def on_settings_digest(ctx: Ctx, cmd: Command) -> None:
    """`settings digest mail|messenger`: where digests go (bot.digest finish)."""
    if cmd.arg("via") == "mail":
        address = mail_account(ctx)
        ctx.person.digest_by_mail = True
        ctx.reply("settings.digest_mail", address=address)
        return
    ctx.person.digest_by_mail = False
    ctx.reply("settings.digest_messenger")


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
    listed = admin_by_setting(ctx.uow, person, ctx.core.settings.admins)
    if listed is not None and role != Role.ADMIN:
        if listed == CONSOLE_ADMIN:
            raise UserError("error.admin_by_console", handle=person.handle)
        raise UserError("error.admin_by_setting", handle=person.handle, account=":".join(listed))
    before = person.role
    person.role = role
    ctx.audit("role.changed", person.handle, before=before, after=role.value)
    ctx.reply("role.done", handle=person.handle, role=ctx.t(f"role.name.{role}"))
    # a messenger with menus by role shows them the new one (Telegram), wherever they are
    queue_role_menus(ctx.uow, person, role, ctx.core.settings.menus_by_role, ctx.now)
    if person.id != ctx.person.id:
        t = ctx.core.translator(person)
        told = t("role.told", handle=ctx.person.handle, role=t(f"role.name.{role}"))
        ctx.core.send_to_person(ctx.uow, person, Message(text=told), ctx.now)


def on_link(ctx: Ctx, cmd: Command) -> None:
    """`link`: a code for this person, privately; `link CODE` on another account: asks
    the code's owner; `link confirm|deny` answers that question where there are no
    buttons."""
    word = str(cmd.arg("code") or "").strip()
    if not word:
        link = ctx.uow.links.create(
            ctx.person.id,
            ctx.now + timedelta(minutes=linking.CODE_MINUTES),
            platform=ctx.platform,
            external_id=ctx.account.external_id,
        )
        ctx.reply("link.code", code=link.code, minutes=linking.CODE_MINUTES)
        return
    if word.lower() in linking.CONFIRM_WORDS | linking.DENY_WORDS:
        pending = ctx.uow.links.open_request(ctx.person.id, ctx.now)
        _answer_link(ctx, pending, confirm=word.lower() in linking.CONFIRM_WORDS)
        return
    check_code_tries(ctx.uow, ctx.event.meta.actor, ctx.now)
    pending = linking.request(ctx.core, ctx.uow, ctx.event.meta.actor, ctx.person, word, ctx.now)
    owner = ctx.uow.people.get(pending.person_id)
    # Named, so that a code that is someone else's is noticed (joining makes this account
    # theirs): "I've asked @mallory …"
    ctx.reply("link.asked", minutes=linking.ANSWER_MINUTES, owner=owner.handle if owner else "?")


def _answer_link(ctx: Ctx, pending: LinkRequest | None, *, confirm: bool) -> None:
    key, params = linking.decide(ctx.core, ctx.uow, ctx.person, pending, confirm, ctx.now)
    ctx.policy.forget_memberships()  # a merge brings the other person's groups
    ctx.settle(key, prefix=ctx.prefix, **params)


def on_link_confirm(ctx: Ctx, value: str) -> None:
    _answer_link(ctx, _request_of(ctx, value), confirm=True)


def on_link_deny(ctx: Ctx, value: str) -> None:
    _answer_link(ctx, _request_of(ctx, value), confirm=False)


def _request_of(ctx: Ctx, value: str) -> LinkRequest | None:
    """The request a button is about, if it is this person's to answer (a press by anyone
    else finds nothing: the question is not theirs)."""
    pending = ctx.uow.links.get_request(int(value)) if value.isdigit() else None
    if pending is None or pending.person_id != ctx.person.id:
        raise UserError("error.button_expired")
    return pending


HANDLERS = Handlers(
    commands={
        "whoami": on_whoami,
        "settings language": on_settings_language,
        "settings timezone": on_settings_timezone,
        "settings digest": on_settings_digest,
        "role": on_role,
        "link": on_link,
    },
    actions={
        settings_menu.ACTION: settings_menu.on_pressed,
        linking.CONFIRM_ACTION: on_link_confirm,
        linking.DENY_ACTION: on_link_deny,
    },
)
