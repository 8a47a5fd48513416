"""Proposals for public outlets and their approval: outlets, propose, pending, approve,
reject, revise, withdraw, audit, bridge gatekeepers; approval cards with their buttons,
reactions and reason prompts.

Four eyes: an author never decides on their own proposal. A vote first locks its
proposal and each change of status is conditional on the status and revision it
expects, so the first decisive vote wins and two at once yield one outcome. Every
decision updates every card of the proposal and tells its author, in the same
transaction.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.authors import author_label
from bot.commands.common import parse_id, show_id
from bot.commands.sharing import MAX_TEXT
from bot.core import Core, Ctx
from bot.delivery import OutboxRow
from bot.errors import UserError
from bot.events import ButtonPressed, ReactionAdded
from bot.grammar import Command
from bot.handlers import Handlers
from bot.i18n import Translator
from bot.markup import Markup, esc, link
from bot.message import Button, Message, Target
from bot.outlets import NEWSROOM_SPEC, OutletSpec, check, publication_text
from bot.policy import Policy, is_gatekeeper
from store.models import ApprovalCard, Person, Prompt, Proposal, ProposalStatus, Role
from store.proposals import OPEN, UNFINISHED
from store.uow import UnitOfWork

PENDING_MAX = 30
AUDIT_DEFAULT, AUDIT_MAX = 20, 100
APPROVE_EMOJI = frozenset({"✅", "✔️", "☑️", "white_check_mark", "heavy_check_mark"})
REJECT_EMOJI = frozenset({"❌", "✖️", "x", "no_entry", "heavy_multiplication_x"})
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


# --- who and what ----------------------------------------------------------------------


def outlet_spec(core: Core, name: str) -> OutletSpec:
    """The outlet's spec; one removed from the configuration since still has a name."""
    found = core.settings.outlets.get(name)
    return found or OutletSpec(name, "unknown", limits=NEWSROOM_SPEC.limits)


def _find(ctx: Ctx, raw: str, *, lock: bool = False) -> Proposal:
    """The proposal, if this person may see it: gatekeepers and admins all, authors theirs."""
    number = parse_id(raw, "proposal")
    proposal = ctx.uow.proposals.lock(number) if lock else ctx.uow.proposals.get(number)
    if proposal is None or not (is_gatekeeper(ctx.person) or proposal.author_id == ctx.person.id):
        raise UserError("error.proposal_not_found", proposal=show_id(number, "proposal"))
    return proposal


def _status(t: Translator, proposal: Proposal) -> Markup:
    return t(f"status.{proposal.status}")


def _pending_status(ctx: Ctx, proposal: Proposal, approvals: dict[int, int]) -> Markup:
    """The status, with the approvals so far (`approvals`, by proposal) where an outlet
    needs more than one."""
    status = _status(ctx.t, proposal)
    need = outlet_spec(ctx.core, proposal.outlet).quorum
    if proposal.status != ProposalStatus.PENDING or need < 2:
        return status
    return ctx.t("pending.votes", status=status, have=approvals.get(proposal.id, 0), need=need)


def _prefix(core: Core, platform: str) -> str:
    return core.settings.command_prefixes.get(platform, "/")


_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")
_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%d.%m.%Y %H:%M", "%Y-%m-%d", "%d.%m.%Y")


def parse_publish_time(value: str, zone: str, now: datetime) -> datetime:
    """HH:MM (the next such time), or a date with a time, in the person's time zone."""
    tz = ZoneInfo(zone)
    text = " ".join(value.split())
    local_now = now.astimezone(tz)
    m = _CLOCK.match(text)
    if m:
        hour, minute = int(m.group(1)), int(m.group(2))
        if hour > 23 or minute > 59:
            raise UserError("error.bad_publish_time", value=value, usage_of="propose")
        when = local_now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if when <= local_now:
            when += timedelta(days=1)
        return when.astimezone(now.tzinfo)
    for fmt in _FORMATS:
        try:
            naive = datetime.strptime(text, fmt)  # the zone is set below
        except ValueError:
            continue
        return naive.replace(tzinfo=tz).astimezone(now.tzinfo)
    raise UserError("error.bad_publish_time", value=value, usage_of="propose")


# --- cards -----------------------------------------------------------------------------


def _quote(text: str) -> Markup:
    return Markup("\n".join("> " + esc(line) if line.strip() else ">" for line in text.split("\n")))


def card_message(
    core: Core,
    uow: UnitOfWork,
    t: Translator,
    proposal: Proposal,
    *,
    platform: str,
    timezone: str,
    outcome: Markup | None = None,
    replaces: str | None = None,
) -> Message:
    """The approval card: the proposal, and either its buttons or its outcome."""
    spec = outlet_spec(core, proposal.outlet)
    ref = show_id(proposal.id, "proposal")
    author = uow.people.get(proposal.author_id) if proposal.author_id else None
    lines: list[str] = [
        t("card.by", author=author_label(t, author.handle if author else None)),
        _quote(proposal.text),
    ]
    item = uow.items.get(proposal.item_id) if proposal.item_id else None
    if item is not None and item.url:
        lines.append(t("card.link", link=link(item.url)))
    if proposal.publish_at is not None:
        lines.append(t("card.at", when=t.datetime(proposal.publish_at, timezone)))
    if proposal.revision > 1:
        lines.append(t("card.revision", revision=proposal.revision))
    buttons: tuple[Button, ...] = ()
    if outcome is None:
        if spec.quorum > 1:
            so_far = approvers(uow, proposal)
            if so_far:
                lines.append(
                    t("card.votes_by", have=len(so_far), need=spec.quorum, by=handle_list(so_far))
                )
            else:
                lines.append(t("card.votes", have=0, need=spec.quorum))
        lines.append(t("card.hint", prefix=_prefix(core, platform), proposal=ref))
        value = f"{proposal.id}:{proposal.revision}"
        buttons = (
            Button(
                label=t("card.approve"), action="proposal.approve", value=value, style="primary"
            ),
            Button(label=t("card.reject"), action="proposal.reject", value=value, style="danger"),
            Button(label=t("card.changes"), action="proposal.changes", value=value),
        )
    else:
        lines.append(outcome)
    return Message(
        title=t("card.title", proposal=ref, outlet=spec.name),
        text="\n".join(lines),
        buttons=buttons,
        replaces=replaces,
        meta={"proposal": proposal.id},
    )


def approvers(uow: UnitOfWork, proposal: Proposal) -> list[Person]:
    """Who approved the proposal's current revision, in the order they voted."""
    votes = uow.proposals.votes(proposal.id, proposal.revision)
    ids = [v.gatekeeper_id for v in votes if v.vote == "approve"]
    people = {p.id: p for p in uow.people.by_ids(ids)}
    return [people[i] for i in ids if i in people]


def handle_list(people: list[Person]) -> str:
    return ", ".join("@" + p.handle for p in people)


def _approvals(uow: UnitOfWork, proposal: Proposal) -> int:
    """How many approved the current revision (a count: no people loaded)."""
    return uow.proposals.approval_counts([proposal]).get(proposal.id, 0)


def send_cards(core: Core, uow: UnitOfWork, proposal: Proposal, now: datetime) -> int:
    """An approval card to the gatekeepers' rooms, or else to every gatekeeper (admins
    when there is none), never to the author; returns how many."""
    rooms = uow.proposals.gatekeeper_rooms()
    targets: list[tuple[Target, Person | None]] = [
        (Target(r.platform, "room", r.external_id), None) for r in rooms
    ]
    if not targets:
        people = [
            p for p in uow.proposals.people_with_role(Role.GATEKEEPER) if p.id != proposal.author_id
        ]
        if not people:
            people = [
                p for p in uow.proposals.people_with_role(Role.ADMIN) if p.id != proposal.author_id
            ]
        accounts = uow.people.preferred_accounts([p.id for p in people])
        for person in people:
            account = accounts.get(person.id)
            if account is not None:
                targets.append((Target(account.platform, "dm", account.external_id), person))
    for target, recipient in targets:
        uow.proposals.add_card(
            proposal,
            platform=target.platform,
            target_kind=target.kind,
            target=target.address,
            person_id=recipient.id if recipient else None,
            payload={"t": "card"},  # rendered when sent: see render_card
            now=now,
        )
    return len(targets)


def close_cards(
    core: Core, uow: UnitOfWork, proposal: Proposal, now: datetime, key: str, **params: Any
) -> None:
    """Shows the outcome on every open card of the proposal (in place where the platform
    can edit a message; as a new message elsewhere), without its buttons."""
    show_outcome(core, uow, proposal, now, [(key, params)])


def show_outcome(
    core: Core,
    uow: UnitOfWork,
    proposal: Proposal,
    now: datetime,
    lines: list[tuple[str, dict[str, Any]]],
    *,
    every: bool = False,
) -> None:
    """Updates the open cards (`every`: all cards, also those already showing a decision,
    e.g. with the published link) to show these outcome lines."""
    if every:  # the cards of this revision (earlier ones show it was revised)
        cards = [
            c for c in uow.proposals.all_cards(proposal.id) if c[0].revision == proposal.revision
        ]
    else:
        cards = uow.proposals.open_cards(proposal.id)
    _update_cards(core, uow, proposal, now, cards, lines)
    uow.proposals.close_cards(card.id for card, _ in cards)


def refresh_cards(core: Core, uow: UnitOfWork, proposal: Proposal, now: datetime) -> None:
    """The open cards, with their buttons, show the approvals so far (a quorum above one):
    in place where delivered. A card still waiting to be sent (its messenger down or
    rate-limited) needs nothing: it is rendered when it goes (see render_card)."""
    cards = [(card, mid) for card, mid in uow.proposals.open_cards(proposal.id) if mid]
    _update_cards(core, uow, proposal, now, cards, None)


def render_card(core: Core, uow: UnitOfWork, row: OutboxRow) -> Message | None:
    """An approval card as it is when it goes out, with the approvals so far; nothing
    once it was decided or revised (the outcome follows as a message of its own)."""
    card = uow.proposals.card_sent_by(row.id)
    if card is None or card.closed:
        return None
    proposal = uow.proposals.get(card.proposal_id)
    if proposal is None or proposal.revision != card.revision:
        return None
    if card.person_id is not None:
        # Its holder may have stopped deciding meanwhile (their role taken, deactivated),
        # or become the author (accounts linked): no card, and no outcome later either.
        holder = uow.people.get(card.person_id)
        if holder is None or not is_gatekeeper(holder) or holder.id == proposal.author_id:
            uow.proposals.close_cards([card.id])
            return None
    return _card_for(core, uow, proposal, card, outcome=None, replaces=None)


def _card_for(
    core: Core,
    uow: UnitOfWork,
    proposal: Proposal,
    card: ApprovalCard,
    *,
    outcome: list[tuple[str, dict[str, Any]]] | None,
    replaces: str | None,
) -> Message:
    """The card as its holder reads it: in their language and time zone."""
    person = uow.people.get(card.person_id) if card.person_id else None
    t = core.translator(person)
    zone = core.timezone_of(person) if person else core.settings.default_timezone
    shown = None if outcome is None else Markup("\n".join(t(key, **kw) for key, kw in outcome))
    return card_message(
        core,
        uow,
        t,
        proposal,
        platform=card.platform,
        timezone=zone,
        outcome=shown,
        replaces=replaces,
    )


def _update_cards(
    core: Core,
    uow: UnitOfWork,
    proposal: Proposal,
    now: datetime,
    cards: Sequence[tuple[ApprovalCard, str | None]],
    lines: list[tuple[str, dict[str, Any]]] | None,
) -> None:
    """Each card again (replacing its message), with these outcome lines, or with its
    buttons where `lines` is None — in the language and time zone of whoever holds it."""
    for card, message_id in cards:
        message = _card_for(core, uow, proposal, card, outcome=lines, replaces=message_id)
        if lines is None:  # a running count: in place, or not at all
            message = replace(message, edit_only=True)
        target = Target(card.platform, "dm" if card.target_kind == "dm" else "room", card.target)
        core.enqueue(uow, target, message, card.person_id, now)


def tell_author(
    core: Core, uow: UnitOfWork, proposal: Proposal, now: datetime, key: str, **params: Any
) -> None:
    author = uow.people.get(proposal.author_id) if proposal.author_id else None
    if author is None:
        return
    t = core.translator(author)
    account = uow.people.preferred_accounts([author.id]).get(author.id)
    prefix = _prefix(core, account.platform) if account else "/"
    params.setdefault("proposal", show_id(proposal.id, "proposal"))
    params.setdefault("outlet", proposal.outlet)
    core.send_to_person(uow, author, Message(text=t(key, prefix=prefix, **params)), now)


def tell_admins(
    core: Core, uow: UnitOfWork, proposal: Proposal, now: datetime, key: str, **params: Any
) -> None:
    params.setdefault("proposal", show_id(proposal.id, "proposal"))
    params.setdefault("outlet", proposal.outlet)
    admins = uow.proposals.people_with_role(Role.ADMIN)
    accounts = uow.people.preferred_accounts([p.id for p in admins])
    for admin in admins:
        account = accounts.get(admin.id)
        prefix = _prefix(core, account.platform) if account else "/"
        text = core.translator(admin)(key, prefix=prefix, **params)
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


# --- outlets and propose -------------------------------------------------------------


def on_outlets(ctx: Ctx, cmd: Command) -> None:
    ctx.policy.require_internal()
    outlets = ctx.core.settings.outlets.outlets
    lines: list[str] = [ctx.t("outlets.header", count=len(outlets))]
    for spec in outlets:
        limits = spec.limits
        parts = []
        if limits.max_length is None:
            parts.append(str(ctx.t("outlets.no_limit")))
        else:
            unit = ctx.t(f"outlets.{limits.unit}")
            parts.append(str(ctx.t("outlets.limit", max=limits.max_length, unit=unit)))
        parts.append(
            str(ctx.t("outlets.media", count=limits.max_media))
            if limits.max_media
            else str(ctx.t("outlets.no_media"))
        )
        lines.append(
            ctx.t(
                "outlets.line",
                name=spec.name,
                kind=ctx.t(f"outlets.kind.{spec.kind}"),
                limit=Markup(esc(", ".join(parts))),
                quorum=ctx.t("outlets.quorum", count=spec.quorum),
            )
        )
    lines.append(ctx.t("outlets.footer", prefix=_prefix(ctx.core, ctx.platform)))
    ctx.reply_markup(Markup("\n".join(lines)))


def _check_limits(
    ctx: Ctx, spec: OutletSpec, text: str, link_: str | None, media: list[tuple[int, str]]
) -> None:
    if not text.strip():
        raise UserError("error.proposal_empty", usage_of="propose")
    if len(text) > MAX_TEXT:
        raise UserError("error.text_too_long", max=MAX_TEXT)
    sizes, types = tuple(m[0] for m in media), tuple(m[1] for m in media)
    problem = check(spec.limits, publication_text(text, link_), sizes, types)
    if problem is None:
        return
    if problem.what == "media_type":
        raise UserError("error.proposal_media_type", outlet=spec.name, kind=problem.kind)
    if problem.what == "length":
        raise UserError(
            "error.proposal_too_long",
            outlet=spec.name,
            actual=problem.actual,
            limit=problem.limit,
            unit=ctx.t(f"outlets.{problem.unit}"),
        )
    if problem.what == "media":
        raise UserError(
            "error.proposal_too_many_media",
            outlet=spec.name,
            limit=problem.limit,
            actual=problem.actual,
        )
    raise UserError(
        "error.proposal_media_too_large",
        outlet=spec.name,
        limit=_size(problem.limit),
        actual=_size(problem.actual),
    )


def _size(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB" if n >= 1_000_000 else f"{n // 1000} kB"


def _item_attachment(
    ctx: Ctx, proposal_item: int | None
) -> tuple[str | None, list[tuple[int, str]]]:
    """The item's link and its files' (size, MIME type)."""
    if proposal_item is None:
        return None, []
    item, _ = ctx.policy.item(proposal_item)
    media = [(blob.size, blob.mime_type) for _, blob in ctx.uow.blobs.files_of(item.id)]
    return item.url, media


def on_propose(ctx: Ctx, cmd: Command) -> None:
    ctx.policy.require_internal()
    name = str(cmd.arg("outlet")).lower()
    spec = ctx.core.settings.outlets.get(name)
    if spec is None:
        raise UserError("error.outlet_not_found", outlet=cmd.arg("outlet"))
    text = str(cmd.arg("text") or "").strip()
    item_id = parse_id(str(cmd.flags["item"]), "item") if cmd.flags.get("item") else None
    link_, media = _item_attachment(ctx, item_id)
    _check_limits(ctx, spec, text, link_, media)
    zone = ctx.core.timezone_of(ctx.person)
    publish_at = None
    if cmd.flags.get("at"):
        publish_at = parse_publish_time(str(cmd.flags["at"]), zone, ctx.now)
        if publish_at <= ctx.now:
            raise UserError("error.publish_time_past", when=ctx.t.datetime(publish_at, zone))
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
    sent = send_cards(ctx.core, ctx.uow, proposal, ctx.now)
    ref = show_id(proposal.id, "proposal")
    need = ctx.t("outlets.quorum", count=spec.quorum)
    if publish_at is None:
        answer = ctx.t("proposal.created", proposal=ref, outlet=spec.name, need=need)
    else:
        answer = ctx.t(
            "proposal.created_at",
            proposal=ref,
            outlet=spec.name,
            need=need,
            when=ctx.t.datetime(publish_at, zone),
        )
    if not sent:
        nobody = ctx.t("proposal.nobody_to_approve", prefix=_prefix(ctx.core, ctx.platform))
        answer = Markup(f"{answer}\n{nobody}")
    ctx.reply_markup(answer)


# --- deciding --------------------------------------------------------------------------


def _check_open(ctx: Ctx, proposal: Proposal, revision: int | None) -> None:
    """Only a pending proposal, at the revision the card showed, can be decided; one past
    its expiry is expired (the tick records it so soon)."""
    if revision is not None and revision != proposal.revision:
        raise UserError("error.button_expired")
    ref = show_id(proposal.id, "proposal")
    if proposal.status == ProposalStatus.PENDING and proposal.expires_at <= ctx.now:
        raise UserError("error.proposal_decided", proposal=ref, status=ctx.t("status.expired"))
    if proposal.status != ProposalStatus.PENDING:
        raise UserError("error.proposal_decided", proposal=ref, status=_status(ctx.t, proposal))


def approve(ctx: Ctx, proposal: Proposal, revision: int | None, comment: str | None) -> None:
    ref = show_id(proposal.id, "proposal")
    if proposal.author_id == ctx.person.id:
        raise UserError("error.own_proposal")
    ctx.policy.require_gatekeeper()
    if proposal.status in (ProposalStatus.UNCERTAIN, ProposalStatus.FAILED) and ctx.policy.is_admin:
        _admin_retry(ctx, proposal)
        return
    _check_open(ctx, proposal, revision)
    spec = outlet_spec(ctx.core, proposal.outlet)
    if not ctx.uow.proposals.add_vote(
        proposal.id, proposal.revision, ctx.person.id, "approve", comment, ctx.now
    ):
        raise UserError(
            "error.already_voted",
            proposal=ref,
            have=_approvals(ctx.uow, proposal),
            need=spec.quorum,
        )
    have = _approvals(ctx.uow, proposal)
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
        raise UserError("error.proposal_decided", proposal=ref, status=_status(ctx.t, proposal))
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
    ctx.reply("proposal.approved", proposal=ref, outlet=proposal.outlet, when=when)


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
            status=_status(ctx.t, proposal),
        )
    audit(ctx.uow, ctx.now, ctx.person.id, "proposal.retry", proposal)
    ctx.reply(
        "proposal.admin_retry", proposal=show_id(proposal.id, "proposal"), outlet=proposal.outlet
    )


def decline(ctx: Ctx, proposal: Proposal, revision: int | None, reason: str, kind: str) -> None:
    """Rejects the proposal, or (kind "changes") sends it back to its author to revise."""
    ref = show_id(proposal.id, "proposal")
    if proposal.author_id == ctx.person.id:
        raise UserError(
            "error.own_proposal_reject", proposal=ref, prefix=_prefix(ctx.core, ctx.platform)
        )
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
    _check_open(ctx, proposal, revision)
    spec = outlet_spec(ctx.core, proposal.outlet)
    if not ctx.uow.proposals.add_vote(
        proposal.id, proposal.revision, ctx.person.id, kind, reason, ctx.now
    ):
        raise UserError(
            "error.already_voted",
            proposal=ref,
            have=_approvals(ctx.uow, proposal),
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
        raise UserError("error.proposal_decided", proposal=ref, status=_status(ctx.t, proposal))
    ctx.uow.session.refresh(proposal)
    author = ctx.uow.people.get(proposal.author_id) if proposal.author_id else None
    handle = author_label(ctx.t, author.handle if author else None)
    action, card, told, answer = DECLINED[kind]
    audit(ctx.uow, ctx.now, ctx.person.id, action, proposal, reason=reason)
    close_cards(ctx.core, ctx.uow, proposal, ctx.now, card, by=ctx.person.handle, reason=reason)
    tell_author(ctx.core, ctx.uow, proposal, ctx.now, told, by=ctx.person.handle, reason=reason)
    ctx.reply(answer, proposal=ref, author=handle)


def on_approve(ctx: Ctx, cmd: Command) -> None:
    proposal = _find(ctx, str(cmd.arg("proposal")), lock=True)
    if proposal.author_id == ctx.person.id:
        raise UserError("error.own_proposal")  # four eyes, also for admins and gatekeepers
    comment = (cmd.arg("comment") or "").strip()[:2000] or None
    approve(ctx, proposal, None, comment)


def on_reject(ctx: Ctx, cmd: Command) -> None:
    proposal = _find(ctx, str(cmd.arg("proposal")), lock=True)
    decline(ctx, proposal, None, str(cmd.arg("reason")), "reject")


# --- the author's own: revise, withdraw --------------------------------------------------


def _own(ctx: Ctx, raw: str) -> Proposal:
    proposal = _find(ctx, raw, lock=True)
    ref = show_id(proposal.id, "proposal")
    if proposal.author_id != ctx.person.id:
        raise UserError("error.not_author", proposal=ref)
    return proposal


def on_revise(ctx: Ctx, cmd: Command) -> None:
    ctx.policy.require_internal()
    proposal = _own(ctx, str(cmd.arg("proposal")))
    ref = show_id(proposal.id, "proposal")
    if proposal.status not in OPEN:
        raise UserError("error.proposal_not_open", proposal=ref, status=_status(ctx.t, proposal))
    spec = ctx.core.settings.outlets.get(proposal.outlet)
    if spec is None:
        raise UserError("error.outlet_not_found", outlet=proposal.outlet)
    text = str(cmd.arg("text") or "").strip()
    link_, media = _item_attachment(ctx, proposal.item_id)
    _check_limits(ctx, spec, text, link_, media)
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
        raise UserError("error.proposal_not_open", proposal=ref, status=_status(ctx.t, proposal))
    ctx.uow.session.refresh(proposal)
    audit(ctx.uow, ctx.now, ctx.person.id, "proposal.revised", proposal, text=text[:500])
    send_cards(ctx.core, ctx.uow, proposal, ctx.now)
    ctx.reply("proposal.revised", proposal=ref, revision=proposal.revision)


def on_withdraw(ctx: Ctx, cmd: Command) -> None:
    ctx.policy.require_internal()
    proposal = _own(ctx, str(cmd.arg("proposal")))
    ref = show_id(proposal.id, "proposal")
    if not ctx.uow.proposals.transition(
        proposal.id,
        [*OPEN, ProposalStatus.APPROVED],
        status=ProposalStatus.WITHDRAWN,
        decided_at=ctx.now,
    ):
        raise UserError("error.proposal_not_open", proposal=ref, status=_status(ctx.t, proposal))
    ctx.uow.session.refresh(proposal)
    audit(ctx.uow, ctx.now, ctx.person.id, "proposal.withdrawn", proposal)
    # Every card of this revision: an approved one showed its decision already.
    lines: list[tuple[str, dict[str, Any]]] = [
        ("card.withdrawn", {"author": f"@{ctx.person.handle}"})
    ]
    show_outcome(ctx.core, ctx.uow, proposal, ctx.now, lines, every=True)
    ctx.reply("proposal.withdrawn", proposal=ref)


# --- pending, audit ----------------------------------------------------------------------


def on_pending(ctx: Ctx, cmd: Command) -> None:
    ctx.policy.require_internal()
    everyone = is_gatekeeper(ctx.person)
    if everyone:
        proposals = ctx.uow.proposals.listing(UNFINISHED, PENDING_MAX)
    else:
        proposals = ctx.uow.proposals.of_author(ctx.person.id, UNFINISHED, PENDING_MAX)
    if not proposals:
        ctx.reply("pending.none" if everyone else "pending.mine_none")
        return
    handles = ctx.uow.proposals.handles(p.author_id for p in proposals)
    approvals = ctx.uow.proposals.approval_counts(
        p for p in proposals if p.status == ProposalStatus.PENDING
    )
    lines: list[str] = [
        ctx.t("pending.header" if everyone else "pending.mine_header", count=len(proposals))
    ]
    for p in proposals:
        summary = " ".join(p.text.split())
        if len(summary) > 80:
            summary = summary[:79] + "…"
        lines.append(
            ctx.t(
                "pending.line",
                proposal=show_id(p.id, "proposal"),
                outlet=p.outlet,
                author=author_label(ctx.t, handles.get(p.author_id or 0)),
                status=_pending_status(ctx, p, approvals),
                text=summary,
            )
        )
    ctx.reply_markup(Markup("\n".join(lines)))


def _details(details: dict[str, Any]) -> str:
    shown = [f"{k}={v}" for k, v in details.items() if v not in (None, "", [], {})]
    text = ", ".join(shown)
    if len(text) > 160:
        text = text[:159] + "…"
    return f" ({text})" if text else ""


def on_audit(ctx: Ctx, cmd: Command) -> None:
    ctx.policy.require_admin()
    limit = max(1, min(cmd.arg("n") or AUDIT_DEFAULT, AUDIT_MAX))
    entries = ctx.uow.proposals.audit_entries(limit)
    if not entries:
        ctx.reply("audit.none")
        return
    handles = ctx.uow.proposals.handles(e.actor_id for e in entries)
    zone = ctx.core.timezone_of(ctx.person)
    lines: list[str] = [ctx.t("audit.header", count=len(entries))]
    for e in entries:
        actor = "@" + handles[e.actor_id] if e.actor_id in handles else "Pinwall"
        lines.append(
            ctx.t(
                "audit.line",
                when=ctx.t.datetime(e.at, zone),
                actor=actor,
                action=e.action,
                subject=e.subject,
                details=_details(e.details),
            )
        )
    ctx.reply_markup(Markup("\n".join(lines)))


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


# --- buttons, reactions, reason prompts ------------------------------------------------


def _card_value(ctx: Ctx, value: str) -> tuple[Proposal, int]:
    raw_id, _, raw_revision = value.partition(":")
    if not raw_id.isdigit() or not raw_revision.isdigit():
        raise UserError("error.button_expired")
    return _from_card(ctx, int(raw_id)), int(raw_revision)


def _from_card(ctx: Ctx, proposal_id: int) -> Proposal:
    """The proposal a card shows; deciding on it is for gatekeepers (its author is told
    why not by approve / decline)."""
    proposal = ctx.uow.proposals.lock(proposal_id)
    if proposal is None:
        raise UserError("error.button_expired")
    if proposal.author_id != ctx.person.id:
        ctx.policy.require_gatekeeper()
    return proposal


def _ask_reason(ctx: Ctx, proposal: Proposal, revision: int, kind: str) -> None:
    """Reject or request changes by button or reaction: the next DM line is the reason."""
    ctx.policy.require_gatekeeper()
    ref = show_id(proposal.id, "proposal")
    if proposal.author_id == ctx.person.id:
        raise UserError(
            "error.own_proposal_reject", proposal=ref, prefix=_prefix(ctx.core, ctx.platform)
        )
    _check_open(ctx, proposal, revision)
    ctx.uow.state.set_prompt(ctx.person.id, f"p.{kind}", proposal.id, ctx.now)
    author = ctx.uow.people.get(proposal.author_id) if proposal.author_id else None
    key = "proposal.reason_reject" if kind == "reject" else "proposal.reason_changes"
    params = {"proposal": ref, "author": author_label(ctx.t, author.handle if author else None)}
    if ctx.in_direct_chat:
        ctx.reply(key, **params)
    else:
        ctx.tell(ctx.person, key, **params)


def on_approve_button(ctx: Ctx, value: str) -> None:
    proposal, revision = _card_value(ctx, value)
    approve(ctx, proposal, revision, None)


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


def _typed_reason(ctx: Ctx) -> str | None:
    """The reason typed with the press (a platform that asks at once, like Slack's modal)."""
    event = ctx.event
    text = event.text if isinstance(event, ButtonPressed) else None
    return text if text and text.strip() else None


def on_reject_button(ctx: Ctx, value: str) -> None:
    proposal, revision = _card_value(ctx, value)
    reason = _typed_reason(ctx)
    if reason is None:
        _ask_reason(ctx, proposal, revision, "reject")
    else:
        decline(ctx, proposal, revision, reason, "reject")


def on_changes_button(ctx: Ctx, value: str) -> None:
    proposal, revision = _card_value(ctx, value)
    reason = _typed_reason(ctx)
    if reason is None:
        _ask_reason(ctx, proposal, revision, "changes")
    else:
        decline(ctx, proposal, revision, reason, "changes")


def on_card_reaction(ctx: Ctx, event: ReactionAdded) -> None:
    """✅ on an approval card approves, ❌ asks for the reason to reject."""
    emoji = event.emoji.strip().strip(":")
    if emoji not in APPROVE_EMOJI and emoji not in REJECT_EMOJI:
        return
    card = ctx.uow.proposals.card_at(
        ctx.platform, event.message.conversation, event.message.message_id
    )
    if card is None:
        return
    proposal = _from_card(ctx, card.proposal_id)
    if emoji in APPROVE_EMOJI:
        approve(ctx, proposal, card.revision, None)
    else:
        _ask_reason(ctx, proposal, card.revision, "reject")


def on_reason(ctx: Ctx, prompt: Prompt, text: str) -> None:
    """The reason a gatekeeper was asked for (Reject / Request changes) decides."""
    proposal = _find(ctx, str(prompt.ref), lock=True)
    if proposal.revised_at > prompt.created_at or proposal.status != ProposalStatus.PENDING:
        ctx.reply(
            "proposal.reason_stale",
            proposal=show_id(proposal.id, "proposal"),
            status=_status(ctx.t, proposal),
        )
        return
    decline(ctx, proposal, None, text, REASON_PROMPTS[prompt.kind])


HANDLERS = Handlers(
    commands={
        "outlets": on_outlets,
        "propose": on_propose,
        "approve": on_approve,
        "reject": on_reject,
        "revise": on_revise,
        "withdraw": on_withdraw,
        "pending": on_pending,
        "audit": on_audit,
    },
    actions={
        "proposal.approve": on_approve_button,
        "proposal.reject": on_reject_button,
        "proposal.changes": on_changes_button,
    },
    reactions=(on_card_reaction,),
    prompts=dict.fromkeys(REASON_PROMPTS, on_reason),
    renderers={"card": render_card},
)
