"""Linking a person's accounts on two messengers, so that no one becomes someone else.

`link` on one messenger gives its asker a one-time code, privately. Redeeming that code
on another account links nothing by itself: it asks the code's owner, on the account
that asked for the code, whether the redeeming account is theirs. Only their yes links
it (the account joins them, or its person is merged into them). A code said in a room
by mistake is therefore harmless: whoever redeems it is named to the owner, who says no.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot import polls
from bot.errors import UserError, WrongCode
from bot.events import Actor
from bot.i18n import Translator, normalize_language
from bot.markup import Markup
from bot.message import Button, Message, Target
from store.codes import code_candidates
from store.models import LinkRequest, Person, Role
from store.uow import UnitOfWork

if TYPE_CHECKING:
    from bot.core import Core

CODE_MINUTES = 15  # a link code works this long
ANSWER_MINUTES = 15  # and its owner may confirm a redeemed one this long
CONFIRM_ACTION = "link_confirm"
DENY_ACTION = "link_deny"
# What `link <word>` answers the newest open question with (where there are no buttons).
CONFIRM_WORDS = frozenset({"confirm", "yes", "ja", "bestätigen", "bestaetigen"})
DENY_WORDS = frozenset({"deny", "no", "nein", "ablehnen", "reject"})


def platform_name(core: Core, platform: str) -> Markup:
    return Markup(core.platform_names.get(platform, platform))


def account_label(platform: str, username: str | None, display_name: str | None) -> str:
    """How a messenger account is named to its would-be owner: "Franz Huber (@franz_nord)"."""
    name = display_name or username or "?"
    return f"{name} (@{username})" if username and username != name else name


def request(
    core: Core, uow: UnitOfWork, actor: Actor, person: Person | None, code: str, now: datetime
) -> LinkRequest:
    """`actor` (`person` when Pinwall knows them) redeemed `code`: its owner is asked.

    Raises WrongCode for a code that does not work (the caller's throttle counts it)."""
    link = None
    for candidate in code_candidates(code):
        link = uow.links.take(candidate, now)
        if link is not None:
            break
    owner = uow.people.get(link.person_id) if link else None
    if link is None or owner is None or not owner.active:
        raise WrongCode("error.link_code_invalid", kind="link")
    if person is not None and person.id == owner.id:
        raise UserError("error.link_same_person")
    asked = _owner_target(uow, owner, link.platform, link.external_id)
    if asked is None:  # the owner has no account to be asked on any more
        raise WrongCode("error.link_code_invalid", kind="link")
    pending = uow.links.request(
        LinkRequest(
            person_id=owner.id,
            owner_platform=asked.platform,
            owner_external_id=asked.address,
            platform=actor.platform,
            external_id=actor.external_id,
            username=actor.username,
            display_name=actor.display_name,
            language=normalize_language(actor.language),
            created_at=now,
            expires_at=now + timedelta(minutes=ANSWER_MINUTES),
        )
    )
    t = core.translator(owner)
    question = Message(
        text=t(
            "link.question",
            platform=platform_name(core, actor.platform),
            account=account_label(actor.platform, actor.username, actor.display_name),
            handle=person.handle if person is not None else "-",
            minutes=ANSWER_MINUTES,
        )
        if person is not None
        else t(
            "link.question_new",
            platform=platform_name(core, actor.platform),
            account=account_label(actor.platform, actor.username, actor.display_name),
            minutes=ANSWER_MINUTES,
        ),
        buttons=(
            Button(
                label=str(t("link.yes")),
                action=CONFIRM_ACTION,
                value=str(pending.id),
                style="primary",
            ),
            Button(label=str(t("link.no")), action=DENY_ACTION, value=str(pending.id)),
        ),
    )
    core.enqueue(uow, asked, question, owner.id, now)
    uow.audit.add(
        at=now,
        actor_id=person.id if person is not None else None,
        action="account.link_requested",
        subject=owner.handle,
        details={"platform": actor.platform, "account": actor.external_id},
    )
    return pending


def _owner_target(
    uow: UnitOfWork, owner: Person, platform: str | None, external_id: str | None
) -> Target | None:
    """Where the owner is asked: the account that made the code, if it is still theirs
    (a code made before Pinwall remembered that: their preferred account)."""
    if platform and external_id:
        account = uow.people.account(platform, external_id)
        if account is not None and account.person_id == owner.id:
            return Target(platform, "dm", external_id)
        return None
    account = uow.people.preferred_accounts([owner.id]).get(owner.id)
    return Target(account.platform, "dm", account.external_id) if account else None


def decide(
    core: Core,
    uow: UnitOfWork,
    owner: Person,
    pending: LinkRequest | None,
    confirm: bool,
    now: datetime,
) -> tuple[str, dict[str, object]]:
    """The owner's answer to a link request. Returns the catalog key and parameters of
    what the owner is told; the redeeming account is told too (in its own language)."""
    if pending is None or pending.person_id != owner.id:
        raise UserError("error.link_nothing_open")
    platform = platform_name(core, pending.platform)
    account = account_label(pending.platform, pending.username, pending.display_name)
    if pending.decided_at is not None:
        return "link.already_answered", {"platform": platform, "account": account}
    if pending.expires_at <= now:
        raise UserError("error.link_request_expired", platform=platform, account=account)
    if not uow.links.decide(pending, "confirmed" if confirm else "denied", now):
        return "link.already_answered", {"platform": platform, "account": account}
    if not confirm:
        uow.audit.add(
            at=now,
            actor_id=owner.id,
            action="account.link_denied",
            subject=owner.handle,
            details={"platform": pending.platform, "account": pending.external_id},
        )
        _tell_redeemer(core, uow, pending, "link.denied", now, person_id=None)
        return "link.denied_owner", {"platform": platform, "account": account}

    existing = uow.people.account(pending.platform, pending.external_id)
    merged: int | None = None
    if existing is None:
        uow.people.add_account(
            owner,
            platform=pending.platform,
            external_id=pending.external_id,
            username=pending.username,
            display_name=pending.display_name,
            now=now,
        )
    elif existing.person_id != owner.id:
        source = uow.people.get(existing.person_id)
        if source is not None:
            merged = source.id
            # Anonymous votes are keyed by person: re-keyed first, so that the merged
            # person neither votes twice nor loses a vote.
            polls.merge_anonymous_votes(core, uow, source, owner)
            uow.people.merge(source, owner)  # the owner keeps their handle
    if (pending.platform, pending.external_id) in core.settings.admins:
        owner.role = Role.ADMIN  # the setting's floor (see access.admin_by_setting)
    uow.audit.add(
        at=now,
        actor_id=owner.id,
        action="account.linked",
        subject=owner.handle,
        details={"platform": pending.platform, "merged_person": merged},
    )
    _tell_redeemer(
        core,
        uow,
        pending,
        "link.done",
        now,
        person_id=owner.id,
        t=core.translator(owner),
        handle=owner.handle,
        platform=platform,
    )
    return "link.confirmed", {"platform": platform, "account": account, "handle": owner.handle}


def _tell_redeemer(
    core: Core,
    uow: UnitOfWork,
    pending: LinkRequest,
    key: str,
    now: datetime,
    *,
    person_id: int | None,
    t: Translator | None = None,
    **params: object,
) -> None:
    """A direct message to the account that redeemed the code (which may be unknown to
    Pinwall: then in the language its messenger reported)."""
    if t is None:
        t = Translator(pending.language or core.settings.default_language)
    core.enqueue(
        uow,
        Target(pending.platform, "dm", pending.external_id),
        Message(text=t(key, **params)),
        person_id,
        now,
    )
