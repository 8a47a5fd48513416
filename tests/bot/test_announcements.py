"""Announcements as conversations: each person once across overlapping groups and
messengers, Read ✓ from several messengers adding up on the author's live card (edited
in place, at most once a second), who is missing, the reminder exactly once, CSV,
refusals that change nothing."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from adapters.memory import Sent
from bot.announcements import remind_due
from store.models import Announcement, AnnouncementRecipient, Item
from tests.bot.conftest import Pinwall
from tests.bot.conversation import en, link_accounts, other_messenger, refused, say_on
from tests.bot.test_visibility import _partner_paul
from tests.harness import World


async def branches(world: World) -> None:
    """filialen (alice, bob, carol) and vertrieb (bob, dave): bob is in both."""
    await world.say("admin", "/group create filialen Filialen")
    await world.say("admin", "/group create vertrieb Vertrieb")
    for who in ("alice", "bob", "carol"):
        await world.say(who, "/join filialen")
    for who in ("bob", "dave"):
        await world.say(who, "/join vertrieb")


def announcements_to(world: World, who: str) -> list[Sent]:
    return [
        s
        for s in world.adapter.to(who)
        if "announcement" in s.message.meta and not s.message.meta.get("card")
    ]


def card(world: World, who: str = "admin") -> list[Sent]:
    return [s for s in world.adapter.to(who) if s.message.meta.get("card")]


async def test_an_announcement_to_two_overlapping_groups_reaches_each_person_once(
    world: World,
) -> None:
    await branches(world)
    await world.say("bob", "/notify vertrieb mute")  # muted in one group: still instant
    await world.say("admin", "/bridge filialen", room="shop")
    await world.say("admin", "/bridge vertrieb", room="shop")  # one room, both groups
    out = await world.say("admin", "/announce filialen,vertrieb New hygiene rules --confirm")
    room = [s for s in out.to("shop") if "announcement" in s.message.meta]
    assert len(room) == 1
    assert not room[0].message.buttons  # who would confirm for a whole room?
    for who in ("alice", "bob", "carol", "dave"):
        got = [s for s in out.to(who) if "announcement" in s.message.meta]
        assert len(got) == 1, who
        assert "New hygiene rules" in got[0].message.text
        assert [b.label for b in got[0].message.buttons] == [en("announce.read_button")]
    assert out.to("admin")
    assert "0/4" in out.text("admin")
    with world.db.uow() as uow:
        rows = uow.session.scalars(select(AnnouncementRecipient)).all()
        assert sorted(r.person_id for r in rows) == sorted({r.person_id for r in rows})
        assert len(rows) == 4
    # pinned at the top of items, in each group, above newer posts
    await world.say("alice", "/share filialen Newer post")
    for group, who in (("filialen", "carol"), ("vertrieb", "dave")):
        items = (await world.say(who, f"/items {group}")).text(who).splitlines()
        assert "📌 New hygiene rules" in items[1]


async def test_confirmations_from_three_messengers_add_up_on_the_authors_card(
    world: World,
) -> None:
    telegram = other_messenger(world, "telegram")
    matrix = other_messenger(world, "matrix")
    await world.say("admin", "/group create filialen Filialen")
    await say_on(world, telegram, "tina", "/join filialen")
    await say_on(world, matrix, "max", "/join filialen")
    await world.say("alice", "/join filialen")
    await world.say("admin", "/announce filialen Read this --confirm")
    assert "0/3" in world.adapter.to("admin")[-1].message.text
    for adapter, who in ((telegram, "tina"), (matrix, "max"), (world.adapter, "alice")):
        sent = [s for s in adapter.to(who) if s.message.buttons][-1]
        before = len(adapter.sent)
        await world.hub.submit(adapter.press(who, sent, 0, world.clock.now()))
        await world.worker.drain()
        shown = [s for s in adapter.sent[before:] if s.target.address == who]
        assert shown[-1].message.replaces == sent.message_id  # their copy, in place
        assert not shown[-1].message.buttons
        world.clock.advance(2)
        await world.worker.drain()
    edits = [s for s in card(world) if s.message.replaces]
    assert "3/3" in edits[-1].message.text
    assert all(s.message.replaces == card(world)[0].message_id for s in edits)
    status = await world.say("admin", "/announcement A1")
    assert "3/3" in status.text("admin")
    assert en("announce.none_missing") in status.text("admin")
    with world.db.uow() as uow:
        platforms = sorted(
            r.confirmed_on or "" for r in uow.session.scalars(select(AnnouncementRecipient))
        )
    assert platforms == ["matrix", "memory", "telegram"]


async def test_card_edits_are_coalesced_to_one_a_second(world: World) -> None:
    await world.say("admin", "/group create filialen Filialen")
    people = [f"p{i}" for i in range(6)]
    for who in people:
        await world.say(who, "/join filialen")
    await world.say("admin", "/announce filialen Read --confirm")
    before = len(card(world))
    for who in people:  # all within the same second
        await world.press(who, announcements_to(world, who)[-1], 0)
    world.clock.advance(2)
    await world.worker.drain()
    edits = card(world)[before:]
    assert 1 <= len(edits) <= 2  # one at once, one a second later with the rest
    assert "6/6" in edits[-1].message.text


async def test_the_reminder_goes_to_those_missing_once_across_a_restart(world: World) -> None:
    await branches(world)
    await world.say("admin", "/announce filialen Please read --confirm")
    await world.press("alice", announcements_to(world, "alice")[-1], 0)
    await world.press("bob", announcements_to(world, "bob")[-1], 0)
    world.clock.advance(hours=23)
    assert remind_due(world.core, world.clock.now()) == 0
    world.clock.advance(hours=2)
    before = len(world.adapter.sent)
    assert remind_due(world.core, world.clock.now()) == 1
    await world.worker.drain()
    reminded = [s for s in world.adapter.sent[before:] if not s.message.meta.get("card")]
    assert [s.target.address for s in reminded] == ["carol"]
    assert reminded[0].message.buttons  # Read ✓ again
    # A restart: a new core on the same database finds the reminder done.
    again = World(world.db)
    try:
        again.clock.set(world.clock.now() + timedelta(hours=1))
        assert remind_due(again.core, again.clock.now()) == 0
    finally:
        again.close()
    status = await world.say("admin", "/announcement A1")
    assert "2/3" in status.text("admin")
    assert "@carol" in status.text("admin")
    csv = await world.say("admin", "/announcement A1 csv")
    assert "carol,no" in csv.text("admin")
    assert "alice,yes" in csv.text("admin")


async def test_the_reminder_goes_by_a_second_way_where_there_is_one(world: World) -> None:
    telegram = other_messenger(world, "telegram")
    await world.say("admin", "/group create filialen Filialen")
    await world.say("carol", "/join filialen")
    await link_accounts(world, "carol", telegram, "carol_tg")
    world.clock.advance(hours=2)
    await world.say("carol", "/whoami")  # the console is her most recent way
    await world.say("admin", "/announce filialen Please read --confirm")
    assert announcements_to(world, "carol")
    world.clock.advance(hours=25)
    remind_due(world.core, world.clock.now())
    await world.worker.drain()
    assert [s.target.address for s in telegram.sent if "announcement" in s.message.meta] == [
        "carol_tg"
    ]


async def test_read_typed_confirms_where_there_is_no_button(world: World) -> None:
    """`announcement A1 read` (`ankündigung A1 gelesen`): Read ✓ for mail readers; only
    for those it waits for."""
    await branches(world)
    await world.say("admin", "/announce filialen Please read --confirm")
    await world.say("alice", "/settings language de")
    said = await world.say("alice", "/ankündigung A1 gelesen")
    assert "Bestätigt ✓" in said.text("alice")
    again = await world.say("alice", "/announcement A1 read")
    assert "schon bestätigt" in again.text("alice")
    text = await refused(world, "dave", "/announcement A1 read")  # not in filialen
    assert text.startswith(en("error.announcement_not_to_confirm", ref="A1"))
    with world.db.uow() as uow:
        assert uow.announcements.counts(1) == (1, 3)


async def test_who_may_announce_where(world: World) -> None:
    await branches(world)
    text = await refused(world, "alice", "/announce filialen Hi")
    assert text.startswith(en("error.announce_moderators_only", group="Filialen"))
    text = await refused(world, "alice", "/announce all Hi")
    assert text.startswith(en("error.announce_all_admins_only"))
    text = await refused(world, "admin", "/announce filialen Hi --until 01.01.2020")
    assert "passed" in text
    await world.say("admin", "/add alice filialen")
    await world.say("admin", "/announce all Office closed on Friday")
    with world.db.uow() as uow:
        a = uow.session.scalars(select(Announcement)).one()
        assert a.everyone
        assert not a.confirm
    text = await refused(world, "alice", "/announcement A1")
    assert text.startswith(en("error.announcement_not_found", ref="A1"))


async def test_mute_delays_an_announcement_to_the_next_digest(world: World) -> None:
    await branches(world)
    await world.say("carol", "/notify filialen mute")
    out = await world.say("admin", "/announce filialen Hygiene")
    assert not out.to("carol")
    await world.say("carol", "/join vertrieb")
    digest = await world.say("carol", "/digest now")
    assert digest.text("carol").splitlines()[1].startswith("📌 A1: Hygiene")
    again = await world.say("carol", "/digest now")  # once
    assert "Hygiene" not in again.text("carol")


async def test_german_names_privacy_export_and_erasure(world: World, pinwall: Pinwall) -> None:
    await branches(world)
    out = await world.say("admin", "/ankündigen filialen Neue Regeln --confirm", language="de")
    assert out.to("alice")
    await world.press("alice", announcements_to(world, "alice")[-1], 0)
    code, text, _ = pinwall("privacy", "export", "alice")
    assert code == 0
    exported = json.loads(text)
    assert exported["announcement_recipients"][0]["confirmed_on"] == "memory"
    code, _, _ = pinwall("privacy", "forget", "alice", "--yes")
    assert code == 0
    with world.db.uow() as uow:
        assert uow.announcements.counts(1) == (0, 2)


async def test_a_partner_never_sees_an_announcement_to_another_group(world: World) -> None:
    await _partner_paul(world)
    await world.say("admin", "/announce agencies Agency rates change --confirm")
    await world.say("admin", "/announce franchise Franchise fees change --confirm")
    assert [s.message.meta["announcement"] for s in announcements_to(world, "paul")] == [2]
    found = await world.say("paul", "/search change")
    assert "Franchise fees" in found.text("paul")
    assert "Agency rates" not in found.text("paul")
    shown = await world.say("paul", "/show #3")  # the agencies' post of A1
    assert "Agency rates" not in shown.text("paul")
    opened = await world.say("paul", "/show #4")
    card = opened.to("paul")[-1]
    assert [b.label for b in card.message.buttons] == [en("announce.read_button")]
    await world.press("paul", card, 0)
    with world.db.uow() as uow:
        assert uow.announcements.counts(2) == (1, 1)


async def test_announcements_are_in_the_audit_log(world: World) -> None:
    await branches(world)
    await world.say("admin", "/announce filialen Hygiene --confirm")
    await world.press("alice", announcements_to(world, "alice")[-1], 0)
    await world.say("admin", "/poll filialen Date? | Mon | Tue")
    await world.say("admin", "/poll close V1")
    log = (await world.say("admin", "/audit 10")).text("admin")
    assert "@admin announced A1." in log
    assert "@alice confirmed having read A1." in log
    assert "@admin started the poll V1." in log
    assert "@admin closed the poll V1." in log


async def test_pinned_on_top_of_digests_until_confirmed_or_expired(world: World) -> None:
    await branches(world)
    await world.say("admin", "/announce filialen Hygiene --confirm --until in 3 days")
    await world.say("admin", "/announce vertrieb Prices")  # for bob, who is in both
    await world.say("carol", "/share filialen A new post")
    digest = (await world.say("alice", "/digest now")).text("alice").splitlines()
    assert digest[1].startswith("📌 A1: Hygiene")
    await world.press("bob", announcements_to(world, "bob")[0], 0)
    await world.say("carol", "/share filialen Another post")
    digest = (await world.say("bob", "/digest now")).text("bob").splitlines()
    assert digest[1].startswith("📌 A2: Prices")  # A1 confirmed: no longer pinned for bob
    world.clock.advance(hours=80)
    await world.say("carol", "/share filialen A third post")
    digest = (await world.say("alice", "/digest now")).text("alice")
    assert "📌" not in digest
    items = (await world.say("alice", "/items filialen")).text("alice")
    assert "📌" not in items


async def test_announce_all_reaches_the_staff_once_not_partners_outside_named_groups(
    world: World,
) -> None:
    await _partner_paul(world)  # Paul: a partner in Franchise
    await world.say("alice", "/join marketing")
    await world.say("bob", "/whoami")  # staff in no group at all
    with world.db.uow() as uow:
        posts = len(uow.session.scalars(select(Item)).all())
    await world.say("admin", "/announce all Office closed on Friday")
    for who in ("alice", "bob"):
        assert len(announcements_to(world, who)) == 1
    assert announcements_to(world, "paul") == []
    with world.db.uow() as uow:
        assert len(uow.session.scalars(select(Item)).all()) == posts  # one card each, no posts
        (a,) = uow.session.scalars(select(Announcement))
        assert a.everyone
        assert uow.announcements.group_ids(a.id) == []
    assert "Office closed" not in (await world.say("paul", "/search Office")).text("paul")
    assert "Office closed" not in (await world.say("paul", "/items franchise")).text("paul")
    # The staff find it once (no post per group), and see it pinned on top of `items`.
    found = (await world.say("alice", "/search office closed")).text("alice")
    assert found.count("📌 A1: Office closed on Friday") == 1
    assert "📌 A1: Office closed on Friday" in (await world.say("admin", "/search Friday")).text(
        "admin"
    )
    listing = (await world.say("alice", "/items marketing")).text("alice")
    assert listing.splitlines()[1] == "📌 A1: Office closed on Friday"

    # all and a partner's group: Paul too, and everyone still once.
    await world.say("admin", "/announce all,franchise Inventory on Monday")
    for who in ("alice", "bob", "paul"):
        assert len([s for s in announcements_to(world, who) if "Inventory" in s.message.text]) == 1
    listing = (await world.say("paul", "/items franchise")).text("paul")
    assert "Inventory" in listing
    assert "Office closed" not in listing
