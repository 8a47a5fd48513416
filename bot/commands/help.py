"""help: what this person can do now, by task, in one screen; `help <command>` with its
usage and one real example; `help all` for every command their role allows."""

from __future__ import annotations

from bot import grammar
from bot.core import Ctx
from bot.errors import UserError
from bot.grammar import Command
from bot.handlers import Handlers
from bot.help import (
    ADMINS,
    GATEKEEPERS,
    INTERNAL,
    SHORT_MAX_LINES,
    TASKS,
    example,
    example_values,
    for_role,
    localize_usage,
    shown_name,
    tasks_for,
)
from bot.markup import Markup, bold, esc
from store.models import Role

__all__ = ["HANDLERS", "for_role", "on_help"]

ALL = frozenset({"all", "alle"})


def _values(ctx: Ctx) -> dict[str, str]:
    return example_values(ctx.uow, ctx.person, ctx.t, ctx.core.outlet_names)


def _why_not(spec: grammar.Spec, role: Role) -> str | None:
    if spec.key in ADMINS and role is not Role.ADMIN:
        return "admin"
    if spec.key in GATEKEEPERS and role not in (Role.ADMIN, Role.GATEKEEPER):
        return "gatekeeper"
    if spec.key in INTERNAL and role.is_external:
        return "internal"
    return None


def on_help(ctx: Ctx, cmd: Command) -> None:
    prefix = ctx.prefix
    wanted = cmd.arg("command")
    role = ctx.policy.role
    available = ctx.core.handlers.commands
    values = _values(ctx)
    if wanted:
        name = grammar.first_word(str(wanted).lstrip("/!"))
        if name in ALL:
            _all(ctx, prefix, role)
            return
        specs = [s for s in grammar.specs_named(name) if not s.hidden]
        if not specs:
            raise UserError("error.unknown_command", command=name, suggestion="")
        found: list[str] = [bold(shown_name(specs[0].name, ctx.t.language))]
        for s in specs:
            found.append(ctx.usage(s.key))
            found.append(Markup("  ") + ctx.t(f"help.{s.key}"))
            shown = example(ctx.t, s.key, prefix, values)
            if shown is not None:
                found.append(ctx.t("help.example_line", example=shown))
            why = _why_not(s, role)
            if why is not None:
                found.append(ctx.t("help.not_for_role", why=ctx.t(f"help.why.{why}")))
        ctx.reply_markup(Markup("\n".join(found)))
        return
    lines: list[str] = [ctx.t("help.short.header", handle=ctx.person.handle)]
    first: str | None = None
    for task in tasks_for(role, available, short=True):
        first = first or task.names[0]
        commands = Markup(" · ".join(bold(shown_name(n, ctx.t.language)) for n in task.names))
        lines.append(
            ctx.t("help.short.line", task=ctx.t(f"help.task.{task.key}"), commands=commands)
        )
    if first is not None:
        forms = [s for s in grammar.specs_named(first) if for_role(s, role, available)]
        shown = example(ctx.t, forms[0].key, prefix, values) if forms else None
        if shown is not None:
            lines.append(ctx.t("help.short.example", example=shown))
    lines.append(ctx.t("help.short.footer", prefix=prefix))
    assert len(lines) <= SHORT_MAX_LINES, "the short help must fit one screen"
    ctx.reply_markup(Markup("\n".join(lines)))


def _all(ctx: Ctx, prefix: str, role: Role) -> None:
    """Every command this role may use, by task, with its usage and what it does."""
    available = ctx.core.handlers.commands
    lines: list[str] = [ctx.t("help.header")]
    listed: set[str] = set()
    for key, names in TASKS:
        specs = [
            s
            for n in names
            for s in grammar.specs_named(n)
            if s.name == n and for_role(s, role, available)
        ]
        if not specs:
            continue
        lines.append(bold(ctx.t(f"help.task.{key}")))
        for s in specs:
            listed.add(s.key)
            usage = prefix + localize_usage(s.usage_line, ctx.t)
            lines.append(Markup(f"- {esc(usage)} — {ctx.t(f'help.{s.key}')}"))
    rest = [s for s in grammar.SPECS if s.key not in listed and for_role(s, role, available)]
    for s in rest:  # help itself, and whatever a task does not name
        usage = prefix + localize_usage(s.usage_line, ctx.t)
        lines.append(Markup(f"- {esc(usage)} — {ctx.t(f'help.{s.key}')}"))
    lines.append(ctx.t("help.all_footer", prefix=prefix))
    ctx.reply_markup(Markup("\n".join(lines)))


HANDLERS = Handlers(
    commands={
        "help": on_help,
    },
)
