"""Proposals for public outlets and their approval, the service the handlers
(bot/commands/proposals.py) and the publishing job (jobs/publish.py) share: deciding
(approve, reject, request changes), expiry, telling the author and admins, the audit
trail, and what a messenger needs to know before it asks for a reason (decides_now).

Four eyes: an author never decides on their own proposal. A vote first locks its
proposal and each change of status is conditional on the status and revision it
expects, so the first decisive vote wins and two at once yield one outcome. Every
decision updates every card of the proposal and tells its author, in the same
transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot import when
from bot.approval_cards import (
    approvers,
    close_cards,
    command_prefix,
    handle_list,
    outlet_spec,
    refresh_cards,
    send_cards,
    show_outcome,
)
from bot.authors import author_label
from bot.core import Core, Ctx
from bot.errors import UserError
from bot.events import ButtonPressed, ReactionAdded
from bot.i18n import Translator
from bot.ids import parse_id, show_id
from bot.markup import Markup
from bot.message import Message
from bot.outlets import OutletSpec
from bot.policy import Policy, is_gatekeeper
from bot.reasons import localized_error
from store.models import Proposal, ProposalStatus, Role
from store.repositories.proposals import OPEN
from store.uow import UnitOfWork

# Telegram offers no ✅ or ❌ as a reaction (only a fixed set, ReactionTypeEmoji): 👌
# approves there, 👎 rejects.
APPROVE_EMOJI = frozenset({"✅", "✔️", "☑️", "white_check_mark", "heavy_check_mark", "👌"})
REJECT_EMOJI = frozenset({"❌", "✖️", "x", "no_entry", "heavy_multiplication_x", "👎"})
REASON_PROMPTS = {"p.reject": "reject", "p.changes": "changes"}
# A decision that sends the proposal back: (audit action, card, told the author, answer).
DECLINED = {
    "reject": (
        "proposal.rejected",
        "card.rejected",
        "proposal.told_rejected",
        "proposal.rejected",
    ),
    "changes": (
        "proposal.changes_requested",
        "card.changes_requested",
        "proposal.told_changes",
        "proposal.changes",
    ),
}


# --- finding, telling, the audit trail ------------------------------------------------


def find_proposal(ctx: Ctx, raw: str, *, lock: bool = False) -> Proposal:
    """The proposal, if this person may see it: gatekeepers and admins all, authors theirs."""
    number = parse_id(raw, "proposal")
    proposal = ctx.uow.proposals.lock(number) if lock else ctx.uow.proposals.get(number)
    if proposal is None or not (is_gatekeeper(ctx.person) or proposal.author_id == ctx.person.id):
        raise UserError("error.proposal_not_found", proposal=show_id(number, "proposal"))
    return proposal


def status_label(t: Translator, proposal: Proposal) -> Markup:
    return t(f"status.{proposal.status}")


def approval_count(uow: UnitOfWork, proposal: Proposal) -> int:
    """How many approved the current revision (a count: no people loaded)."""
    return uow.proposals.approval_counts([proposal]).get(proposal.id, 0)


def parse_publish_time(value: str, zone: str, now: datetime) -> datetime | None:
    """A moment as people type it (bot/when.py: "morgen 9:00", "Mo 14:00", "24.12. 10:00",
    ISO, "in 2h"), in the person's time zone; None for "jetzt"/"now" (no schedule)."""
    found = when.moment(value, zone, now)
    if found is None:
        raise UserError("error.bad_publish_time", value=value, usage_of="propose")
    return found if isinstance(found, datetime) else None


def tell_author(
    core: Core, uow: UnitOfWork, proposal: Proposal, now: datetime, key: str, **params: Any
) -> None:
    author = uow.people.get(proposal.author_id) if proposal.author_id else None
    if author is None:
        return
    t = core.translator(author)
    account = uow.people.preferred_accounts([author.id]).get(author.id)
    prefix = command_prefix(core, account.platform, t) if account else "/"
    params.setdefault("proposal", show_id(proposal.id, "proposal"))
    params.setdefault("outlet", proposal.outlet)
    text = t(key, prefix=prefix, **localized_error(t, params))
    core.send_to_person(uow, author, Message(text=text), now)


def tell_admins(
    core: Core, uow: UnitOfWork, proposal: Proposal, now: datetime, key: str, **params: Any
) -> None:
    params.setdefault("proposal", show_id(proposal.id, "proposal"))
    params.setdefault("outlet", proposal.outlet)
    admins = uow.proposals.people_with_role(Role.ADMIN)
    accounts = uow.people.preferred_accounts([p.id for p in admins])
    for admin in admins:
        account = accounts.get(admin.id)
        t = core.translator(admin)
        prefix = command_prefix(core, account.platform, t) if account else "/"
        text = t(key, prefix=prefix, **localized_error(t, params))
        core.send_to_person(uow, admin, Message(text=text), now)


def audit(
    uow: UnitOfWork, now: datetime, actor_id: int | None, action_: str, p: Proposal, **details: Any
) -> None:
    uow.audit.add(
        at=now,
        actor_id=actor_id,
        action=action_,
        subject=show_id(p.id, "proposal"),
        details={"outlet": p.outlet, "revision": p.revision, **details},
    )


def expire_due(core: Core, uow: UnitOfWork, now: datetime) -> int:
    """Pending proposals past their expiry (or their publish time): expired, told."""
    done = 0
    for proposal_id in uow.proposals.expiring(now):
        proposal = uow.proposals.lock(proposal_id)
        if proposal is None or not uow.proposals.transition(
            proposal.id, OPEN, proposal.revision, status=ProposalStatus.EXPIRED, decided_at=now
        ):
            continue
        uow.session.refresh(proposal)
        audit(uow, now, None, "proposal.expired", proposal)
        close_cards(core, uow, proposal, now, "card.expired")
        tell_author(core, uow, proposal, now, "proposal.told_expired")
        done += 1
    return done


# --- deciding -------------------------------------------------------------------------


def check_open(ctx: Ctx, proposal: Proposal, revision: int | None) -> None:
    """Only a pending proposal, at the revision the card showed, can be decided; one past
    its expiry is expired (the tick records it so soon)."""
    if revision is not None and revision != proposal.revision:
        raise UserError("error.button_expired")
    ref = show_id(proposal.id, "proposal")
    if proposal.status == ProposalStatus.PENDING and proposal.expires_at <= ctx.now:
        raise UserError("error.proposal_decided", proposal=ref, status=ctx.t("status.expired"))
    if proposal.status != ProposalStatus.PENDING:
        raise UserError(
            "error.proposal_decided", proposal=ref, status=status_label(ctx.t, proposal)
        )


def approve(ctx: Ctx, proposal: Proposal, revision: int | None, comment: str | None) -> None:
    ref = show_id(proposal.id, "proposal")
    if proposal.author_id == ctx.person.id:
        raise UserError("error.own_proposal")
    ctx.policy.require_gatekeeper()
    if proposal.status in (ProposalStatus.UNCERTAIN, ProposalStatus.FAILED) and ctx.policy.is_admin:
        _admin_retry(ctx, proposal)
        return
    check_open(ctx, proposal, revision)
    spec = outlet_spec(ctx.core, proposal.outlet)
    if not ctx.uow.proposals.add_vote(
        proposal.id, proposal.revision, ctx.person.id, "approve", comment, ctx.now
    ):
        raise UserError(
            "error.already_voted",
            proposal=ref,
            have=approval_count(ctx.uow, proposal),
            need=spec.quorum,
        )
    have = approval_count(ctx.uow, proposal)
    if have < spec.quorum:
        audit(
            ctx.uow,
            ctx.now,
            ctx.person.id,
            "proposal.vote",
            proposal,
            vote="approve",
            comment=comment,
        )
        refresh_cards(ctx.core, ctx.uow, proposal, ctx.now)
        if not _card_says_it(ctx):
            ctx.reply("proposal.vote_counted", proposal=ref, have=have, need=spec.quorum)
        return
    start = max(proposal.publish_at or ctx.now, ctx.now)
    if not ctx.uow.proposals.transition(
        proposal.id,
        [ProposalStatus.PENDING],
        proposal.revision,
        status=ProposalStatus.APPROVED,
        decided_at=ctx.now,
        decided_by=ctx.person.id,
        reason=comment,
        next_attempt_at=start,
    ):
        raise UserError(
            "error.proposal_decided", proposal=ref, status=status_label(ctx.t, proposal)
        )
    ctx.uow.session.refresh(proposal)
    audit(
        ctx.uow, ctx.now, ctx.person.id, "proposal.approved", proposal, comment=comment, votes=have
    )
    by = handle_list(approvers(ctx.uow, proposal))
    close_cards(ctx.core, ctx.uow, proposal, ctx.now, "card.approved", by=by)
    if comment:
        tell_author(
            ctx.core,
            ctx.uow,
            proposal,
            ctx.now,
            "proposal.told_approved_comment",
            by=by,
            comment=comment,
        )
    else:
        tell_author(ctx.core, ctx.uow, proposal, ctx.now, "proposal.told_approved", by=by)
    zone = ctx.core.timezone_of(ctx.person)
    when = (
        ctx.t("proposal.at", when=ctx.t.datetime(proposal.publish_at, zone))
        if proposal.publish_at and proposal.publish_at > ctx.now
        else ctx.t("proposal.asap")
    )
    if not _card_says_it(ctx):
        ctx.reply("proposal.approved", proposal=ref, outlet=proposal.outlet, when=when)


def _card_says_it(ctx: Ctx) -> bool:
    """A reaction on a card where cards change in place: the card, showing the votes or
    the outcome (and when it is published), is the answer; a message would repeat it."""
    event = ctx.event
    reacted = isinstance(event, ReactionAdded) or (
        isinstance(event, ButtonPressed) and event.by_reaction
    )
    return reacted and ctx.platform in ctx.core.settings.decided_in_place


def _admin_retry(ctx: Ctx, proposal: Proposal) -> None:
    """An admin checked the outlet after an uncertain (or failed) attempt: publish again."""
    if not ctx.uow.proposals.transition(
        proposal.id,
        [ProposalStatus.UNCERTAIN, ProposalStatus.FAILED],
        status=ProposalStatus.APPROVED,
        next_attempt_at=ctx.now,
        attempt_started_at=None,
    ):
        raise UserError(
            "error.proposal_decided",
            proposal=show_id(proposal.id, "proposal"),
            status=status_label(ctx.t, proposal),
        )
    audit(ctx.uow, ctx.now, ctx.person.id, "proposal.retry", proposal)
    ctx.reply(
        "proposal.admin_retry", proposal=show_id(proposal.id, "proposal"), outlet=proposal.outlet
    )


def decline(ctx: Ctx, proposal: Proposal, revision: int | None, reason: str, kind: str) -> None:
    """Rejects the proposal, or (kind "changes") sends it back to its author to revise."""
    ref = show_id(proposal.id, "proposal")
    if proposal.author_id == ctx.person.id:
        raise UserError("error.own_proposal_reject", proposal=ref, prefix=ctx.prefix)
    ctx.policy.require_gatekeeper()
    reason = reason.strip()[:2000]
    if (
        proposal.status == ProposalStatus.UNCERTAIN
        and ctx.policy.is_admin
        and kind == "reject"
        and ctx.uow.proposals.transition(
            proposal.id, [ProposalStatus.UNCERTAIN], status=ProposalStatus.FAILED, reason=reason
        )
    ):
        audit(ctx.uow, ctx.now, ctx.person.id, "proposal.closed", proposal, reason=reason)
        ctx.reply("proposal.admin_closed", proposal=ref)
        return
    check_open(ctx, proposal, revision)
    spec = outlet_spec(ctx.core, proposal.outlet)
    if not ctx.uow.proposals.add_vote(
        proposal.id, proposal.revision, ctx.person.id, kind, reason, ctx.now
    ):
        raise UserError(
            "error.already_voted",
            proposal=ref,
            have=approval_count(ctx.uow, proposal),
            need=spec.quorum,
        )
    status = ProposalStatus.REJECTED if kind == "reject" else ProposalStatus.CHANGES
    if not ctx.uow.proposals.transition(
        proposal.id,
        [ProposalStatus.PENDING],
        proposal.revision,
        status=status,
        decided_at=ctx.now,
        decided_by=ctx.person.id,
        reason=reason,
    ):
        raise UserError(
            "error.proposal_decided", proposal=ref, status=status_label(ctx.t, proposal)
        )
    ctx.uow.session.refresh(proposal)
    author = ctx.uow.people.get(proposal.author_id) if proposal.author_id else None
    handle = author_label(ctx.t, author.handle if author else None)
    action, card, told, answer = DECLINED[kind]
    audit(ctx.uow, ctx.now, ctx.person.id, action, proposal, reason=reason)
    close_cards(ctx.core, ctx.uow, proposal, ctx.now, card, by=ctx.person.handle, reason=reason)
    tell_author(ctx.core, ctx.uow, proposal, ctx.now, told, by=ctx.person.handle, reason=reason)
    ctx.reply(answer, proposal=ref, author=handle)


def own_proposal(ctx: Ctx, raw: str) -> Proposal:
    proposal = find_proposal(ctx, raw, lock=True)
    ref = show_id(proposal.id, "proposal")
    if proposal.author_id != ctx.person.id:
        raise UserError("error.not_author", proposal=ref)
    return proposal


def bridge_gatekeepers(ctx: Ctx) -> None:
    """`bridge gatekeepers`: approval cards go to this room (admins, in a room)."""
    ctx.policy.require_admin()
    room = ctx.room()
    if room is None:
        raise UserError("error.gatekeepers_in_room")
    if not ctx.uow.proposals.add_gatekeeper_room(room.id, ctx.now):
        raise UserError("error.gatekeepers_already")
    ctx.audit("room.gatekeepers", f"{room.platform}:{room.external_id}")
    ctx.reply("gatekeepers.bridged")


# --- decisions from a card: its buttons and reactions ---------------------------------


def card_value(ctx: Ctx, value: str) -> tuple[Proposal, int]:
    raw_id, _, raw_revision = value.partition(":")
    if not raw_id.isdigit() or not raw_revision.isdigit():
        raise UserError("error.button_expired")
    return from_card(ctx, int(raw_id)), int(raw_revision)


def from_card(ctx: Ctx, proposal_id: int) -> Proposal:
    """The proposal a card shows; deciding on it is for gatekeepers (its author is told
    why not by approve / decline)."""
    proposal = ctx.uow.proposals.lock(proposal_id)
    if proposal is None:
        raise UserError("error.button_expired")
    if proposal.author_id != ctx.person.id:
        ctx.policy.require_gatekeeper()
    return proposal


def ask_reason(ctx: Ctx, proposal: Proposal, revision: int, kind: str) -> None:
    """Reject or request changes by button or reaction: the next DM line is the reason."""
    ctx.policy.require_gatekeeper()
    ref = show_id(proposal.id, "proposal")
    if proposal.author_id == ctx.person.id:
        raise UserError("error.own_proposal_reject", proposal=ref, prefix=ctx.prefix)
    check_open(ctx, proposal, revision)
    ctx.uow.state.set_prompt(ctx.person.id, f"p.{kind}", proposal.id, ctx.now)
    author = ctx.uow.people.get(proposal.author_id) if proposal.author_id else None
    key = "proposal.reason_reject" if kind == "reject" else "proposal.reason_changes"
    params = {"proposal": ref, "author": author_label(ctx.t, author.handle if author else None)}
    meta = {"prompt": f"p.{kind}"}  # its answer is awaited (Telegram: ForceReply)
    if ctx.in_direct_chat:
        ctx.reply_message(Message(text=ctx.t(key, **params), meta=meta))
    else:
        t = ctx.core.translator(ctx.person)
        message = Message(text=t(key, **params), meta=meta)
        ctx.core.send_to_person(ctx.uow, ctx.person, message, ctx.now)


def decides_now(core: Core, platform: str, external_id: str, value: str) -> bool:
    """Whether this account's person could decide now on the card with this button value
    (a gatekeeper, not its author, the revision pending). A platform that asks for the
    reason in a form of its own (Slack's modal) opens it only then; otherwise the press
    goes to the core as it is, which explains why not. A read; it grants nothing."""
    raw_id, _, raw_revision = value.partition(":")
    if not raw_id.isdigit() or not raw_revision.isdigit():
        return False
    with core.db.uow() as uow:
        account = uow.people.account(platform, external_id)
        person = uow.people.get(account.person_id) if account else None
        proposal = uow.proposals.get(int(raw_id))
        return (
            person is not None
            and proposal is not None
            and is_gatekeeper(person)
            and not Policy(uow, person).is_external
            and proposal.author_id != person.id
            and proposal.revision == int(raw_revision)
            and proposal.status == ProposalStatus.PENDING
            and proposal.expires_at > core.clock.now()
        )


# --- the author's own: propose, revise, withdraw --------------------------------------


def create(
    ctx: Ctx,
    spec: OutletSpec,
    text: str,
    item_id: int | None,
    publish_at: datetime | None,
) -> tuple[Proposal, int]:
    """A new proposal (its text checked against the outlet), pending, with its approval
    cards queued; returns it and how many cards went out (0: nobody may approve it)."""
    expires = ctx.now + ctx.core.settings.outlets.expiry
    if publish_at is not None:
        expires = min(expires, publish_at)
    proposal = ctx.uow.proposals.add(
        Proposal(
            outlet=spec.name,
            author_id=ctx.person.id,
            text=text,
            item_id=item_id,
            publish_at=publish_at,
            status=ProposalStatus.PENDING,
            revision=1,
            created_at=ctx.now,
            revised_at=ctx.now,
            expires_at=expires,
            attempts=0,
        )
    )
    audit(
        ctx.uow,
        ctx.now,
        ctx.person.id,
        "proposal.created",
        proposal,
        text=text[:500],
        item=item_id,
        publish_at=publish_at.isoformat() if publish_at else None,
    )
    return proposal, send_cards(ctx.core, ctx.uow, proposal, ctx.now)


def revise(ctx: Ctx, proposal: Proposal, text: str) -> None:
    """A new revision with this text: the old cards show it was revised, new ones go out."""
    close_cards(
        ctx.core, ctx.uow, proposal, ctx.now, "card.revised", author=f"@{ctx.person.handle}"
    )
    expires = ctx.now + ctx.core.settings.outlets.expiry
    if proposal.publish_at is not None:
        expires = min(expires, proposal.publish_at)
    if not ctx.uow.proposals.transition(
        proposal.id,
        OPEN,
        proposal.revision,
        text=text,
        revision=proposal.revision + 1,
        status=ProposalStatus.PENDING,
        revised_at=ctx.now,
        expires_at=expires,
        decided_at=None,
        decided_by=None,
        reason=None,
    ):
        raise UserError(
            "error.proposal_not_open",
            proposal=show_id(proposal.id, "proposal"),
            status=status_label(ctx.t, proposal),
        )
    ctx.uow.session.refresh(proposal)
    audit(ctx.uow, ctx.now, ctx.person.id, "proposal.revised", proposal, text=text[:500])
    send_cards(ctx.core, ctx.uow, proposal, ctx.now)


def withdraw(ctx: Ctx, proposal: Proposal) -> None:
    """The author takes the proposal back (also an approved one not yet published)."""
    if not ctx.uow.proposals.transition(
        proposal.id,
        [*OPEN, ProposalStatus.APPROVED],
        status=ProposalStatus.WITHDRAWN,
        decided_at=ctx.now,
    ):
        raise UserError(
            "error.proposal_not_open",
            proposal=show_id(proposal.id, "proposal"),
            status=status_label(ctx.t, proposal),
        )
    ctx.uow.session.refresh(proposal)
    audit(ctx.uow, ctx.now, ctx.person.id, "proposal.withdrawn", proposal)
    # Every card of this revision: an approved one showed its decision already.
    lines: list[tuple[str, dict[str, Any]]] = [
        ("card.withdrawn", {"author": f"@{ctx.person.handle}"})
    ]
    show_outcome(ctx.core, ctx.uow, proposal, ctx.now, lines, every=True)
