"""help: the commands this person may use, with their usage, in their language."""

from __future__ import annotations

from collections.abc import Collection

from bot import grammar
from bot.core import Ctx, localize_usage
from bot.errors import UserError
from bot.grammar import Command
from bot.handlers import Handlers
from bot.markup import Markup, bold, esc
from store.models import Role

# Who a command is for; a command not named here is for everyone who got in.
_INTERNAL = frozenset(
    {
        "group create",
        "add",
        "remove",
        "feed add",
        "feed remove",
        "outlets",
        "propose",
        "revise",
        "withdraw",
        "invite",
        "invites",
        "revoke",
        "bridge",
    }
)
_GATEKEEPERS = frozenset({"pending", "approve", "reject"})
_ADMINS = frozenset({"role", "audit", "outbox failed", "outbox retry"})


def for_role(spec: grammar.Spec, role: Role, available: Collection[str]) -> bool:
    """Whether help lists the command for this role (commands without a handler in
    `available`, the handler table's, are left out)."""
    if spec.hidden or spec.key not in available:
        return False
    if spec.key in _ADMINS:
        return role is Role.ADMIN
    if spec.key in _GATEKEEPERS:
        return role in (Role.ADMIN, Role.GATEKEEPER)
    if spec.key in _INTERNAL:
        return not role.is_external
    return True


def on_help(ctx: Ctx, cmd: Command) -> None:
    prefix = ctx.core.settings.command_prefixes.get(ctx.platform, "/")
    wanted = cmd.arg("command")
    role = ctx.policy.role
    if wanted:
        name = grammar.first_word(str(wanted).lstrip("/!"))
        specs = [s for s in grammar.specs_named(name) if not s.hidden]
        if not specs:
            raise UserError("error.unknown_command", command=name, suggestion="")
        found: list[str] = [bold(name)]
        for s in specs:
            found.append(ctx.usage(s.key))
            found.append(Markup("  ") + ctx.t(f"help.{s.key}"))
        ctx.reply_markup(Markup("\n".join(found)))
        return
    lines: list[str] = [ctx.t("help.header")]
    for s in grammar.SPECS:
        if for_role(s, role, ctx.core.handlers.commands):
            usage = prefix + localize_usage(s.usage_line, ctx.t)
            lines.append(Markup(f"- {esc(usage)} — {ctx.t(f'help.{s.key}')}"))
    lines.append(ctx.t("help.footer", prefix=prefix))
    ctx.reply_markup(Markup("\n".join(lines)))


HANDLERS = Handlers(
    commands={
        "help": on_help,
    },
)
