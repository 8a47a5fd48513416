"""Invites: invite, invites, revoke, redeem (and Telegram's /start CODE)."""

from __future__ import annotations

from datetime import timedelta

from bot.access import find_invite, valid_invite
from bot.core import Ctx
from bot.errors import UserError
from bot.grammar import Command
from bot.handlers import Handlers
from bot.markup import Markup, link
from bot.message import Button, Message
from bot.policy import Policy
from store.models import Group, Invite, Role

MAX_USES = 1000
MAX_DAYS = 365
WELCOME_GROUPS = 6  # join buttons on a welcome: one phone screen
WELCOME_JOIN = "welcome.join"
WELCOME_HELP = "welcome.help"
WELCOME_LANGUAGE = "welcome.language"


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
    params = {
        "role": ctx.t(f"role.name.{role}"),
        "groups": ", ".join(g.name for g in groups),
        "code": invite.code,
        "uses": uses,
        "until": ctx.t.datetime(invite.expires_at, ctx.core.timezone_of(ctx.person)),
        "prefix": ctx.prefix,
    }
    links = [
        (ctx.core.platform_names.get(platform, platform), link(template.format(code=invite.code)))
        for platform, template in sorted(ctx.core.settings.invite_links.items())
    ]
    # An invite for a messenger with a link of its own (Telegram's deep link: one tap)
    # shows that way first: one made there, or for a guest or partner, who come from
    # outside and meet Pinwall there; the redeem command follows for the others.
    if links and (role.is_external or ctx.platform in ctx.core.settings.invite_links):
        lines = [ctx.t("invite.created_short", **params)]
        lines += [ctx.t("invite.link_first", platform=name, url=url) for name, url in links]
        lines.append(ctx.t("invite.or_redeem", **params))
    else:
        lines = [ctx.t("invite.created", **params)]
        lines += [ctx.t("invite.link", platform=name, url=url) for name, url in links]
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
    if ctx.policy.is_external and not invited.is_external and _made_by_an_admin(ctx, invite):
        # A member invite from an admin lets an external in fully; one from a member does
        # not promote them (any member may invite colleagues into open groups, but not
        # turn a partner or guest into a colleague).
        ctx.person.role = Role.MEMBER
    joined = []
    for group in ctx.uow.groups.by_ids(ctx.uow.invites.group_ids(invite.id)):
        if ctx.person.role_enum.is_external and not group.admits_externals:
            continue
        if ctx.uow.groups.membership(ctx.person.id, group.id) is None:
            ctx.uow.groups.add_member(ctx.person.id, group.id, now=ctx.now)
        joined.append(group)
    ctx.policy.forget_memberships()
    ctx.audit("invite.redeemed", invite.code, role=ctx.person.role, groups=[g.slug for g in joined])
    welcome(ctx, joined)


def _made_by_an_admin(ctx: Ctx, invite: Invite) -> bool:
    creator = ctx.uow.people.get(invite.created_by) if invite.created_by else None
    return creator is not None and creator.active and Policy(ctx.uow, creator).is_admin


def welcome(ctx: Ctx, joined: list[Group]) -> None:
    """One message: who they are now and their groups, with buttons for the groups they
    may join still, "what can I do here?" and the other language."""
    lines = [
        ctx.t(
            "redeem.done",
            handle=ctx.person.handle,
            groups=", ".join(f"{g.name} ({g.slug})" for g in joined) or "-",
            prefix=ctx.prefix,
        )
    ]
    p = ctx.policy
    more = [g for g in p.visible_groups() if p.membership(g) is None and p.may_join(g)]
    buttons = [
        Button(label=g.name, action=WELCOME_JOIN, value=g.slug) for g in more[:WELCOME_GROUPS]
    ]
    if buttons:
        lines.append(ctx.t("welcome.join_hint"))
    other = "en" if ctx.t.language == "de" else "de"
    buttons.append(Button(label=ctx.t("welcome.help"), action=WELCOME_HELP, value=""))
    buttons.append(Button(label=ctx.t("welcome.language"), action=WELCOME_LANGUAGE, value=other))
    ctx.reply_message(Message(text=Markup("\n".join(lines)), buttons=tuple(buttons)))


def on_welcome_join(ctx: Ctx, value: str) -> None:
    ctx.core.run_command(ctx, "join", value)


def on_welcome_help(ctx: Ctx, value: str) -> None:
    ctx.core.run_command(ctx, "help", "")


def on_welcome_language(ctx: Ctx, value: str) -> None:
    if value not in ("en", "de"):
        raise UserError("error.button_expired")
    ctx.core.run_command(ctx, "settings", f"language {value}")


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
            prefix=ctx.prefix,
        )


HANDLERS = Handlers(
    commands={
        "invite": on_invite,
        "invites": on_invites,
        "revoke": on_revoke,
        "redeem": on_redeem,
        "start": on_start,
    },
    actions={
        WELCOME_JOIN: on_welcome_join,
        WELCOME_HELP: on_welcome_help,
        WELCOME_LANGUAGE: on_welcome_language,
    },
)
