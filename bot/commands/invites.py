"""Invites: invite, invites, revoke, redeem (and Telegram's /start CODE)."""

from __future__ import annotations

from datetime import timedelta

from bot.access import find_invite, valid_invite
from bot.core import Ctx
from bot.errors import UserError
from bot.grammar import Command
from bot.handlers import Handlers
from bot.markup import Markup, link
from bot.message import Message
from store.models import Role

MAX_USES = 1000
MAX_DAYS = 365


def on_invite(ctx: Ctx, cmd: Command) -> None:
    ctx.policy.require_internal()
    role = Role(cmd.arg("role"))
    uses = cmd.flags.get("uses", 1)
    days = cmd.flags.get("days", 7)
    if not 1 <= uses <= MAX_USES:
        raise UserError("error.bad_uses", max=MAX_USES, usage_of="invite")
    if not 1 <= days <= MAX_DAYS:
        raise UserError("error.bad_days", max=MAX_DAYS, usage_of="invite")
    slugs = [s for s in str(cmd.arg("groups")).split(",") if s.strip()]
    if not slugs:  # "," names no group
        raise UserError("error.missing_argument", param="groups", usage_of="invite")
    # each group once, however often (or in whatever spelling) it was named
    groups = list({g.id: g for g in (ctx.policy.group(s.strip()) for s in slugs)}.values())
    for group in groups:
        if role.is_external and not group.admits_externals:
            raise UserError("error.group_no_externals_invite", group=group.name, slug=group.slug)
        if not ctx.policy.may_invite(group, role):
            raise UserError("error.invite_not_allowed", group=group.name)
    invite = ctx.uow.invites.create(
        role=role,
        group_ids=sorted(g.id for g in groups),
        created_by=ctx.person.id,
        max_uses=uses,
        expires_at=ctx.now + timedelta(days=days),
        now=ctx.now,
    )
    ctx.audit(
        "invite.created",
        invite.code,
        role=role.value,
        groups=[g.slug for g in groups],
        uses=uses,
        days=days,
    )
    text = ctx.t(
        "invite.created",
        role=ctx.t(f"role.name.{role}"),
        groups=", ".join(g.name for g in groups),
        code=invite.code,
        uses=uses,
        until=ctx.t.datetime(invite.expires_at, ctx.core.timezone_of(ctx.person)),
        prefix=ctx.core.settings.command_prefixes.get(ctx.platform, "/"),
    )
    lines = [text]
    for platform, template in sorted(ctx.core.settings.invite_links.items()):
        url = template.format(code=invite.code)
        lines.append(
            ctx.t(
                "invite.link",
                platform=ctx.core.platform_names.get(platform, platform),
                url=link(url),
            )
        )
    ctx.reply_message(Message(text=Markup("\n".join(lines)), meta={"invite_code": invite.code}))


def on_invites(ctx: Ctx, cmd: Command) -> None:
    ctx.policy.require_internal()
    mine = None if ctx.policy.is_admin else ctx.person.id
    invites = ctx.uow.invites.active(ctx.now, created_by=mine)
    if not invites:
        ctx.reply("invites.none")
        return
    tz = ctx.core.timezone_of(ctx.person)
    lines = [ctx.t("invites.header", count=len(invites))]
    for inv in invites:
        names = [g.slug for g in ctx.uow.groups.by_ids(ctx.uow.invites.group_ids(inv.id))]
        creator = ctx.uow.people.get(inv.created_by) if inv.created_by else None
        lines.append(
            ctx.t(
                "invites.line",
                code=inv.code,
                role=ctx.t(f"role.name.{inv.role}"),
                groups=", ".join(names) or "-",
                left=inv.max_uses - inv.uses,
                until=ctx.t.datetime(inv.expires_at, tz),
                by=creator.handle if creator else "-",
            )
        )
    ctx.reply_markup(Markup("\n".join(lines)))


def on_revoke(ctx: Ctx, cmd: Command) -> None:
    ctx.policy.require_internal()
    invite = find_invite(ctx.uow, str(cmd.arg("code")))
    if invite is None or not ctx.policy.may_manage_invite(invite.created_by):
        raise UserError("error.invite_not_found", code=cmd.arg("code"))
    if invite.revoked_at is not None:
        raise UserError("error.invite_already_revoked", code=invite.code)
    invite.revoked_at = ctx.now
    ctx.audit("invite.revoked", invite.code)
    ctx.reply("revoke.done", code=invite.code)


def redeem(ctx: Ctx, code: str) -> None:
    invite = valid_invite(ctx.uow, ctx.event.meta.actor, code, ctx.now)
    if not ctx.uow.invites.redeem(invite):
        raise UserError("error.invite_used_up")
    invited = Role(invite.role)
    if ctx.policy.is_external and not invited.is_external:
        ctx.person.role = Role.MEMBER  # a member invite lets an external in fully
    joined = []
    for group in ctx.uow.groups.by_ids(ctx.uow.invites.group_ids(invite.id)):
        if ctx.person.role_enum.is_external and not group.admits_externals:
            continue
        if ctx.uow.groups.membership(ctx.person.id, group.id) is None:
            ctx.uow.groups.add_member(ctx.person.id, group.id, now=ctx.now)
        joined.append(group)
    ctx.policy.forget_memberships()
    ctx.audit("invite.redeemed", invite.code, role=ctx.person.role, groups=[g.slug for g in joined])
    ctx.reply(
        "redeem.done",
        handle=ctx.person.handle,
        groups=", ".join(f"{g.name} ({g.slug})" for g in joined) or "-",
        prefix=ctx.core.settings.command_prefixes.get(ctx.platform, "/"),
    )


def on_redeem(ctx: Ctx, cmd: Command) -> None:
    redeem(ctx, str(cmd.arg("code")))


def on_start(ctx: Ctx, cmd: Command) -> None:
    code = cmd.arg("code")
    if code:
        redeem(ctx, str(code))
    else:
        ctx.reply(
            "start.known",
            handle=ctx.person.handle,
            prefix=ctx.core.settings.command_prefixes.get(ctx.platform, "/"),
        )


HANDLERS = Handlers(
    commands={
        "invite": on_invite,
        "invites": on_invites,
        "revoke": on_revoke,
        "redeem": on_redeem,
        "start": on_start,
    },
)
