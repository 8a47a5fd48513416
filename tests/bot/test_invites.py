"""Invites, as conversations: invite, invites, revoke, redeem (and /start CODE), from the
first contact of someone Pinwall does not know yet to the groups the invite opens."""

from __future__ import annotations

from tests.bot.conversation import (
    asked,
    de,
    en,
    only_a_wrong_code,
    other_messenger,
    refused,
    refused_code,
    say_on,
)
from tests.harness import Said, World

INVITE_USAGE = "Usage: /invite member|guest|partner <group,group> [--uses <n>] [--days"


def invite_code(out: Said, who: str) -> str:
    [answer] = out.to(who)
    code = answer.message.meta["invite_code"]
    assert isinstance(code, str)
    assert len(code) == 10
    assert code.isascii()
    assert code.isalnum()
    assert f"redeem {code}" in out.text(who)
    return code


async def test_an_invite_lets_a_stranger_in_and_into_its_groups(world: World) -> None:
    telegram = other_messenger(world, "telegram", trust="unknown")
    await world.say("admin", "/group create marketing Marketing")
    await world.say("admin", "/group create sales Sales --closed")
    out = await world.say("admin", "/invite member marketing,sales")
    code = invite_code(out, "admin")
    assert out.text("admin") == en(
        "invite.created",
        role="member",
        groups="Marketing, Sales",
        code=code,
        uses=1,
        until="2026-12-04 09:00",
    )

    out = await say_on(world, telegram, "4711", f"/redeem {code}")
    assert out.text("4711").startswith(
        en("redeem.done", handle="4711", groups="Marketing (marketing), Sales (sales)")
    )
    whoami = (await say_on(world, telegram, "4711", "/whoami")).text("4711")
    assert "@4711 (member)" in whoami
    assert "marketing (daily), sales (daily)" in whoami


async def test_a_stranger_without_an_invite_is_told_how_to_get_in(world: World) -> None:
    telegram = other_messenger(world, "telegram", trust="unknown")
    before = world.snapshot()
    for line in ("hello", "/groups", "/help", "/join marketing"):
        out = await say_on(world, telegram, "4711", line)
        assert out.text("4711") == en("access.needs_invite", how="/redeem CODE"), line
    out = await say_on(world, telegram, "4711", "/start")
    assert out.text("4711") == en("access.start_without_code", how="/redeem CODE")
    assert world.snapshot() == before


async def test_a_stranger_is_answered_in_the_messengers_language(world: World) -> None:
    before = world.snapshot()
    world.adapter.trust = "unknown"
    out = await world.say("greta", "hallo", language="de")
    assert out.text("greta") == de("access.needs_invite", how="/redeem CODE")
    out = await world.say("greta", "/redeem NOTACODE00", language="de")
    assert out.text("greta") == de("error.invite_invalid")
    only_a_wrong_code(world, before, "memory", "greta")


async def test_start_with_a_code_redeems_it(world: World) -> None:
    telegram = other_messenger(world, "telegram", trust="unknown")
    await world.say("admin", "/group create marketing Marketing")
    code = invite_code(await world.say("admin", "/invite member marketing"), "admin")
    out = await say_on(world, telegram, "4711", f"/start {code}")
    assert out.text("4711").startswith(
        en("redeem.done", handle="4711", groups="Marketing (marketing)")
    )
    out = await say_on(world, telegram, "4711", "/start")
    assert out.text("4711") == en("start.known", handle="4711")


async def test_a_plain_redeem_message_is_the_redeem_command(world: World) -> None:
    telegram = other_messenger(world, "telegram", trust="unknown")
    await world.say("admin", "/group create marketing Marketing")
    code = invite_code(await world.say("admin", "/invite member marketing"), "admin")
    out = await say_on(world, telegram, "4711", f"redeem {code}")
    assert out.text("4711").startswith(
        en("redeem.done", handle="4711", groups="Marketing (marketing)")
    )


async def test_a_member_redeems_an_invite_to_a_closed_group(world: World) -> None:
    await world.say("admin", "/group create sales Sales --closed")
    code = invite_code(await world.say("admin", "/invite member sales"), "admin")
    out = await world.say("alice", f"/redeem {code}")
    assert out.text("alice").startswith(en("redeem.done", handle="alice", groups="Sales (sales)"))
    members = (await world.say("alice", "/members sales")).text("alice")
    assert members == en("members.list", group="Sales", count=2, names="@admin (moderator), @alice")


async def test_an_invite_counts_its_uses(world: World) -> None:
    telegram = other_messenger(world, "telegram", trust="unknown")
    await world.say("admin", "/group create marketing Marketing")
    code = invite_code(await world.say("admin", "/invite member marketing --uses 2"), "admin")
    await say_on(world, telegram, "t1", f"/redeem {code}")
    listing = (await world.say("admin", "/invites")).text("admin")
    assert listing.splitlines() == [
        en("invites.header", count=1),
        en(
            "invites.line",
            code=code,
            role="member",
            groups="marketing",
            left=1,
            until="2026-12-04 09:00",
            by="admin",
        ),
    ]
    await say_on(world, telegram, "t2", f"/redeem {code}")
    assert (await world.say("admin", "/invites")).text("admin") == en("invites.none")

    before = world.snapshot()
    out = await say_on(world, telegram, "t3", f"/redeem {code}")
    assert out.text("t3") == en("error.invite_used_up")
    only_a_wrong_code(world, before, "telegram", "t3")
    members = (await world.say("admin", "/members marketing")).text("admin")
    assert members == en(
        "members.list", group="Marketing", count=3, names="@admin (moderator), @t1, @t2"
    )


async def test_an_invite_expires(world: World) -> None:
    telegram = other_messenger(world, "telegram", trust="unknown")
    await world.say("admin", "/group create marketing Marketing")
    code = invite_code(await world.say("admin", "/invite member marketing"), "admin")
    world.clock.advance(days=8)
    before = world.snapshot()
    out = await say_on(world, telegram, "4711", f"/redeem {code}")
    assert out.text("4711") == en("error.invite_used_up")
    only_a_wrong_code(world, before, "telegram", "4711")
    assert (await world.say("admin", "/invites")).text("admin") == en("invites.none")


async def test_days_sets_how_long_an_invite_lasts(world: World) -> None:
    telegram = other_messenger(world, "telegram", trust="unknown")
    await world.say("admin", "/group create marketing Marketing")
    out = await world.say("admin", "/invite member marketing --days 30 --uses 5")
    code = invite_code(out, "admin")
    assert out.text("admin") == en(
        "invite.created",
        role="member",
        groups="Marketing",
        code=code,
        uses=5,
        until="2026-12-27 09:00",
    )
    world.clock.advance(days=29)
    out = await say_on(world, telegram, "4711", f"/redeem {code}")
    assert out.text("4711").startswith(
        en("redeem.done", handle="4711", groups="Marketing (marketing)")
    )


async def test_a_revoked_invite_is_refused(world: World) -> None:
    telegram = other_messenger(world, "telegram", trust="unknown")
    await world.say("admin", "/group create marketing Marketing")
    code = invite_code(await world.say("admin", "/invite member marketing --uses 10"), "admin")
    out = await world.say("admin", f"/revoke {code}")
    assert out.text("admin") == en("revoke.done", code=code)
    assert (await world.say("admin", "/invites")).text("admin") == en("invites.none")

    before = world.snapshot()
    out = await say_on(world, telegram, "4711", f"/redeem {code}")
    assert out.text("4711") == en("error.invite_invalid")
    only_a_wrong_code(world, before, "telegram", "4711")
    text = await refused(world, "admin", f"/revoke {code}")
    assert text == en("error.invite_already_revoked", code=code)


async def test_members_see_and_revoke_only_their_own_invites(world: World) -> None:
    await world.say("admin", "/group create marketing Marketing")
    await world.say("alice", "/join marketing")
    await world.say("bob", "/join marketing")
    admins = invite_code(await world.say("admin", "/invite member marketing"), "admin")
    alices = invite_code(await world.say("alice", "/invite member marketing"), "alice")

    listing = (await world.say("alice", "/invites")).text("alice")
    assert alices in listing
    assert admins not in listing
    listing = (await world.say("admin", "/invites")).text("admin")
    assert alices in listing
    assert admins in listing
    assert (await world.say("bob", "/invites")).text("bob") == en("invites.none")

    text = await refused(world, "bob", f"/revoke {alices}")
    assert text == en("error.invite_not_found", code=alices)
    text = await refused(world, "alice", f"/revoke {admins}")
    assert text == en("error.invite_not_found", code=admins)
    out = await world.say("admin", f"/revoke {alices}")  # admins manage every invite
    assert out.text("admin") == en("revoke.done", code=alices)


async def test_who_may_invite_to_which_group(world: World) -> None:
    await world.say("admin", "/group create marketing Marketing")
    await world.say("admin", "/group create sales Sales --closed")
    await world.say("admin", "/group create board Board --secret")
    await world.say("alice", "/join marketing")
    await world.say("admin", "/add alice sales")
    text = await refused(world, "alice", "/invite member sales")
    assert text == en("error.invite_not_allowed", group="Sales")
    text = await refused(world, "alice", "/invite member board")
    assert text == en("error.group_not_found", group="board")
    text = await refused(world, "alice", "/invite member marketing,nowhere")
    assert text == en("error.group_not_found", group="nowhere")
    text = await refused(world, "alice", "/invite partner marketing")
    assert text == en("error.group_no_externals_invite", group="Marketing", slug="marketing")

    # outsiders are invited by the moderators of a group that admits them
    await world.say("admin", "/group create franchise Franchise --externals")
    await world.say("alice", "/join franchise")
    text = await refused(world, "alice", "/invite partner franchise")
    assert text == en("error.invite_not_allowed", group="Franchise")
    out = await world.say("alice", "/invite member franchise")
    assert invite_code(out, "alice")


async def test_bad_invite_options_are_refused(world: World) -> None:
    await world.say("admin", "/group create marketing Marketing")
    for line, error in [
        ("/invite member marketing --uses 0", en("error.bad_uses", max=1000)),
        ("/invite member marketing --days 400", en("error.bad_days", max=365)),
        ("/invite member marketing --days", en("error.option_needs_value", option="--days")),
        (
            "/invite boss marketing",
            en("error.bad_choice", value="boss", choices="member, guest, partner"),
        ),
    ]:
        text = await refused(world, "admin", line)
        assert text.startswith(error + "\n"), line
        assert INVITE_USAGE in text, line
    text = await refused(world, "admin", "/invite member ,")
    assert text.startswith(en("error.missing_argument", param="groups") + "\n")
    out = await world.say("admin", "/invite member")  # the groups are asked for
    assert out.text("admin").startswith(asked("en", "guide.ask.invite.groups"))
    out = await world.say("admin", "/redeem")  # and the code
    assert out.text("admin") == asked("en", "guide.ask.redeem.code")
    text = await refused_code(world, "admin", "/redeem NOTACODE00")
    assert text == en("error.invite_invalid")


async def test_a_partner_invite_opens_only_external_groups(world: World) -> None:
    telegram = other_messenger(world, "telegram", trust="unknown")
    await world.say("admin", "/group create franchise Franchise --externals")
    out = await world.say("admin", "/invite partner franchise")
    code = invite_code(out, "admin")
    assert out.text("admin").startswith(
        en(
            "invite.created",
            role="partner",
            groups="Franchise",
            code=code,
            uses=1,
            until="2026-12-04 09:00",
        ).split("\n")[0]
    )
    out = await say_on(world, telegram, "paul", f"/start {code}")
    assert out.text("paul").startswith(
        en("redeem.done", handle="paul", groups="Franchise (franchise)")
    )
    whoami = (await say_on(world, telegram, "paul", "/whoami")).text("paul")
    assert "@paul (partner)" in whoami
    members = (await world.say("admin", "/members franchise")).text("admin")
    assert members == en(
        "members.list", group="Franchise", count=2, names="@admin (moderator), @paul (partner)"
    )


async def test_a_partner_cannot_create_groups_or_invite(world: World) -> None:
    await world.say("admin", "/group create franchise Franchise --externals")
    code = invite_code(await world.say("admin", "/invite partner franchise"), "admin")
    world.adapter.trust = "unknown"
    await world.say("paul", f"/redeem {code}")
    world.adapter.trust = "member"

    for line in (
        "/group create shop Shop",
        "/invite partner franchise",
        "/invite member franchise",
        "/invites",
        f"/revoke {code}",
    ):
        text = await refused(world, "paul", line)
        assert text == en("error.not_for_externals"), line
    text = await refused(world, "paul", "/join franchise")
    assert text == en("error.already_member", group="Franchise")

    help_text = (await world.say("paul", "/help all")).text("paul")
    assert "/share <group>" in help_text
    assert "/group create" not in help_text
    assert "/invite " not in help_text


async def test_a_group_named_twice_is_invited_to_once(world: World) -> None:
    telegram = other_messenger(world, "telegram", trust="unknown")
    await world.say("admin", "/group create marketing Marketing")
    out = await world.say("admin", "/invite member marketing,#Marketing")
    code = invite_code(out, "admin")
    assert out.text("admin").startswith(
        en(
            "invite.created",
            role="member",
            groups="Marketing",
            code=code,
            uses=1,
            until="2026-12-04 09:00",
        )
    )
    out = await say_on(world, telegram, "4711", f"/redeem {code}")
    assert out.text("4711").startswith(
        en("redeem.done", handle="4711", groups="Marketing (marketing)")
    )


async def test_a_member_invite_makes_a_partner_a_member(world: World) -> None:
    await world.say("admin", "/group create marketing Marketing")
    await world.say("admin", "/group create franchise Franchise --externals")
    partner_code = invite_code(await world.say("admin", "/invite partner franchise"), "admin")
    world.adapter.trust = "unknown"
    await world.say("paul", f"/redeem {partner_code}")
    world.adapter.trust = "member"
    assert "marketing" not in (await world.say("paul", "/groups")).text("paul")

    member_code = invite_code(await world.say("admin", "/invite member marketing"), "admin")
    out = await world.say("paul", f"/redeem {member_code}")
    assert out.text("paul").startswith(
        en("redeem.done", handle="paul", groups="Marketing (marketing)")
    )
    whoami = (await world.say("paul", "/whoami")).text("paul")
    assert "@paul (member)" in whoami
    assert "franchise (daily), marketing (daily)" in whoami


async def test_a_members_member_invite_does_not_make_a_guest_a_colleague(world: World) -> None:
    """Any member may invite colleagues into an open group; a guest who redeems such a
    code stays a guest (only an admin's member invite lets an external in fully)."""
    await world.say("admin", "/group create ext Agency --externals")
    await world.say("admin", "/group create lunch Lunch")
    await world.say("bob", "/join lunch")
    guest_code = invite_code(await world.say("admin", "/invite guest ext"), "admin")
    world.adapter.trust = "unknown"
    await world.say("gina", f"/redeem {guest_code}")
    world.adapter.trust = "member"
    members_code = invite_code(await world.say("bob", "/invite member lunch"), "bob")
    await world.say("gina", f"/redeem {members_code}")
    with world.db.uow() as uow:
        gina = uow.people.by_handle("gina")
        assert gina is not None
        assert gina.role == "guest"
    # An admin's member invite does.
    admins_code = invite_code(await world.say("admin", "/invite member lunch"), "admin")
    await world.say("gina", f"/redeem {admins_code}")
    with world.db.uow() as uow:
        gina = uow.people.by_handle("gina")
        assert gina is not None
        assert gina.role == "member"
