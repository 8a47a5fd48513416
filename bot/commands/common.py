"""Small helpers shared by the handlers: typed identifiers and person look-up."""

from __future__ import annotations

import re

from bot.errors import UserError
from store.models import Person
from store.uow import UnitOfWork

_ID = {"item": "#", "proposal": "P", "feed": "F"}


def parse_id(text: str, kind: str) -> int:
    """`#12`, `12` -> 12 for items; `P12`/`p12` for proposals; `F3` for feeds."""
    prefix = _ID[kind]
    raw = text.strip()
    if raw[:1].upper() == prefix.upper():
        raw = raw[1:]
    if not raw.isdigit():
        raise UserError(f"error.bad_{kind}_id", value=text, example=f"{prefix}12")
    return int(raw)


def show_id(number: int, kind: str) -> str:
    return f"{_ID[kind]}{number}"


_HANDLE = re.compile(r"^@?([a-z0-9._-]{1,64})$")


def find_person(uow: UnitOfWork, text: str) -> Person:
    m = _HANDLE.match(text.strip().lower())
    person = uow.people.by_handle(m.group(1)) if m else None
    if person is None or not person.active:
        raise UserError("error.person_not_found", person=text)
    return person
