"""Dead letters told to the admins (issue 19).

A delivery that failed for good (retried until PINWALL_OUTBOX_MAX_ATTEMPTS, refused for
good by its messenger, or one whose sends kept dying with their process) is listed by
`outbox failed` and sent again by `outbox retry`. So that nobody has to look for them,
every admin also gets a direct message about it, once, in their own language, written in
the transaction that makes it dead. A message to someone who blocked the bot is not one:
that account is marked unreachable, which is no fault to fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.markup import Markup
from bot.message import Message
from store.models import Role
from store.uow import UnitOfWork

if TYPE_CHECKING:
    from bot.core import Core

NOTICE = "dead_letters"  # Message.meta["notice"] of the admins' message: never told about
SHOWN = 5  # dead letters listed by name in one notice; the rest are counted
ERROR_MAX = 200


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    platform: str
    target: str
    attempts: int
    error: str


def is_notice(payload: dict[str, Any]) -> bool:
    """Whether an outbox payload is itself such a notice (a dead one is not told about)."""
    message = payload.get("m") if payload.get("t") == "msg" else None
    meta = message.get("meta") if isinstance(message, dict) else None
    return isinstance(meta, dict) and meta.get("notice") == NOTICE


def tell_admins(core: Core, uow: UnitOfWork, dead: Sequence[DeadLetter], now: datetime) -> int:
    """One direct message to every active admin about these dead letters; returns how
    many admins it was queued for."""
    if not dead:
        return 0
    admins = uow.proposals.people_with_role(Role.ADMIN)
    accounts = uow.people.preferred_accounts([a.id for a in admins])
    told = 0
    for admin in admins:
        account = accounts.get(admin.id)
        if account is None:
            continue
        t = core.translator(admin)
        lines = [t("dead_letters.header", count=len(dead))]
        for letter in dead[:SHOWN]:
            lines.append(
                t(
                    "dead_letters.line",
                    id=letter.id,
                    where=f"{letter.platform}:{letter.target}",
                    attempts=letter.attempts,
                    error=letter.error[:ERROR_MAX] or "-",
                )
            )
        if len(dead) > SHOWN:
            lines.append(t("dead_letters.more", count=len(dead) - SHOWN))
        prefix = core.prefix(account.platform, t)
        lines.append(t("dead_letters.footer", prefix=prefix))
        message = Message(text=Markup("\n".join(lines)), meta={"notice": NOTICE})
        if core.send_to_person(uow, admin, message, now):
            told += 1
    return told
