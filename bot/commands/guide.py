"""cancel, and the answers to a guided command's questions (typed or pressed); the
logic is bot.guide's."""

from __future__ import annotations

from bot import guide
from bot.core import Ctx
from bot.grammar import Command
from bot.handlers import Handlers
from store.models import Prompt


def on_cancel(ctx: Ctx, cmd: Command) -> None:
    guide.cancel(ctx)


def on_answer(ctx: Ctx, prompt: Prompt, text: str) -> None:
    guide.answer(ctx, prompt, text)


def on_pick(ctx: Ctx, value: str) -> None:
    guide.pick(ctx, value)


HANDLERS = Handlers(
    commands={"cancel": on_cancel},
    actions={guide.PICK: on_pick},
    prompts={guide.KIND: on_answer},
)
