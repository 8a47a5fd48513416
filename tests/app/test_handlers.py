"""The handler table: built by the top floor, complete, and strict about duplicates."""

from __future__ import annotations

import pytest

from app.handlers import NOT_AVAILABLE, build_handlers
from bot import grammar
from bot.commands import groups, sharing
from bot.core import Ctx
from bot.events import MessageReceived
from bot.handlers import DuplicateHandler, Handlers
from store.models import Prompt


def _join(ctx: Ctx, cmd: grammar.Command) -> None:
    raise AssertionError("never called")


def _press(ctx: Ctx, value: str) -> None:
    raise AssertionError("never called")


def _answer(ctx: Ctx, prompt: Prompt, text: str) -> None:
    raise AssertionError("never called")


def _message(ctx: Ctx, event: MessageReceived) -> None:
    raise AssertionError("never called")


def test_every_command_of_the_grammar_has_a_handler_but_those_deliberately_not_there() -> None:
    handlers = build_handlers()
    grammar_keys = {s.key for s in grammar.SPECS}
    assert grammar_keys - set(handlers.commands) == NOT_AVAILABLE
    assert set(handlers.commands) <= grammar_keys


def test_the_table_holds_each_part_once() -> None:
    handlers = build_handlers()
    assert handlers.commands["join"] is groups.on_join
    assert handlers.message is sharing.on_plain_message
    # a post's like is counted before an approval card looks at the reaction
    assert handlers.reactions[0] is sharing.on_reaction_added
    assert len(handlers.reactions) == 2
    assert set(handlers.prompts) == {"comment", "p.reject", "p.changes", "guide"}
    assert set(handlers.renderers) == {"card", "announce", "acard", "poll", "presult"}


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (Handlers(commands={"join": _join}), "commands 'join'"),
        (Handlers(actions={"item.like": _press}), "actions 'item.like'"),
        (Handlers(prompts={"comment": _answer}), "prompts 'comment'"),
        (Handlers(message=_message), "plain messages"),
        (Handlers(reactions=(sharing.on_reaction_added,)), "reaction handler"),
    ],
)
def test_two_handlers_for_the_same_thing_stop_the_start(extra: Handlers, says: str) -> None:
    with pytest.raises(DuplicateHandler, match=says) as err:
        build_handlers(extra)
    if "reaction" not in says:  # both are named, so the one to remove is found
        assert "tests.app.test_handlers." in str(err.value)


def test_a_handler_for_a_command_the_grammar_lacks_is_refused() -> None:
    with pytest.raises(ValueError, match="the grammar lacks: jion"):
        Handlers(commands={"jion": _join})


def test_the_table_cannot_be_changed_after_it_is_built() -> None:
    handlers = build_handlers()
    with pytest.raises(TypeError):
        handlers.commands["join"] = _join  # type: ignore[index]
