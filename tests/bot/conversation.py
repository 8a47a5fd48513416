"""Small helpers for the conversation tests of the core: refusals, other messengers, codes."""

from __future__ import annotations

import re
from typing import Any

from adapters.memory import MemoryAdapter
from bot.events import Trust
from bot.i18n import Translator
from bot.markup import to_plain
from tests.harness import Said, World


async def refused(world: World, who: str, line: str, **kwargs: str) -> str:
    """Says `line` and proves it changed nothing; returns what `who` was told."""
    before = world.snapshot()
    out = await world.say(who, line, **kwargs)
    assert world.snapshot() == before, f"{line!r} changed the state"
    assert out.addresses == [who], f"{line!r} was answered to {out.addresses}"
    return out.text(who)


async def say_on(world: World, adapter: MemoryAdapter, who: str, text: str) -> Said:
    """One line from `who` on another messenger registered on the world's hub."""
    before = len(adapter.sent)
    await world.hub.submit(adapter.event(who, text, world.clock.now()))
    await world.worker.drain()
    return Said(adapter.sent[before:])


def other_messenger(world: World, platform: str, *, trust: Trust = "member") -> MemoryAdapter:
    """A second messenger, e.g. "telegram", whose people the core meets with `trust`."""
    adapter = MemoryAdapter(platform=platform, trust=trust)
    world.hub.register(adapter)
    return adapter


def code_in(text: str, key: str, /, language: str = "en", **params: object) -> str:
    """The code a bot answer made from catalog entry `key` carries, e.g. a link code."""
    marker = "CODEMARKER"
    template = re.escape(catalog_text(language, key, code=marker, **params))
    m = re.fullmatch(template.replace(marker, "([A-Za-z0-9]{10})"), text)
    assert m is not None, f"{text!r} is not {key}"
    return m.group(1)


def en(key: str, /, **params: object) -> str:
    """What the English catalog says for `key`, as the plain text a person reads."""
    return catalog_text("en", key, **params)


def de(key: str, /, **params: object) -> str:
    """What the German catalog says for `key`, as the plain text a person reads."""
    return catalog_text("de", key, **params)


def catalog_text(language: str, key: str, /, **params: object) -> str:
    params.setdefault("prefix", "/")
    return to_plain(Translator(language)(key, **params))


def asked(language: str, question: str, *choices: str, again: bool = False) -> str:
    """A guided command's question (bot.guide) as a person reads it: the question, how
    to leave it, and the offered choices (the buttons' labels)."""
    lines = [catalog_text(language, "guide.pick_one")] if again else []
    lines += [catalog_text(language, question), catalog_text(language, "guide.cancel_hint")]
    if choices:
        lines.append("  ".join(choices))
    return "\n".join(lines)


def with_usage(language: str, text: str, usage: str, example: str) -> str:
    """An error answer followed by the usage line of the command and one example."""
    return (
        f"{text}\n{catalog_text(language, 'error.usage', usage=usage)}"
        f"\n{catalog_text(language, 'error.example', example=example)}"
    )


async def link_accounts(
    world: World,
    owner: str,
    adapter: MemoryAdapter,
    account: str,
    *,
    language: str = "en",
    handle: str | None = None,
) -> None:
    """`owner` (on the world's messenger) links `account` on `adapter`: a code, redeemed
    there, confirmed by the owner with the question's first button."""
    code = code_in((await world.say(owner, "/link")).text(owner), "link.code", language, minutes=15)
    before = len(world.adapter.sent)
    asked = await say_on(world, adapter, account, f"/link {code}")
    assert asked.text(account) == catalog_text(language, "link.asked", minutes=15, owner=owner)
    question = next(s for s in world.adapter.sent[before:] if s.message.buttons)
    assert question.target.address == owner
    before_there = len(adapter.sent)
    await world.press(owner, question, 0)
    done = Said(adapter.sent[before_there:]).text(account)
    platform = world.core.platform_names.get(adapter.platform, adapter.platform)
    assert done == catalog_text(language, "link.done", handle=handle or owner, platform=platform)


async def refused_code(world: World, who: str, line: str, **kwargs: str) -> str:
    """Says a wrong code in `line`: refused, and nothing changed but the record of the
    wrong code (for the throttle and the audit log); returns what `who` was told."""
    before = world.snapshot()
    out = await world.say(who, line, **kwargs)
    only_a_wrong_code(world, before, world.adapter.platform, who)
    assert out.addresses == [who], f"{line!r} was answered to {out.addresses}"
    return out.text(who)


def only_a_wrong_code(
    world: World, before: dict[str, list[tuple[Any, ...]]], platform: str, account: str
) -> None:
    """Since `before`, nothing changed but one wrong code recorded against the account."""
    after = world.snapshot()
    new_failures = after["code_failures"][len(before["code_failures"]) :]
    assert [row[1:3] for row in new_failures] == [(platform, account)]
    new_audit = after["audit_log"][len(before["audit_log"]) :]
    assert [(row[3], row[4]) for row in new_audit] == [("code.wrong", f"{platform}:{account}")]
    for table in ("code_failures", "audit_log"):
        after[table] = before[table]
    assert after == before, "a wrong code changed the state"
