"""The handler table: which function answers each command, button, plain message, reaction
and prompt, and which renders each kind of outbox reference.

A value, not a registry: each command module declares its part (`HANDLERS = Handlers(...)`
at its end), the top floor combines them (app/handlers.py) and gives the result to the
Core. Nothing registers by being imported, and two handlers for the same command, button
action, prompt kind or outbox kind stop the start (DuplicateHandler) instead of one
silently replacing the other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from bot import grammar

if TYPE_CHECKING:
    from bot.core import Ctx
    from bot.delivery import RowRenderer
    from bot.events import MessageReceived, ReactionAdded, ReactionRemoved
    from store.models import Prompt

CommandHandler = Callable[["Ctx", grammar.Command], None]
ActionHandler = Callable[["Ctx", str], None]  # (ctx, the button's value)
MessageHandler = Callable[["Ctx", "MessageReceived"], None]
ReactionHandler = Callable[["Ctx", "ReactionAdded"], None]
UnreactionHandler = Callable[["Ctx", "ReactionRemoved"], None]
PromptHandler = Callable[["Ctx", "Prompt", str], None]  # (ctx, the question, the answer)


class DuplicateHandler(ValueError):
    """Two handlers claim the same command, action, prompt kind or outbox kind."""


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class Handlers:
    # by grammar key ("join", "feed add")
    commands: Mapping[str, CommandHandler] = field(default_factory=dict)
    # by button action ("item.like"); a press of an unknown one is a stale button
    actions: Mapping[str, ActionHandler] = field(default_factory=dict)
    # the one handler of plain messages (the share flow, bridged rooms)
    message: MessageHandler | None = None
    # the one handler of mails to Pinwall's addresses (MessageReceived, intent "mail")
    mail: MessageHandler | None = None
    # each is given every reaction and picks what concerns it (a post's like, a card's vote)
    reactions: tuple[ReactionHandler, ...] = ()
    # each is given every reaction taken back (a 👍 taken back: an unlike)
    unreactions: tuple[UnreactionHandler, ...] = ()
    # the answer to the bot's question of this kind ("comment", "p.reject")
    prompts: Mapping[str, PromptHandler] = field(default_factory=dict)
    # how an outbox row that references something is rendered when sent, by its payload
    # kind ("card"); posts ("item") and stored messages ("msg") are bot.delivery's own
    renderers: Mapping[str, RowRenderer] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.commands) - {s.key for s in grammar.SPECS})
        if unknown:
            raise ValueError(f"handlers for commands the grammar lacks: {', '.join(unknown)}")
        for name in ("commands", "actions", "prompts", "renderers"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))
        if len(set(self.reactions)) != len(self.reactions):
            raise DuplicateHandler("a reaction handler is there twice")
        if len(set(self.unreactions)) != len(self.unreactions):
            raise DuplicateHandler("a handler of taken-back reactions is there twice")

    @classmethod
    def combine(cls, *parts: Handlers) -> Handlers:
        """One table of all parts; a key claimed twice raises DuplicateHandler naming it."""
        tables: dict[str, dict[str, Any]] = {
            "commands": {},
            "actions": {},
            "prompts": {},
            "renderers": {},
        }
        message: MessageHandler | None = None
        mail: MessageHandler | None = None
        reactions: list[ReactionHandler] = []
        unreactions: list[UnreactionHandler] = []
        for part in parts:
            for name, table in tables.items():
                for key, fn in getattr(part, name).items():
                    if key in table:
                        raise DuplicateHandler(
                            f"{name} {key!r}: both {_name(table[key])} and {_name(fn)}"
                        )
                    table[key] = fn
            if part.message is not None:
                if message is not None:
                    raise DuplicateHandler(
                        f"plain messages: both {_name(message)} and {_name(part.message)}"
                    )
                message = part.message
            if part.mail is not None:
                if mail is not None:
                    raise DuplicateHandler(f"mails: both {_name(mail)} and {_name(part.mail)}")
                mail = part.mail
            reactions.extend(part.reactions)
            unreactions.extend(part.unreactions)
        return cls(
            commands=tables["commands"],
            actions=tables["actions"],
            message=message,
            mail=mail,
            reactions=tuple(reactions),
            unreactions=tuple(unreactions),
            prompts=tables["prompts"],
            renderers=tables["renderers"],
        )


def _name(fn: Callable[..., Any]) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"
