"""Approval cards on the messengers, against their test servers: a proposal made on the
console reaches a gatekeeper on Slack, Telegram or Matrix as a card; its buttons (and
✅ / ❌ reactions) decide; Reject and Request changes ask for the reason — Slack in a
modal, Telegram and Matrix by the next direct message — which reaches the author; the
decided card is updated in place; Slack's App Home lists what waits for a gatekeeper."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from sqlalchemy import select

from adapters.memory import Sent
from bot.events import ButtonPressed, MessageRefIn
from bot.home import home_of
from bot.i18n import Translator
from bot.outlets import NEWSROOM_SPEC
from store.db import Database
from store.models import Prompt, Proposal
from tests.adapters.conftest import FRANZ, TelegramPinwall, running
from tests.adapters.test_slack import SlackPinwall, button_of, texts
from tests.adapters.test_telegram import button, invite_code
from tests.bot.conversation import other_messenger, say_on
from tests.bot.test_proposals import gatekeepers, with_outlets
from tests.fakes.slack import FakeSlack, Posted, SlackRequests
from tests.fakes.telegram import FakeTelegram
from tests.harness import Said, World

# --- helpers -------------------------------------------------------------------------


def status_of(db: Database, proposal_id: int = 1) -> str:
    with db.uow() as uow:
        proposal = uow.session.get(Proposal, proposal_id)
        assert proposal is not None
        return str(proposal.status)


def prompts(db: Database) -> int:
    with db.uow() as uow:
        return len(uow.session.scalars(select(Prompt)).all())


def has_buttons(posted: Posted) -> bool:
    return any(b["type"] == "actions" for b in posted.blocks or [])


# --- the core: a press that carries the typed reason ---------------------------------


async def press_with(world: World, who: str, sent: Sent, index: int, text: str | None) -> Said:
    """A press of button `index` with a reason typed into the platform's own form."""
    before = len(world.adapter.sent)
    event = world.adapter.press(who, sent, index, world.clock.now())
    assert isinstance(event, ButtonPressed)
    await world.hub.submit(replace(event, text=text))
    await world.worker.drain()
    return Said(world.adapter.sent[before:])


async def proposed(world: World) -> Sent:
    for name in ("gina", "gus"):
        await world.say(name, "/whoami")
        await world.say("admin", f"/role {name} gatekeeper")
    await world.say("alice", "/propose newsroom Teh new store")
    cards = [s for s in world.adapter.to("gina") if s.message.buttons]
    return cards[-1]


async def test_a_reject_press_with_its_reason_decides_at_once(world: World) -> None:
    card = await proposed(world)
    out = await press_with(world, "gina", card, 1, "  Typo in the headline ")
    assert "You rejected P1. @alice gets your reason." in out.text("gina")
    assert "Reason: Typo in the headline" in out.text("alice")
    gus_card = [s for s in out.to("gus") if s.message.replaces]
    assert gus_card
    assert "Rejected by @gina: Typo in the headline" in out.text("gus")
    assert prompts(world.db) == 0  # nothing asked, nothing waiting for a next line
    assert status_of(world.db) == "rejected"


async def test_a_changes_press_with_its_reason_sends_it_back(world: World) -> None:
    card = await proposed(world)
    out = await press_with(world, "gus", card, 2, "Please add the date")
    assert "@gus asks for changes to your proposal P1" in out.text("alice")
    assert status_of(world.db) == "changes"


async def test_a_blank_typed_reason_asks_as_a_plain_press_does(world: World) -> None:
    card = await proposed(world)
    out = await press_with(world, "gina", card, 1, "   ")
    assert "Why do you reject P1?" in out.text("gina")
    assert status_of(world.db) == "pending"


async def test_typed_reasons_that_may_not_decide_change_nothing(world: World) -> None:
    card = await proposed(world)
    await world.say("carl", "/whoami")
    for who, expected in (
        ("carl", "Only gatekeepers and admins can do that."),  # a member
        ("alice", "You can't decide on your own proposal."),  # the author, via a card
    ):
        before = world.snapshot()
        out = await press_with(world, who, card, 1, "No")
        assert world.snapshot() == before
        assert expected in out.text(who)
    # A card of an earlier revision: the button has expired.
    await world.say("alice", "/revise P1 The new store")
    before = world.snapshot()
    out = await press_with(world, "gina", card, 1, "Still no")
    assert world.snapshot() == before
    assert status_of(world.db) == "pending"
    assert out.addresses == ["gina"]
    # After another gatekeeper decided: the normal "already decided" answer.
    fresh = [s for s in world.adapter.to("gina") if s.message.buttons][-1]
    await world.say("gus", "/approve P1")
    out = await press_with(world, "gina", fresh, 1, "Too late")
    assert "P1 is already decided: approved." in out.text("gina")


async def test_the_home_lists_what_waits_for_a_gatekeepers_decision(world: World) -> None:
    await proposed(world)
    await world.say("gina", "/propose newsroom Her own")
    await world.say("carl", "/whoami")
    gina = home_of(world.core, "memory", "gina")
    assert gina is not None
    assert gina.decides
    assert [(p.proposal, p.author, p.revision) for p in gina.proposals] == [("P1", "alice", 1)]
    gus = home_of(world.core, "memory", "gus")
    assert gus is not None
    assert [p.proposal for p in gus.proposals] == ["P1", "P2"]
    carl = home_of(world.core, "memory", "carl")
    assert carl is not None
    assert not carl.decides
    assert carl.proposals == ()
    await world.say("gus", "/approve P1")
    gina = home_of(world.core, "memory", "gina")
    assert gina is not None
    assert gina.proposals == ()


async def test_a_gatekeepers_own_vote_takes_a_proposal_off_their_home(world: World) -> None:
    with_outlets(world, replace(NEWSROOM_SPEC, name="press", quorum=2))
    await gatekeepers(world, "gina", "gus")
    await world.say("alice", "/propose press Two pairs of eyes")
    await world.say("gina", "/approve P1")
    gina, gus = home_of(world.core, "memory", "gina"), home_of(world.core, "memory", "gus")
    assert gina is not None
    assert gus is not None
    assert gina.proposals == ()  # she voted; it waits for someone else
    assert [p.proposal for p in gus.proposals] == ["P1"]


async def test_externals_never_see_proposals_on_their_home(world: World) -> None:
    await proposed(world)
    guests = other_messenger(world, "slack", trust="external")
    await say_on(world, guests, "gwen", "/whoami")
    home = home_of(world.core, "slack", "gwen")
    assert home is not None
    assert not home.decides
    assert home.proposals == ()


# --- Slack ---------------------------------------------------------------------------


@pytest.fixture
def slack() -> Any:
    with FakeSlack() as server:
        server.add_user("U1ALICE", "alice", real_name="Alice Meier", locale="de-DE")
        server.add_user("U2BOB", "bob", real_name="Bob", locale="en-US")
        server.add_user("U4GRETE", "grete", real_name="Grete", locale="de-DE")
        server.add_channel("C1MARKET", "marketing", members=["U1ALICE", "U2BOB", "UBOT"])
        yield server
        assert server.errors == []


@pytest.fixture
async def sp(sqlite_db: Database, slack: FakeSlack, tmp_path: Path) -> AsyncIterator[SlackPinwall]:
    pinwall = SlackPinwall(sqlite_db, slack, tmp_path)
    await pinwall.start()
    try:
        yield pinwall
    finally:
        await pinwall.close()


async def slack_gatekeeper(sp: SlackPinwall, user_id: str, handle: str) -> str:
    """A Slack member made gatekeeper by the console admin; their DM channel."""
    assert sp.slack is not None
    dm = sp.fake.dm_channel(user_id)
    await sp.slack.slash_command(user_id, dm, "whoami")
    await sp.settled()
    await sp.on_console("admin", f"/role {handle} gatekeeper")
    return dm


async def card_in(fake: FakeSlack, channel: str, needle: str = "P1") -> Posted:
    def found() -> list[Posted]:
        return [p for p in fake.messages_in(channel) if needle in texts([p]) and has_buttons(p)]

    await fake.wait_for_async(lambda: bool(found()), what=f"the card {needle} in {channel}")
    return found()[-1]


async def updated(fake: FakeSlack, channel: str, ts: str, needle: str) -> Posted:
    def shown() -> Posted | None:
        return next((p for p in fake.messages_in(channel) if p.ts == ts), None)

    await fake.wait_for_async(
        lambda: any(u.ts == ts and needle in str(u.text) + str(u.blocks) for u in fake.updates),
        what=f"chat.update of {ts} with {needle!r}",
    )
    found = shown()
    assert found is not None
    return found


def trigger_of(sp: SlackPinwall) -> str:
    """The trigger_id of the newest interaction Slack sent to Pinwall."""
    assert sp.slack is not None
    return trigger_in(sp.slack)


def trigger_in(requests: SlackRequests) -> str:
    headers, body = requests.sent[-1]
    if "envelope_id" in headers:  # over Socket Mode
        return str(json.loads(body)["trigger_id"])
    return str(json.loads(parse_qs(body.decode())["payload"][0])["trigger_id"])


async def test_slack_card_buttons_and_approve_updates_the_card(
    sp: SlackPinwall, slack: FakeSlack
) -> None:
    assert sp.slack is not None
    dm = await slack_gatekeeper(sp, "U2BOB", "bob")
    await sp.on_console("alice", "/propose newsroom Our new store opens on Monday!")
    card = await card_in(slack, dm)
    assert "Our new store opens on Monday!" in texts([card])
    for label in ("Approve", "Reject", "Request changes"):
        button_of(card, label)

    action_id, value = button_of(card, "Approve")
    pressed = await sp.slack.block_action("U2BOB", dm, card.ts, action_id, value)
    assert pressed.status_code == 200
    shown = await updated(slack, dm, card.ts, "Approved by @bob")
    assert not has_buttons(shown)  # the buttons are gone
    assert shown.edited
    await sp.printed_eventually("alice", "was approved by @bob")
    await slack.wait_for_async(lambda: "You approved P1" in texts(slack.messages_in(dm)))
    assert status_of(sp.db) in ("approved", "publishing", "published")
    assert "views.open" not in slack.calls


async def test_slack_reject_opens_a_modal_and_its_submission_rejects_with_the_reason(
    sp: SlackPinwall, slack: FakeSlack
) -> None:
    assert sp.slack is not None
    dm = await slack_gatekeeper(sp, "U2BOB", "bob")
    await sp.on_console("alice", "/propose newsroom Teh new store")
    card = await card_in(slack, dm)

    action_id, value = button_of(card, "Reject")
    pressed = await sp.slack.block_action("U2BOB", dm, card.ts, action_id, value)
    assert pressed.status_code == 200
    # The modal opened at once, with the trigger of this very press ...
    [modal] = slack.views
    assert modal.trigger_id == trigger_of(sp)
    assert modal.user == "U2BOB"
    assert modal.view["title"]["text"] == "Reject P1"
    [field] = [b for b in modal.view["blocks"] if b["type"] == "input"]
    assert field["element"]["type"] == "plain_text_input"
    # ... and nothing was decided or asked by message.
    await sp.settled()
    assert status_of(sp.db) == "pending"
    assert prompts(sp.db) == 0
    assert not [p for p in slack.messages_in(dm) if "Why do you reject" in texts([p])]

    # Only blanks: Slack's own validation shows the error in the modal, which stays open.
    blank = await sp.slack.view_submission("U2BOB", "   ")
    assert blank.status_code == 200
    assert blank.json() == {
        "response_action": "errors",
        "errors": {"reason": "Please write a reason."},
    }
    await sp.settled()
    assert status_of(sp.db) == "pending"

    submitted = await sp.slack.view_submission("U2BOB", "Typo in the headline")
    assert submitted.status_code == 200
    assert not submitted.content  # the modal closes
    shown = await updated(slack, dm, card.ts, "Rejected by @bob: Typo in the headline")
    assert not has_buttons(shown)
    told = await sp.printed_eventually("alice", "was rejected by @bob")
    assert "Reason: Typo in the headline" in told
    await slack.wait_for_async(lambda: "You rejected P1" in texts(slack.messages_in(dm)))
    assert status_of(sp.db) == "rejected"
    # A second submission of the same modal (a double click) changes nothing more.
    with sp.db.uow() as uow:
        entries = len(uow.proposals.audit_entries())
    again = await sp.slack.view_submission(
        "U2BOB", "Typo in the headline", view_id=modal.id, allow_closed=True
    )
    assert again.status_code == 200
    await sp.settled()
    with sp.db.uow() as uow:
        assert len(uow.proposals.audit_entries()) == entries


async def test_slack_modal_submitted_after_another_gatekeeper_decided(
    sp: SlackPinwall, slack: FakeSlack
) -> None:
    assert sp.slack is not None
    dm = await slack_gatekeeper(sp, "U2BOB", "bob")
    await sp.on_console("carla", "/whoami")
    await sp.on_console("admin", "/role carla gatekeeper")
    await sp.on_console("alice", "/propose newsroom Summer sale")
    card = await card_in(slack, dm)
    action_id, value = button_of(card, "Request changes")
    await sp.slack.block_action("U2BOB", dm, card.ts, action_id, value)
    [modal] = slack.views
    assert modal.view["title"]["text"] == "Changes to P1"

    await sp.on_console("carla", "/approve P1")  # meanwhile, on the console
    await updated(slack, dm, card.ts, "Approved by @carla")
    await sp.slack.view_submission("U2BOB", "Please add the date")
    await slack.wait_for_async(
        lambda: "P1 is already decided: approved" in texts(slack.messages_in(dm)),
        what="the normal answer",
    )
    assert status_of(sp.db) in ("approved", "publishing", "published")
    assert not [p for p in sp.printed("alice") if "Please add the date" in p]


async def test_slack_checkmark_reaction_on_the_card_approves(
    sp: SlackPinwall, slack: FakeSlack
) -> None:
    assert sp.slack is not None
    dm = await slack_gatekeeper(sp, "U2BOB", "bob")
    await sp.on_console("alice", "/propose newsroom Reactions work too")
    card = await card_in(slack, dm)
    await sp.slack.event(sp.slack.reaction_added("U2BOB", "white_check_mark", dm, card.ts))
    shown = await updated(slack, dm, card.ts, "Approved by @bob")
    assert not has_buttons(shown)
    await sp.printed_eventually("alice", "was approved by @bob")


async def test_slack_app_home_lists_pending_proposals_for_gatekeepers_only(
    sp: SlackPinwall, slack: FakeSlack
) -> None:
    assert sp.slack is not None
    dm = await slack_gatekeeper(sp, "U2BOB", "bob")
    await sp.slack.slash_command("U1ALICE", slack.dm_channel("U1ALICE"), "whoami")  # a member
    await sp.slack.event(sp.slack.app_home_opened("U2BOB"))
    await slack.wait_for_async(lambda: "U2BOB" in slack.home_views, what="bob's home")
    assert "No proposals are waiting for you." in str(slack.home_views["U2BOB"])

    # A new proposal: the gatekeeper's home shows it without their doing anything.
    await sp.on_console("carla", "/propose newsroom Open day on Saturday")
    await card_in(slack, dm)
    await slack.wait_for_async(
        lambda: "Open day on Saturday" in str(slack.home_views.get("U2BOB")),
        what="bob's home republished",
    )
    home = slack.home_views["U2BOB"]
    assert "Waiting for your decision" in str(home)
    # carla has no Slack account: named by her display name (a Slack person: <@U…>)
    assert "*P1* → newsroom · carla" in str(home)
    assert "@carla" not in str(home)
    labels = [
        e["text"]["text"]
        for b in home["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e.get("value", "").startswith("proposal.")
    ]
    assert labels == ["Approve", "Reject", "Request changes"]

    # A member's home has no such section.
    await sp.slack.event(sp.slack.app_home_opened("U1ALICE"))
    await slack.wait_for_async(lambda: "U1ALICE" in slack.home_views, what="alice's home")
    assert "Freigabe" not in str(slack.home_views["U1ALICE"])
    assert "Open day" not in str(slack.home_views["U1ALICE"])

    # Pressing Reject on the home opens the modal too; its submission decides.
    reject = next(
        e
        for b in home["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["value"].startswith("proposal.reject|")
    )
    answer = await sp.slack.home_action("U2BOB", reject["action_id"], reject["value"])
    assert answer.status_code == 200
    [modal] = slack.views
    assert modal.trigger_id == trigger_of(sp)
    await sp.slack.view_submission("U2BOB", "Not for the public")
    await sp.printed_eventually("carla", "Reason: Not for the public")
    await slack.wait_for_async(
        lambda: "No proposals are waiting for you." in str(slack.home_views.get("U2BOB")),
        what="the home without the decided proposal",
    )
    # The card is updated by its own delivery, which may come after the home's.
    await slack.wait_for_async(
        lambda: any(
            "Rejected by @bob: Not for the public" in texts([p])
            for p in slack.messages_in(dm)
            if "P1" in texts([p])
        ),
        what="the card showing the rejection",
    )


async def test_slack_home_approve_button_decides_like_the_cards(
    sp: SlackPinwall, slack: FakeSlack
) -> None:
    assert sp.slack is not None
    dm = await slack_gatekeeper(sp, "U2BOB", "bob")
    await sp.on_console("alice", "/propose newsroom From the home tab")
    card = await card_in(slack, dm)
    await sp.slack.event(sp.slack.app_home_opened("U2BOB"))
    await slack.wait_for_async(lambda: "From the home tab" in str(slack.home_views.get("U2BOB")))
    approve = next(
        e
        for b in slack.home_views["U2BOB"]["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["value"].startswith("proposal.approve|")
    )
    await sp.slack.home_action("U2BOB", approve["action_id"], approve["value"])
    await updated(slack, dm, card.ts, "Approved by @bob")
    await sp.printed_eventually("alice", "was approved by @bob")
    assert "views.open" not in slack.calls


async def test_slack_cards_in_a_gatekeepers_channel_modal_only_for_who_may_decide(
    sp: SlackPinwall, slack: FakeSlack
) -> None:
    assert sp.slack is not None
    room = "C1MARKET"
    await sp.slack.slash_command("U1ALICE", slack.dm_channel("U1ALICE"), "whoami")  # a member
    await slack_gatekeeper(sp, "U2BOB", "bob")
    await sp.on_console("admin", "/role bob admin")
    await sp.slack.slash_command("U2BOB", room, "bridge gatekeepers", channel_name="marketing")
    await slack.wait_for_async(lambda: "now come to this room" in texts(slack.ephemerals))
    await sp.on_console("carla", "/propose newsroom Open day on Saturday")
    card = await card_in(slack, room)
    action_id, value = button_of(card, "Reject")

    # A member in the channel: no modal; the core's answer, to her alone.
    await sp.slack.block_action("U1ALICE", room, card.ts, action_id, value)
    await slack.wait_for_async(
        lambda: any("Freigabe-Team" in texts([e]) for e in slack.ephemerals), what="the refusal"
    )
    assert slack.views == []
    assert status_of(sp.db) == "pending"

    # The admin: the modal; its submission updates the card in the channel.
    await sp.slack.block_action("U2BOB", room, card.ts, action_id, value)
    [modal] = slack.views
    assert modal.user == "U2BOB"
    await sp.slack.view_submission("U2BOB", "Not for the public")
    shown = await updated(slack, room, card.ts, "Rejected by @bob: Not for the public")
    assert not has_buttons(shown)
    await slack.wait_for_async(
        lambda: any(
            e.user == "U2BOB" and e.channel == room and "You rejected P1" in texts([e])
            for e in slack.ephemerals
        ),
        what="the admin's answer, ephemeral in the channel",
    )
    await sp.printed_eventually("carla", "Reason: Not for the public")
    # Pressing again on the decided card (no buttons any more in Slack, but an old
    # client): no modal, the normal answer.
    await sp.slack.block_action("U2BOB", room, card.ts, action_id, value)
    await slack.wait_for_async(
        lambda: any("P1 is already decided: rejected" in texts([e]) for e in slack.ephemerals)
    )
    assert len(slack.views) == 1


async def test_slack_without_a_modal_the_reason_is_asked_by_direct_message(
    sp: SlackPinwall, slack: FakeSlack
) -> None:
    assert sp.slack is not None
    dm = await slack_gatekeeper(sp, "U2BOB", "bob")
    await sp.on_console("alice", "/propose newsroom Teh new store")
    card = await card_in(slack, dm)
    slack.rate_limit(seconds=1, method="views.open")  # Slack cannot open it now
    action_id, value = button_of(card, "Reject")
    await sp.slack.block_action("U2BOB", dm, card.ts, action_id, value)
    await slack.wait_for_async(
        lambda: "Why do you reject P1?" in texts(slack.messages_in(dm)), what="the question"
    )
    assert slack.views == []
    await sp.slack.event(sp.slack.message_event("U2BOB", dm, "Typo in the headline"))
    await updated(slack, dm, card.ts, "Rejected by @bob: Typo in the headline")
    await sp.printed_eventually("alice", "Reason: Typo in the headline")


async def test_slack_modal_over_socket_mode(
    sqlite_db: Database, slack: FakeSlack, tmp_path: Path
) -> None:
    sp = SlackPinwall(sqlite_db, slack, tmp_path, mode="socket")
    await sp.start()
    try:
        await slack.wait_for_async(lambda: slack.socket_connections == 1, what="the connection")
        dm = slack.dm_channel("U2BOB")
        whoami = {
            "team_id": "T0PINWALL",
            "user_id": "U2BOB",
            "user_name": "bob",
            "channel_id": dm,
            "channel_name": "directmessage",
            "command": "/pinwall",
            "text": "whoami",
            "trigger_id": "t0",
        }
        slack.socket_push("slash_commands", whoami)
        await slack.wait_for_async(lambda: "You are @bob" in texts(slack.messages_in(dm)))
        await sp.on_console("admin", "/role bob gatekeeper")
        await sp.on_console("alice", "/propose newsroom Over the socket")
        card = await card_in(slack, dm)
        requests = SlackRequests("unused", fake=slack)
        requests.socket = True
        action_id, value = button_of(card, "Reject")
        pressed = await requests.block_action("U2BOB", dm, card.ts, action_id, value)
        assert pressed.status_code == 200
        [modal] = slack.views
        assert modal.trigger_id == trigger_in(requests)
        blank = await requests.view_submission("U2BOB", "  ")
        assert blank.json()["response_action"] == "errors"
        await requests.view_submission("U2BOB", "Wrong channel for this")
        await updated(slack, dm, card.ts, "Rejected by @bob: Wrong channel for this")
        await sp.printed_eventually("alice", "Reason: Wrong channel for this")
    finally:
        await sp.close()


def submission(metadata: str, user: str = "U2BOB", reason: str = "Nope") -> dict[str, Any]:
    return {
        "type": "view_submission",
        "user": {"id": user},
        "view": {
            "id": "V1",
            "private_metadata": metadata,
            "state": {"values": {"reason": {"reason_input": {"value": reason}}}},
        },
    }


def test_a_modal_submission_is_only_taken_as_signed_and_from_its_user() -> None:
    from adapters.slack import inbound
    from bot.events import Conversation

    key, press = (
        b"k" * 32,
        inbound.Inbound(
            kind="button",
            event_id="act:1",
            user_id="U2BOB",
            conversation=Conversation(external_id="C1GATE", direct=False),
            time=datetime.now(UTC),
            button=(
                "proposal.reject",
                "7:2",
                MessageRefIn(conversation="C1GATE", message_id="1.2"),
            ),
        ),
    )
    metadata = inbound.reason_metadata(press, key)
    found = inbound.view_submission(submission(metadata), key)
    assert isinstance(found, inbound.Inbound)
    event = found.event(inbound.SlackUser("U2BOB", "bob", "Bob", None, "member"))
    assert isinstance(event, ButtonPressed)
    assert (event.action, event.value, event.text) == ("proposal.reject", "7:2", "Nope")
    assert event.message == MessageRefIn(conversation="C1GATE", message_id="1.2")
    assert event.meta.conversation == Conversation(external_id="C1GATE", direct=False)
    assert event.meta.event_id == "view:V1"
    assert inbound.view_submission(submission(metadata, reason=" \n "), key) == "empty"
    assert inbound.view_submission(submission(metadata, user="U1ALICE"), key) is None
    assert inbound.view_submission(submission(metadata), b"x" * 32) is None
    forged = metadata.replace('"7:2"', '"8:1"')
    assert inbound.view_submission(submission(forged), key) is None
    assert inbound.view_submission(submission(""), key) is None


def test_the_modal_texts_fit_slacks_limits_in_both_languages() -> None:
    from adapters.slack.render import reason_modal
    from tests.fakes.slack import validate_modal

    for language in ("en", "de"):
        t = Translator(language)
        for action in ("proposal.reject", "proposal.changes"):
            view = reason_modal(action, "123456:2", "m" * 200, t)
            assert validate_modal(view) == [], (language, action)


# --- Telegram ------------------------------------------------------------------------


async def telegram_gatekeeper(tg: TelegramPinwall) -> None:
    """Franz, a member on Telegram (by invite), made gatekeeper by the admin."""
    await tg.on_console("admin", "/group create team Team")
    code = await invite_code(tg, "/invite member team")
    tg.fake.user_starts(FRANZ, code)
    await tg.bot_said(FRANZ.id, "Willkommen")
    await tg.on_console("admin", "/role franz_nord gatekeeper")


async def test_telegram_card_approve_edits_it_and_reject_asks_for_the_reason(
    db: Database, fake: FakeTelegram, tmp_path: Path
) -> None:
    async with running(db, fake, tmp_path) as tg:
        await telegram_gatekeeper(tg)
        await tg.on_console("alice", "/propose newsroom Our new store opens on Monday!")
        card = await tg.bot_said(FRANZ.id, "Vorschlag P1")
        assert "Our new store opens on Monday!" in (card.text or "")
        approve = button(card, "Freigeben")
        button(card, "Ablehnen")
        button(card, "Änderungen anfordern")

        fake.user_presses(FRANZ, None, card.message_id, approve)
        await fake.wait_for_async(
            lambda: any(e.message_id == card.message_id for e in fake.edits), what="the edit"
        )
        shown = fake.message(FRANZ.id, card.message_id)
        assert shown is not None
        assert "Freigegeben von @franz_nord" in shown["text"]
        assert "reply_markup" not in shown  # the buttons are gone
        await tg.printed_eventually("alice", "was approved by @franz_nord")

        # Reject by button: the bot asks, and Franz's next message is the reason.
        await tg.on_console("alice", "/propose newsroom Teh new store")
        second = await tg.bot_said(FRANZ.id, "Vorschlag P2")
        fake.user_presses(FRANZ, None, second.message_id, button(second, "Ablehnen"))
        await tg.bot_said(FRANZ.id, "Warum lehnst du P2 ab?")
        assert status_of(db, 2) == "pending"
        fake.user_sends_text(FRANZ, None, "Tippfehler in der Überschrift")
        told = await tg.printed_eventually("alice", "was rejected by @franz_nord")
        assert "Reason: Tippfehler in der Überschrift" in told
        await fake.wait_for_async(
            lambda: "Tippfehler" in str(fake.message(FRANZ.id, second.message_id)),
            what="the second card edited",
        )
        assert "reply_markup" not in (fake.message(FRANZ.id, second.message_id) or {})
    assert status_of(db, 2) == "rejected"


# --- Matrix --------------------------------------------------------------------------


async def card_recorded(db: Database, room: str, event_id: str, within: float = 10.0) -> None:
    """Waits until the delivery of the card is recorded (its event id known), as it is
    long before a person could react to it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        with db.uow() as uow:
            if uow.proposals.card_at("matrix", room, event_id) is not None:
                return
        if loop.time() > deadline:
            raise AssertionError(f"the card {event_id} was not recorded as delivered")
        await asyncio.sleep(0.02)


async def test_matrix_reactions_on_the_card_approve_and_ask_for_the_reason(
    synapse: Any, sqlite_db: Database, tmp_path: Path
) -> None:
    from tests.adapters.conftest import humans, matrix_running

    bot = synapse.register("pinwall")
    async with humans(synapse, "boss") as [boss]:
        admins = frozenset({("matrix", boss.user_id)})
        async with matrix_running(sqlite_db, synapse, bot, tmp_path, admins=admins) as mx:
            dm = await boss.dm(bot.user_id)
            await boss.say(dm, "whoami")
            await boss.bot_said(dm, bot.user_id, f"@{boss.user.localpart}")
            await mx.on_console("admin", f"/role {boss.user.localpart} gatekeeper")

            await mx.on_console("alice", "/propose newsroom Our new store opens on Monday!")
            card = await boss.bot_said(dm, bot.user_id, "Proposal P1")
            await card_recorded(sqlite_db, dm, card["event_id"])
            await boss.react(dm, card["event_id"], "✅")
            await mx.printed_eventually("alice", f"was approved by @{boss.user.localpart}")
            edit = await boss.wait_for(
                dm,
                lambda e: (
                    e.get("content", {}).get("m.relates_to", {}).get("rel_type") == "m.replace"
                    and e["content"]["m.relates_to"].get("event_id") == card["event_id"]
                ),
                what="the card edited in place",
            )
            shown = edit["content"]["m.new_content"]["body"]
            assert f"Approved by @{boss.user.localpart}" in shown
            assert "1️⃣" not in shown  # no more buttons

            await mx.on_console("alice", "/propose newsroom Teh new store")
            second = await boss.bot_said(dm, bot.user_id, "Proposal P2")
            await card_recorded(sqlite_db, dm, second["event_id"])
            await boss.react(dm, second["event_id"], "❌")
            await boss.bot_said(dm, bot.user_id, "Why do you reject P2?")
            await boss.say(dm, "Typo in the headline")
            told = await mx.printed_eventually("alice", "was rejected by")
            assert "Reason: Typo in the headline" in told
    assert status_of(sqlite_db, 2) == "rejected"
