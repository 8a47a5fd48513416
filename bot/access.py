"""First contact: who an inbound actor is, and whether they may use Pinwall at all."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from bot import grammar, linking
from bot.errors import UserError, WrongCode
from bot.events import (
    Actor,
    CommandInvoked,
    Event,
    MessageReceived,
    ReactionAdded,
    ReactionRemoved,
)
from bot.i18n import Translator, normalize_language
from bot.message import Message
from store.codes import code_candidates
from store.models import MAIL_PLATFORM, Account, Invite, Person, Role
from store.uow import UnitOfWork

# How fresh "last seen" must be; it only picks the messenger a person hears from.
LAST_SEEN_PRECISION = timedelta(minutes=1)
# Wrong link or invite codes an account may try within the window before it must wait.
CODE_TRIES = 5
CODE_WINDOW = timedelta(minutes=10)
# The console's starting person, an admin like those PINWALL_ADMINS lists.
CONSOLE_ADMIN = ("console", "admin")

if TYPE_CHECKING:
    from bot.core import Core


def _opening_command(event: Event) -> tuple[str, str]:
    """The command an event carries, if any: (name, arguments)."""
    if isinstance(event, CommandInvoked):
        return grammar.canonical_name(event.name), event.arguments
    if isinstance(event, MessageReceived) and event.meta.conversation.direct:
        word = grammar.first_word(event.text)
        if word in grammar.COMMAND_NAMES:
            return grammar.canonical_name(word), event.text.strip()[len(word) :]
    return "", ""


def _addresses_the_bot(event: Event) -> bool:
    """Whether an event asks the bot for an answer: a command, or a message or button
    in the direct chat with it (not every message or reaction in a shared room)."""
    if isinstance(event, CommandInvoked):
        return True
    return event.meta.conversation.direct and not isinstance(event, ReactionAdded | ReactionRemoved)


def valid_invite(uow: UnitOfWork, actor: Actor, code: str, now: datetime) -> Invite:
    """The invite `code` names, for `actor` to redeem; a wrong code is counted against
    them (see check_code_tries), and a throttled actor's code is not even looked at."""
    check_code_tries(uow, actor, now)
    invite = find_invite(uow, code)
    if invite is None or invite.revoked_at is not None:
        raise WrongCode("error.invite_invalid", kind="invite")
    if invite.expires_at <= now or invite.uses >= invite.max_uses:
        raise WrongCode("error.invite_used_up", kind="invite")
    return invite


def find_invite(uow: UnitOfWork, typed: str) -> Invite | None:
    """The invite a typed code names (in any case, with spaces or dashes), if any."""
    for code in code_candidates(typed):
        invite = uow.invites.by_code(code)
        if invite is not None:
            return invite
    return None


def check_code_tries(uow: UnitOfWork, actor: Actor, now: datetime) -> None:
    """Refuses a code without checking it when the account tried CODE_TRIES wrong ones
    within CODE_WINDOW: guessing link or invite codes is throttled, per account."""
    tries = uow.links.failures_since(actor.platform, actor.external_id, now - CODE_WINDOW)
    if len(tries) >= CODE_TRIES:
        free_at = tries[-CODE_TRIES] + CODE_WINDOW
        minutes = max(1, math.ceil((free_at - now).total_seconds() / 60))
        raise UserError("error.too_many_codes", minutes=minutes)


def count_wrong_code(
    core: Core,
    uow: UnitOfWork,
    actor: Actor,
    kind: Literal["link", "invite"],
    person_id: int | None,
    now: datetime,
) -> None:
    """Records a wrong code of `actor` (in the unit of work that answers them): for the
    throttle, the audit log and /metrics."""
    uow.links.failed(actor.platform, actor.external_id, kind, now)
    uow.audit.add(
        at=now,
        actor_id=person_id,
        action="code.wrong",
        subject=f"{actor.platform}:{actor.external_id}",
        details={"kind": kind},
    )
    core.metrics.code_failures.labels(kind).inc()


def resolve(
    core: Core, uow: UnitOfWork, event: Event, now: datetime
) -> tuple[Person, Account] | None:
    """The person behind the event, created on first contact where the rules allow.

    Returns None when the actor may not use Pinwall; they have been answered then.
    """
    actor = event.meta.actor
    known = uow.people.actor(actor.platform, actor.external_id)
    if known is not None:
        account, person = known
        _refresh(core, uow, person, account, actor, now)
        if not person.active:
            raise UserError("error.deactivated")
        _proven_address(core, uow, person, actor, now)
        return person, account

    name, arguments = _opening_command(event)
    code = arguments.strip()
    if name == "link" and code:
        # Someone Pinwall does not know redeems a link code: the code's owner is asked;
        # until they say yes this account is nobody's (no rights, no person).
        check_code_tries(uow, actor, now)
        pending = linking.request(core, uow, actor, None, code, now)
        owner = uow.people.get(pending.person_id)
        t = Translator(normalize_language(actor.language) or core.settings.default_language)
        handle = owner.handle if owner else "?"
        message = Message(text=t("link.asked", minutes=linking.ANSWER_MINUTES, owner=handle))
        if core.answer(uow, event, message, None, now, private=True):
            core.point_to_private(uow, event, t, None, now)
        return None

    role: Role | None = None
    if name in ("start", "redeem") and code:
        invite = valid_invite(uow, actor, code, now)
        invited = Role(invite.role)
        role = Role.MEMBER if actor.trust == "member" else invited
    elif actor.trust in ("member", "local"):
        role = Role.MEMBER
    elif actor.trust == "external":
        role = Role.GUEST
    if (actor.platform, actor.external_id) in core.settings.admins:
        role = Role.ADMIN
    if role is None:
        if not _addresses_the_bot(event):
            return None  # chatter or a reaction of a stranger in a room: not for us
        t = Translator(normalize_language(actor.language) or core.settings.default_language)
        key = "access.needs_invite" if name != "start" else "access.start_without_code"
        prefix = core.prefix(actor.platform, t, room=not event.meta.conversation.direct)
        core.answer(uow, event, Message(text=t(key, how=f"{prefix}redeem CODE")), None, now)
        return None
    person, account = _create(uow, actor, role, now)
    _proven_address(core, uow, person, actor, now)
    return person, account


def _proven_address(
    core: Core, uow: UnitOfWork, person: Person, actor: Actor, now: datetime
) -> None:
    """A mail address the messenger proves (Actor.email) becomes the person's verified
    address, as `email confirm` would make it: when mail runs, the address is no one's
    yet, and the person has none."""
    address = actor.email
    if not address or MAIL_PLATFORM not in core.settings.running:
        return
    if uow.people.account(MAIL_PLATFORM, address) is not None:
        return  # theirs already (the usual case), or someone else's
    if uow.mail.verified(address) is not None:
        return
    if any(a.platform == MAIL_PLATFORM for a in uow.people.accounts_of(person.id)):
        return  # they chose another address themselves
    row = uow.mail.request(person.id, address, "", now, now)
    row.verified_at, row.code, row.code_expires_at = now, None, None
    uow.people.add_account(
        person, platform=MAIL_PLATFORM, external_id=address, username=address, now=now
    )
    uow.audit.add(
        at=now,
        actor_id=person.id,
        action="mail.verified",
        subject=person.handle,
        details={"address": address, "by": actor.platform},
    )


def _create(uow: UnitOfWork, actor: Actor, role: Role, now: datetime) -> tuple[Person, Account]:
    name = actor.username or actor.display_name or actor.external_id
    person = uow.people.create(
        name=name,
        role=role,
        now=now,
        language_hint=normalize_language(actor.language),
        display_name=actor.display_name or name,
    )
    account = _add_account(uow, person, actor, now)
    uow.audit.add(
        at=now,
        actor_id=person.id,
        action="person.created",
        subject=person.handle,
        details={"role": role.value, "platform": actor.platform},
    )
    return person, account


def _add_account(uow: UnitOfWork, person: Person, actor: Actor, now: datetime) -> Account:
    return uow.people.add_account(
        person,
        platform=actor.platform,
        external_id=actor.external_id,
        username=actor.username,
        display_name=actor.display_name,
        now=now,
    )


def admin_by_setting(
    uow: UnitOfWork, person: Person, admins: frozenset[tuple[str, str]]
) -> tuple[str, str] | None:
    """The person's account that the settings make an admin (PINWALL_ADMINS, or the
    console's starting person), if any.

    Those accounts are a floor, not a seed: whoever has one is an admin at every event
    (see _refresh), so a role below admin cannot be given to them — it would silently
    revert. An operator takes them out of the setting first; that is where they were made
    admins, and it is what an operator reading the setting expects to hold."""
    if not admins:
        return None
    for account in uow.people.accounts_of(person.id):
        listed = (account.platform, account.external_id)
        if listed in admins:
            return listed
    return None


def _refresh(
    core: Core, uow: UnitOfWork, person: Person, account: Account, actor: Actor, now: datetime
) -> None:
    changes: dict[str, object] = {}
    if now - account.last_seen_at > LAST_SEEN_PRECISION:  # not a write on every event
        changes["last_seen_at"] = now
    if not account.reachable:  # blocked the bot once, and now writes again
        changes["reachable"] = True
    if actor.display_name and account.display_name != actor.display_name:
        changes["display_name"] = actor.display_name
    if changes:
        uow.people.update_account(account, **changes)
    hint = normalize_language(actor.language)
    if hint and person.language_hint != hint:
        person.language_hint = hint
    _admin_floor(core, person, actor)


def _admin_floor(core: Core, person: Person, actor: Actor) -> None:
    """The floor of admin_by_setting: a listed account makes its person an admin."""
    if (actor.platform, actor.external_id) in core.settings.admins and person.role != Role.ADMIN:
        person.role = Role.ADMIN
