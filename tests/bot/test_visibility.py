"""Who sees what, as conversations: secret groups stay invisible to non-members (admins see
all), and a partner sees only the external groups they were invited to — in lists, items,
members, buttons, reactions and deliveries."""

from __future__ import annotations

from tests.bot.conversation import de, en, refused
from tests.harness import Said, World


async def _secret_board(world: World) -> None:
    await world.say("admin", "/group create marketing Marketing")
    await world.say("admin", "/group create board Board --secret")
    await world.say("admin", "/share board Quarterly numbers are in")
    await world.say("alice", "/join marketing")


async def test_a_secret_group_is_absent_from_a_non_members_list(world: World) -> None:
    await _secret_board(world)
    listing = (await world.say("alice", "/groups")).text("alice")
    assert listing.splitlines()[0] == en("groups.header", count=1)
    assert "board" not in listing
    assert "Board" not in listing
    assert "board" not in (await world.say("alice", "/whoami")).text("alice")


async def test_a_secret_group_is_not_found_by_a_non_member(world: World) -> None:
    await _secret_board(world)
    for line in (
        "/members board",
        "/items board",
        "/join board",
        "/leave board",
        "/notify board instant",
        "/share board a guess",
        "/invite member board",
    ):
        text = await refused(world, "alice", line)
        assert text == en("error.group_not_found", group="board"), line
    text = await refused(world, "alice", "/comment #1 hello?")
    assert text == en("error.item_not_found", item="#1")


async def test_a_secret_group_looks_like_a_group_that_does_not_exist(world: World) -> None:
    await _secret_board(world)
    for verb in ("/members", "/items", "/join"):
        secret = await refused(world, "alice", f"{verb} board")
        missing = await refused(world, "alice", f"{verb} boardx")
        assert secret == missing.replace("boardx", "board"), verb


async def test_a_moderator_cannot_add_someone_to_a_secret_group_they_cannot_see(
    world: World,
) -> None:
    await _secret_board(world)
    await world.say("bob", "/whoami")
    text = await refused(world, "alice", "/add bob board")
    assert text == en("error.group_not_found", group="board")


async def test_admins_see_every_group(world: World) -> None:
    await world.say("alice", "/group create hideout Hideout --secret")
    await world.say("alice", "/share hideout our plans")
    await world.say("admin", "/whoami")
    listing = (await world.say("admin", "/groups")).text("admin")
    assert en("groups.line", slug="hideout", name="Hideout", kind="secret", count=1) in listing
    members = (await world.say("admin", "/members hideout")).text("admin")
    assert members == en("members.list", group="Hideout", count=1, names="@alice (moderator)")
    items = (await world.say("admin", "/items hideout")).text("admin")
    assert "#1 · @alice" in items
    assert "our plans" in items
    out = await world.say("admin", "/join hideout")  # admins may even join it
    assert out.text("admin") == en("join.done", group="Hideout")


async def test_members_of_a_secret_group_see_it(world: World) -> None:
    await _secret_board(world)
    await world.say("admin", "/add alice board")
    listing = (await world.say("alice", "/groups")).text("alice")
    assert en("groups.line", slug="board", name="Board", kind="secret", count=2) in listing
    items = (await world.say("alice", "/items board")).text("alice")
    assert "Quarterly numbers are in" in items
    out = await world.say("alice", "/comment #1 Great quarter")
    assert out.text("alice") == en("comment.done", item="#1")


async def test_buttons_and_reactions_respect_visibility(world: World) -> None:
    await _secret_board(world)
    await world.say("admin", "/add alice board")
    await world.say("alice", "/notify board instant")
    await world.say("bob", "/whoami")
    [copy] = (await world.say("admin", "/share board Board meeting moved")).to("alice")
    assert "Board meeting moved" in copy.message.text

    # bob somehow presses the buttons of alice's copy, or reacts to it
    before = world.snapshot()
    out = await world.press("bob", copy, 0)
    assert out.text("bob") == en("error.item_not_found", item="#2")
    out = await world.press("bob", copy, 1)
    assert out.text("bob") == en("error.item_not_found", item="#2")
    out = await world.react("bob", copy, "👍")
    assert out.sent == []
    assert world.snapshot() == before


async def test_a_stale_comment_prompt_does_not_trap_the_next_messages(world: World) -> None:
    await _secret_board(world)
    await world.say("admin", "/add alice board")
    await world.say("alice", "/notify board instant")
    [copy] = (await world.say("admin", "/share board Board meeting moved")).to("alice")
    await world.press("alice", copy, 0)  # Comment: the next message is the comment
    await world.say("admin", "/remove alice board")

    out = await world.say("alice", "Can I still say something?")
    assert out.text("alice") == en("error.item_not_found", item="#2")
    # the prompt is gone with that answer: the next message starts the share flow
    out = await world.say("alice", "Competitor poster at the station")
    assert out.text("alice").startswith(en("share.which_group"))
    assert "/items board" not in out.text("alice")


# --- partners ---------------------------------------------------------------------------


async def _partner_paul(world: World) -> None:
    """Paul, a franchisee, redeems an invite to Franchise (one of two external groups)."""
    await world.say("admin", "/group create marketing Marketing")
    await world.say("admin", "/group create franchise Franchise --externals")
    await world.say("admin", "/group create agencies Agencies --externals")
    await world.say("admin", "/group create board Board --secret --externals")
    await world.say("admin", "/share marketing internal campaign")
    await world.say("admin", "/share agencies agency briefing")
    out = await world.say("admin", "/invite partner franchise")
    code = out.to("admin")[0].message.meta["invite_code"]
    world.adapter.trust = "unknown"
    await world.say("paul", f"/redeem {code}")
    world.adapter.trust = "member"


async def test_a_partner_sees_only_the_group_they_were_invited_to(world: World) -> None:
    await _partner_paul(world)
    listing = (await world.say("paul", "/groups")).text("paul")
    assert listing.splitlines() == [
        en("groups.header", count=1),
        en(
            "groups.line",
            slug="franchise",
            name="Franchise",
            kind=f"open, {en('group.with_externals')}",
            count=2,
        )
        + " "
        + en("groups.member_mark"),
    ]


async def test_a_partner_gets_not_found_for_other_groups(world: World) -> None:
    await _partner_paul(world)
    for group in ("marketing", "agencies", "board"):
        for line in (f"/items {group}", f"/members {group}", f"/join {group}"):
            text = await refused(world, "paul", line)
            assert text == en("error.group_not_found", group=group), line
    text = await refused(world, "paul", "/comment #1 what campaign?")
    assert text == en("error.item_not_found", item="#1")
    text = await refused(world, "paul", "/comment #2 which briefing?")
    assert text == en("error.item_not_found", item="#2")


async def test_a_partner_shares_and_comments_in_their_group(world: World) -> None:
    await _partner_paul(world)
    await world.say("admin", "/notify franchise instant")
    [question] = (await world.say("paul", "New opening hours from Monday")).to("paul")
    assert [b.label for b in question.message.buttons] == ["Franchise"]
    out = await world.press("paul", question, 0)
    assert out.text("paul") == en("share.done", item="#3", group="Franchise")
    assert "paul in Franchise" in out.text("admin")
    out = await world.say("admin", "/comment #3 Thanks!")
    assert out.text("paul") == en(
        "comment.told", handle="admin", item="#3", group="Franchise", text="Thanks!"
    )


async def test_a_partner_cannot_be_added_to_an_internal_group(world: World) -> None:
    await _partner_paul(world)
    text = await refused(world, "admin", "/add paul marketing")
    assert text == en("error.group_no_externals", group="Marketing", handle="paul")
    out = await world.say("admin", "/add paul agencies")
    assert out.text("admin") == en("add.done", handle="paul", group="Agencies")
    assert "agencies" in (await world.say("paul", "/groups")).text("paul")


async def test_a_removed_partner_receives_nothing_more(world: World) -> None:
    await _partner_paul(world)
    await world.say("paul", "/notify franchise instant")
    out = await world.say("admin", "/share franchise Price list 2027")
    assert "Price list 2027" in out.text("paul")

    out = await world.say("admin", "/remove paul franchise")
    assert out.text("paul") == en("remove.told", group="Franchise")
    out = await world.say("admin", "/share franchise Price list 2028")
    assert out.addresses == ["admin"]

    assert (await world.say("paul", "/groups")).text("paul") == en("groups.none_external")
    text = await refused(world, "paul", "/items franchise")
    assert text == en("error.group_not_found", group="franchise")
    text = await refused(world, "paul", "/comment #3 hello?")
    assert text == en("error.item_not_found", item="#3")
    out = await world.say("paul", "Anyone there? Is the price list still valid?")
    assert out.text("paul") == en("share.no_groups")


async def test_a_post_queued_before_a_partner_was_removed_is_not_delivered(
    world: World,
) -> None:
    await _partner_paul(world)
    await world.say("paul", "/notify franchise instant")
    # the share and the removal are both applied before the delivery worker runs
    adapter, now = world.adapter, world.clock.now()
    await world.hub.submit(adapter.event("admin", "/share franchise Confidential terms", now))
    await world.hub.submit(adapter.event("admin", "/remove paul franchise", now))
    before = len(adapter.sent)
    await world.worker.drain()
    assert Said(adapter.sent[before:]).text("paul") == en("remove.told", group="Franchise")


async def test_a_guest_starts_with_no_groups_at_all(world: World) -> None:
    await world.say("admin", "/group create marketing Marketing")
    await world.say("admin", "/group create agencies Agencies --externals")
    world.adapter.trust = "external"  # e.g. a Slack guest
    out = await world.say("gina", "/groups")
    assert out.text("gina") == en("groups.none_external")
    assert "@gina (guest)" in (await world.say("gina", "/whoami")).text("gina")
    for group in ("marketing", "agencies"):
        text = await refused(world, "gina", f"/join {group}")
        assert text == en("error.group_not_found", group=group)
    out = await world.say("admin", "/add gina agencies")
    assert out.text("admin") == en("add.done", handle="gina", group="Agencies")
    listing = (await world.say("gina", "/groups")).text("gina")
    assert listing.splitlines()[0] == en("groups.header", count=1)
    assert "agencies" in listing


# --- strangers in a shared room ----------------------------------------------------------


async def test_a_stranger_in_a_bridged_room_is_neither_relayed_nor_answered(
    world: World,
) -> None:
    await world.say("admin", "/group create marketing Marketing")
    await world.say("admin", "/bridge marketing", room="lobby")
    out = await world.say("alice", "Poster is up", room="lobby")  # a member: a post
    assert out.sent == []
    [post] = (await world.say("admin", "/share marketing Welcome, lobby")).to("lobby")

    world.adapter.trust = "unknown"
    before = world.snapshot()
    assert (await world.say("stranger", "who is this bot?", room="lobby")).sent == []
    assert (await world.react("stranger", post, "👍", room="lobby")).sent == []
    assert (await world.say("stranger", "hi", room="elsewhere")).sent == []
    # a command is asked of the bot: that is answered, in the stranger's language
    out = await world.say("stranger", "/groups", room="lobby", language="de")
    assert out.text("lobby") == de("access.needs_invite", how="/redeem CODE")
    assert world.snapshot() == before

    world.adapter.trust = "member"
    listing = (await world.say("admin", "/items marketing")).text("admin")
    assert en("items.stats", comments=0, reactions=1) not in listing
    assert "who is this bot?" not in listing
    assert "#1 · @alice" in listing


async def test_a_removed_partner_is_not_told_of_comments_on_their_old_post(world: World) -> None:
    await _partner_paul(world)
    await world.say("paul", "/share franchise Shop window photos")
    await world.say("admin", "/remove paul franchise")
    out = await world.say("admin", "/comment #3 Great photos, thanks")
    assert out.addresses == ["admin"]
