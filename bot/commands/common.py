"""Small helpers shared by the handlers: person look-up."""

from __future__ import annotations

import re

from bot.errors import UserError
from store.models import Person
from store.uow import UnitOfWork

_HANDLE = re.compile(r"^@?([a-z0-9._-]{1,64})$")


def find_person(uow: UnitOfWork, text: str) -> Person:
    m = _HANDLE.match(text.strip().lower())
    person = uow.people.by_handle(m.group(1)) if m else None
    if person is None or not person.active:
        raise UserError("error.person_not_found", person=text)
    return person
