"""Outlet tokens that lapse: the admins are told ahead of time, once per expiry date.

A LinkedIn access token lasts 60 days. Its outlet names the day in pinwall.toml
(`token_expires = 2027-02-05`, see `bot.outlets.token_expires`): from `TOKEN_WARNING`
before that day every admin gets one private message saying what to renew and where.
That it reached an admin is remembered as a cursor (`outlet.<name>.token_warned` = the date), so a
restart does not repeat it, and a renewed token with a new date is warned about again.
"""

from __future__ import annotations

from datetime import datetime

from bot.config import outlet_token_variable
from bot.core import Core
from bot.message import Message
from bot.outlets import TOKEN_WARNING, OutletSettings, token_expires
from store.models import Role
from store.uow import UnitOfWork

# What admins are told, by kind (a kind whose tokens never lapse has no entry).
NOTICES = {"linkedin": "outlet.linkedin.token_expiring"}


def warned_mark(name: str) -> str:
    return f"outlet.{name}.token_warned"


def warn_expiring_tokens(
    core: Core, uow: UnitOfWork, outlets: OutletSettings, now: datetime
) -> int:
    """Tells the admins of each token that lapses within `TOKEN_WARNING` (once per date);
    returns how many outlets were warned about. Runs in the caller's unit of work."""
    warned = 0
    for spec in outlets.outlets:
        key = NOTICES.get(spec.kind)
        expires = token_expires(spec)
        if key is None or expires is None:
            continue
        days = (expires - now.date()).days
        if days > TOKEN_WARNING.days:
            continue
        mark = warned_mark(spec.name)
        if uow.cursors.get(mark) == expires.isoformat():
            continue
        told = 0
        for admin in uow.proposals.people_with_role(Role.ADMIN):
            t = core.translator(admin)
            shown = expires.strftime("%d.%m.%Y" if t.language == "de" else "%Y-%m-%d")
            text = t(
                key,
                outlet=spec.name,
                date=shown,
                days=max(days, 0),
                variable=outlet_token_variable(spec.name),
            )
            told += core.send_to_person(uow, admin, Message(text=text), now)
        if told:  # no admin reachable yet (a fresh install): the next tick tries again
            uow.cursors.set(mark, expires.isoformat(), now)
            warned += 1
    return warned
