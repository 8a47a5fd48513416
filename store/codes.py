"""One-time codes people type or tap: invites and account links."""

from __future__ import annotations

import secrets
import string

CODE_ALPHABET = string.ascii_letters + string.digits


def new_code(length: int = 10) -> str:
    """A random code of [A-Za-z0-9] only, so it fits a Telegram deep link."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))
