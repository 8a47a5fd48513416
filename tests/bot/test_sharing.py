"""Posts, as conversations: share, items, comment, who gets a post, the share flow of a
plain direct message, the buttons on a delivered post, and reactions."""

from __future__ import annotations

from adapters.memory import Sent
from bot.markup import to_plain
from tests.bot.conversation import asked, en, refused, with_usage
from tests.harness import World


async def _marketing(world: World, *members: str) -> None:
    await world.say("admin", "/group create marketing Marketing")
    for name in members:
        await world.say(name, "/join marketing")


async def test_sharing_a_link_shows_the_link_with_the_url_as_title(world: World) -> None:
    await _marketing(world, "alice", "bob")
    await world.say("alice", "/notify marketing instant")
    out = await world.say("bob", "/share marketing New https://example.com/poster poster")
    assert out.text("bob") == en("share.done", item="#1", group="Marketing")
    assert out.text("alice") == (
        "bob in Marketing\nNew poster\nhttps://example.com/poster\nComment  👍"
    )

    listing = (await world.say("alice", "/items marketing")).text("alice")
    assert listing.splitlines() == [
        en("items.header", group="Marketing", count=1),
        en("items.line", item="#1", author="bob", when="2026-11-27 09:00", text="New poster"),
        "  https://example.com/poster",
    ]


async def test_a_link_alone_is_shown_by_its_url(world: World) -> None:
    await _marketing(world, "alice", "bob")
    await world.say("alice", "/notify marketing instant")
    out = await world.say("bob", "/share marketing https://example.com/only")
    assert out.text("alice") == "bob in Marketing\nhttps://example.com/only\nComment  👍"


async def test_sharing_a_note(world: World) -> None:
    await _marketing(world, "alice", "bob")
    await world.say("alice", "/notify marketing instant")
    out = await world.say("bob", "/share marketing Coffee machine on 3rd floor is fixed")
    assert out.text("bob") == en("share.done", item="#1", group="Marketing")
    assert out.text("alice") == (
        "bob in Marketing\nCoffee machine on 3rd floor is fixed\nComment  👍"
    )
    listing = (await world.say("bob", "/items marketing")).text("bob")
    assert (
        en(
            "items.line",
            item="#1",
            author="bob",
            when="2026-11-27 09:00",
            text="Coffee machine on 3rd floor is fixed",
        )
        in listing
    )
    assert "https://" not in listing


async def test_a_post_reaches_instant_members_but_not_daily_ones_nor_its_author(
    world: World,
) -> None:
    await _marketing(world, "alice", "bob", "carol", "dave")
    await world.say("alice", "/notify marketing instant")
    await world.say("bob", "/notify marketing instant")
    await world.say("dave", "/notify marketing mute")  # carol stays on daily
    out = await world.say("bob", "/share marketing https://example.com/a Look")
    assert sorted(out.addresses) == ["alice", "bob"]
    assert out.text("bob") == en("share.done", item="#1", group="Marketing")
    assert "bob in Marketing" in out.text("alice")


async def test_a_post_is_delivered_in_the_readers_language(world: World) -> None:
    await _marketing(world, "alice", "bob")
    await world.say("alice", "/notify marketing instant")
    await world.say("alice", "/settings language de")
    out = await world.say("bob", "/share marketing Hallo")
    assert out.text("alice") == "bob in Marketing\nHallo\nKommentieren  👍"


async def test_items_lists_the_newest_first_and_n_limits_them(world: World) -> None:
    await _marketing(world, "bob")
    for word in ("one", "two", "three"):
        await world.say("bob", f"/share marketing note {word}")
    listing = (await world.say("bob", "/items marketing")).text("bob")
    assert listing.splitlines()[0] == en("items.header", group="Marketing", count=3)
    assert listing.index("#3") < listing.index("#2") < listing.index("#1")

    listing = (await world.say("bob", "/items marketing 2")).text("bob")
    assert listing.splitlines()[0] == en("items.header", group="Marketing", count=2)
    assert "#1" not in listing


async def test_items_of_an_empty_group(world: World) -> None:
    await _marketing(world)
    out = await world.say("admin", "/items marketing")
    assert out.text("admin") == en("items.none", group="Marketing")


async def test_items_with_a_bad_number_shows_the_usage(world: World) -> None:
    await _marketing(world, "bob")
    text = await refused(world, "bob", "/items marketing many")
    assert text == with_usage(
        "en",
        en("error.not_a_number", value="many", param="number"),
        "/items <group> [n]",
        "/items marketing 5",
    )


async def test_a_comment_is_saved_counted_and_its_author_told(world: World) -> None:
    await _marketing(world, "alice", "bob")
    await world.say("bob", "/share marketing https://example.com/a Look")
    out = await world.say("alice", "/comment #1 Great poster!")
    assert out.text("alice") == en("comment.done", item="#1")
    assert out.text("bob") == en(
        "comment.told", handle="alice", item="#1", group="Marketing", text="Great poster!"
    )

    out = await world.say("bob", "/comment 1 Thanks")  # without the # too; no self-notice
    assert out.addresses == ["bob"]
    listing = (await world.say("bob", "/items marketing")).text("bob")
    assert en("items.stats", comments=2, reactions="👍 0") in listing


async def test_sharing_needs_membership(world: World) -> None:
    await _marketing(world)
    await world.say("alice", "/whoami")
    text = await refused(world, "alice", "/share marketing hello")
    assert text == en("error.join_first", group="Marketing", slug="marketing")


async def test_sharing_to_an_unknown_group_is_refused(world: World) -> None:
    await _marketing(world, "alice")
    text = await refused(world, "alice", "/share markting hello")
    assert text == en("error.group_not_found", group="markting")


async def test_share_without_content_asks_for_it(world: World) -> None:
    await _marketing(world, "alice")
    out = await world.say("alice", "/share marketing")
    assert out.text("alice") == asked("en", "guide.ask.share.content")
    out = await world.say("alice", "Poster proofs are in https://example.com/proofs")
    assert out.text("alice") == en("share.done", item="#1", group="Marketing")


async def test_a_bad_item_id_is_refused(world: World) -> None:
    await _marketing(world, "alice")
    await world.say("alice", "/share marketing hello")
    text = await refused(world, "alice", "/comment P1 nice")
    assert text == en("error.bad_item_id", value="P1", example="#12")
    text = await refused(world, "alice", "/comment #99 nice")
    assert text == en("error.item_not_found", item="#99")
    # a comment without its text is asked for; cancelled, nothing is written
    before = world.snapshot()
    out = await world.say("alice", "/comment #1")
    assert out.text("alice") == asked("en", "guide.ask.comment.text")
    out = await world.say("alice", "cancel")
    assert out.text("alice") == en("guide.cancelled")
    assert world.snapshot() == before


async def test_a_comment_on_a_post_you_cannot_see_is_refused(world: World) -> None:
    await world.say("admin", "/group create board Board --secret")
    await world.say("admin", "/share board Quarterly numbers")
    await world.say("alice", "/whoami")
    text = await refused(world, "alice", "/comment #1 what numbers?")
    assert text == en("error.item_not_found", item="#1")


# --- plain direct messages --------------------------------------------------------------


async def test_a_direct_message_whose_first_word_is_a_command_is_that_command(
    world: World,
) -> None:
    await _marketing(world)
    out = await world.say("alice", "join marketing")
    assert out.text("alice") == en("join.done", group="Marketing")
    out = await world.say("alice", "Share marketing https://example.com/a")
    assert out.text("alice") == en("share.done", item="#1", group="Marketing")
    text = await refused(world, "alice", "notify marketing sometimes")
    assert "Usage: /notify <group> instant|daily|weekly|mute|mail" in text


async def test_a_plain_message_asks_which_group_with_a_button_per_postable_group(
    world: World,
) -> None:
    await world.say("admin", "/group create marketing Marketing")
    await world.say("admin", "/group create sales Sales --closed")
    await world.say("admin", "/group create board Board --secret")
    await world.say("alice", "/join marketing")
    await world.say("admin", "/add alice sales")
    await world.say("bob", "/join marketing")
    await world.say("bob", "/notify marketing instant")

    out = await world.say("alice", "Competitor poster at the station https://example.com/p")
    [question] = out.to("alice")
    assert to_plain(question.message.text) == en("share.which_group")
    assert [b.label for b in question.message.buttons] == ["Marketing", "Sales"]

    out = await world.press("alice", question, 1)
    assert out.addresses == ["alice"]  # bob is instant in Marketing, not in Sales
    assert out.text("alice") == en("share.done", item="#1", group="Sales")
    listing = (await world.say("alice", "/items sales")).text("alice")
    assert (
        en(
            "items.line",
            item="#1",
            author="alice",
            when="2026-11-27 09:00",
            text="Competitor poster at the station",
        )
        in listing
    )
    assert "  https://example.com/p" in listing
    out = await world.say("alice", "/items marketing")
    assert out.text("alice") == en("items.none", group="Marketing")

    # the draft is used: the other button is stale now, and pressing it changes nothing
    before = world.snapshot()
    text = (await world.press("alice", question, 0)).text("alice")
    assert text == en("error.button_expired")
    assert world.snapshot() == before


async def test_pressing_the_share_button_shares_to_that_group(world: World) -> None:
    await _marketing(world, "alice", "bob")
    await world.say("bob", "/notify marketing instant")
    [question] = (await world.say("alice", "Lunch is on me today")).to("alice")
    out = await world.press("alice", question, 0)
    assert out.text("alice") == en("share.done", item="#1", group="Marketing")
    assert out.text("bob") == "alice in Marketing\nLunch is on me today\nComment  👍"


async def test_someone_elses_share_button_is_refused(world: World) -> None:
    await _marketing(world, "alice", "bob")
    [question] = (await world.say("alice", "My draft of the newsletter")).to("alice")
    before = world.snapshot()
    out = await world.press("bob", question, 0)
    assert out.text("bob") == en("error.button_expired")
    assert world.snapshot() == before
    out = await world.press("alice", question, 0)
    assert out.text("alice") == en("share.done", item="#1", group="Marketing")


async def test_a_plain_message_without_groups_says_where_to_find_one(world: World) -> None:
    out = await world.say("alice", "https://example.com/a-good-read")
    assert out.text("alice") == en("share.no_groups")


# --- buttons and reactions on a delivered post ------------------------------------------


async def _delivered_to_alice(world: World) -> Sent:
    """Bob shares #1 in Marketing; alice, on instant, gets this copy of it."""
    await _marketing(world, "alice", "bob")
    await world.say("alice", "/notify marketing instant")
    out = await world.say("bob", "/share marketing https://example.com/a A poster")
    [copy] = out.to("alice")
    return copy


async def test_the_comment_button_makes_the_next_message_a_comment(world: World) -> None:
    copy = await _delivered_to_alice(world)
    out = await world.press("alice", copy, 0)
    assert out.text("alice") == en("comment.prompt", item="#1")

    out = await world.say("alice", "Where is this?")
    assert out.text("alice") == en("comment.done", item="#1")
    assert out.text("bob") == en(
        "comment.told", handle="alice", item="#1", group="Marketing", text="Where is this?"
    )

    # the prompt is used up: the next plain message starts the share flow again
    out = await world.say("alice", "Another thought about the poster")
    assert out.text("alice").startswith(en("share.which_group"))


async def test_the_like_button_toggles(world: World) -> None:
    copy = await _delivered_to_alice(world)
    out = await world.press("alice", copy, 1)
    assert out.text("alice") == en("like.done", item="#1")
    listing = (await world.say("bob", "/items marketing")).text("bob")
    assert en("items.stats", comments=0, reactions="👍 1") in listing

    out = await world.press("alice", copy, 1)
    assert out.text("alice") == en("like.undone", item="#1")
    listing = (await world.say("bob", "/items marketing")).text("bob")
    assert en("items.stats", comments=0, reactions="👍 1") not in listing


async def test_a_reaction_on_a_delivered_copy_counts(world: World) -> None:
    copy = await _delivered_to_alice(world)
    # issue 21: counted as itself, per emoji (it was counted as 👍)
    out = await world.react("alice", copy, "🎉")
    assert out.sent == []
    listing = (await world.say("bob", "/items marketing")).text("bob")
    assert en("items.stats", comments=0, reactions="🎉 1") in listing

    await world.react("alice", copy, "🎉")  # the same reaction again counts once
    listing = (await world.say("bob", "/items marketing")).text("bob")
    assert en("items.stats", comments=0, reactions="🎉 1") in listing


async def test_a_reaction_on_something_that_is_not_a_post_changes_nothing(
    world: World,
) -> None:
    await _marketing(world, "bob")
    [answer] = (await world.say("bob", "/share marketing A poster")).to("bob")  # "Shared as #1"
    before = world.snapshot()
    out = await world.react("bob", answer, "🎉")
    assert out.sent == []
    assert world.snapshot() == before
