"""Small helpers shared by the handlers: person look-up, a person's mail address."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from bot.errors import UserError
from store.models import MAIL_PLATFORM, Person
from store.uow import UnitOfWork

if TYPE_CHECKING:
    from bot.core import Ctx

_HANDLE = re.compile(r"^@?([a-z0-9._-]{1,64})$")


def find_person(uow: UnitOfWork, text: str) -> Person:
    m = _HANDLE.match(text.strip().lower())
    person = uow.people.by_handle(m.group(1)) if m else None
    if person is None or not person.active:
        raise UserError("error.person_not_found", person=text)
    return person


def mail_account(ctx: Ctx) -> str:
    """The person's verified mail address that mail can go to now (for `notify <group>
    mail` and `settings digest mail`); refused when there is none or mail is not set up."""
    if MAIL_PLATFORM not in ctx.core.settings.running:
        raise UserError("mail.error.no_mail")
    accounts = ctx.uow.people.accounts_of(ctx.person.id)
    found = [a for a in accounts if a.platform == MAIL_PLATFORM]
    if not found:
        raise UserError("mail.error.no_address")
    reachable = [a for a in found if a.reachable]
    if not reachable:
        raise UserError("mail.error.failing", address=found[0].external_id)
    return reachable[0].external_id
