"""One-time codes people type or tap: invites and account links."""

from __future__ import annotations

import re
import secrets

# Upper-case letters and digits that cannot be mistaken for one another when read off a
# screen or typed on a phone: no 0/O, no 1/I/L (31 signs, 10 of them ~ 49 bits).
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
_SEPARATORS = re.compile(r"[\s\-_.]+")


def new_code(length: int = 10) -> str:
    """A random code of CODE_ALPHABET only, so it fits a Telegram deep link."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


def normalize_code(typed: str) -> str:
    """A code as typed ("abcd-efgh jk") as it is stored ("ABCDEFGHJK"): any case, with
    spaces, dashes, dots or underscores between its signs."""
    return _SEPARATORS.sub("", typed).upper()


def code_candidates(typed: str) -> list[str]:
    """The stored codes a typed code may be: normalized, and as typed (codes made before
    the upper-case alphabet mix cases and stay valid until they expire)."""
    exact = typed.strip()
    normalized = normalize_code(typed)
    return [normalized] if exact == normalized or not exact else [normalized, exact]
