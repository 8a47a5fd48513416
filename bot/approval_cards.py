"""Approval cards: what gatekeepers see of a proposal, with its buttons (Approve, Reject,
Request changes) or its outcome.

A card is queued as a reference ({"t": "card"}) and rendered when it is sent
(render_card, in the handler table's renderers), so it shows the approvals so far;
each decision updates every card of the proposal in the language and time zone of
whoever holds it (in place where the messenger can edit a message).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from bot.authors import author_label, mentions_of_all
from bot.core import Core
from bot.delivery import OutboxRow
from bot.i18n import Translator
from bot.ids import show_id
from bot.markup import Markup, esc, link
from bot.message import Button, Message, Target
from bot.outlet_preview import Draft, preview
from bot.outlets import NEWSROOM_SPEC, OutletSpec
from bot.policy import is_gatekeeper
from bot.reasons import localized_error
from store.models import ApprovalCard, Item, Person, Proposal, Role
from store.uow import UnitOfWork


def outlet_spec(core: Core, name: str) -> OutletSpec:
    """The outlet's spec; one removed from the configuration since still has a name."""
    found = core.settings.outlets.get(name)
    return found or OutletSpec(name, "unknown", limits=NEWSROOM_SPEC.limits)


def command_prefix(core: Core, platform: str, t: Translator, *, room: bool = False) -> str:
    """As a sentence to a person on this platform says it (Core.prefix: mail's words);
    `room`: read in a shared room, where a command may be typed otherwise (Teams'
    "@Pinwall ")."""
    return core.prefix(platform, t, room=room)


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
    room: bool = False,
    outcome: Markup | None = None,
    replaces: str | None = None,
) -> Message:
    """The approval card: the proposal, and either its buttons or its outcome; `room`:
    it is read in a shared room (the gatekeepers' bridged room), not a direct chat."""
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
    lines.extend(_preview_lines(uow, t, spec, proposal, item))
    if proposal.publish_at is not None:
        lines.append(t("card.at", when=t.datetime(proposal.publish_at, timezone)))
    if proposal.revision > 1:
        lines.append(t("card.revision", revision=proposal.revision))
    buttons: tuple[Button, ...] = ()
    named: list[Person | None] = [author]
    if outcome is None:
        if spec.quorum > 1:
            so_far = approvers(uow, proposal)
            named += so_far
            if so_far:
                lines.append(
                    t("card.votes_by", have=len(so_far), need=spec.quorum, by=handle_list(so_far))
                )
            else:
                lines.append(t("card.votes", have=0, need=spec.quorum))
        prefix = command_prefix(core, platform, t, room=room)
        lines.append(t("card.hint", prefix=prefix, proposal=ref))
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
        # the author and the votes so far as real mentions where the messenger has them
        meta={"proposal": proposal.id, "mentions": mentions_of_all(named)},
    )


def _preview_lines(
    uow: UnitOfWork, t: Translator, spec: OutletSpec, proposal: Proposal, item: Item | None
) -> list[Markup]:
    """How the post will look on the outlet's network, where its kind has a preview
    (bot/outlet_preview.py): the text as the feed cuts it, the link card, the images."""
    images = 0
    if item is not None:
        images = sum(
            1 for _, blob in uow.blobs.files_of(item.id) if blob.mime_type.startswith("image/")
        )
    title = item.title if item is not None and item.title != item.url else None
    draft = Draft(
        text=proposal.text,
        link=item.url if item is not None else None,
        link_title=title,
        picture=bool(item is not None and item.image_url),
        images=images,
    )
    seen = preview(spec.kind, draft)
    if seen is None or not (seen.folded or seen.card or seen.images):
        return []  # the text above is all there is, as it is
    lines = [t("outlet.preview.title", network=t(seen.network))]
    if seen.folded:
        lines.append(Markup(_quote(seen.shown) + "\n" + t("outlet.preview.more")))
    if seen.card is not None:
        key = (
            "outlet.preview.link_card_picture" if seen.card.picture else "outlet.preview.link_card"
        )
        if seen.card.title:
            lines.append(t(key, title=seen.card.title, source=seen.card.source))
        else:
            lines.append(t("outlet.preview.link_only", source=seen.card.source))
    if seen.images:
        lines.append(t("outlet.preview.images", count=seen.images))
    return lines


def approvers(uow: UnitOfWork, proposal: Proposal) -> list[Person]:
    """Who approved the proposal's current revision, in the order they voted."""
    votes = uow.proposals.votes(proposal.id, proposal.revision)
    ids = [v.gatekeeper_id for v in votes if v.vote == "approve"]
    people = {p.id: p for p in uow.people.by_ids(ids)}
    return [people[i] for i in ids if i in people]


def handle_list(people: list[Person]) -> str:
    return ", ".join("@" + p.handle for p in people)


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
    shown = (
        None
        if outcome is None
        else Markup("\n".join(t(key, **localized_error(t, kw)) for key, kw in outcome))
    )
    return card_message(
        core,
        uow,
        t,
        proposal,
        platform=card.platform,
        timezone=zone,
        room=card.target_kind != "dm",
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
