"""Typed identifiers as people see them: posts `#12`, proposals `P3`, feeds `F2`,
announcements `A4`, polls (votes) `V5`."""

from __future__ import annotations

from bot.errors import UserError

ID_PREFIXES = {"item": "#", "proposal": "P", "feed": "F", "announcement": "A", "poll": "V"}


def parse_id(text: str, kind: str) -> int:
    """`#12`, `12` -> 12 for items; `P12`/`p12` for proposals; `F3` for feeds."""
    prefix = ID_PREFIXES[kind]
    raw = text.strip()
    if raw[:1].upper() == prefix.upper():
        raw = raw[1:]
    if not raw.isdigit():
        raise UserError(f"error.bad_{kind}_id", value=text, example=f"{prefix}12")
    return int(raw)


def show_id(number: int, kind: str) -> str:
    return f"{ID_PREFIXES[kind]}{number}"
