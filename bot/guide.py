"""Guided commands, cancel and expiry, small talk (CONVERSATION.md rules 1, 4 and 9).

A command with something missing asks for it, one thing at a time, offering the valid
choices as buttons (adapters render them natively: keyboards on Telegram, Block Kit on
Slack, numbered choices on Matrix and the console). The question is a prompt of kind
"guide" whose `data` keeps the command's name and the argument text collected so far;
each answer is appended to that text and the command parsed again, so the grammar stays
the one judge of what is valid and nothing is written before the command runs whole.

Any prompt (a guided question, a comment, a reason, a share waiting for its group) ends
with `cancel`/`abbrechen`/`stop` (typed or as a command) or after ten minutes, saying so.

Plain direct messages that are neither a link nor a file nor a longer note (thanks,
greetings, "ok", other short text) get one friendly line and a hint, never a share prompt.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete

from bot import grammar, settings_menu
from bot.errors import UserError
from bot.events import ButtonPressed
from bot.markup import Markup
from bot.message import Button, Message, Target
from store.models import MAIL_PLATFORM, Draft, Group, Prompt

if TYPE_CHECKING:
    from bot.core import Ctx

# How long any question waits for its answer.
EXPIRY = timedelta(minutes=10)
KIND = "guide"  # the prompt kind of a guided command's question
PICK = "guide.pick"  # the action of its buttons
MAX_BUTTONS = 20  # more choices: the question says to type the name
CANCEL_WORDS = frozenset({"cancel", "abbrechen", "abbruch", "stop", "stopp"})
# Commands said where they act (bridge binds the room it is said in): a question in the
# private chat would lose the room, so they keep their usage answer.
NOT_GUIDED = frozenset({"bridge"})
# A plain direct message of fewer words than this, on one line, without a link or file,
# is not offered for sharing: it is small talk (or a question the hint answers).
NOTE_WORDS = 4
# Thanks and greetings up to this many words are small talk even when longer than that.
TALK_WORDS = 8


def expired(created_at: datetime, now: datetime) -> bool:
    return now - created_at > EXPIRY


def _words(text: str) -> str:
    """Lower case, letters, digits and single spaces: "Danke!! 🙏" -> "danke"."""
    kept = "".join(
        c if c.isalnum() or c.isspace() else " " for c in unicodedata.normalize("NFC", text)
    )
    return " ".join(kept.lower().split())


def is_cancel(text: str) -> bool:
    """`cancel`, `abbrechen`, `stop`, with or without a slash or an exclamation mark."""
    return _words(text.strip().lstrip("/")) in CANCEL_WORDS


# --- cancel and expiry ---------------------------------------------------------------


def cancel(ctx: Ctx) -> None:
    """Ends every open question of the person: the prompt, and shares waiting for their
    group. Nothing of them is kept."""
    prompt = ctx.uow.state.take_prompt(ctx.person.id)
    result = ctx.uow.session.execute(delete(Draft).where(Draft.person_id == ctx.person.id))
    drafts = int(getattr(result, "rowcount", 0) or 0)
    if prompt is None and not drafts:
        ctx.reply("guide.nothing_to_cancel")
    else:
        ctx.reply("guide.cancelled")


def say_expired(ctx: Ctx, prompt: Prompt) -> None:
    """The person answered a question asked more than ten minutes ago: it is gone."""
    data = prompt.data or {}
    if prompt.kind == KIND and data.get("name"):
        ctx.reply("guide.expired_command", command=_prefix(ctx) + str(data["name"]))
    else:
        ctx.reply("guide.expired")


def _prefix(ctx: Ctx) -> str:
    return ctx.prefix


# --- guided commands -----------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    label: str
    value: str


@dataclass(frozen=True)
class Step:
    """What to ask for next: a parameter of a command, or which subcommand."""

    name: str  # the command as typed ("join", "digest")
    arguments: str  # what was given so far
    key: str  # the question's catalog key part: "join.group", "digest"
    param: str  # the parameter's name; "" for a subcommand
    rest: bool  # the answer takes the rest of the line (no quoting)
    closed: bool  # only the offered choices are valid (a typed other is asked again)
    choices: tuple[Choice, ...]
    none_key: str | None = None  # said instead of asking when there is nothing to offer


def next_step(ctx: Ctx, name: str, arguments: str, err: UserError) -> Step | None:
    """The question for a parse error that only says something is missing."""
    if grammar.first_word(name) in NOT_GUIDED:
        return None
    if err.key == "error.missing_argument":
        spec = next((s for s in grammar.SPECS if s.key == err.params.get("usage_of")), None)
        param = (
            next((p for p in spec.params if p.name == err.params.get("param")), None)
            if spec is not None
            else None
        )
        if spec is None or param is None:
            return None
        key = f"{spec.key.replace(' ', '_')}.{param.name}"
        if param.kind == "choice":
            choices = tuple(
                Choice(_label(ctx, param.name, c), c)
                for c in param.choices
                if c != "mail" or MAIL_PLATFORM in ctx.core.settings.running
            )
            return Step(name, arguments, key, param.name, False, True, choices)
        found = _PROVIDERS.get(key) or _PROVIDERS.get(param.name)
        choices, none_key = found(ctx) if found else ((), None)
        return Step(
            name, arguments, key, param.name, param.kind == "rest", False, choices, none_key
        )
    if err.key == "error.unknown_subcommand" and not err.params.get("given"):
        specs = [s for s in grammar.specs_named(name) if not s.hidden]
        subs = tuple(dict.fromkeys(s.path[1] for s in specs if len(s.path) > 1))
        choices = tuple(Choice(_label(ctx, f"{specs[0].name}", sub), sub) for sub in subs)
        return Step(name, arguments, f"sub_{specs[0].name}", "", False, True, choices)
    return None


def _label(ctx: Ctx, param: str, value: str) -> str:
    wanted = f"guide.choice.{param}.{value}"  # where the catalog names it; else the word
    return str(ctx.t(wanted)) if ctx.t.has(wanted) else value


def ask_missing(ctx: Ctx, name: str, arguments: str, err: UserError) -> bool:
    """Asks for what `err` says is missing (Core.run_command); False: not a question."""
    if settings_menu.wanted(ctx, grammar.canonical_name(grammar.first_word(name)), arguments):
        _say(ctx, settings_menu.menu(ctx))  # what is set, a button for each change
        return True
    step = next_step(ctx, name, arguments, err)
    if step is None:
        return False
    if step.none_key is not None and not step.choices:
        _say(ctx, Message(text=ctx.t(step.none_key, prefix=_prefix(ctx))))
        return True
    ask(ctx, step)
    return True


def ask(ctx: Ctx, step: Step, *, again: bool = False) -> None:
    nonce = secrets.token_hex(3)
    shown = step.choices[:MAX_BUTTONS]
    ctx.uow.state.set_prompt(
        ctx.person.id,
        KIND,
        0,
        ctx.now,
        data={
            "name": step.name,
            "arguments": step.arguments,
            "key": step.key,
            "param": step.param,
            "rest": step.rest,
            "closed": step.closed,
            "nonce": nonce,
            "choices": [[c.label, c.value] for c in step.choices],
        },
    )
    lines: list[Markup] = []
    if again:
        lines.append(ctx.t("guide.pick_one"))
    lines.append(_question(ctx, step))
    if len(step.choices) > len(shown):
        lines.append(ctx.t("guide.more", count=len(step.choices) - len(shown)))
    lines.append(ctx.t("guide.cancel_hint"))
    buttons = tuple(
        Button(label=c.label, action=PICK, value=f"{nonce}:{i}") for i, c in enumerate(shown)
    )
    # "prompt": its answer is awaited (a messenger ties the reply to it: ForceReply)
    _say(ctx, Message(text=Markup("\n".join(lines)), buttons=buttons, meta={"prompt": KIND}))


def _question(ctx: Ctx, step: Step) -> Markup:
    for key in (f"guide.ask.{step.key}", f"guide.ask.{step.param or 'sub'}"):
        if ctx.t.has(key):
            return ctx.t(key)
    param_key = "param." + step.param
    param = ctx.t(param_key) if ctx.t.has(param_key) else step.param
    return ctx.t("guide.ask.any", param=param)


def _say(ctx: Ctx, message: Message) -> None:
    """A question is asked in the person's private chat: its typed answer would be a
    post of the group in a bridged room. The room is told once where it went."""
    if ctx.in_direct_chat:
        ctx.reply_message(message)
        return
    meta = ctx.event.meta
    direct = Target(meta.platform, "dm", meta.actor.external_id)
    ctx.core.enqueue(ctx.uow, direct, message, ctx.person.id, ctx.now)
    if not ctx.pointed:
        ctx.pointed = True
        ctx.core.point_to_private(ctx.uow, ctx.event, ctx.t, ctx.person.id, ctx.now)


def _step_of(data: dict[str, Any]) -> Step:
    return Step(
        name=str(data["name"]),
        arguments=str(data.get("arguments", "")),
        key=str(data.get("key", "")),
        param=str(data.get("param", "")),
        rest=bool(data.get("rest")),
        closed=bool(data.get("closed")),
        choices=tuple(Choice(str(lbl), str(v)) for lbl, v in data.get("choices", [])),
    )


def answer(ctx: Ctx, prompt: Prompt, text: str) -> None:
    """A typed answer: a choice's number, label or value, or (where any value may do)
    the text itself. Then the command runs, or asks for the next missing thing."""
    step = _step_of(prompt.data or {})
    value = _match(step, text)
    if value is None:
        if step.closed:
            ask(ctx, step, again=True)
            return
        value = text.strip()
    _continue(ctx, step, value)


def pick(ctx: Ctx, value: str) -> None:
    """A pressed choice of a guided question; a stale one (answered, cancelled,
    another question since) changes nothing."""
    nonce, _, index = value.partition(":")
    prompt = ctx.uow.state.take_prompt(ctx.person.id)
    data = (prompt.data or {}) if prompt is not None else {}
    if prompt is None or prompt.kind != KIND or data.get("nonce") != nonce:
        raise UserError("error.button_expired")
    if expired(prompt.created_at, ctx.now):
        say_expired(ctx, prompt)  # and it stays taken
        return
    step = _step_of(data)
    if not index.isdigit() or int(index) >= len(step.choices):
        raise UserError("error.button_expired")
    pressed = ctx.event.message if isinstance(ctx.event, ButtonPressed) else None
    if pressed is not None:  # the answer (or the next question) shows in its place
        ctx.replaces = pressed.message_id
    _continue(ctx, step, step.choices[int(index)].value)


def _match(step: Step, text: str) -> str | None:
    said = text.strip()
    if said.isdigit() and 1 <= int(said) <= len(step.choices):
        return step.choices[int(said) - 1].value
    folded = _words(said)
    for c in step.choices:
        if folded and folded in (_words(c.label), _words(c.value)):
            return c.value
    return None


_QUOTES = re.compile('["“”„]')


def _continue(ctx: Ctx, step: Step, value: str) -> None:
    if not step.rest:
        value = _QUOTES.sub("", value)
        if not value or any(ch.isspace() for ch in value):
            value = f'"{value}"'
    arguments = f"{step.arguments} {value}".strip()
    ctx.core.run_command(ctx, step.name, arguments)


# --- choices -----------------------------------------------------------------------


def _groups(groups: list[Group]) -> tuple[Choice, ...]:
    return tuple(Choice(g.name, g.slug) for g in groups)


def _joinable(ctx: Ctx) -> tuple[tuple[Choice, ...], str]:
    p = ctx.policy
    found = [
        g
        for g in p.visible_groups()
        if p.membership(g) is None and (p.may_join(g) or p.may_ask_to_join(g))
    ]
    return _groups(found), "guide.none.join"


def _mine(ctx: Ctx) -> tuple[tuple[Choice, ...], str]:
    p = ctx.policy
    return _groups([g for g in p.visible_groups() if p.membership(g) is not None]), (
        "guide.none.mine"
    )


def _readable(ctx: Ctx) -> tuple[tuple[Choice, ...], str]:
    return _groups(ctx.policy.readable_groups()), "guide.none.mine"


def _postable(ctx: Ctx) -> tuple[tuple[Choice, ...], str]:
    return _groups(ctx.policy.postable_groups()), "guide.none.mine"


def _moderated(ctx: Ctx) -> tuple[tuple[Choice, ...], str]:
    p = ctx.policy
    return _groups([g for g in p.visible_groups() if p.can_moderate(g)]), "guide.none.moderated"


def _outlets(ctx: Ctx) -> tuple[tuple[Choice, ...], str | None]:
    return tuple(Choice(o.name, o.name) for o in ctx.core.settings.outlets.outlets), None


def _days(ctx: Ctx) -> tuple[tuple[Choice, ...], str | None]:
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    return tuple(Choice(_label(ctx, "day", d), d) for d in days), None


Provider = Callable[["Ctx"], tuple[tuple[Choice, ...], str | None]]

# By "<command key>.<param>" (spaces as _), else by the parameter's name.
_PROVIDERS: dict[str, Provider] = {
    "join.group": _joinable,
    "leave.group": _mine,
    "notify.group": _mine,
    "items.group": _readable,
    "members.group": _readable,
    "share.group": _postable,
    "feed_add.group": _mine,
    "add.group": _moderated,
    "remove.group": _moderated,
    "invite.groups": _mine,
    "propose.outlet": _outlets,
    "digest_weekly.day": _days,
}


# --- small talk ----------------------------------------------------------------------

_THANKS = ("danke", "vielen dank", "merci", "thanks", "thank you", "thx", "cheers", "dankeschön")
_GREETINGS = (
    "hallo",
    "hi",
    "hey",
    "hello",
    "moin",
    "servus",
    "grüß gott",
    "gruss gott",
    "grüezi",
    "guten morgen",
    "guten tag",
    "guten abend",
    "good morning",
    "good afternoon",
    "good evening",
    "huhu",
)
_BYE = ("tschüss", "tschüs", "ciao", "bye", "goodbye", "bis bald", "bis später", "see you")
_OK = ("ok", "okay", "alles klar", "super", "cool", "prima", "perfekt", "great", "nice", "gut")
_ACK_EMOJI = frozenset("👍🙏🙂😊👌❤✅🎉😀😃")


def is_note(text: str) -> bool:
    """Whether a plain direct message without a link or file is worth offering to share:
    more than a word or two of small talk, and not a thanks or greeting."""
    stripped = text.strip()
    words = _words(stripped).split()
    if _kind_of(stripped) != "other" and len(words) <= TALK_WORDS:
        return False
    return len(words) >= NOTE_WORDS or "\n" in stripped


def _kind_of(text: str) -> str:
    words = _words(text)
    if not words:
        return "thanks" if any(c in _ACK_EMOJI for c in text) else "other"
    for kind, phrases in (("thanks", _THANKS), ("hello", _GREETINGS), ("bye", _BYE), ("ok", _OK)):
        if any(words == p or words.startswith(p + " ") for p in phrases):
            return kind
    return "other"


def small_talk(ctx: Ctx, text: str) -> None:
    """One friendly line and a hint, in one message."""
    kind = _kind_of(text)
    name = ctx.event.meta.actor.display_name or ctx.person.handle
    line = ctx.t(f"guide.talk.{kind}", name=name)
    hint_key = "guide.talk.hint" if ctx.policy.postable_groups() else "guide.talk.hint_no_groups"
    hint = ctx.t(hint_key, prefix=_prefix(ctx))
    ctx.reply_markup(Markup(f"{line}\n{hint}"))


__all__ = [
    "EXPIRY",
    "KIND",
    "PICK",
    "answer",
    "ask_missing",
    "cancel",
    "expired",
    "is_cancel",
    "is_note",
    "pick",
    "say_expired",
    "small_talk",
]
