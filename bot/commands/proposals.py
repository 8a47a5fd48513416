"""Proposals for public outlets: outlets, propose, pending, approve, reject, revise,
withdraw, audit; the approval cards' buttons, reactions and reason prompts. Thin: the
deciding is bot/proposals.py's, the cards bot/approval_cards.py's.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from bot import proposals
from bot.approval_cards import outlet_spec, render_card
from bot.authors import author_label
from bot.commands.sharing import MAX_TEXT
from bot.core import Ctx
from bot.errors import UserError
from bot.events import ButtonPressed, ReactionAdded
from bot.grammar import Command
from bot.handlers import Handlers
from bot.ids import parse_id, show_id
from bot.markup import Markup, esc
from bot.outlets import OutletSpec, check, publication_text
from bot.policy import is_gatekeeper
from bot.proposals import (
    APPROVE_EMOJI,
    REASON_PROMPTS,
    REJECT_EMOJI,
    approve,
    ask_reason,
    card_value,
    decline,
    find_proposal,
    from_card,
    own_proposal,
    parse_publish_time,
    status_label,
)
from bot.reasons import reason
from bot.show import one_line
from store.models import Prompt, Proposal, ProposalStatus, Role
from store.repositories.proposals import OPEN

PENDING_MAX = 30
STILL_PENDING = (ProposalStatus.PENDING,)
STILL_PENDING_ADMIN = (ProposalStatus.PENDING, ProposalStatus.UNCERTAIN)
AUDIT_DEFAULT, AUDIT_MAX = 20, 100


def _pending_status(ctx: Ctx, proposal: Proposal, approvals: dict[int, int]) -> Markup:
    """The status, with the approvals so far (`approvals`, by proposal) where an outlet
    needs more than one."""
    status = status_label(ctx.t, proposal)
    need = outlet_spec(ctx.core, proposal.outlet).quorum
    if proposal.status != ProposalStatus.PENDING or need < 2:
        return status
    return ctx.t("pending.votes", status=status, have=approvals.get(proposal.id, 0), need=need)


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
    lines.append(ctx.t("outlets.footer", prefix=ctx.prefix))
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
    item_id = parse_id(str(cmd.flags["item"]), "item") if cmd.flags.get("item") else None
    zone = ctx.core.timezone_of(ctx.person)
    publish_at = None
    if cmd.flags.get("at"):
        publish_at = parse_publish_time(str(cmd.flags["at"]), zone, ctx.now)
    _propose(ctx, str(cmd.arg("outlet")), str(cmd.arg("text") or ""), item_id, publish_at)


def on_propose_form(ctx: Ctx, value: str) -> None:
    """A proposal filled in as a form (Slack's propose modal): the outlet, the post it
    is about and the moment in `value` ({"outlet", "item", "at": Unix seconds}), the text
    as typed in the event (`ButtonPressed.text`), never read as options: a "--at" in it
    stays text."""
    ctx.policy.require_internal()
    try:
        fields = json.loads(value)
    except ValueError:
        fields = None
    if not isinstance(fields, dict):
        raise UserError("error.button_expired")
    text = ctx.event.text if isinstance(ctx.event, ButtonPressed) else None
    item, at = fields.get("item"), fields.get("at")
    publish_at = datetime.fromtimestamp(at, UTC) if isinstance(at, int) else None
    item_id = item if isinstance(item, int) else None
    _propose(ctx, str(fields.get("outlet") or ""), text or "", item_id, publish_at)


def _propose(
    ctx: Ctx, outlet: str, text: str, item_id: int | None, publish_at: datetime | None
) -> None:
    spec = ctx.core.settings.outlets.get(outlet.lower())
    if spec is None:
        raise UserError("error.outlet_not_found", outlet=outlet)
    text = text.strip()
    if not text:
        raise UserError("error.missing_argument", param="text", usage_of="propose")
    link_, media = _item_attachment(ctx, item_id)
    _check_limits(ctx, spec, text, link_, media)
    zone = ctx.core.timezone_of(ctx.person)
    if publish_at is not None and publish_at <= ctx.now:
        raise UserError("error.publish_time_past", when=ctx.t.datetime(publish_at, zone))
    proposal, sent = proposals.create(ctx, spec, text, item_id, publish_at)
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
        nobody = ctx.t("proposal.nobody_to_approve", prefix=ctx.prefix)
        answer = Markup(f"{answer}\n{nobody}")
    ctx.reply_markup(answer)


def _require_decider(ctx: Ctx, raw: str) -> None:
    """Deciding is for gatekeepers and admins: anyone else is told so and who decides
    (an author about their own proposal gets the four-eyes answer instead)."""
    if is_gatekeeper(ctx.person):
        return
    number = parse_id(raw, "proposal")
    found = ctx.uow.proposals.get(number)
    if found is not None and found.author_id == ctx.person.id:
        return
    prefix = ctx.prefix
    gatekeepers = ctx.uow.proposals.people_with_role(Role.GATEKEEPER)
    if gatekeepers:
        names = ", ".join(f"@{p.handle}" for p in gatekeepers[:5])
        raise UserError("error.not_gatekeeper", gatekeepers=names, prefix=prefix)
    admins = ctx.uow.proposals.people_with_role(Role.ADMIN)
    names = ", ".join(f"@{p.handle}" for p in admins[:5])
    raise UserError("error.no_gatekeepers", admins=names, prefix=prefix)


def on_approve(ctx: Ctx, cmd: Command) -> None:
    _require_decider(ctx, str(cmd.arg("proposal")))
    proposal = find_proposal(ctx, str(cmd.arg("proposal")), lock=True)
    if proposal.author_id == ctx.person.id:
        raise UserError("error.own_proposal")  # four eyes, also for admins and gatekeepers
    comment = (cmd.arg("comment") or "").strip()[:2000] or None
    approve(ctx, proposal, None, comment)


def on_reject(ctx: Ctx, cmd: Command) -> None:
    _require_decider(ctx, str(cmd.arg("proposal")))
    proposal = find_proposal(ctx, str(cmd.arg("proposal")), lock=True)
    decline(ctx, proposal, None, str(cmd.arg("reason")), "reject")


def on_revise(ctx: Ctx, cmd: Command) -> None:
    ctx.policy.require_internal()
    proposal = own_proposal(ctx, str(cmd.arg("proposal")))
    ref = show_id(proposal.id, "proposal")
    if proposal.status not in OPEN:
        raise UserError(
            "error.proposal_not_open", proposal=ref, status=status_label(ctx.t, proposal)
        )
    spec = ctx.core.settings.outlets.get(proposal.outlet)
    if spec is None:
        raise UserError("error.outlet_not_found", outlet=proposal.outlet)
    text = str(cmd.arg("text") or "").strip()
    link_, media = _item_attachment(ctx, proposal.item_id)
    _check_limits(ctx, spec, text, link_, media)
    proposals.revise(ctx, proposal, text)
    ctx.reply("proposal.revised", proposal=ref, revision=proposal.revision)


def on_withdraw(ctx: Ctx, cmd: Command) -> None:
    ctx.policy.require_internal()
    proposal = own_proposal(ctx, str(cmd.arg("proposal")))
    ref = show_id(proposal.id, "proposal")
    proposals.withdraw(ctx, proposal)
    ctx.reply("proposal.withdrawn", proposal=ref)


def on_pending(ctx: Ctx, cmd: Command) -> None:
    ctx.policy.require_internal()
    everyone = is_gatekeeper(ctx.person)
    # Only what still waits for someone: a gatekeeper's decision (and, for admins, a
    # publication whose outcome they must check); an author's own also while changes
    # are asked of them. What is decided (approved, publishing, published ...) is not.
    if everyone:
        waiting = STILL_PENDING_ADMIN if ctx.policy.is_admin else STILL_PENDING
        proposals = ctx.uow.proposals.listing(waiting, PENDING_MAX)
    else:
        proposals = ctx.uow.proposals.of_author(ctx.person.id, OPEN, PENDING_MAX)
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


def _audit_line(ctx: Ctx, e: Any, handles: dict[int, str], zone: str) -> Markup:
    """One entry of the audit log as a sentence: who did what, when, and why."""
    actor = "@" + handles[e.actor_id] if e.actor_id in handles else str(ctx.t("audit.nobody"))
    subject = str(e.subject)
    outlet = (e.details or {}).get("outlet")
    if outlet and subject.startswith("P"):
        subject = f"{subject} ({outlet})"
    key = f"audit.did.{e.action}"
    if ctx.t.has(key):
        sentence = ctx.t(key, actor=actor, subject=subject)
    else:
        sentence = ctx.t("audit.did.other", actor=actor, action=e.action, subject=subject)
    extra: list[str] = []
    details = e.details or {}
    for name in ("reason", "comment"):
        if isinstance(details.get(name), str) and details[name].strip():
            extra.append(ctx.t(f"audit.{name}", **{name: one_line(details[name], 160)}))
    if isinstance(details.get("error"), str) and details["error"].strip():
        extra.append(ctx.t("audit.error", error=reason(ctx.t, details["error"][:300])))
    return ctx.t(
        "audit.sentence",
        when=ctx.t.datetime(e.at, zone),
        sentence=sentence,
        extra=Markup("".join(extra)),
    )


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
    lines.extend(_audit_line(ctx, e, handles, zone) for e in entries)
    ctx.reply_markup(Markup("\n".join(lines)))


def on_approve_button(ctx: Ctx, value: str) -> None:
    proposal, revision = card_value(ctx, value)
    approve(ctx, proposal, revision, None)


def _typed_reason(ctx: Ctx) -> str | None:
    """The reason typed with the press (a platform that asks at once, like Slack's modal)."""
    event = ctx.event
    text = event.text if isinstance(event, ButtonPressed) else None
    return text if text and text.strip() else None


def on_reject_button(ctx: Ctx, value: str) -> None:
    proposal, revision = card_value(ctx, value)
    reason = _typed_reason(ctx)
    if reason is None:
        ask_reason(ctx, proposal, revision, "reject")
    else:
        decline(ctx, proposal, revision, reason, "reject")


def on_changes_button(ctx: Ctx, value: str) -> None:
    proposal, revision = card_value(ctx, value)
    reason = _typed_reason(ctx)
    if reason is None:
        ask_reason(ctx, proposal, revision, "changes")
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
    proposal = from_card(ctx, card.proposal_id)
    if emoji in APPROVE_EMOJI:
        approve(ctx, proposal, card.revision, None)
    else:
        ask_reason(ctx, proposal, card.revision, "reject")


def on_reason(ctx: Ctx, prompt: Prompt, text: str) -> None:
    """The reason a gatekeeper was asked for (Reject / Request changes) decides."""
    proposal = find_proposal(ctx, str(prompt.ref), lock=True)
    if proposal.revised_at > prompt.created_at or proposal.status != ProposalStatus.PENDING:
        ctx.reply(
            "proposal.reason_stale",
            proposal=show_id(proposal.id, "proposal"),
            status=status_label(ctx.t, proposal),
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
        "proposal.form": on_propose_form,
    },
    reactions=(on_card_reaction,),
    prompts=dict.fromkeys(REASON_PROMPTS, on_reason),
    renderers={"card": render_card},
)
