"""A role change reaches the messengers whose command menus follow the role (Telegram's
menu of a gatekeeper's or admin's own chat): one outbox message per account there that
only changes the menu (meta "role_menu"; it shows nothing), written in the transaction
of the change, whether `/role` or `pinwall people` made it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from bot.message import Message, dump_message
from store.models import Person, Role
from store.uow import UnitOfWork

ROLE_MENU = "role_menu"  # the meta key: the role whose menu the account's chat gets


def queue_role_menus(
    uow: UnitOfWork, person: Person, role: Role, platforms: Iterable[str], now: datetime
) -> int:
    """Queues the new role's menu for each of the person's reachable accounts on these
    messengers; returns how many."""
    wanted = set(platforms)
    message = {"t": "msg", "m": dump_message(Message(meta={ROLE_MENU: role.value}))}
    rows = [
        {
            "created_at": now,
            "platform": account.platform,
            "target_kind": "dm",
            "target": account.external_id,
            "person_id": person.id,
            "item_id": None,
            "payload": message,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
        }
        for account in uow.people.accounts_of(person.id)
        if account.platform in wanted and account.reachable
    ]
    uow.outbox.insert_many(rows)
    return len(rows)
