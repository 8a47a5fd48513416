"""Digests, as conversations: digest now, digest daily/weekly/off and their wrong forms
(which change nothing), what a digest holds (ranking, cap, watermarks, visibility, feed
entries) and when it is due (time zones, DST)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.commands.digests import DAYS, parse_day, parse_time
from bot.digest import next_daily, next_weekly
from bot.errors import UserError
from bot.markup import to_plain
from store.models import Comment, Item, ItemKind
from tests.bot.conversation import asked, de, en, refused, with_usage
from tests.harness import Said, World

BERLIN = ZoneInfo("Europe/Berlin")


def person_id(world: World, handle: str) -> int:
    with world.db.uow() as uow:
        person = uow.people.by_handle(handle)
        assert person is not None
        return person.id


def group_id(world: World, slug: str) -> int:
    with world.db.uow() as uow:
        group = uow.groups.by_slug(slug)
        assert group is not None
        return group.id


def schedule(world: World, handle: str) -> tuple[datetime | None, datetime | None, bool]:
    pid = person_id(world, handle)
    with world.db.uow() as uow:
        row = uow.digests.schedule(pid)
        assert row is not None
        return row.daily_due, row.weekly_due, row.paused


def digest_of(out: Said, who: str) -> list[str]:
    """The digest `who` received: its title, then its lines, as plain text."""
    [sent] = out.to(who)
    message = sent.message
    assert message.title is not None
    return [to_plain(message.title), *to_plain(message.text).splitlines()]


async def marketing(world: World) -> None:
    await world.say("admin", "/group create marketing Marketing")
    await world.say("alice", "/join marketing")
    await world.say("bob", "/join marketing")


async def share(world: World, who: str, group: str, text: str, *, hours: float = 0) -> int:
    """A share `hours` after the previous moment; the new post's number."""
    world.clock.advance(hours=hours)
    out = await world.say(who, f"/share {group} {text}")
    answer = out.text(who)
    assert answer.startswith("Shared as #"), answer
    return int(answer.removeprefix("Shared as #").split()[0])


# --- digest now -------------------------------------------------------------------------


async def test_digest_now_sends_what_is_new_and_then_says_nothing_is(world: World) -> None:
    await marketing(world)
    await share(world, "bob", "marketing", "https://example.com/poster New poster")
    await share(world, "bob", "marketing", "Competitor opened a shop", hours=1)

    out = await world.say("alice", "/digest now")
    assert digest_of(out, "alice") == [
        en("digest.title.now", date="2026-11-27"),
        en("digest.group", group="Marketing", count=2),
        "• #2 Competitor opened a shop · @bob",
        "• #1 New poster · https://example.com/poster · @bob",
    ]
    out = await world.say("alice", "/digest now")
    assert out.text("alice") == en("digest.nothing_new")


async def test_digest_now_in_german(world: World) -> None:
    await marketing(world)
    await world.say("alice", "/settings language de")
    await share(world, "bob", "marketing", "Neues Plakat am Bahnhof")
    out = await world.say("alice", "/digest now")
    assert digest_of(out, "alice") == [
        "Deine Zusammenfassung · 27.11.2026",
        "Marketing · 1 neuer Beitrag",
        "• #1 Neues Plakat am Bahnhof · @bob",
    ]
    assert (await world.say("alice", "/digest now")).text("alice") == de("digest.nothing_new")


async def test_ones_own_posts_are_not_in_ones_digest(world: World) -> None:
    await marketing(world)
    await share(world, "bob", "marketing", "my own poster")
    out = await world.say("bob", "/digest now")
    assert out.text("bob") == en("digest.nothing_new")


async def test_without_daily_or_weekly_groups_digest_now_says_how_to_get_some(
    world: World,
) -> None:
    await marketing(world)
    await world.say("admin", "/group create sales Sales")
    await world.say("alice", "/join sales")
    await world.say("alice", "/notify marketing instant --feeds")
    await world.say("alice", "/notify sales mute")
    await share(world, "bob", "marketing", "instant news")
    out = await world.say("alice", "/digest now")
    assert out.text("alice") == en("digest.no_groups")
    # On instant without --feeds, the group's feed entries come in the digest.
    await world.say("alice", "/notify marketing instant")
    assert (await world.say("alice", "/digest now")).text("alice") == en("digest.nothing_new")


async def test_posts_are_ranked_by_comments_reactions_and_recency_and_capped(
    world: World,
) -> None:
    await marketing(world)
    await world.say("carol", "/join marketing")
    ids = [await share(world, "bob", "marketing", f"post {n}", hours=1) for n in range(1, 8)]
    carol = person_id(world, "carol")
    with world.db.uow() as uow:
        # Post 1 is six hours old but discussed; post 2 five hours old with a reaction.
        for text in ("good one", "agreed"):
            uow.items.add_comment(
                Comment(item_id=ids[0], author_id=carol, text=text, created_at=world.clock.now())
            )
        uow.items.add_reaction(ids[1], carol, "👍", world.clock.now())
        uow.commit()

    out = await world.say("alice", "/digest now")
    assert digest_of(out, "alice") == [
        en("digest.title.now", date="2026-11-27"),
        en("digest.group", group="Marketing", count=7),
        "• #1 post 1 · @bob · 2 comments",  # 3×2 + 10×0.5^(6/24) = 14.4
        "• #2 post 2 · @bob · 1 reaction",  # 2×1 + 10×0.5^(5/24) = 10.7
        "• #7 post 7 · @bob",  # 10
        "• #6 post 6 · @bob",  # 9.7
        "• #5 post 5 · @bob",  # 9.4
        to_plain(en("digest.more", count=2, prefix="/", slug="marketing")),
    ]
    assert to_plain(en("digest.more", count=2, prefix="/", slug="marketing")) == (
        "and 2 more posts: /items marketing"
    )


async def test_the_second_digest_holds_only_what_came_since_the_first(world: World) -> None:
    await marketing(world)
    await share(world, "bob", "marketing", "first")
    await world.say("alice", "/digest now")
    await share(world, "bob", "marketing", "second", hours=1)
    out = await world.say("alice", "/digest now")
    assert digest_of(out, "alice")[1:] == [
        en("digest.group", group="Marketing", count=1),
        "• #2 second · @bob",
    ]


async def test_a_new_member_does_not_get_the_groups_history(world: World) -> None:
    await marketing(world)
    await share(world, "bob", "marketing", "old news")
    world.clock.advance(minutes=5)
    await world.say("carol", "/join marketing")
    assert (await world.say("carol", "/digest now")).text("carol") == en("digest.nothing_new")
    await share(world, "bob", "marketing", "fresh news", hours=1)
    out = await world.say("carol", "/digest now")
    assert digest_of(out, "carol")[1:] == [
        en("digest.group", group="Marketing", count=1),
        "• #2 fresh news · @bob",
    ]


async def test_feed_entries_are_in_digests_with_shares(world: World) -> None:
    await marketing(world)
    await share(world, "bob", "marketing", "a share")
    world.clock.advance(hours=1)
    marketing_id = group_id(world, "marketing")
    with world.db.uow() as uow:
        uow.items.add(
            Item(
                group_id=marketing_id,
                author_id=None,
                kind=ItemKind.FEED_ENTRY,
                text="What the trade press says",
                url="https://news.example.com/a",
                title="Trade press: poster wins award",
                site_name="Trade News",
                source_platform="feed",
                created_at=world.clock.now(),
            )
        )
        uow.commit()
    out = await world.say("alice", "/digest now")
    assert digest_of(out, "alice")[1:] == [
        en("digest.group", group="Marketing", count=2),
        "• #2 Trade press: poster wins award (news.example.com) (https://news.example.com/a)"
        " · Trade News",
        "• #1 a share · @bob",
    ]


async def test_several_groups_come_in_one_digest_by_name(world: World) -> None:
    await marketing(world)
    await world.say("admin", "/group create sales Sales")
    await world.say("alice", "/join sales")
    await world.say("alice", "/notify sales weekly")
    await share(world, "admin", "sales", "sales figures")
    await share(world, "bob", "marketing", "poster")
    out = await world.say("alice", "/digest now")
    assert digest_of(out, "alice")[1:] == [
        en("digest.group", group="Marketing", count=1),
        "• #2 poster · @bob",
        "",
        en("digest.group", group="Sales", count=1),
        "• #1 sales figures · @admin",
    ]


# --- visibility ------------------------------------------------------------------------


async def test_a_group_one_left_or_was_removed_from_is_not_in_the_digest(world: World) -> None:
    await marketing(world)
    await world.say("admin", "/group create sales Sales")
    await world.say("admin", "/group create board Board --secret")
    await world.say("alice", "/join sales")
    await world.say("admin", "/add alice board")
    await share(world, "admin", "sales", "sales figures")
    await share(world, "admin", "board", "board minutes")
    await share(world, "bob", "marketing", "poster")
    await world.say("alice", "/leave sales")
    await world.say("admin", "/remove alice board")
    out = await world.say("alice", "/digest now")
    assert digest_of(out, "alice")[1:] == [
        en("digest.group", group="Marketing", count=1),
        "• #3 poster · @bob",
    ]


async def test_a_secret_group_is_in_its_members_digest(world: World) -> None:
    await world.say("admin", "/group create board Board --secret")
    await world.say("alice", "/whoami")
    await world.say("admin", "/add alice board")
    await share(world, "admin", "board", "board minutes")
    out = await world.say("alice", "/digest now")
    assert digest_of(out, "alice")[1:] == [
        en("digest.group", group="Board", count=1),
        "• #1 board minutes · @admin",
    ]


async def test_an_external_gets_only_groups_that_admit_externals(world: World) -> None:
    await world.say("admin", "/group create marketing Marketing")
    await world.say("admin", "/group create agencies Agencies --externals")
    world.adapter.trust = "external"
    await world.say("gina", "/whoami")
    world.adapter.trust = "member"
    await world.say("admin", "/add gina agencies")
    # A membership of an internal group (a group that stopped admitting externals
    # looks the same): the policy keeps it out of her digest.
    gina, internal = person_id(world, "gina"), group_id(world, "marketing")
    with world.db.uow() as uow:
        uow.groups.add_member(gina, internal, now=world.clock.now())
        uow.commit()
    await share(world, "admin", "marketing", "internal campaign")
    await share(world, "admin", "agencies", "agency briefing")
    out = await world.say("gina", "/digest now")
    assert digest_of(out, "gina")[1:] == [
        en("digest.group", group="Agencies", count=1),
        "• #2 agency briefing · @admin",
    ]


# --- digest daily / weekly / off ---------------------------------------------------------


async def test_digest_daily_sets_the_time_and_says_when_the_next_comes(world: World) -> None:
    # The fake clock starts on Friday 2026-11-27 08:00 UTC, 09:00 in Berlin.
    out = await world.say("alice", "/digest daily 07:30")
    assert out.text("alice") == en(
        "digest.daily_set", time="07:30", next="Saturday, 2026-11-28 07:30"
    )
    daily, weekly, paused = schedule(world, "alice")
    assert daily == datetime(2026, 11, 28, 6, 30, tzinfo=UTC)
    assert weekly == datetime(2026, 11, 30, 7, 0, tzinfo=UTC)  # the default, Monday 08:00
    assert not paused
    out = await world.say("alice", "/digest daily 9:30")
    assert out.text("alice") == en(
        "digest.daily_set", time="09:30", next="Friday, 2026-11-27 09:30"
    )


async def test_digest_weekly_takes_english_and_german_day_names(world: World) -> None:
    out = await world.say("alice", "/digest weekly wed 17:00")
    assert out.text("alice") == en(
        "digest.weekly_set", day="Wednesday", time="17:00", next="Wednesday, 2026-12-02 17:00"
    )
    await world.say("alice", "/settings language de")
    out = await world.say("alice", "/digest weekly Mo. 8.15")
    assert out.text("alice") == de(
        "digest.weekly_set", day="Montag", time="08:15", next="Montag, 30.11.2026 08:15"
    )
    assert schedule(world, "alice")[1] == datetime(2026, 11, 30, 7, 15, tzinfo=UTC)


def test_day_names_and_times() -> None:
    for names, day in (
        (("mon", "Monday", "mo", "Montag", "mo."), 0),
        (("tue", "di", "Dienstag"), 1),
        (("wed", "mi", "mittwoch"), 2),
        (("thu", "thursday", "do", "donnerstag"), 3),
        (("fri", "fr", "freitag"), 4),
        (("sat", "sa", "samstag", "sonnabend"), 5),
        (("sun", "so", "sonntag"), 6),
    ):
        for name in names:
            assert parse_day(name) == day, name
    assert set(DAYS.values()) == set(range(7))
    assert parse_time("0:00", "digest daily") == 0
    assert parse_time("23:59", "digest daily") == 23 * 60 + 59
    # Issue 21: the hour alone, "8 Uhr" and "8am" are times people type (bot/when.py).
    for typed, minute in (("8", 480), ("8 Uhr", 480), ("08.00", 480), ("8am", 480)):
        assert parse_time(typed, "digest daily") == minute, typed
    for bad in ("24:00", "24", "8:5", "08:60", "13pm", "-1:00", "08:00:00"):
        with pytest.raises(UserError):
            parse_time(bad, "digest daily")


async def test_wrong_times_and_days_are_refused_with_the_usage(world: World) -> None:
    await world.say("alice", "/digest daily 07:00")
    for line, text in (
        ("/digest daily 25:00", en("digest.bad_time", value="25:00")),
        ("/digest daily 13pm", en("digest.bad_time", value="13pm")),
        ("/digest weekly mon 99:00", en("digest.bad_time", value="99:00")),
    ):
        usage = "/digest weekly <day> <HH:MM>" if "weekly" in line else "/digest daily <HH:MM>"
        example = "/digest weekly monday 08:00" if "weekly" in line else "/digest daily 08:00"
        assert await refused(world, "alice", line) == with_usage("en", text, usage, example), line
    text = await refused(world, "alice", "/digest weekly funday 08:00")
    assert text == with_usage(
        "en",
        en("digest.bad_day", value="funday"),
        "/digest weekly <day> <HH:MM>",
        "/digest weekly monday 08:00",
    )
    out = await world.say("alice", "/digest daily")  # a missing time is asked for
    assert out.text("alice") == asked("en", "guide.ask.digest_daily.time")
    text = await refused(world, "alice", "/digest sometimes")
    assert "/digest now" in text


async def test_digest_off_pauses_both_and_a_time_switches_them_on_again(world: World) -> None:
    out = await world.say("alice", "/digest off")
    assert out.text("alice") == en("digest.off")
    assert schedule(world, "alice") == (None, None, True)
    assert await refused(world, "alice", "/digest off") == en("digest.already_off")
    whoami = (await world.say("alice", "/whoami")).text("alice")
    assert whoami.splitlines()[-1] == en(
        "digest.whoami_paused", daily="08:00", day="Monday", weekly="08:00"
    )
    out = await world.say("alice", "/digest weekly fri 16:00")
    assert out.text("alice") == "\n".join(
        [
            en(
                "digest.weekly_set",
                day="Friday",
                time="16:00",
                next="Friday, 2026-11-27 16:00",
            ),
            en("digest.resumed"),
        ]
    )
    daily, weekly, paused = schedule(world, "alice")
    assert (daily, weekly, paused) == (
        datetime(2026, 11, 28, 7, 0, tzinfo=UTC),
        datetime(2026, 11, 27, 15, 0, tzinfo=UTC),
        False,
    )
    whoami = (await world.say("alice", "/whoami")).text("alice")
    assert whoami.splitlines()[-1] == en(
        "digest.whoami", daily="08:00", day="Friday", weekly="16:00"
    )


async def test_a_new_time_zone_moves_the_due_times(world: World) -> None:
    await world.say("alice", "/digest daily 08:00")
    assert schedule(world, "alice")[0] == datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
    await world.say("alice", "/settings timezone America/New_York")
    daily, weekly, _ = schedule(world, "alice")
    # 08:00 in New York: 13:00 UTC; it is 03:00 there now, so still today.
    assert daily == datetime(2026, 11, 27, 13, 0, tzinfo=UTC)
    assert weekly == datetime(2026, 11, 30, 13, 0, tzinfo=UTC)


# --- due times ---------------------------------------------------------------------------


def test_08_00_in_berlin_is_07_00_utc_in_winter_and_06_00_in_summer() -> None:
    winter = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)
    assert next_daily(480, BERLIN, winter) == datetime(2026, 3, 28, 7, 0, tzinfo=UTC)
    # The clocks go forward on Sunday 2026-03-29 at 02:00 local.
    after = datetime(2026, 3, 28, 7, 0, tzinfo=UTC)
    assert next_daily(480, BERLIN, after) == datetime(2026, 3, 29, 6, 0, tzinfo=UTC)
    # And back on Sunday 2026-10-25.
    autumn = datetime(2026, 10, 24, 6, 0, tzinfo=UTC)
    assert next_daily(480, BERLIN, autumn) == datetime(2026, 10, 25, 7, 0, tzinfo=UTC)
    assert next_weekly(6, 480, BERLIN, winter) == datetime(2026, 3, 29, 6, 0, tzinfo=UTC)


def test_a_time_skipped_or_doubled_by_dst_comes_once() -> None:
    # 02:30 does not exist on 2026-03-29 in Berlin: it comes at 03:30 CEST (01:30 UTC).
    before = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    assert next_daily(150, BERLIN, before) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    # 02:30 happens twice on 2026-10-25: the first one (CEST, 00:30 UTC), then not again.
    first = next_daily(150, BERLIN, datetime(2026, 10, 24, 12, 0, tzinfo=UTC))
    assert first == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert next_daily(150, BERLIN, first) == datetime(2026, 10, 26, 1, 30, tzinfo=UTC)


def test_the_next_due_time_is_always_after_now() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for hours in range(0, 24 * 400, 7):
        now = start + timedelta(hours=hours)
        due = next_daily(480, BERLIN, now)
        assert now < due <= now + timedelta(hours=25)
        assert due.astimezone(BERLIN).strftime("%H:%M") == "08:00"
        weekly = next_weekly(4, 1020, BERLIN, now)
        assert now < weekly <= now + timedelta(days=7, hours=1)
        assert weekly.astimezone(BERLIN).strftime("%a %H:%M") == "Fri 17:00"


async def feed_entry(world: World, slug: str, title: str) -> None:
    """A feed entry arriving in the group (as jobs.feeds stores one)."""
    group = group_id(world, slug)
    with world.db.uow() as uow:
        uow.items.add(
            Item(
                group_id=group,
                author_id=None,
                kind=ItemKind.FEED_ENTRY,
                text="",
                url=f"https://news.example.com/{len(title)}",
                title=title,
                source_platform="feed",
                created_at=world.clock.now(),
            )
        )
        uow.commit()


async def test_on_instant_the_feed_entries_come_in_the_digest_unless_asked_for(
    world: World,
) -> None:
    await marketing(world)
    await world.say("alice", "/notify marketing instant")
    await share(world, "bob", "marketing", "a share alice got at once")
    await feed_entry(world, "marketing", "Trade press")
    out = await world.say("alice", "/digest now")
    assert digest_of(out, "alice")[1:] == [
        en("digest.group", group="Marketing", count=1),
        "• #2 Trade press (news.example.com) (https://news.example.com/11) · Feed",
    ]
    await world.say("alice", "/notify marketing instant --feeds")
    await feed_entry(world, "marketing", "More press")
    assert (await world.say("alice", "/digest now")).text("alice") == en("digest.no_groups")


async def test_back_from_instant_or_mute_the_digest_starts_with_what_comes_next(
    world: World,
) -> None:
    await marketing(world)
    for mode in ("instant", "mute"):
        await world.say("alice", f"/notify marketing {mode}")
        await share(world, "bob", "marketing", f"while {mode}", hours=1)
        await world.say("alice", "/notify marketing daily")
        assert (await world.say("alice", "/digest now")).text("alice") == en("digest.nothing_new")
    await share(world, "bob", "marketing", "after", hours=1)
    out = await world.say("alice", "/digest now")
    assert digest_of(out, "alice")[1:] == [
        en("digest.group", group="Marketing", count=1),
        "• #3 after · @bob",
    ]
    # From daily to weekly, what is waiting keeps waiting.
    await share(world, "bob", "marketing", "waiting", hours=1)
    await world.say("alice", "/notify marketing weekly")
    out = await world.say("alice", "/digest now")
    assert digest_of(out, "alice")[1:] == [
        en("digest.group", group="Marketing", count=1),
        "• #4 waiting · @bob",
    ]
