"""Errors that reach users as localized text."""

from __future__ import annotations

from typing import Any, Literal


class UserError(Exception):
    """Bad input or a refused action: shown to the user as the catalog says; changes nothing."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.params = params

    def __repr__(self) -> str:
        return f"UserError({self.key!r}, {self.params!r})"


class ConfigError(Exception):
    """A setting is missing or wrong; the message names the setting."""


class WrongCode(UserError):
    """A link or invite code that does not work: refused like any UserError, and counted
    against the account that tried it (bot.access throttles guessing)."""

    def __init__(self, key: str, *, kind: Literal["link", "invite"], **params: Any) -> None:
        super().__init__(key, **params)
        self.kind: Literal["link", "invite"] = kind
