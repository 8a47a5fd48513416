"""What help says: the commands grouped by task, who each is for, and one example per
command filled with names this person knows (their own group, a post they can read).

`help` itself (bot/commands/help.py) and the refusal layout (error_text below: what
happened, why, what to do — the usage and one example) both take their examples here.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot import grammar, words
from bot.errors import UserError
from bot.i18n import Translator
from bot.markup import Markup
from store.models import Person, Role
from store.uow import UnitOfWork

if TYPE_CHECKING:
    from bot.core import Core

# Who a command is for; a command not named here is for everyone who got in.
INTERNAL = frozenset(
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
        "announce",
        "poll",
    }
)
GATEKEEPERS = frozenset({"pending", "approve", "reject"})
ADMINS = frozenset({"role", "audit", "outbox failed", "outbox retry", "admin web"})
# Why a command is not for someone (help <command> says so): `help.why.<key>`.
WHY = ("admin", "gatekeeper", "internal")

# The tasks help groups commands by, in the order it shows them, each with its commands
# (by name: `digest` stands for all its forms) in the order a newcomer needs them.
TASKS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("share", ("share", "show", "comment", "items", "search")),
    ("groups", ("groups", "join", "leave", "members", "group", "add", "remove", "bridge")),
    ("announce", ("announce", "announcement", "poll")),
    ("news", ("notify", "digest", "feed", "newsletter")),
    ("approvals", ("propose", "pending", "approve", "reject", "revise", "withdraw", "outlets")),
    ("invites", ("invite", "invites", "revoke")),
    ("settings", ("settings", "whoami", "link", "email", "redeem")),
    ("admin", ("role", "audit", "outbox", "admin")),
)
# What the short help offers per task: the rest is in `help all` and `help <command>`.
SHORT: frozenset[str] = frozenset(
    {
        "share",
        "show",
        "comment",
        "items",
        "search",
        "groups",
        "join",
        "leave",
        "group",
        "notify",
        "digest",
        "feed",
        "propose",
        "announce",
        "poll",
        "pending",
        "approve",
        "reject",
        "invite",
        "invites",
        "settings",
        "whoami",
        "link",
        "role",
        "audit",
        "outbox",
        "admin",
    }
)
SHORT_MAX_LINES = 12


def for_role(spec: grammar.Spec, role: Role, available: Collection[str]) -> bool:
    """Whether help lists the command for this role (commands without a handler in
    `available`, the handler table's, are left out)."""
    if spec.hidden or spec.key not in available:
        return False
    if spec.key in ADMINS:
        return role is Role.ADMIN
    if spec.key in GATEKEEPERS:
        return role in (Role.ADMIN, Role.GATEKEEPER)
    if spec.key in INTERNAL:
        return not role.is_external
    return True


def names_for(role: Role, available: Collection[str]) -> set[str]:
    """The command names (`digest`, not `digest now`) with a form this role may use."""
    return {s.name for s in grammar.SPECS if for_role(s, role, available)}


@dataclass(frozen=True)
class Task:
    key: str
    names: tuple[str, ...]


def tasks_for(role: Role, available: Collection[str], *, short: bool) -> list[Task]:
    """The tasks with the commands this role may use, the few of the short help or all."""
    allowed = names_for(role, available)
    found: list[Task] = []
    for key, names in TASKS:
        chosen = tuple(n for n in names if n in allowed and (not short or n in SHORT))
        if chosen:
            found.append(Task(key, chosen))
    return found


# --- examples ---------------------------------------------------------------------------


def example_values(
    uow: UnitOfWork | None, person: Person | None, t: Translator, outlets: Sequence[str] = ()
) -> dict[str, str]:
    """The names an example uses: the person's first group and its newest post where they
    have them, the first public channel there is, else the catalog's sample names."""
    values = {
        "group": str(t("help.sample.group")),
        "item": "#12",
        "person": str(t("help.sample.person")),
        "outlet": outlets[0] if outlets else str(t("help.sample.outlet")),
    }
    if uow is None or person is None:
        return values
    groups = [g for g, m in uow.groups.all_for(person.id) if m is not None]
    if groups:
        group = groups[0]
        values["group"] = group.slug
        newest = uow.items.lines(group.id, 1)
        if newest:
            values["item"] = f"#{newest[0].id}"
    return values


# --- command names in the reader's language ------------------------------------------------


def shown_name(name: str, language: str) -> str:
    """A command as help lists it: its German name for German readers ("beiträge"),
    where it has one, else its name."""
    german = words.german_name(name) if language == "de" else None
    return german or name


def typed_name(name: str, language: str) -> str:
    """A command as an example types it: the German name folded to plain letters
    ("beitraege"), which every messenger takes as a command (Telegram's are
    [a-z0-9_]) and the grammar accepts; else its name."""
    german = words.german_name(name) if language == "de" else None
    return words.fold(german) if german else name


def _german_subcommand(command: str, sub: str) -> str:
    forms = words.GERMAN_SUBCOMMANDS.get(command, {})
    return next((german for german, meaning in forms.items() if meaning == sub), sub)


def localize_command(line: str, language: str) -> str:
    """A command line ("digest daily 08:00", "share <group> ...") with the command and
    its subcommand as German readers type them ("zusammenfassung täglich 08:00")."""
    if language != "de":
        return line
    first, space, rest = line.partition(" ")
    if not first:
        return line
    second, space2, tail = rest.partition(" ")
    if second and second in words.GERMAN_SUBCOMMANDS.get(first, {}).values():
        rest = _german_subcommand(first, second) + space2 + tail
    return typed_name(first, language) + space + rest


def example(t: Translator, key: str, prefix: str, values: Mapping[str, str]) -> Markup | None:
    """One real example of the command `key` (a spec's key or a command's name), with
    the command named as the reader types it (German names for German readers)."""
    name = f"help.example.{key}"
    if not t.has(name):
        return None
    shown = t(name, prefix=prefix, **values)
    if t.language != "de" or not shown.startswith(prefix):
        return shown
    return Markup(prefix + localize_command(str(shown)[len(prefix) :], t.language))


def example_of(t: Translator, key: str, prefix: str, values: Mapping[str, str]) -> Markup | None:
    """The example of `key`, or of the first form of the command so named."""
    found = example(t, key, prefix, values)
    if found is None:
        forms = grammar.specs_named(key.split(" ")[0])
        if forms:
            found = example(t, forms[0].key, prefix, values)
    return found


def param_name(t: Translator, name: str) -> str:
    """A parameter as a sentence names it ("groups", "Gruppen"), not as a usage line
    shows it (`<group,group>`); an option (`--uses`) stays as it is typed."""
    for key in (f"error.param.{name}", f"param.{name}"):
        if t.has(key):
            return str(t(key))
    return name


def localize_usage(line: str, t: Translator) -> str:
    """A usage line in the reader's words: the command's German name, the parameters'."""
    line = localize_command(line, t.language)

    def swap(word: str) -> str:
        key = "param." + word
        return str(t(key)) if t.has(key) else word

    out = []
    for piece in line.split(" "):
        stripped = piece.strip("<>[]")
        core_name = stripped.removesuffix("...")
        if piece[:1] in "<[" and not core_name.startswith("--") and core_name:
            out.append(piece.replace(core_name, swap(core_name), 1))
        else:
            out.append(piece)
    return " ".join(out)


def error_text(
    core: Core,
    err: UserError,
    t: Translator,
    platform: str,
    examples: Mapping[str, str] | None = None,
    *,
    room: bool = False,
) -> Markup:
    """One layout for every refusal: what happened and why (the catalog's text),
    then, where the input was wrong, what to do: the usage and one real example
    (`examples`: the names it uses, see bot.help.example_values)."""
    params = dict(err.params)
    usage_of = params.pop("usage_of", None)
    if err.key == "error.unknown_subcommand":
        usage_of = params["command"]
    if "param" in params:
        params["param"] = param_name(t, str(params["param"]))
    prefix = core.prefix(platform, t, room=room)
    params.setdefault("prefix", prefix)
    text = t(err.key, **params)
    if usage_of:
        usage = core.usage(usage_of, t, platform, room=room)
        text = Markup(f"{text}\n{t('error.usage', usage=usage)}")
        values = examples if examples is not None else example_values(None, None, t)
        shown = example_of(t, usage_of, prefix, values)
        if shown is not None:
            text = Markup(f"{text}\n{t('error.example', example=shown)}")
    return text
