"""Groups and memberships, as conversations: groups, group create, join, leave, members,
add, remove, notify — and the wrong ways to say them, which change nothing."""

from __future__ import annotations

import asyncio

from sqlalchemy import select, update

from store.models import Membership, Person
from tests.bot.conversation import asked, de, en, refused, with_usage
from tests.harness import World


async def test_no_groups_yet_says_how_to_create_one(world: World) -> None:
    out = await world.say("alice", "/groups")
    assert out.text("alice") == en("groups.none", prefix="/")


async def test_create_an_open_group_makes_the_creator_its_moderator(world: World) -> None:
    out = await world.say("alice", "/group create marketing Marketing and Brand")
    assert out.text("alice") == en(
        "group.created", slug="marketing", name="Marketing and Brand", kind="open"
    )

    listing = (await world.say("alice", "/groups")).text("alice")
    assert listing.splitlines() == [
        en("groups.header", count=1),
        en("groups.line", slug="marketing", name="Marketing and Brand", kind="open", count=1)
        + " "
        + en("groups.moderator_mark"),
    ]

    out = await world.say("alice", "/members marketing")
    assert out.text("alice") == en(
        "members.list", group="Marketing and Brand", count=1, names="@alice (moderator)"
    )


async def test_a_group_without_a_title_is_named_by_its_slug(world: World) -> None:
    out = await world.say("alice", "/group create design")
    assert out.text("alice") == en("group.created", slug="design", name="design", kind="open")


async def test_a_title_alone_gets_the_slug_it_suggests(world: World) -> None:
    # Issue 21: "Design" was taken as the slug "design" (titled "design"); written as a
    # title, it is one now, and the slug comes from it.
    out = await world.say("alice", "/group create Design")
    assert out.text("alice") == en("group.created", slug="design", name="Design", kind="open")


async def test_a_quoted_title_keeps_its_words(world: World) -> None:
    out = await world.say("alice", '/group create hr "Human Resources"')
    assert out.text("alice") == en("group.created", slug="hr", name="Human Resources", kind="open")


async def test_closed_secret_and_external_groups_say_what_they_are(world: World) -> None:
    externals = en("group.with_externals")
    out = await world.say("admin", "/group create sales Sales --closed")
    assert out.text("admin") == en("group.created", slug="sales", name="Sales", kind="closed")
    out = await world.say("admin", "/group create board Board --secret")
    assert out.text("admin") == en("group.created", slug="board", name="Board", kind="secret")
    out = await world.say("admin", "/group create franchise Franchise --externals")
    assert out.text("admin") == en(
        "group.created", slug="franchise", name="Franchise", kind=f"open, {externals}"
    )
    out = await world.say("admin", "/group create agency Agency --closed --externals")
    assert f"(closed, {externals})" in out.text("admin")

    listing = (await world.say("admin", "/groups")).text("admin")
    assert listing.splitlines()[0] == en("groups.header", count=4)
    for slug, name, kind in [
        ("agency", "Agency", f"closed, {externals}"),
        ("board", "Board", "secret"),
        ("franchise", "Franchise", f"open, {externals}"),
        ("sales", "Sales", "closed"),
    ]:
        assert en("groups.line", slug=slug, name=name, kind=kind, count=1) in listing


async def test_joining_an_open_group_puts_you_on_the_daily_digest(world: World) -> None:
    await world.say("admin", "/group create marketing Marketing")
    out = await world.say("alice", "/join marketing")
    assert out.text("alice") == en("join.done", group="Marketing")

    listing = (await world.say("alice", "/groups")).text("alice")
    assert (
        en("groups.line", slug="marketing", name="Marketing", kind="open", count=2)
        + " "
        + en("groups.member_mark")
    ) in listing
    whoami = (await world.say("alice", "/whoami")).text("alice")
    assert "marketing (daily)" in whoami

    out = await world.say("alice", "/members #marketing")
    assert out.text("alice") == en(
        "members.list", group="Marketing", count=2, names="@admin (moderator), @alice"
    )


async def test_a_closed_group_is_joined_through_a_moderator(world: World) -> None:
    await world.say("admin", "/group create sales Sales --closed")
    await world.say("alice", "/whoami")
    out = await world.say("alice", "/join sales")  # a request to join (test_closed_groups.py)
    assert out.text("alice") == en("join.requested", group="Sales", moderators="@admin")
    text = await refused(world, "alice", "/members sales")
    assert text == en("error.members_only", group="Sales", slug="sales", moderators="@admin")

    out = await world.say("admin", "/add @alice sales")
    assert out.text("admin") == en("add.done", handle="alice", group="Sales")
    assert out.text("alice") == en("add.told", handle="admin", group="Sales", slug="sales")

    out = await world.say("alice", "/members sales")
    assert out.text("alice") == en(
        "members.list", group="Sales", count=2, names="@admin (moderator), @alice"
    )


async def test_joining_twice_is_refused(world: World) -> None:
    await world.say("admin", "/group create marketing Marketing")
    await world.say("alice", "/join marketing")
    text = await refused(world, "alice", "/join marketing")
    assert text == en("error.already_member", group="Marketing")


async def test_leaving_a_group(world: World) -> None:
    await world.say("admin", "/group create marketing Marketing")
    await world.say("alice", "/join marketing")
    out = await world.say("alice", "/leave marketing")
    assert out.text("alice") == en("leave.done", group="Marketing")
    out = await world.say("alice", "/members marketing")
    assert out.text("alice") == en(
        "members.list", group="Marketing", count=1, names="@admin (moderator)"
    )
    text = await refused(world, "alice", "/leave marketing")
    assert text == en("error.not_member", group="Marketing")


async def test_the_last_moderator_leaving_hands_the_group_to_its_longest_member(
    world: World,
) -> None:
    await world.say("alice", "/group create design Design")
    await world.say("bob", "/join design")
    await world.say("carol", "/join design")
    out = await world.say("alice", "/leave design")
    assert out.text("alice") == en("leave.done_handed_over", group="Design", heir="bob")
    assert out.text("bob") == en("leave.heir", group="Design", handle="alice")
    assert out.addresses == ["alice", "bob"]
    out = await world.say("carol", "/members design")
    assert out.text("carol") == en(
        "members.list", group="Design", count=2, names="@bob (moderator), @carol"
    )
    # bob moderates now: he may remove; removing him (the last moderator) hands it on again.
    out = await world.say("admin", "/remove bob design")
    assert out.text("carol") == en("leave.heir", group="Design", handle="bob")
    out = await world.say("carol", "/leave design")
    assert out.text("carol") == en("leave.done", group="Design")


async def test_two_last_moderators_leaving_at_once_still_hand_the_group_on(
    world: World,
) -> None:
    """Real threads on both backends: each leave sees the other's (the group is locked)."""
    await world.say("alice", "/group create design Design")
    await world.say("bob", "/join design")
    await world.say("carol", "/join design")
    with world.db.uow() as uow:
        uow.session.execute(update(Membership).values(moderator=True))  # alice's, bob's, ...
        uow.session.execute(
            update(Membership)
            .where(Membership.person_id.in_(select(Person.id).where(Person.handle == "carol")))
            .values(moderator=False)  # ... but not carol's
        )
        uow.commit()
    now = world.clock.now()
    events = [world.adapter.event(who, "/leave design", now) for who in ("alice", "bob")]
    await asyncio.gather(*(asyncio.to_thread(world.core.handle, e) for e in events))
    out = await world.say("carol", "/members design")
    assert out.text("carol").endswith(
        en("members.list", group="Design", count=1, names="@carol (moderator)")
    )


async def test_any_member_may_create_a_group_and_moderate_it(world: World) -> None:
    await world.say("alice", "/group create design Design")
    await world.say("bob", "/whoami")
    out = await world.say("alice", "/add bob design")
    assert out.text("alice") == en("add.done", handle="bob", group="Design")
    assert out.text("bob") == en("add.told", handle="alice", group="Design", slug="design")

    out = await world.say("alice", "/remove @bob design")
    assert out.text("alice") == en("remove.done", handle="bob", group="Design")
    assert out.text("bob") == en("remove.told", group="Design")
    out = await world.say("bob", "/members design")
    assert out.text("bob") == en(
        "members.list", group="Design", count=1, names="@alice (moderator)"
    )


async def test_a_moderator_adding_themselves_tells_nobody_else(world: World) -> None:
    await world.say("admin", "/group create sales Sales --closed")
    await world.say("admin", "/remove admin sales")
    out = await world.say("admin", "/add admin sales")
    assert out.addresses == ["admin"]
    assert out.text("admin") == en("add.done", handle="admin", group="Sales")


async def test_notify_modes_are_confirmed_and_shown_by_whoami(world: World) -> None:
    await world.say("admin", "/group create marketing Marketing")
    await world.say("alice", "/join marketing")
    for said, mode in [
        ("instant", "instant"),
        ("weekly", "weekly"),
        ("mute", "mute"),
        ("DAILY", "daily"),
    ]:
        out = await world.say("alice", f"/notify marketing {said}")
        assert out.text("alice") == en(f"notify.{mode}", group="Marketing")
        whoami = (await world.say("alice", "/whoami")).text("alice")
        assert f"marketing ({en(f'notify.mode.{mode}')})" in whoami


# --- wrong input: a clear answer, and nothing changes ----------------------------------


async def test_notify_for_a_group_you_are_not_in_is_refused(world: World) -> None:
    await world.say("admin", "/group create marketing Marketing")
    await world.say("alice", "/whoami")
    text = await refused(world, "alice", "/notify marketing instant")
    assert text == en("error.not_member", group="Marketing")


async def test_a_bad_notify_mode_shows_the_choices_and_the_usage(world: World) -> None:
    await world.say("admin", "/group create marketing Marketing")
    await world.say("alice", "/join marketing")
    text = await refused(world, "alice", "/notify marketing sometimes")
    assert text == with_usage(
        "en",
        en("error.bad_choice", value="sometimes", choices="instant, daily, weekly, mute, mail"),
        "/notify <group> instant|daily|weekly|mute|mail [--feeds]",
        "/notify marketing daily",
    )


async def test_an_unknown_group_is_not_found(world: World) -> None:
    await world.say("alice", "/whoami")
    for line in ("/join nowhere", "/leave nowhere", "/members nowhere", "/notify nowhere mute"):
        text = await refused(world, "alice", line)
        assert text == en("error.group_not_found", group="nowhere"), line


async def test_a_missing_argument_is_asked_for_or_says_there_is_nothing_to_pick(
    world: World,
) -> None:
    await world.say("alice", "/whoami")
    text = await refused(world, "alice", "/join")
    assert text == en("guide.none.join")
    text = await refused(world, "alice", "/add bob")
    assert text == en("guide.none.moderated")
    out = await world.say("alice", "/group create")
    assert out.text("alice") == asked("en", "guide.ask.group_create.slug")
    out = await world.say("alice", "marketing")
    assert out.text("alice") == en("group.created", slug="marketing", name="marketing", kind="open")


async def test_a_missing_subcommand_is_offered(world: World) -> None:
    await world.say("alice", "/whoami")
    out = await world.say("alice", "/group")
    assert out.text("alice") == asked("en", "guide.ask.sub_group", "create a group")
    out = await world.press("alice", out.sent[0], 0)
    assert out.text("alice") == asked("en", "guide.ask.group_create.slug")


async def test_too_many_arguments_are_refused_with_the_usage(world: World) -> None:
    await world.say("admin", "/group create marketing Marketing")
    await world.say("alice", "/whoami")
    text = await refused(world, "alice", "/join marketing sales")
    assert text == with_usage(
        "en", en("error.too_many_arguments", extra="sales"), "/join <group>", "/join marketing"
    )


async def test_an_unclosed_quote_is_refused(world: World) -> None:
    await world.say("alice", "/whoami")
    text = await refused(world, "alice", '/group create hr "Human Resources')
    assert text.startswith(en("error.unclosed_quote"))


async def test_a_bad_or_taken_slug_is_refused(world: World) -> None:
    await world.say("admin", "/group create marketing Marketing")
    await world.say("alice", "/whoami")
    for slug in ("x", "-ab", "sales!", "a" * 33):
        text = await refused(world, "alice", f"/group create {slug}")
        assert text.startswith(en("error.bad_slug", slug=slug)), slug
        assert "/group create <name>" in text
    text = await refused(world, "alice", "/group create marketing Again")
    assert text == en("error.slug_taken", slug="marketing")


async def test_closed_and_secret_exclude_each_other(world: World) -> None:
    await world.say("alice", "/whoami")
    text = await refused(world, "alice", "/group create ops Ops --closed --secret")
    assert text.startswith(en("error.exclusive_options", options="--closed|--secret"))
    text = await refused(world, "alice", "/group create ops Ops --public")
    assert text.startswith(en("error.unknown_option", option="--public"))


async def test_only_moderators_add_and_remove(world: World) -> None:
    await world.say("admin", "/group create marketing Marketing")
    await world.say("alice", "/join marketing")
    await world.say("bob", "/join marketing")
    await world.say("carol", "/whoami")
    text = await refused(world, "alice", "/add carol marketing")
    assert text == en("error.moderators_only", group="Marketing")
    text = await refused(world, "alice", "/remove bob marketing")
    assert text == en("error.moderators_only", group="Marketing")


async def test_add_and_remove_name_real_people_and_real_memberships(world: World) -> None:
    await world.say("admin", "/group create marketing Marketing")
    await world.say("alice", "/join marketing")
    await world.say("bob", "/whoami")
    text = await refused(world, "admin", "/add nobody marketing")
    assert text == en("error.person_not_found", person="nobody")
    text = await refused(world, "admin", "/add alice marketing")
    assert text == en("error.already_member_other", handle="alice", group="Marketing")
    text = await refused(world, "admin", "/remove bob marketing")
    assert text == en("error.not_member_other", handle="bob", group="Marketing")


async def test_errors_speak_the_persons_language(world: World) -> None:
    await world.say("admin", "/group create marketing Marketing")
    await world.say("alice", "/settings language de")
    out = await world.say("alice", "/join")
    assert out.text("alice") == asked("de", "guide.ask.join.group", "Marketing")
    assert (await world.say("alice", "abbrechen")).text("alice") == de("guide.cancelled")
    text = await refused(world, "alice", "/join nirgendwo")
    assert text == de("error.group_not_found", group="nirgendwo")
    text = await refused(world, "alice", "/notify marketing manchmal")
    assert text.startswith(
        de("error.bad_choice", value="manchmal", choices="instant, daily, weekly, mute, mail")
    )


async def test_a_reserved_mail_address_is_no_group_name(world: World) -> None:
    """A group's slug is its mail address: pinwall@ and bounces@ are Pinwall's own,
    postmaster@ and abuse@ the mail operators' — refused when typed, stepped over when
    the slug comes from a title."""
    await world.say("alice", "/whoami")
    for slug in ("pinwall", "bounces", "postmaster", "abuse"):
        text = await refused(world, "alice", f"/group create {slug}")
        assert text.startswith(en("error.slug_reserved", slug=slug)), slug
        assert "/group create <name>" in text
    await world.say("alice", "/settings language de")
    text = await refused(world, "alice", "/group create pinwall Pinwall-Team")
    assert "ist eine von Pinwalls eigenen Mail-Adressen" in text
    assert "Nimm einen anderen, z. B. pinwall-team." in text
    # a title "Pinwall" makes the slug pinwall-2, which can be mailed
    await world.say("alice", "/group create Pinwall")
    with world.db.uow() as uow:
        group = uow.groups.by_title("Pinwall")
        assert group is not None
        assert group.slug == "pinwall-2"
