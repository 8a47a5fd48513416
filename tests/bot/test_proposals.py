"""Proposals and their approval, as conversations: outlets, propose (limits checked at
once), four eyes, quorum, cards with buttons and reactions, reasons by prompt, revise,
withdraw, pending, audit, bridge gatekeepers; simultaneous votes yield one outcome."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from sqlalchemy import select

from adapters.memory import MemoryAdapter, Sent
from bot.markup import to_plain
from bot.message import DeliveryFailed
from bot.outlets import DEFAULT_LIMITS, NEWSROOM_SPEC, OutletSettings, OutletSpec, measure
from store.blobs import StoredBlob
from store.models import ProposalStatus, ProposalVote
from tests.bot.conversation import asked, en, link_accounts, other_messenger, refused, say_on
from tests.harness import World


def with_outlets(world: World, *specs: OutletSpec) -> None:
    world.core.settings = replace(
        world.core.settings, outlets=OutletSettings((NEWSROOM_SPEC, *specs))
    )


async def gatekeepers(world: World, *names: str) -> None:
    for name in names:
        await world.say(name, "/whoami")
        await world.say("admin", f"/role {name} gatekeeper")
    await world.say("alice", "/whoami")


async def carol_on_a_messenger_that_is_down(world: World) -> MemoryAdapter:
    """Gatekeepers bob (here) and carol (on "telegram", whose next send fails)."""
    telegram = other_messenger(world, "telegram")
    await say_on(world, telegram, "carol", "/whoami")
    await world.say("admin", "/role carol gatekeeper")
    await gatekeepers(world, "bob")
    telegram.results.append(DeliveryFailed("telegram is down"))
    return telegram


def card_of(world: World, who: str, proposal: int = 1) -> Sent:
    """The newest approval card `who` received for the proposal (with its buttons)."""
    cards = [
        s
        for s in world.adapter.to(who)
        if s.message.meta.get("proposal") == proposal and s.message.buttons
    ]
    assert cards, f"{who} got no card for P{proposal}"
    return cards[-1]


def status(world: World, proposal: int = 1) -> str:
    with world.db.uow() as uow:
        found = uow.proposals.get(proposal)
        assert found is not None
        return found.status


async def test_outlets_lists_the_newsroom_with_its_limits(world: World) -> None:
    with_outlets(
        world,
        OutletSpec("social", "mastodon", token="t", quorum=2, limits=DEFAULT_LIMITS["mastodon"]),
    )
    out = (await world.say("alice", "/outlets")).text("alice")
    assert out.splitlines() == [
        en("outlets.header", count=2),
        "• newsroom · newsroom (Atom feed) · no length limit, no media · 1 approval",
        "• social · Mastodon · up to 500 characters, up to 4 media files · 2 approvals",
        en("outlets.footer"),
    ]


async def test_propose_sends_a_card_to_each_gatekeeper_and_the_author_may_not_approve(
    world: World,
) -> None:
    await gatekeepers(world, "bob", "carol")
    out = await world.say("alice", "/propose newsroom Our new store opens on Monday!")
    assert out.text("alice") == en(
        "proposal.created", proposal="P1", outlet="newsroom", need="1 approval"
    )
    for who in ("bob", "carol"):
        card = card_of(world, who)
        assert to_plain(card.message.title or "") == "Proposal P1 for newsroom"
        assert "@alice proposes:\n> Our new store opens on Monday!" in to_plain(card.message.text)
        assert [b.label for b in card.message.buttons] == [
            "Approve",
            "Reject",
            "Request changes",
        ]
    assert "admin" not in out.addresses  # gatekeepers exist: admins get no card

    told = await refused(world, "alice", "/approve P1")
    assert told == en("error.own_proposal")
    assert status(world) == ProposalStatus.PENDING


async def test_an_admin_author_is_refused_too_and_others_cannot_decide(world: World) -> None:
    await gatekeepers(world, "bob")
    await world.say("admin", "/propose newsroom From the board")
    assert await refused(world, "admin", "/approve P1") == en("error.own_proposal")
    assert await refused(world, "admin", "/reject P1 no") == en(
        "error.own_proposal_reject", proposal="P1"
    )
    # A member who is not the author is told the real reason, and who decides.
    assert await refused(world, "alice", "/approve P1") == en(
        "error.not_gatekeeper", gatekeepers="@bob"
    )
    assert await refused(world, "alice", "/reject P1 no") == en(
        "error.not_gatekeeper", gatekeepers="@bob"
    )
    assert await refused(world, "alice", "/approve X1") == (
        en("error.bad_proposal_id", value="X1", example="P12")
    )


async def test_approval_by_button_updates_every_card_and_tells_the_author(world: World) -> None:
    await gatekeepers(world, "bob", "carol")
    await world.say("alice", "/propose newsroom Hello world")
    bob_card, carol_card = card_of(world, "bob"), card_of(world, "carol")

    out = await world.press("bob", bob_card, 0)

    assert out.text("bob").endswith(
        en("proposal.approved", proposal="P1", outlet="newsroom", when="in a moment")
    )
    assert out.text("alice") == en(
        "proposal.told_approved", proposal="P1", outlet="newsroom", by="@bob"
    )
    updates = {s.target.address: s.message for s in out.sent if s.message.replaces}
    assert updates["bob"].replaces == bob_card.message_id
    assert updates["carol"].replaces == carol_card.message_id
    for message in updates.values():
        assert message.buttons == ()
        assert to_plain(message.text).endswith("✅ Approved by @bob.")
    assert status(world) == ProposalStatus.APPROVED

    # A double click, or the other gatekeeper a moment later: decided already, once.
    again = await refused(world, "bob", "/approve P1")
    assert again == en("error.proposal_decided", proposal="P1", status="approved")
    late = await world.press("carol", carol_card, 0)
    assert late.text("carol") == en("error.proposal_decided", proposal="P1", status="approved")

    audit = (await world.say("admin", "/audit 3")).text("admin")
    assert (
        "2026-11-27 09:00: "
        + en("audit.did.proposal.created", actor="@alice", subject="P1 (newsroom)")
        in audit
    )
    assert en("audit.did.proposal.approved", actor="@bob", subject="P1 (newsroom)") in audit


async def test_a_quorum_of_two_needs_two_gatekeepers_and_a_double_vote_counts_once(
    world: World,
) -> None:
    with_outlets(world, replace(NEWSROOM_SPEC, name="press", quorum=2))
    await gatekeepers(world, "bob", "carol")
    await world.say("alice", "/propose press Two pairs of eyes")
    carol_card = card_of(world, "carol")
    assert en("card.votes", have=0, need=2) in to_plain(carol_card.message.text)
    first = await world.press("bob", card_of(world, "bob"), 0)
    assert first.text("bob").endswith(en("proposal.vote_counted", proposal="P1", have=1, need=2))
    assert status(world) == ProposalStatus.PENDING
    # Both cards now show bob's approval, in place, and still ask for a decision.
    updates = {s.target.address: s.message for s in first.sent if s.message.replaces}
    assert updates["carol"].replaces == carol_card.message_id
    for message in updates.values():
        assert len(message.buttons) == 3
        assert en("card.votes_by", have=1, need=2, by="@bob") in to_plain(message.text)
    pending = (await world.say("carol", "/pending")).text("carol")
    waiting = en("pending.votes", status=en("status.pending"), have=1, need=2)
    assert f"@alice · {waiting} · Two pairs of eyes" in pending

    told = await refused(world, "bob", "/approve P1")
    assert told == en("error.already_voted", proposal="P1", have=1, need=2)

    second = await world.say("carol", "/approve P1 looks good")
    assert "You approved P1" in second.text("carol")
    assert second.text("alice") == en(
        "proposal.told_approved_comment",
        proposal="P1",
        outlet="press",
        by="@bob, @carol",
        comment="looks good",
    )
    closed = next(s.message for s in second.to("carol") if s.message.replaces)
    assert to_plain(closed.text).endswith("✅ Approved by @bob, @carol.")
    assert status(world) == ProposalStatus.APPROVED


async def test_a_card_still_waiting_to_be_sent_goes_out_with_the_votes_so_far(
    world: World,
) -> None:
    """carol's messenger is down when the proposal comes: when her card finally goes out,
    it shows bob's approval, not the "0 of 2" it was queued with."""
    with_outlets(world, replace(NEWSROOM_SPEC, name="press", quorum=2))
    telegram = await carol_on_a_messenger_that_is_down(world)
    await world.say("alice", "/propose press Two pairs of eyes")
    assert not [s for s in telegram.to("carol") if s.message.meta.get("proposal") == 1]

    await world.press("bob", card_of(world, "bob"), 0)
    world.clock.advance(minutes=30)  # past the retry's back-off
    await world.worker.drain()
    cards = [s for s in telegram.to("carol") if s.message.meta.get("proposal") == 1]
    assert len(cards) == 1  # the card, once: no second copy, no edit of a card not there
    card = cards[0].message
    assert len(card.buttons) == 3
    assert card.replaces is None
    assert en("card.votes_by", have=1, need=2, by="@bob") in to_plain(card.text)

    # Her approval by the card she got decides it.
    done = await world.hub.submit(telegram.press("carol", cards[0], 0, world.clock.now()))
    await world.worker.drain()
    assert done
    assert status(world) == ProposalStatus.APPROVED


async def test_a_card_waiting_to_be_sent_does_not_go_to_someone_who_stopped_deciding(
    world: World,
) -> None:
    """carol's card waits (her messenger is down) while her gatekeeper role is taken: it
    never reaches her, nor does the decision."""
    telegram = await carol_on_a_messenger_that_is_down(world)
    await world.say("alice", "/propose newsroom Opening hours")
    await world.say("admin", "/role carol member")

    world.clock.advance(minutes=30)  # past the retry's back-off
    await world.worker.drain()
    await world.press("bob", card_of(world, "bob"), 0)
    await world.worker.drain()
    assert status(world) == ProposalStatus.APPROVED
    assert [s for s in telegram.to("carol") if s.message.meta.get("proposal") == 1] == []


async def test_reject_by_button_asks_for_the_reason_which_reaches_the_author(
    world: World,
) -> None:
    await gatekeepers(world, "bob")
    await world.say("alice", "/propose newsroom Sunday sale")
    asked = await world.press("bob", card_of(world, "bob"), 1)
    assert asked.text("bob") == en("proposal.reason_reject", proposal="P1", author="@alice")
    assert status(world) == ProposalStatus.PENDING

    out = await world.say("bob", "We don't open on Sundays")
    assert out.text("alice") == en(
        "proposal.told_rejected",
        proposal="P1",
        outlet="newsroom",
        by="bob",
        reason="We don't open on Sundays",
    )
    card = next(s.message for s in out.to("bob") if s.message.replaces)
    assert to_plain(card.text).endswith("❌ Rejected by @bob: We don't open on Sundays")
    assert status(world) == ProposalStatus.REJECTED
    # The prompt is used up: the next plain line is a share again, not a reason.
    after = await world.say("bob", "Another thing")
    assert "alice" not in after.addresses


async def test_request_changes_then_revise_restarts_the_votes(world: World) -> None:
    await gatekeepers(world, "bob")
    await world.say("alice", "/propose newsroom Teh new store")
    old_card = card_of(world, "bob")
    await world.press("bob", old_card, 2)
    out = await world.say("bob", "Typo: The")
    assert "asks for changes to your proposal P1" in out.text("alice")
    assert status(world) == ProposalStatus.CHANGES

    revised = await world.say("alice", "/revise P1 The new store")
    assert revised.text("alice").endswith(en("proposal.revised", proposal="P1", revision=2))
    new_card = card_of(world, "bob")
    assert new_card.message_id != old_card.message_id
    assert "Revision 2." in to_plain(new_card.message.text)
    # The old card's button is for revision 1: stale.
    stale = await world.press("bob", old_card, 0)
    assert stale.text("bob") == en("error.button_expired")
    assert status(world) == ProposalStatus.PENDING

    await world.press("bob", new_card, 0)
    assert status(world) == ProposalStatus.APPROVED
    with world.db.uow() as uow:
        votes = uow.session.scalars(select(ProposalVote).order_by(ProposalVote.id)).all()
        assert [(v.revision, v.vote) for v in votes] == [(1, "changes"), (2, "approve")]


async def test_only_the_author_revises_or_withdraws_and_withdrawn_is_final(world: World) -> None:
    await gatekeepers(world, "bob")
    await world.say("alice", "/propose newsroom Draft")
    assert await refused(world, "bob", "/withdraw P1") == en("error.not_author", proposal="P1")
    assert await refused(world, "bob", "/revise P1 Better") == en("error.not_author", proposal="P1")
    out = await world.say("alice", "/withdraw P1")
    assert out.text("alice") == en("proposal.withdrawn", proposal="P1")
    assert to_plain(out.to("bob")[0].message.text).endswith("Withdrawn by @alice.")
    assert await refused(world, "alice", "/revise P1 Again") == en(
        "error.proposal_not_open", proposal="P1", status="withdrawn"
    )
    assert await refused(world, "bob", "/approve P1") == en(
        "error.proposal_decided", proposal="P1", status="withdrawn"
    )


async def test_over_length_is_refused_at_propose_time_naming_the_limit(world: World) -> None:
    with_outlets(
        world,
        OutletSpec("social", "mastodon", token="t", limits=DEFAULT_LIMITS["mastodon"]),
        OutletSpec("sky", "bluesky", token="t", limits=DEFAULT_LIMITS["bluesky"]),
    )
    await gatekeepers(world, "bob")
    told = await refused(world, "alice", "/propose social " + "x" * 501)
    assert told == en(
        "error.proposal_too_long", outlet="social", actual=501, limit=500, unit="characters"
    )
    # Mastodon counts a URL as 23 characters, however long it is.
    url = "https://example.com/" + "a" * 200
    ok = await world.say("alice", f"/propose social {'y' * 470} {url}")
    assert "waits for the gatekeepers" in ok.text("alice")
    # Bluesky counts graphemes: a family emoji is one.
    family = "👩‍👩‍👧"
    assert len(family) == 5
    assert measure(family, DEFAULT_LIMITS["bluesky"]) == 1
    fits = await world.say("alice", "/propose sky " + family * 300)
    assert "waits for the gatekeepers" in fits.text("alice")
    told = await refused(world, "alice", "/propose sky " + family * 301)
    assert told == en(
        "error.proposal_too_long",
        outlet="sky",
        actual=301,
        limit=300,
        unit="characters (graphemes)",
    )


async def test_bad_input_is_refused_with_usage_and_changes_nothing(world: World) -> None:
    await gatekeepers(world, "bob")
    assert "There is no public channel fax" in await refused(world, "alice", "/propose fax Hi")
    out = await world.say("alice", "/propose newsroom")  # the text is asked for
    assert out.text("alice") == asked("en", "guide.ask.propose.text")
    await world.say("alice", "cancel")
    told = await refused(world, "alice", "/propose newsroom Hi --at tomorrowish")
    assert told.startswith(en("error.bad_publish_time", value="tomorrowish"))
    told = await refused(world, "alice", '/propose newsroom Hi --at "2020-01-01 09:00"')
    assert told == en("error.publish_time_past", when="2020-01-01 09:00")
    told = await refused(world, "alice", "/propose newsroom Hi --item #99")
    assert told == en("error.item_not_found", item="#99")
    assert (await refused(world, "alice", "/audit")) == en("error.admins_only")
    out = await world.say("alice", "/reject P1")  # the reason is asked for
    assert out.text("alice") == asked("en", "guide.ask.reject.reason")


async def test_a_proposal_carries_a_visible_item_and_a_publish_time(world: World) -> None:
    await gatekeepers(world, "bob")
    await world.say("admin", "/group create board Board --secret")
    await world.say("admin", "/share board https://example.com/secret Secret")
    told = await refused(world, "alice", "/propose newsroom Look --item #1")
    assert told == en("error.item_not_found", item="#1")

    await world.say("alice", "/group create marketing Marketing")
    await world.say("alice", "/share marketing https://example.com/poster Poster")
    out = await world.say(
        "alice", '/propose newsroom New poster! --item #2 --at "2026-11-28 10:00"'
    )
    assert out.text("alice") == en(
        "proposal.created_at",
        proposal="P1",
        outlet="newsroom",
        need="1 approval",
        when="2026-11-28 10:00",
    )
    card = to_plain(card_of(world, "bob").message.text)
    assert "Link: https://example.com/poster" in card
    assert "To be published at 2026-11-28 10:00." in card


async def test_externals_may_not_propose(world: World) -> None:
    guests = other_messenger(world, "slack", trust="external")
    out = await say_on(world, guests, "gus", "/propose newsroom Hi")
    assert out.text("gus") == en("error.not_for_externals")
    with world.db.uow() as uow:
        assert uow.proposals.get(1) is None


async def test_a_reaction_on_a_card_votes(world: World) -> None:
    await gatekeepers(world, "bob")
    await world.say("alice", "/propose newsroom React to me")
    card = card_of(world, "bob")
    await world.react("bob", card, "👍")  # not a vote
    assert status(world) == ProposalStatus.PENDING
    out = await world.react("bob", card, "✅")
    assert "approved" in out.text("alice")
    assert status(world) == ProposalStatus.APPROVED


async def test_bridge_gatekeepers_sends_the_cards_to_that_room(world: World) -> None:
    await gatekeepers(world, "bob")
    before = world.snapshot()
    no = await world.say("bob", "/bridge gatekeepers", room="approvals")
    assert no.text("approvals") == en("error.admins_only")
    assert world.snapshot() == before
    out = await world.say("admin", "/bridge gatekeepers", room="approvals")
    assert out.text("approvals") == en("gatekeepers.bridged")
    await world.say("alice", "/propose newsroom To the room")
    card = card_of(world, "approvals")
    assert not [s for s in world.adapter.to("bob") if s.message.meta.get("proposal")]
    # Anyone in the room may press; only gatekeepers decide.
    before = world.snapshot()
    no = await world.press("alice", card, 0)
    assert no.text("alice") == en("error.own_proposal")
    no = await world.press("dave", card, 0)
    assert no.text("dave") == en("error.gatekeepers_only")
    assert world.snapshot() == before
    out = await world.press("bob", card, 0)
    assert status(world) == ProposalStatus.APPROVED
    assert any(s.message.replaces == card.message_id for s in out.to("approvals"))


async def test_pending_shows_what_waits(world: World) -> None:
    await gatekeepers(world, "bob")
    assert (await world.say("bob", "/pending")).text("bob") == en("pending.none")
    await world.say("alice", "/propose newsroom First")
    await world.say("alice", "/propose newsroom Second")
    await world.say("bob", "/approve P2")
    # Only what still waits: P2 is decided (approved), so it is not pending any more.
    listing = (await world.say("bob", "/pending")).text("bob").splitlines()
    assert listing == [
        en("pending.header", count=1),
        "• P1 → newsroom · @alice · waiting for approval · First",
    ]
    mine = (await world.say("alice", "/pending")).text("alice").splitlines()
    assert mine == [
        en("pending.mine_header", count=1),
        "• P1 → newsroom · @alice · waiting for approval · First",
    ]


async def test_german_cards_and_answers(world: World) -> None:
    await gatekeepers(world, "bob")
    await world.say("bob", "/settings language de")
    await world.say("alice", "/propose newsroom Hallo")
    card = card_of(world, "bob")
    assert [b.label for b in card.message.buttons] == [
        "Freigeben",
        "Ablehnen",
        "Änderungen anfordern",
    ]
    out = await world.press("bob", card, 0)
    assert "Du hast P1 freigegeben." in out.text("bob")


@pytest.mark.parametrize("second", ["/approve P1", "/reject P1 not now"])
async def test_two_gatekeepers_at_once_yield_one_outcome(world: World, second: str) -> None:
    await gatekeepers(world, "bob", "carol")
    await world.say("alice", "/propose newsroom Race")
    now = world.clock.now()
    first = world.adapter.event("bob", "/approve P1", now)
    other = world.adapter.event("carol", second, now)
    before = len(world.adapter.sent)
    await asyncio.gather(world.hub.submit(first), world.hub.submit(other))
    await world.worker.drain()
    sent = world.adapter.sent[before:]
    final = status(world)
    assert final in (ProposalStatus.APPROVED, ProposalStatus.REJECTED)
    told_author = [s for s in sent if s.target.address == "alice"]
    assert len(told_author) == 1  # one outcome, told once
    decided = [
        s
        for s in sent
        if to_plain(s.message.text).startswith(("P1 is already decided", "You approved P1"))
        or to_plain(s.message.text).startswith("You rejected P1")
    ]
    assert len(decided) == 2
    assert sum(to_plain(s.message.text).startswith("P1 is already decided") for s in decided) == 1


async def test_two_threads_approving_and_rejecting_at_once_yield_one_outcome(
    world: World,
) -> None:
    """Real threads on both backends (the hub serializes SQLite's writers itself)."""
    await gatekeepers(world, "bob", "carol")
    await world.say("alice", "/propose newsroom Threads")
    now = world.clock.now()
    events = [
        world.adapter.event("bob", "/approve P1", now),
        world.adapter.event("carol", "/reject P1 no", now),
    ]
    await asyncio.gather(*(asyncio.to_thread(world.core.handle, e) for e in events))
    await world.worker.drain()
    assert status(world) in (ProposalStatus.APPROVED, ProposalStatus.REJECTED)
    with world.db.uow() as uow:
        votes = uow.session.scalars(select(ProposalVote)).all()
    assert len(votes) == 1  # the loser's vote was refused with everything else it did
    told = [s for s in world.adapter.to("alice") if "P1 for newsroom was" in s.message.text]
    assert len(told) == 1


async def test_an_outlet_that_takes_only_images_refuses_a_post_with_a_pdf(world: World) -> None:
    with_outlets(world, OutletSpec("sky", "bluesky", token="t", limits=DEFAULT_LIMITS["bluesky"]))
    await gatekeepers(world, "bob")
    await world.say("alice", "/group create marketing Marketing")
    await world.say("alice", "/share marketing Flyer as PDF")
    await world.say("alice", "/share marketing Flyer as picture")
    with world.db.uow() as uow:
        for item_id, blob, mime in ((1, "b" * 64, "application/pdf"), (2, "c" * 64, "image/png")):
            uow.blobs.record(StoredBlob(blob, 1000, mime), world.clock.now())
            uow.blobs.attach(item_id, [(blob, "flyer")])
        uow.commit()
    told = await refused(world, "alice", "/propose sky Our flyer --item #1")
    assert told == en("error.proposal_media_type", outlet="sky", kind="application/pdf")
    ok = await world.say("alice", "/propose sky Our flyer --item #2")
    assert "waits for the gatekeepers" in ok.text("alice")


async def test_linking_accounts_keeps_proposals_and_votes_with_the_person(world: World) -> None:
    """Alice proposes from her Slack account (a person of its own until linked), then links
    it to her main account, a gatekeeper's: four eyes still see her as the author."""
    slack = other_messenger(world, "slack")
    await gatekeepers(world, "alice", "bob")
    await say_on(world, slack, "U1", "/propose newsroom Our new store")
    await link_accounts(world, "alice", slack, "U1")
    assert await refused(world, "alice", "/approve P1") == en("error.own_proposal")
    with world.db.uow() as uow:
        proposal = uow.proposals.get(1)
        alice = uow.people.by_handle("alice")
        assert proposal is not None
        assert alice is not None
        assert proposal.author_id == alice.id
    assert "approved" in (await world.say("bob", "/approve P1")).text("bob")
