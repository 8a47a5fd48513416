"""Slack, the gaps issue 22 left (FakeSlack over real HTTP): real mentions in approval
cards, digests and the App Home; the share shortcut on a message with files; the
propose modal's post and moment fields (a "--at" in the text stays text); every IANA
time zone in the settings modal; a 👍 taken back unlikes in place."""

from __future__ import annotations

import time
from typing import Any
from zoneinfo import available_timezones

from sqlalchemy import select

from store.models import Comment, Item, ItemFile, Proposal, Reaction
from tests.adapters import test_slack
from tests.adapters.test_slack import SlackPinwall, button_of, question_to, texts
from tests.fakes.slack import FakeSlack

fake, sp = test_slack.fake, test_slack.sp  # its fixtures, used here


def _options(element: dict[str, Any]) -> list[str]:
    found = [o["value"] for o in element.get("options") or []]
    for group in element.get("option_groups") or []:
        found += [o["value"] for o in group["options"]]
    return found


async def test_cards_digests_and_the_home_mention_slack_people_for_real(
    sp: SlackPinwall, fake: FakeSlack
) -> None:
    assert sp.slack is not None
    dm_a, dm_b = fake.dm_channel("U1ALICE"), fake.dm_channel("U2BOB")
    await sp.on_console("admin", "/group create marketing Marketing")
    for user, dm in (("U1ALICE", dm_a), ("U2BOB", dm_b)):
        await sp.slack.slash_command(user, dm, "join marketing")
    await sp.settled()
    await sp.on_console("admin", "/role bob gatekeeper")
    # Alice shares and proposes; the card Bob gets names her as <@U1ALICE>
    await sp.slack.slash_command("U1ALICE", dm_a, "share marketing Plakat am Bahnhof")
    await sp.slack.slash_command("U1ALICE", dm_a, "propose newsroom Neue Filiale am Montag")
    await sp.settled()
    card = await question_to(fake, dm_b, "Neue Filiale am Montag")
    assert "<@U1ALICE>" in str(card.blocks)
    # Bob's digest names her post's author for real
    await sp.slack.slash_command("U2BOB", dm_b, "digest now")
    await sp.settled()
    digest = await question_to(fake, dm_b, "Plakat am Bahnhof")
    line = next(
        b["text"]["text"]
        for b in digest.blocks or []
        if b.get("type") == "section" and "Plakat am Bahnhof" in b["text"]["text"]
    )
    assert "<@U1ALICE>" in line
    assert "@alice" not in line
    # Bob's App Home: the post and the proposal waiting, by <@U1ALICE>
    await sp.slack.event(sp.slack.app_home_opened("U2BOB"))
    await fake.wait_for_async(lambda: "U2BOB" in fake.home_views, what="the home")
    home = str(fake.home_views["U2BOB"])
    assert home.count("<@U1ALICE>") >= 2  # the post's line and the proposal's
    assert "@alice" not in home


async def test_the_share_shortcut_on_a_message_with_files_shares_them(
    sp: SlackPinwall, fake: FakeSlack
) -> None:
    assert sp.slack is not None
    dm = fake.dm_channel("U2BOB")
    await sp.on_console("admin", "/group create marketing Marketing")
    await sp.slack.slash_command("U2BOB", dm, "join marketing")
    await sp.settled()
    flyer = b"%PDF-1.4 the competition's flyer"
    shared = fake.user_uploads("U1ALICE", "flyer.pdf", flyer, "application/pdf")
    message = {
        "type": "message",
        "user": "U1ALICE",
        "ts": "1700000000.000950",
        "text": "",
        "files": [shared],
    }
    posted = len(fake.posted)
    await sp.slack.message_shortcut("U2BOB", "C1MARKET", message)
    await fake.wait_for_async(lambda: bool(fake.views), what="the share modal")
    view = fake.views[-1].view
    assert view["callback_id"] == "pw:share"
    assert view["blocks"][1]["element"]["initial_value"] == "flyer.pdf"  # what it is about
    assert len(fake.posted) == posted  # the modal asks, no DM
    done = await sp.slack.view_submission(
        "U2BOB", {"group": "marketing", "text": "Flyer der Konkurrenz"}
    )
    assert done.status_code == 200
    await question_to(fake, dm, "Shared as #1 in Marketing.")
    with sp.db.uow() as uow:
        [text] = uow.session.scalars(select(Item.text)).all()
        [blob_id] = uow.session.scalars(select(ItemFile.blob_id)).all()
    assert text == "Flyer der Konkurrenz"
    assert sp.hub.blobs is not None
    assert sp.hub.blobs.read(blob_id) == flyer


async def test_the_propose_modal_takes_a_post_and_a_moment_and_the_text_as_it_is(
    sp: SlackPinwall, fake: FakeSlack
) -> None:
    assert sp.slack is not None
    dm = fake.dm_channel("U2BOB")
    await sp.on_console("admin", "/group create marketing Marketing")
    await sp.slack.slash_command("U2BOB", dm, "join marketing")
    await sp.slack.slash_command("U2BOB", dm, "share marketing https://example.com/p Poster")
    await sp.settled()
    await sp.slack.slash_command("U2BOB", dm, "propose")
    await fake.wait_for_async(lambda: bool(fake.views), what="the propose modal")
    view = fake.views[-1].view
    kinds = {
        b["block_id"]: (b["element"]["type"], b.get("optional", False)) for b in view["blocks"]
    }
    assert kinds["item"] == ("plain_text_input", True)
    assert kinds["at"] == ("datetimepicker", True)
    # a post number that is none, and a moment past: said under the fields
    past = str(int(time.time()) - 3600)
    wrong = await sp.slack.view_submission(
        "U2BOB", {"outlet": "newsroom", "text": "Hallo", "item": "zwölf", "at": past}
    )
    assert wrong.json()["response_action"] == "errors"
    assert set(wrong.json()["errors"]) == {"item"}
    wrong = await sp.slack.view_submission(
        "U2BOB", {"outlet": "newsroom", "text": "Hallo", "item": "#1", "at": past}
    )
    assert set(wrong.json()["errors"]) == {"at"}
    await sp.settled()
    with sp.db.uow() as uow:
        assert uow.session.scalars(select(Proposal)).all() == []
    # the text with a literal "--at" in it stays text
    tomorrow = int(time.time()) + 86_400
    text = "Sale starts --at noon, the poster says so"
    done = await sp.slack.view_submission(
        "U2BOB", {"outlet": "newsroom", "text": text, "item": "#1", "at": str(tomorrow)}
    )
    assert done.status_code == 200
    assert not done.content
    await question_to(fake, dm, "Proposal P1 for newsroom")
    with sp.db.uow() as uow:
        [proposal] = uow.session.scalars(select(Proposal)).all()
        assert (proposal.text, proposal.item_id) == (text, 1)
        assert proposal.publish_at is not None
        assert abs(proposal.publish_at.timestamp() - tomorrow) < 1
    assert "Usage" not in texts(fake.messages_in(dm))


async def test_the_settings_modal_offers_every_time_zone(sp: SlackPinwall, fake: FakeSlack) -> None:
    assert sp.slack is not None
    dm = fake.dm_channel("U2BOB")
    await sp.slack.slash_command("U2BOB", dm, "whoami")
    await sp.settled()
    await sp.slack.slash_command("U2BOB", dm, "settings")
    await fake.wait_for_async(lambda: bool(fake.views), what="the settings modal")
    zone = fake.views[-1].view["blocks"][1]["element"]
    offered = _options(zone)
    groups = zone["option_groups"]
    assert groups[0]["label"]["text"] == "Common"
    assert offered[:3] == ["Europe/Berlin", "Europe/Vienna", "Europe/Zurich"]  # Europe first
    assert zone["initial_option"]["value"] == "Europe/Berlin"
    wanted = {z for z in available_timezones() if z.startswith(("America/", "Asia/", "Europe/"))}
    assert wanted <= set(offered)
    assert len(offered) == len(set(offered))
    await sp.slack.view_submission("U2BOB", {"timezone": "America/Argentina/Buenos_Aires"})
    await question_to(fake, dm, "America/Argentina/Buenos_Aires")
    with sp.db.uow() as uow:
        bob = uow.people.by_handle("bob")
        assert bob is not None
        assert bob.timezone == "America/Argentina/Buenos_Aires"


async def test_a_like_taken_back_on_slack_unlikes_in_place(
    sp: SlackPinwall, fake: FakeSlack
) -> None:
    assert sp.slack is not None
    dm = fake.dm_channel("U2BOB")
    await sp.on_console("admin", "/group create marketing Marketing")
    await sp.slack.slash_command("U2BOB", dm, "join marketing")
    await sp.slack.slash_command("U2BOB", dm, "notify marketing instant")
    await sp.settled()
    await sp.on_console("admin", "/share marketing Katalog")
    post = await question_to(fake, dm, "Katalog")
    posted = len(fake.posted)
    await sp.slack.event(sp.slack.reaction_added("U2BOB", "+1", dm, post.ts))
    await fake.wait_for_async(
        lambda: any(u.ts == post.ts and "👍 1" in str(u.blocks) for u in fake.updates),
        what="👍 1 on the post",
    )
    removed = sp.slack.reaction_added("U2BOB", "+1", dm, post.ts)
    removed["type"] = "reaction_removed"
    await sp.slack.event(removed)
    await fake.wait_for_async(
        lambda: "👍 1" not in str(next(p for p in fake.messages_in(dm) if p.ts == post.ts).blocks),
        what="the like taken back",
    )
    with sp.db.uow() as uow:
        assert uow.session.scalars(select(Reaction)).all() == []
    assert len(fake.posted) == posted  # in place, no message


async def test_the_comment_button_in_a_channel_opens_a_modal_whose_text_is_the_comment(
    sp: SlackPinwall, fake: FakeSlack
) -> None:
    """In a channel, "what is your comment?" would be shown to the asker alone, and their
    next message there would be a post: the Comment button opens a modal instead."""
    assert sp.slack is not None
    await sp.channel_bridged()
    await sp.slack.slash_command("U2BOB", fake.dm_channel("U2BOB"), "join marketing")
    await sp.on_console("admin", "/share marketing Neuer Katalog")
    await fake.wait_for_async(
        lambda: any("Neuer Katalog" in texts([p]) for p in fake.messages_in("C1MARKET")), 10
    )
    [card] = [p for p in fake.messages_in("C1MARKET") if "Neuer Katalog" in texts([p])]
    before = len(fake.messages_in("C1MARKET"))
    action_id, value = button_of(card, "Comment")
    await sp.slack.block_action("U2BOB", "C1MARKET", card.ts, action_id, value)
    await fake.wait_for_async(lambda: bool(fake.views), what="the comment modal")
    [modal] = fake.views
    assert (modal.user, modal.view["title"]["text"]) == ("U2BOB", "Comment on #1")
    blank = await sp.slack.view_submission("U2BOB", "   ")
    assert blank.json() == {
        "response_action": "errors",
        "errors": {"reason": "Please write a comment."},
    }
    await sp.slack.view_submission("U2BOB", "Great, the prices are right")
    await sp.printed_eventually("admin", "Great, the prices are right")  # told the author
    with sp.db.uow() as uow:
        assert [c.text for c in uow.session.scalars(select(Comment))] == [
            "Great, the prices are right"
        ]
    # No question in the channel; the comment in the post's thread; "saved" to Bob alone.
    await fake.wait_for_async(
        lambda: any(
            p.thread_ts == card.ts and "Great, the prices are right" in texts([p])
            for p in fake.messages_in("C1MARKET")
        ),
        what="the comment in the thread",
    )
    later = fake.messages_in("C1MARKET")[before:]
    assert [p.thread_ts for p in later if p.kind == "message"] == [card.ts]
    [saved] = [p for p in fake.ephemerals if "is saved" in texts([p])]
    assert (saved.channel, saved.user) == ("C1MARKET", "U2BOB")


async def test_a_private_answer_with_a_file_asked_for_in_a_channel_goes_to_the_dm(
    sp: SlackPinwall, fake: FakeSlack
) -> None:
    """A message to one person in a channel (ephemeral) cannot carry files: the CSV of
    the confirmations goes to the asker's direct chat, the channel is told so."""
    assert sp.slack is not None
    await sp.slack.slash_command(
        "U1ALICE", "C1MARKET", "group create marketing Marketing", channel_name="marketing"
    )
    await sp.settled()
    await sp.slack.slash_command(
        "U1ALICE", "C1MARKET", "announce marketing Inventur am Freitag --confirm"
    )
    await sp.settled()
    await sp.slack.slash_command("U1ALICE", "C1MARKET", "announcement A1 csv")
    dm = fake.dm_channel("U1ALICE")
    await fake.wait_for_async(
        lambda: any(p.kind == "file" for p in fake.messages_in(dm)), what="the CSV in the DM"
    )
    [csv] = [p for p in fake.messages_in(dm) if p.kind == "file"]
    assert csv.files[0]["name"] == "A1-confirmations.csv"
    assert not any(p.kind == "file" for p in fake.messages_in("C1MARKET"))
    await fake.wait_for_async(
        lambda: any("privaten Chat" in texts([p]) for p in fake.messages_in("C1MARKET")),
        what="the pointer in the channel",
    )
