"""People, as conversations: help, whoami, settings, role, link — and unknown commands."""

from __future__ import annotations

from dataclasses import replace

from bot.access import CONSOLE_ADMIN
from bot.markup import to_plain
from store.db import Database
from tests.bot.conversation import (
    asked,
    code_in,
    de,
    en,
    link_accounts,
    other_messenger,
    refused,
    refused_code,
    say_on,
    with_usage,
)
from tests.harness import Said, World

# --- help -------------------------------------------------------------------------------


def _help_lines(text: str) -> list[str]:
    """The commands a help answer lists, e.g. ["/help", "/groups", "/group create", ...]."""
    return [line.removeprefix("• ").split(" — ")[0] for line in text.splitlines() if " — " in line]


SHARE_EXAMPLE = "/share marketing https://example.com/poster New poster at the station"


async def test_help_fits_one_screen_with_what_a_member_can_do_by_task(world: World) -> None:
    out = await world.say("alice", "/help")
    assert out.text("alice").splitlines() == [
        en("help.short.header", handle="alice"),
        "• Share and read: share · show · comment · items · search",
        "• Groups: groups · join · leave · group",
        "• Announcements and polls: announce · poll",
        "• News: notify · digest · feed",
        "• Approvals: propose",
        "• Invites: invite · invites",
        "• Settings: settings · whoami · link",
        en("help.short.example", example=SHARE_EXAMPLE),
        en("help.short.footer"),
    ]


async def test_help_for_an_admin_adds_approvals_and_admin_and_stays_on_one_screen(
    world: World,
) -> None:
    text = (await world.say("admin", "/help")).text("admin")
    lines = text.splitlines()
    assert len(lines) <= 12
    assert "• Approvals: propose · pending · approve · reject" in lines
    assert "• Admin: role · audit · outbox · admin" in lines


async def test_help_examples_use_the_persons_own_group_and_post(world: World) -> None:
    await world.say("admin", "/group create sales Sales")
    await world.say("bob", "/join sales")
    await world.say("bob", "/share sales hello")
    text = (await world.say("bob", "/help")).text("bob")
    assert en("help.short.example", example=SHARE_EXAMPLE.replace("marketing", "sales")) in text
    text = (await world.say("bob", "/help comment")).text("bob")
    assert en("help.example_line", example="/comment #1 Great, thanks!") in text


async def test_help_all_lists_what_a_member_may_do(world: World) -> None:
    out = await world.say("alice", "/help all")
    text = out.text("alice")
    assert text.splitlines()[0] == en("help.header")
    assert text.splitlines()[-1] == en("help.all_footer")
    assert en("help.task.share") in text.splitlines()
    assert f"/share <group> <url or text...> — {en('help.share')}" in text
    listed = " ".join(_help_lines(text))
    for usage in ("/groups", "/group create", "/join", "/items", "/invite", "/settings language"):
        assert usage in listed
    assert "/show <post>" in listed
    assert "/role" not in listed  # admins only


async def test_help_all_for_an_admin_lists_role(world: World) -> None:
    text = (await world.say("admin", "/help all")).text("admin")
    assert f"/role <person> member|gatekeeper|admin — {en('help.role')}" in text


async def test_help_on_one_command_shows_its_usage_purpose_and_an_example(world: World) -> None:
    out = await world.say("alice", "/help share")
    assert out.text("alice") == (
        f"share\n/share <group> <url or text...>\n  {en('help.share')}\n"
        + en("help.example_line", example=SHARE_EXAMPLE)
    )
    out = await world.say("alice", "help /group")
    assert out.text("alice").splitlines()[:2] == [
        "group",
        "/group create <name> [title...] [--closed|--secret] [--externals]",
    ]
    out = await world.say("alice", "/help settings")
    assert "/settings language en|de" in out.text("alice")
    assert "/settings timezone <IANA zone>" in out.text("alice")
    assert en("help.example_line", example="/settings timezone Europe/Berlin") in out.text("alice")


async def test_help_on_a_command_not_for_the_role_says_so(world: World) -> None:
    out = await world.say("alice", "/help approve")
    assert out.text("alice").splitlines()[-1] == en(
        "help.not_for_role", why=en("help.why.gatekeeper")
    )


async def test_every_command_has_an_example_in_both_languages() -> None:
    from bot import grammar
    from bot.i18n import catalog

    for s in grammar.SPECS:
        for language in ("en", "de"):
            assert f"help.example.{s.key}" in catalog(language), (language, s.key)


async def test_help_on_an_unknown_command_is_refused(world: World) -> None:
    await world.say("alice", "/whoami")
    text = await refused(world, "alice", "/help frobnicate")
    assert text == en("error.unknown_command", command="frobnicate")


async def test_help_speaks_german_when_the_messenger_does(world: World) -> None:
    out = await world.say("greta", "/help", language="de-AT")
    assert out.text("greta").splitlines() == [
        de("help.short.header", handle="greta"),
        # the German names, which the grammar takes (bot.words)
        "• Teilen und lesen: teilen · zeigen · kommentieren · beiträge · suchen",
        "• Gruppen: gruppen · beitreten · verlassen · gruppe",
        "• Ankündigungen und Umfragen: ankündigen · umfrage",
        "• Neuigkeiten: benachrichtigung · zusammenfassung · feed",
        "• Freigaben: vorschlagen",
        "• Einladungen: einladen · einladungen",
        "• Einstellungen: einstellungen · whoami · verknüpfen",
        de(
            "help.short.example",
            example="/teilen vertrieb https://example.com/plakat Neues Plakat am Bahnhof",
        ),
        de("help.short.footer"),
    ]
    out = await world.say("greta", "/help all")
    assert f"/beitreten <gruppe> — {de('help.join')}" in out.text("greta")
    assert f"/zusammenfassung täglich <HH:MM> — {de('help.digest daily')}" in out.text("greta")
    # the example is what it says: typed, it is understood
    out = await world.say("greta", "/help beitraege")
    assert "/beitraege vertrieb 5" in out.text("greta")
    out = await world.say("greta", "/beitraege vertrieb 5")
    assert de("error.unknown_command", command="beitraege") not in out.text("greta")


# --- unknown commands -------------------------------------------------------------------


async def test_an_unknown_command_suggests_the_closest_one(world: World) -> None:
    await world.say("alice", "/whoami")
    text = await refused(world, "alice", "/grups")
    assert text == en("error.unknown_command_suggestion", command="grups", suggestion="groups")
    text = await refused(world, "alice", "/xyzzy")
    assert text == en("error.unknown_command", command="xyzzy")


async def test_an_unknown_command_is_answered_in_german(world: World) -> None:
    await world.say("alice", "/settings language de")
    text = await refused(world, "alice", "/joni marketing")
    assert text == de("error.unknown_command_suggestion", command="joni", suggestion="join")


# --- whoami and settings ----------------------------------------------------------------


async def test_whoami_tells_handle_role_language_zone_accounts_and_groups(world: World) -> None:
    await world.say("admin", "/group create marketing Marketing")
    await world.say("admin", "/group create board Board --secret")
    await world.say("alice", "/join marketing")
    await world.say("alice", "/notify marketing instant")
    out = await world.say("alice", "/whoami")
    assert out.text("alice") == en(
        "whoami.text",
        handle="alice",
        role="member",
        language="English",
        timezone="Europe/Berlin",
        accounts="memory (alice)",
        groups="marketing (instant)",
    ) + "\n" + en("digest.whoami", daily="08:00", day="Monday", weekly="08:00")
    out = await world.say("admin", "/whoami")
    assert "board (daily), marketing (daily)" in out.text("admin")
    assert "@admin (admin)" in out.text("admin")


async def test_settings_language_switches_the_answers_to_german(world: World) -> None:
    await world.say("admin", "/group create marketing Marketing")
    out = await world.say("alice", "/settings language de")
    assert out.text("alice") == de("settings.language_set", language="Deutsch")
    out = await world.say("alice", "/join marketing")
    assert out.text("alice") == de("join.done", group="Marketing")
    whoami = (await world.say("alice", "/whoami")).text("alice")
    assert "Deutsch" in whoami
    assert "marketing (täglich)" in whoami

    # the messenger's language no longer decides once a person has chosen
    out = await world.say("alice", "/groups", language="en")
    assert out.text("alice").splitlines()[0] == de("groups.header", count=1)

    out = await world.say("alice", "/settings language en")
    assert out.text("alice") == en("settings.language_set", language="English")


async def test_a_bad_language_is_refused(world: World) -> None:
    await world.say("alice", "/whoami")
    text = await refused(world, "alice", "/settings language fr")
    assert text == with_usage(
        "en",
        en("error.bad_choice", value="fr", choices="en, de"),
        "/settings language en|de",
        "/settings language de",
    )


async def test_settings_timezone_changes_how_times_are_shown(world: World) -> None:
    await world.say("admin", "/group create marketing Marketing")
    await world.say("admin", "/share marketing hello")
    out = await world.say("admin", "/settings timezone America/New_York")
    assert out.text("admin") == en(
        "settings.timezone_set", zone="America/New_York", now="2026-11-27 03:00"
    )
    listing = (await world.say("admin", "/items marketing")).text("admin")
    assert "2026-11-27 03:00" in listing
    assert "Europe/Berlin" not in (await world.say("admin", "/whoami")).text("admin")


async def test_an_unknown_timezone_is_refused(world: World) -> None:
    await world.say("alice", "/whoami")
    for zone in ("Mars/Olympus_Mons", "Europe", "../../etc/passwd", "europe/berlin"):
        text = await refused(world, "alice", f"/settings timezone {zone}")
        assert text == with_usage(
            "en",
            en("error.bad_timezone", zone=zone),
            "/settings timezone <IANA zone>",
            "/settings timezone Europe/Berlin",
        ), zone
    out = await world.say("alice", "/settings timezone")  # the zone is asked for
    assert out.text("alice") == asked("en", "guide.ask.settings_timezone.zone")


async def test_an_unknown_setting_shows_the_forms(world: World) -> None:
    await world.say("alice", "/whoami")
    text = await refused(world, "alice", "/settings colour blue")
    assert text.startswith(en("error.unknown_subcommand", command="settings", given="colour"))
    assert "/settings language en|de" in text


# --- role -------------------------------------------------------------------------------


async def test_an_admin_gives_a_role_and_the_person_is_told(world: World) -> None:
    await world.say("alice", "/whoami")
    out = await world.say("admin", "/role @alice gatekeeper")
    assert out.text("admin") == en("role.done", handle="alice", role="gatekeeper")
    assert out.text("alice") == en("role.told", handle="admin", role="gatekeeper")
    assert "@alice (gatekeeper)" in (await world.say("alice", "/whoami")).text("alice")


async def test_the_role_is_told_in_the_persons_language(world: World) -> None:
    await world.say("alice", "/settings language de")
    out = await world.say("admin", "/role alice admin")
    assert out.text("admin") == en("role.done", handle="alice", role="admin")
    assert out.text("alice") == de("role.told", handle="admin", role="Admin")


async def test_a_member_cannot_use_role(world: World) -> None:
    await world.say("alice", "/whoami")
    await world.say("bob", "/whoami")
    text = await refused(world, "alice", "/role alice admin")
    assert text == en("error.admins_only")
    text = await refused(world, "alice", "/role bob member")
    assert text == en("error.admins_only")


async def test_the_last_admin_cannot_be_demoted(world: World) -> None:
    text = await refused(world, "admin", "/role admin member")
    assert text == en("error.last_admin")

    await world.say("alice", "/whoami")
    await world.say("admin", "/role alice admin")
    out = await world.say("alice", "/role alice member")  # two admins: one may step down
    assert out.text("alice") == en("role.done", handle="alice", role="member")
    text = await refused(world, "admin", "/role admin gatekeeper")
    assert text == en("error.last_admin")


async def test_role_refuses_nonsense(world: World) -> None:
    await world.say("alice", "/whoami")
    text = await refused(world, "admin", "/role alice member")
    assert text == en("error.role_unchanged", handle="alice", role="member")
    text = await refused(world, "admin", "/role nobody member")
    assert text == en("error.person_not_found", person="nobody")
    text = await refused(world, "admin", "/role alice boss")
    assert text == with_usage(
        "en",
        en("error.bad_choice", value="boss", choices="member, gatekeeper, admin"),
        "/role <person> member|gatekeeper|admin",
        "/role @alice gatekeeper",
    )
    text = await refused(world, "admin", "/role alice admin now")
    assert text.startswith(en("error.too_many_arguments", extra="now"))


# --- PINWALL_ADMINS: a floor the role command does not go below --------------------------


async def test_an_admin_by_the_setting_is_not_demoted_and_the_admin_is_told_where(
    db: Database,
) -> None:
    """alice is listed in PINWALL_ADMINS: `role` refuses to take her admin role, names
    the setting and her account, and changes nothing (it would revert at her next event)."""
    world = World(db, admins=("admin", "alice"))
    try:
        await world.say("alice", "/whoami")
        assert role_of(world, "alice") == "admin"
        for lower in ("member", "gatekeeper"):
            text = await refused(world, "admin", f"/role alice {lower}")
            assert text == en("error.admin_by_setting", handle="alice", account="memory:alice")
        await world.say("admin", "/settings language de")
        text = await refused(world, "admin", "/role alice member")
        assert text == de("error.admin_by_setting", handle="alice", account="memory:alice")
        text = await refused(world, "alice", "/role alice member")  # herself neither
        assert text == en("error.admin_by_setting", handle="alice", account="memory:alice")
        await world.say("alice", "/groups")
        assert role_of(world, "alice") == "admin"
    finally:
        world.close()


async def test_an_admin_by_a_linked_account_is_not_demoted_either(world: World) -> None:
    """The setting lists one of the person's accounts, on another messenger."""
    telegram = other_messenger(world, "telegram")
    world.core.settings = replace(
        world.core.settings, admins=world.core.settings.admins | {("telegram", "555")}
    )
    await link_accounts(world, "alice", telegram, "555")
    assert role_of(world, "alice") == "admin"
    text = await refused(world, "admin", "/role alice member")
    assert text == en("error.admin_by_setting", handle="alice", account="telegram:555")


async def test_the_consoles_own_admin_keeps_the_role(world: World) -> None:
    console = other_messenger(world, "console")
    world.core.settings = replace(
        world.core.settings, admins=world.core.settings.admins | {CONSOLE_ADMIN}
    )
    await say_on(world, console, "admin", "/whoami")  # the console's admin: @admin-2
    with world.db.uow() as uow:
        account = uow.people.account(*CONSOLE_ADMIN)
        assert account is not None
        person = uow.people.get(account.person_id)
        assert person is not None
        handle = person.handle
    text = await refused(world, "admin", f"/role {handle} member")
    assert text == en("error.admin_by_console", handle=handle)


async def test_an_admin_not_in_the_setting_stays_demoted(world: World) -> None:
    await world.say("bob", "/whoami")
    await world.say("admin", "/role bob admin")
    out = await world.say("admin", "/role bob member")
    assert out.text("admin") == en("role.done", handle="bob", role="member")
    await world.say("bob", "/groups")
    world.clock.advance(3600)
    await world.say("bob", "/whoami")
    assert role_of(world, "bob") == "member"


async def test_once_the_setting_no_longer_lists_them_an_admin_can_be_demoted(
    db: Database,
) -> None:
    before = World(db, admins=("admin", "alice"))
    try:
        await before.say("alice", "/whoami")
        assert role_of(before, "alice") == "admin"
    finally:
        before.close()
    after = World(db, admins=("admin",))  # restarted without her in PINWALL_ADMINS
    try:
        out = await after.say("admin", "/role alice member")
        assert out.text("admin") == en("role.done", handle="alice", role="member")
        await after.say("alice", "/groups")
        assert role_of(after, "alice") == "member"
    finally:
        after.close()


def role_of(world: World, handle: str) -> str:
    with world.db.uow() as uow:
        person = uow.people.by_handle(handle)
        assert person is not None
        return str(person.role)


# --- link -------------------------------------------------------------------------------


async def test_link_adds_a_new_messenger_account_to_the_person(world: World) -> None:
    telegram = other_messenger(world, "telegram", trust="unknown")
    await world.say("admin", "/group create marketing Marketing")
    await world.say("alice", "/join marketing")
    out = await world.say("alice", "/link")
    code = code_in(out.text("alice"), "link.code", minutes=15)

    out = await say_on(world, telegram, "4711", f"/link {code}")
    assert out.text("4711") == en("link.asked", minutes=15, owner="alice")
    # nothing is linked yet: the account is nobody's, so it may do nothing
    out = await say_on(world, telegram, "4711", "/whoami")
    assert out.text("4711") == en("access.needs_invite", how="/redeem CODE")
    # alice is asked, on the account that made the code
    question = world.adapter.to("alice")[-1]
    assert to_plain(question.message.text) == en(
        "link.question_new", platform="Telegram", account="4711", minutes=15
    )
    assert [b.label for b in question.message.buttons] == [en("link.yes"), en("link.no")]
    out = await world.press("alice", question, 0)
    assert out.text("alice") == en(
        "link.confirmed", platform="Telegram", account="4711", handle="alice"
    )
    assert Said(telegram.sent[-1:]).text("4711") == en(
        "link.done", platform="Telegram", handle="alice"
    )

    out = await say_on(world, telegram, "4711", "/whoami")
    whoami = out.text("4711")
    assert "@alice (member)" in whoami
    assert "memory (alice), Telegram (4711)" in whoami
    assert "marketing (daily)" in whoami

    # the code is used up
    text = (await say_on(world, telegram, "4712", f"/link {code}")).text("4712")
    assert text == en("error.link_code_invalid")


async def test_a_link_code_said_in_a_room_reaches_its_owner_alone(world: World) -> None:
    """The takeover of issue 18: admin asks for a code in a shared room, mallory is there."""
    await world.say("admin", "/whoami")
    out = await world.say("admin", "/link", room="lobby")
    assert out.addresses == ["admin", "lobby"]
    code = code_in(out.text("admin"), "link.code", minutes=15)
    assert code not in out.text("lobby")
    assert out.text("lobby") == en("private.sent", name="admin")


async def test_a_stranger_with_a_leaked_code_gets_nothing_until_the_owner_says_no(
    world: World,
) -> None:
    telegram = other_messenger(world, "telegram", trust="unknown")
    await world.say("admin", "/group create secrets Secrets --secret")
    code = code_in((await world.say("admin", "/link")).text("admin"), "link.code", minutes=15)
    before = world.snapshot()

    out = await say_on(world, telegram, "666", f"/link {code}")
    assert out.text("666") == en("link.asked", minutes=15, owner="admin")
    for line in ("/audit", "/groups", "/items secrets", "/whoami"):
        out = await say_on(world, telegram, "666", line)
        assert out.text("666") == en("access.needs_invite", how="/redeem CODE"), line
    question = world.adapter.to("admin")[-1]
    out = await world.press("admin", question, 1)  # No
    assert out.text("admin") == en(
        "link.denied_owner", platform="Telegram", account="666", prefix="/"
    )
    assert Said(telegram.sent[-1:]).text("666") == en("link.denied")
    out = await say_on(world, telegram, "666", "/audit")
    assert out.text("666") == en("access.needs_invite", how="/redeem CODE")
    after = world.snapshot()
    assert after["people"] == before["people"]
    assert after["accounts"] == before["accounts"]
    # a second press of either button decides nothing more
    out = await world.press("admin", question, 0)
    assert out.text("admin") == en("link.already_answered", platform="Telegram", account="666")
    assert after["accounts"] == world.snapshot()["accounts"]


async def test_only_the_codes_owner_can_confirm(world: World) -> None:
    telegram = other_messenger(world, "telegram", trust="unknown")
    await world.say("mallory", "/whoami")
    code = code_in((await world.say("admin", "/link")).text("admin"), "link.code", minutes=15)
    await say_on(world, telegram, "666", f"/link {code}")
    question = world.adapter.to("admin")[-1]
    before = world.snapshot()
    out = await world.press("mallory", question, 0)  # a forwarded or forged press
    assert out.text("mallory") == en("error.button_expired")
    assert world.snapshot() == before
    text = await refused(world, "mallory", "/link confirm")
    assert text == en("error.link_nothing_open", prefix="/")


async def test_link_confirm_answers_without_buttons_and_in_german(world: World) -> None:
    telegram = other_messenger(world, "telegram", trust="unknown")
    await world.say("alice", "/settings language de")
    code = code_in((await world.say("alice", "/link")).text("alice"), "link.code", "de", minutes=15)
    out = await say_on(world, telegram, "4711", f"/link {code}")
    assert out.text("4711") == en(
        "link.asked", minutes=15, owner="alice"
    )  # the stranger's own language
    out = await world.say("alice", "/link ja")
    assert out.text("alice") == de(
        "link.confirmed", platform="Telegram", account="4711", handle="alice"
    )
    assert Said(telegram.sent[-1:]).text("4711") == de(
        "link.done", platform="Telegram", handle="alice"
    )


async def test_an_unanswered_link_request_expires(world: World) -> None:
    telegram = other_messenger(world, "telegram", trust="unknown")
    code = code_in((await world.say("alice", "/link")).text("alice"), "link.code", minutes=15)
    await say_on(world, telegram, "4711", f"/link {code}")
    question = world.adapter.to("alice")[-1]
    world.clock.advance(minutes=16)
    before = world.snapshot()
    out = await world.press("alice", question, 0)
    assert out.text("alice") == en(
        "error.link_request_expired", platform="Telegram", account="4711", prefix="/"
    )
    assert world.snapshot() == before


async def test_direct_messages_go_to_the_messenger_used_last(world: World) -> None:
    telegram = other_messenger(world, "telegram", trust="unknown")
    await world.say("admin", "/group create marketing Marketing")
    await world.say("alice", "/join marketing")
    await world.say("alice", "/notify marketing instant")
    await link_accounts(world, "alice", telegram, "4711")
    world.clock.advance(minutes=1)
    await say_on(world, telegram, "4711", "/whoami")

    before = len(telegram.sent)
    out = await world.say("admin", "/share marketing Seen on Telegram?")
    assert out.addresses == ["admin"]
    assert "Seen on Telegram?" in Said(telegram.sent[before:]).text("4711")

    world.clock.advance(minutes=1)
    await world.say("alice", "/whoami")  # alice is back on the first messenger
    out = await world.say("admin", "/share marketing And here?")
    assert "And here?" in out.text("alice")


async def test_linking_two_known_accounts_merges_them(world: World) -> None:
    slack = other_messenger(world, "slack")
    await world.say("admin", "/group create marketing Marketing")
    await world.say("admin", "/group create sales Sales")
    await world.say("alice", "/join marketing")
    await say_on(world, slack, "U1", "/join sales")  # a second person, @u1, on Slack
    await say_on(world, slack, "U1", "/share sales Slack news")
    code = code_in((await world.say("alice", "/link")).text("alice"), "link.code", minutes=15)

    out = await say_on(world, slack, "U1", f"/link {code}")
    assert out.text("U1") == en("link.asked", minutes=15, owner="alice")
    question = world.adapter.to("alice")[-1]
    assert to_plain(question.message.text) == en(
        "link.question", platform="Slack", account="U1", handle="u1", minutes=15
    )
    # until alice says yes, @u1 is still someone else
    assert "@alice" not in (await say_on(world, slack, "U1", "/whoami")).text("U1")
    await world.press("alice", question, 0)

    whoami = (await say_on(world, slack, "U1", "/whoami")).text("U1")
    assert "@alice (member)" in whoami
    assert "memory (alice), Slack (U1)" in whoami
    assert "marketing (daily), sales (daily)" in whoami
    members = (await world.say("alice", "/members sales")).text("alice")
    assert members == en("members.list", group="Sales", count=2, names="@admin (moderator), @alice")
    listing = (await world.say("alice", "/items sales")).text("alice")
    assert "@alice" in listing
    assert "@u1" not in listing
    text = await refused(world, "admin", "/role u1 gatekeeper")
    assert text == en("error.person_not_found", person="u1")


async def test_an_invalid_link_code_is_refused(world: World) -> None:
    telegram = other_messenger(world, "telegram", trust="unknown")
    await world.say("alice", "/whoami")
    text = await refused_code(world, "alice", "/link NOTACODE00")
    assert text == en("error.link_code_invalid")

    before = world.snapshot()
    out = await say_on(world, telegram, "4711", "/link NOTACODE00")
    assert out.text("4711") == en("error.link_code_invalid")
    after = world.snapshot()
    assert [r[1:4] for r in after["code_failures"][1:]] == [("telegram", "4711", "link")]
    assert {k: v for k, v in after.items() if k not in ("code_failures", "audit_log")} == {
        k: v for k, v in before.items() if k not in ("code_failures", "audit_log")
    }


async def test_a_link_code_expires(world: World) -> None:
    slack = other_messenger(world, "slack")
    await say_on(world, slack, "U1", "/whoami")
    code = code_in((await world.say("alice", "/link")).text("alice"), "link.code", minutes=15)
    world.clock.advance(minutes=16)
    out = await say_on(world, slack, "U1", f"/link {code}")
    assert out.text("U1") == en("error.link_code_invalid")
    whoami = (await say_on(world, slack, "U1", "/whoami")).text("U1")
    assert "@u1 (member)" in whoami
    assert "Accounts: Slack (U1)\n" in whoami


async def test_code_guessing_is_throttled(world: World) -> None:
    """After 5 wrong codes in 10 minutes the 6th is refused without being checked."""
    telegram = other_messenger(world, "telegram", trust="unknown")
    code = code_in((await world.say("alice", "/link")).text("alice"), "link.code", minutes=15)
    for guess in ("AAAAAAAAA1", "AAAAAAAAA2", "AAAAAAAAA3"):
        out = await say_on(world, telegram, "666", f"/link {guess}")
        assert out.text("666") == en("error.link_code_invalid")
    for guess in ("AAAAAAAAA4", "AAAAAAAAA5"):
        out = await say_on(world, telegram, "666", f"/start {guess}")
        assert out.text("666") == en("error.invite_invalid")
    world.clock.advance(minutes=3)
    out = await say_on(world, telegram, "666", f"/link {code}")  # the right one, now
    assert out.text("666") == en("error.too_many_codes", minutes=7)
    assert world.adapter.to("alice")[-1].message.buttons == ()  # alice was not asked
    assert world.core.metrics.code_failures.labels("link")._value.get() == 3
    assert world.core.metrics.code_failures.labels("invite")._value.get() == 2
    audit = (await world.say("admin", "/audit 10")).text("admin")
    wrong = en("audit.did.code.wrong", actor="Pinwall", subject="telegram:666")
    assert audit.count(wrong) == 5  # the audit log reads as sentences
    # someone else is not held up, and the window moves on
    out = await say_on(world, telegram, "4711", f"/link {code}")
    assert out.text("4711") == en("link.asked", minutes=15, owner="alice")
    world.clock.advance(minutes=8)
    out = await say_on(world, telegram, "666", "/link AAAAAAAAA6")
    assert out.text("666") == en("error.link_code_invalid")


async def test_your_own_link_code_is_refused(world: World) -> None:
    code = code_in((await world.say("alice", "/link")).text("alice"), "link.code", minutes=15)
    text = await refused(world, "alice", f"/link {code}")
    assert text == en("error.link_same_person")


async def test_email_says_plainly_when_this_pinwall_sends_no_mail(world: World) -> None:
    """Without the mail bridge a code would wait in the outbox for ever: refused, with
    nothing written, in the person's language."""
    text = await refused(world, "alice", "/email alice@example.com")
    assert text == en("mail.error.not_set_up")
    text = await refused(world, "alice", "/mail alice@example.com", language="de")
    assert text == de("mail.error.not_set_up")
