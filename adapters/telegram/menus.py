"""Telegram's command menus by scope, and the bot's description (pure, no I/O).

Telegram shows a chat the menu of the narrowest scope set for it, in the user's language
where one was set for it (BotCommandScope, language_code). Pinwall sets:

- everyone's private chat (default and all_private_chats): the few commands every member,
  guest and partner uses, at most eight;
- group chats (all_group_chats): the few that make sense in a room;
- a gatekeeper's or admin's private chat (chat:<id>): theirs on top of everyone's.

Each in English (no language_code: every other language) and German, with the German
command names the grammar accepts (bot/words.py) folded to Telegram's [a-z0-9_]{1,32}
(`beiträge` -> `beitraege`), and help's descriptions of them.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from bot import words
from bot.i18n import Translator
from bot.markup import to_plain
from store.models import Role

MENU_LANGUAGES = ("en", "de")
MAX_DESCRIPTION = 256  # a command's description, as setMyCommands takes it
_NAME = re.compile(r"[a-z0-9_]{1,32}")

# By grammar key (`digest now`: the menu entry /digest, described as that form).
EVERYONE: tuple[str, ...] = (
    "share",
    "groups",
    "join",
    "items",
    "notify",
    "search",
    "help",
    "cancel",
)
IN_GROUPS: tuple[str, ...] = ("share", "items", "bridge", "help")
GATEKEEPER: tuple[str, ...] = ("pending", "approve", "reject")
ADMIN: tuple[str, ...] = (*GATEKEEPER, "invite", "role", "audit")
# Telegram's limit is 100 a menu; Pinwall keeps its menus short by choice.
MAX_EVERYONE = 8


@dataclass(frozen=True, slots=True)
class Entry:
    name: str  # as the menu shows it, without "/"
    description: str
    key: str  # the grammar's key it stands for


def command_name(key: str, language: str) -> str:
    """The menu name of a command: its German name (folded) in German where it has one
    that Telegram can take, else the English one."""
    name = key.split(" ")[0]
    if language == "de":
        german = words.german_name(name)
        if german is not None and _NAME.fullmatch(words.fold(german)):
            return words.fold(german)
    return name


def entries(keys: Collection[str], language: str, available: Collection[str]) -> list[Entry]:
    """The menu of these commands (those this Pinwall has), in `language`."""
    t = Translator(language)
    out: list[Entry] = []
    for key in keys:
        if key not in available:
            continue
        description = to_plain(t(f"help.{key}")).strip() or key
        if len(description) > MAX_DESCRIPTION:
            description = description[: MAX_DESCRIPTION - 1].rstrip() + "…"
        out.append(Entry(command_name(key, language), description, key))
    return out


def keys_for(role: Role | None) -> tuple[str, ...]:
    """A private chat's menu for a role: everyone's, and a gatekeeper's or admin's own."""
    if role is Role.ADMIN:
        return (*EVERYONE, *ADMIN)
    if role is Role.GATEKEEPER:
        return (*EVERYONE, *GATEKEEPER)
    return EVERYONE


def has_own_menu(role: Role | None) -> bool:
    return role in (Role.ADMIN, Role.GATEKEEPER)


# --- the bot's description ------------------------------------------------------------

MAX_BOT_DESCRIPTION = 512
MAX_SHORT_DESCRIPTION = 120


def _fit(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def descriptions(language: str, company: str) -> tuple[str, str]:
    """(description, short description) in `language`: what Pinwall is for this company
    and how to start. The description is what an empty chat shows before /start."""
    t = Translator(language)
    who = company.strip() or str(t("telegram.your_company"))
    long = to_plain(t("telegram.description", company=who))
    short = to_plain(t("telegram.short_description", company=who))
    return _fit(long, MAX_BOT_DESCRIPTION), _fit(short, MAX_SHORT_DESCRIPTION)
