"""Closed groups are members only (issue 18): listed with their name and moderators, but
their posts, comments, files, members, feeds and search hits are for members; others
ask to join, and a moderator lets them in or declines, by button or with `add`."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select

from bot.events import CommandInvoked, InboundFile
from bot.home import home_of
from store.models import AuditEntry, JoinRequest
from tests.bot.conversation import de, en, refused
from tests.harness import Said, World

CLOSED = en("error.members_only", group="Sales", slug="sales", moderators="@mona")


async def _closed_sales(world: World) -> None:
    """mona moderates Sales (closed); carl is in it on instant; alice is in no group.
    #1 is a link post by mona, carl commented on it, F1 is a feed of the group."""
    for who in ("alice", "carl"):
        await world.say(who, "/whoami")
    await world.say("mona", "/group create sales Sales --closed")
    await world.say("mona", "/add carl sales")
    await world.say("carl", "/notify sales instant")
    await world.say("mona", "/share sales Q4 pipeline review https://crm.example/q4")
    await world.say("carl", "/comment #1 Looks good")
    await world.say("mona", "/feed add sales https://news.example/feed.xml")


def requests(world: World) -> list[tuple[str, str | None]]:
    """(requester handle, outcome) of every request to join, oldest first."""
    with world.db.uow() as uow:
        rows = uow.session.scalars(select(JoinRequest).order_by(JoinRequest.id)).all()
        return [(uow.people.get(r.person_id).handle, r.outcome) for r in rows]  # type: ignore[union-attr]


# --- reading ----------------------------------------------------------------------------


async def test_a_closed_group_is_listed_to_everyone(world: World) -> None:
    await _closed_sales(world)
    listing = (await world.say("alice", "/groups")).text("alice")
    assert en("groups.line", slug="sales", name="Sales", kind="closed", count=2) in listing


async def test_a_non_member_reads_nothing_of_a_closed_group(world: World) -> None:
    await _closed_sales(world)
    for line in (
        "/items sales",
        "/members sales",
        "/feed list sales",
        "/feed add sales https://news.example/other.xml",
        "/feed remove F1",
        "/comment #1 me too",
        "/propose newsroom Look at this --item #1",
        "/share sales my two cents",
    ):
        assert await refused(world, "alice", line) == CLOSED, line
    assert (await world.say("alice", "/search pipeline")).text("alice") == en(
        "search.none", query="pipeline"
    )
    assert (await world.say("alice", "/search looks good")).text("alice") == en(
        "search.none", query="looks good"
    )
    assert (await world.say("alice", "/feed list")).text("alice") == en("feeds.none_anywhere")
    assert "sales" not in (await world.say("alice", "/whoami")).text("alice")
    digest = (await world.say("alice", "/digest now")).text("alice")
    assert "pipeline" not in digest
    home = home_of(world.core, "memory", "alice")
    assert home is not None
    assert (home.posts, home.groups) == ((), ())
    # ... while its members read all of it
    assert "Q4 pipeline review" in (await world.say("carl", "/items sales")).text("carl")
    assert "#1" in (await world.say("carl", "/search pipeline")).text("carl")
    assert "@mona" in (await world.say("carl", "/members sales")).text("carl")


async def test_the_refusal_speaks_the_readers_language(world: World) -> None:
    await _closed_sales(world)
    await world.say("alice", "/settings language de")
    text = await refused(world, "alice", "/items sales")
    assert text == de("error.members_only", group="Sales", slug="sales", moderators="@mona")
    assert "/beitreten sales" in text


async def test_buttons_and_reactions_on_a_closed_groups_post_refuse_a_non_member(
    world: World,
) -> None:
    await _closed_sales(world)
    [copy] = (await world.say("mona", "/share sales Price list 2027")).to("carl")
    before = world.snapshot()
    for index in (0, 1):  # Comment, 👍: say, a forwarded copy
        out = await world.press("alice", copy, index)
        assert out.text("alice") == CLOSED
    assert (await world.react("alice", copy, "👍")).sent == []
    assert world.snapshot() == before


async def test_a_comment_prompt_answered_after_removal_is_refused(world: World) -> None:
    await _closed_sales(world)
    [copy] = (await world.say("mona", "/share sales Price list 2027")).to("carl")
    await world.press("carl", copy, 0)  # Comment: the next message is the comment
    await world.say("mona", "/remove carl sales")
    out = await world.say("carl", "Can I still say something?")
    assert out.text("carl") == CLOSED
    listing = (await world.say("mona", "/items sales")).text("mona")
    assert en("items.stats", comments=0, reactions="👍 0") not in listing  # and nothing saved
    assert "Can I still" not in listing


async def test_a_non_member_in_a_bridged_room_is_not_relayed(world: World) -> None:
    await _closed_sales(world)
    await world.say("mona", "/bridge sales", room="salesroom")
    out = await world.say("alice", "Anyone here?", room="salesroom")
    assert out.sent == []
    out = await world.say("carl", "Call at three", room="salesroom")
    assert "Call at three" in (await world.say("mona", "/items sales")).text("mona")
    assert "Anyone here?" not in (await world.say("mona", "/items sales")).text("mona")


async def test_a_post_with_a_file_queued_before_a_removal_is_not_delivered(world: World) -> None:
    await _closed_sales(world)
    adapter, now = world.adapter, world.clock.now()
    share = adapter.event("mona", "/share sales Contract draft", now)
    assert isinstance(share, CommandInvoked)
    photo = InboundFile(name="contract.pdf", blob_id="a" * 64, mime_type="application/pdf")
    await world.hub.submit(replace(share, attachments=(photo,)))
    await world.hub.submit(adapter.event("mona", "/remove carl sales", now))
    before = len(adapter.sent)
    await world.worker.drain()
    to_carl = Said(adapter.sent[before:]).to("carl")
    assert [s.message.files for s in to_carl] == [()]
    assert Said(to_carl).text("carl") == en("remove.told", group="Sales")


async def test_the_author_is_not_told_of_comments_once_out_of_the_group(world: World) -> None:
    await _closed_sales(world)
    await world.say("carl", "/share sales Visit report")  # #2
    await world.say("mona", "/remove carl sales")
    out = await world.say("mona", "/comment #2 Thanks")
    assert out.addresses == ["mona"]


async def test_a_secret_group_is_still_not_found(world: World) -> None:
    await world.say("alice", "/whoami")
    await world.say("mona", "/group create board Board --secret")
    await world.say("mona", "/share board Numbers")
    for line in ("/items board", "/members board", "/join board", "/feed list board"):
        assert await refused(world, "alice", line) == en("error.group_not_found", group="board")
    assert await refused(world, "alice", "/comment #1 hi") == en("error.item_not_found", item="#1")


async def test_admins_read_a_closed_group_without_being_in_it(world: World) -> None:
    await _closed_sales(world)
    assert "Q4 pipeline review" in (await world.say("admin", "/items sales")).text("admin")
    out = await world.say("admin", "/comment #1 Noted")
    assert out.text("admin") == en("comment.done", item="#1")


# --- asking to join ---------------------------------------------------------------------


async def test_join_asks_the_moderators_who_let_the_person_in(world: World) -> None:
    await _closed_sales(world)
    out = await world.say("alice", "/join sales")
    assert out.text("alice") == en("join.requested", group="Sales", moderators="@mona")
    [card] = out.to("mona")
    assert sorted(out.addresses) == ["alice", "mona"]
    assert out.text("mona") == "\n".join(
        (
            en("join_request.card", name="alice", handle="alice", group="Sales"),
            en("join_request.hint", prefix="/", handle="alice", slug="sales"),
            en("join_request.approve") + "  " + en("join_request.decline"),
        )
    )
    assert requests(world) == [("alice", None)]
    members = (await world.say("mona", "/members sales")).text("mona")
    assert members.splitlines()[-1] == en(
        "join_request.waiting", count=1, names="@alice", first="alice", slug="sales"
    )

    out = await world.press("mona", card, 0)
    assert out.text("mona") == en("join_request.approved_card", handle="alice", group="Sales")
    assert out.to("mona")[0].message.replaces == card.message_id  # the card shows the outcome
    assert out.text("alice") == en(
        "join_request.approved", handle="mona", group="Sales", slug="sales"
    )
    assert requests(world) == [("alice", "approved")]
    assert "Q4 pipeline review" in (await world.say("alice", "/items sales")).text("alice")
    assert "asks to join" not in (await world.say("mona", "/members sales")).text("mona")
    with world.db.uow() as uow:
        entry = uow.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "member.added").order_by(AuditEntry.id)
        ).all()[-1]
        assert entry.subject == "sales"
        assert entry.actor_id == uow.people.by_handle("mona").id  # type: ignore[union-attr]


async def test_asking_twice_says_it_is_pending_and_sends_no_second_card(world: World) -> None:
    await _closed_sales(world)
    await world.say("alice", "/join sales")
    text = await refused(world, "alice", "/join sales")
    assert text == en(
        "error.join_pending", group="Sales", since="2026-11-27 09:00", moderators="@mona"
    )


async def test_a_declined_request_tells_the_person_and_a_new_one_may_follow(
    world: World,
) -> None:
    await _closed_sales(world)
    [card] = (await world.say("alice", "/join sales")).to("mona")
    out = await world.press("mona", card, 1)
    assert out.text("mona") == en("join_request.declined_card", handle="alice", group="Sales")
    assert out.text("alice") == en("join_request.declined", group="Sales", moderators="@mona")
    assert await refused(world, "alice", "/items sales") == CLOSED
    out = await world.say("alice", "/join sales")  # asked again: a new card
    assert out.text("alice") == en("join.requested", group="Sales", moderators="@mona")
    assert len(out.to("mona")) == 1
    assert requests(world) == [("alice", "declined"), ("alice", None)]


async def test_a_press_after_the_decision_says_who_decided(world: World) -> None:
    await _closed_sales(world)
    await world.say("mona", "/add bea sales")  # a second moderator-to-be
    await world.say("admin", "/whoami")
    [card] = (await world.say("alice", "/join sales")).to("mona")
    await world.press("mona", card, 0)
    before = world.snapshot()
    # an admin (who moderates every group) presses the same card late, either button
    for index in (0, 1):
        out = await world.press("admin", card, index)
        assert out.text("admin") == en(
            "join_request.already_approved", by="mona", handle="alice", group="Sales"
        )
        assert out.addresses == ["admin"]
    assert world.snapshot() == before


async def test_a_press_by_someone_who_does_not_moderate_is_refused(world: World) -> None:
    await _closed_sales(world)
    [card] = (await world.say("alice", "/join sales")).to("mona")
    before = world.snapshot()
    for who in ("carl", "alice", "dora"):  # a member, the requester, a stranger to it
        for index in (0, 1):
            out = await world.press(who, card, index)
            assert out.text(who) == en("error.moderators_only", group="Sales"), who
            assert out.addresses == [who]
    assert world.snapshot() == before
    assert requests(world) == [("alice", None)]


async def test_a_moderators_add_settles_the_request(world: World) -> None:
    await _closed_sales(world)
    [card] = (await world.say("alice", "/join sales")).to("mona")
    out = await world.say("mona", "/add alice sales")
    assert out.text("alice") == en("add.told", handle="mona", group="Sales", slug="sales")
    assert requests(world) == [("alice", "approved")]
    out = await world.press("mona", card, 1)  # the card, pressed later: nothing undone
    assert out.text("mona") == en(
        "join_request.already_approved", by="mona", handle="alice", group="Sales"
    )
    assert "@alice" in (await world.say("alice", "/members sales")).text("alice")


async def test_an_invite_meanwhile_settles_the_request_on_the_next_press(world: World) -> None:
    await _closed_sales(world)
    [card] = (await world.say("alice", "/join sales")).to("mona")
    code = (
        (await world.say("mona", "/invite member sales")).to("mona")[0].message.meta["invite_code"]
    )
    await world.say("alice", f"/redeem {code}")
    assert "asks to join" not in (await world.say("mona", "/members sales")).text("mona")
    out = await world.press("mona", card, 1)
    assert out.text("mona") == en("join_request.already_member", handle="alice", group="Sales")
    assert requests(world) == [("alice", "approved")]


async def test_a_group_without_moderators_is_decided_by_the_admins(world: World) -> None:
    await world.say("admin", "/whoami")
    await world.say("alice", "/whoami")
    await world.say("mona", "/group create ops Ops --closed")
    await world.say("mona", "/leave ops")  # nobody left to hand it to
    out = await world.say("alice", "/join ops")
    assert out.text("alice") == en("join.requested", group="Ops", moderators="@admin")
    [card] = out.to("admin")
    out = await world.press("admin", card, 0)
    assert out.text("alice") == en("join_request.approved", handle="admin", group="Ops", slug="ops")


async def test_externals_cannot_ask_to_join(world: World) -> None:
    await _closed_sales(world)
    world.adapter.trust = "external"
    text = await refused(world, "gina", "/join sales")
    assert text == en("error.group_not_found", group="sales")
    assert requests(world) == []


async def test_request_cards_speak_each_moderators_language(world: World) -> None:
    await _closed_sales(world)
    await world.say("mona", "/settings language de")
    out = await world.say("alice", "/join sales")
    assert out.text("mona").startswith(
        de("join_request.card", name="alice", handle="alice", group="Sales")
    )
    assert [b.label for b in out.to("mona")[0].message.buttons] == [
        de("join_request.approve"),
        de("join_request.decline"),
    ]
    assert out.text("alice") == en("join.requested", group="Sales", moderators="@mona")
