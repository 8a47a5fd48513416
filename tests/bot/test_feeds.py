"""Feed commands as conversations: feed add, feed list, feed remove, notify --feeds — who
may, who sees which feeds, and the wrong ways to say them, which change nothing. (The
poller that fetches feeds is tested in tests/jobs/test_feeds.py.)"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app import cli
from bot.feeds import new_feed
from bot.opml import read_opml
from store.db import Database
from store.models import Role
from tests.bot.conversation import asked, de, en, refused, with_usage
from tests.harness import World

URL = "https://acme.example/feed.xml"
ADD_USAGE = "/feed add <group> <url> [--include <words...>] [--exclude <words...>] [--to-rooms]"
ADD_EXAMPLE = "/feed add news https://example.com/news.xml --include offer"  # bob's group


async def _news(world: World) -> None:
    await world.script(
        ("alice", "/group create news News"),
        ("bob", "/join news"),
        ("carol", "/whoami"),
    )


async def test_a_member_adds_a_feed_and_it_waits_for_its_first_check(world: World) -> None:
    await _news(world)
    out = await world.say("bob", f"/feed add news {URL} --include poster, Flyer --exclude ad")
    assert out.text("bob") == en("feeds.added", feed="F1", group="News")
    listing = (await world.say("bob", "/feed list")).text("bob").splitlines()
    assert listing == [
        en("feeds.header", count=1),
        "",
        en("feeds.line", feed="F1", group="News", title=URL),
        URL,
        " · ".join(
            (
                en("feeds.include", words="poster, flyer"),
                en("feeds.exclude", words="ad"),
                en("feeds.added_by", handle="bob"),
            )
        ),
        en("feeds.not_checked"),
    ]


async def test_the_same_feed_twice_in_a_group_is_refused(world: World) -> None:
    await _news(world)
    await world.say("bob", f"/feed add news {URL}")
    text = await refused(world, "alice", f"/feed add news {URL}")
    assert text == en("error.feed_exists", group="News", feed="F1")


async def test_bad_addresses_are_refused_with_the_usage(world: World) -> None:
    await _news(world)
    for bad in ("ftp://acme.example/feed", "file:///etc/passwd", "acme.example/feed", "http://"):
        text = await refused(world, "bob", f"/feed add news {bad}")
        error = en("error.feed_bad_url", url=bad, max=2048)
        assert text == with_usage("en", error, ADD_USAGE, ADD_EXAMPLE), bad
    long_url = "https://acme.example/" + "a" * 2100
    text = await refused(world, "bob", f"/feed add news {long_url}")
    assert text.startswith(en("error.feed_bad_url", url=long_url, max=2048))
    out = await world.say("bob", "/feed add news")  # the url is asked for
    assert out.text("bob") == asked("en", "guide.ask.feed_add.url")
    text = await refused(world, "bob", f"/feed add news {URL} --include")
    error = en("error.option_needs_value", option="--include")
    assert text == with_usage("en", error, ADD_USAGE, ADD_EXAMPLE)
    many = " ".join(f"w{i}" for i in range(21))
    text = await refused(world, "bob", f"/feed add news {URL} --include {many}")
    error = en("error.feed_words", max=20, length=50)
    assert text == with_usage("en", error, ADD_USAGE, ADD_EXAMPLE)


async def test_only_members_add_feeds(world: World) -> None:
    await _news(world)
    text = await refused(world, "carol", f"/feed add news {URL}")
    assert text == en("error.join_first", group="News", slug="news")
    text = await refused(world, "carol", f"/feed add nowhere {URL}")
    assert text == en("error.group_not_found", group="nowhere")
    # An admin may, without joining.
    out = await world.say("admin", f"/feed add news {URL}")
    assert out.text("admin") == en("feeds.added", feed="F1", group="News")


async def test_to_rooms_needs_a_moderator(world: World) -> None:
    await _news(world)
    text = await refused(world, "bob", f"/feed add news {URL} --to-rooms")
    assert text == en("error.feed_to_rooms", group="News")
    out = await world.say("alice", f"/feed add news {URL} --to-rooms")
    assert out.text("alice") == en("feeds.added", feed="F1", group="News")
    assert en("feeds.to_rooms") in (await world.say("bob", "/feed list news")).text("bob")


async def test_feed_list_shows_only_feeds_of_groups_the_reader_may_see(world: World) -> None:
    await _news(world)
    await world.say("admin", "/group create board Board --secret")
    await world.say("admin", "/feed add board https://board.example/feed")
    await world.say("bob", f"/feed add news {URL}")
    bob = (await world.say("bob", "/feed list")).text("bob")
    assert "F1" not in bob
    assert "board.example" not in bob
    assert "F2" in bob
    admin = (await world.say("admin", "/feed list")).text("admin")
    assert "F1" in admin
    assert "F2" in admin
    text = await refused(world, "bob", "/feed list board")
    assert text == en("error.group_not_found", group="board")
    text = await refused(world, "bob", "/feed remove F1")
    assert text == en("error.feed_not_found", feed="F1")
    out = await world.say("carol", "/feed list")
    assert "F2" in out.text("carol")  # an open group: visible to every member
    await world.say("alice", "/group create empty Empty")
    out = await world.say("alice", "/feed list empty")
    assert out.text("alice") == en("feeds.none", group="Empty", slug="empty")


async def test_externals_neither_add_feeds_nor_see_other_groups_feeds(world: World) -> None:
    await world.say("admin", "/group create news News")
    await world.say("admin", "/group create franchise Franchise --externals")
    await world.say("admin", f"/feed add news {URL}")
    await world.say("admin", "/feed add franchise https://franchise.example/feed")
    out = await world.say("admin", "/invite partner franchise")
    code = out.to("admin")[0].message.meta["invite_code"]
    world.adapter.trust = "unknown"
    await world.say("paul", f"/redeem {code}")
    world.adapter.trust = "member"
    listing = (await world.say("paul", "/feed list")).text("paul")
    assert "F2" in listing
    assert "F1" not in listing
    assert "acme" not in listing
    text = await refused(world, "paul", "/feed add franchise https://other.example/feed")
    assert text == en("error.not_for_externals")
    text = await refused(world, "paul", "/feed remove F2")
    assert text == en("error.feed_not_allowed", feed="F2", group="Franchise")


async def test_the_adder_moderators_and_admins_remove_a_feed(world: World) -> None:
    await _news(world)
    await world.say("carol", "/join news")
    for n in range(1, 4):
        await world.say("bob", f"/feed add news https://acme.example/{n}.xml")
    text = await refused(world, "carol", "/feed remove F1")
    assert text == en("error.feed_not_allowed", feed="F1", group="News")
    out = await world.say("bob", "/feed remove f1")
    assert out.text("bob") == en(
        "feeds.removed", feed="F1", title="https://acme.example/1.xml", group="News"
    )
    out = await world.say("alice", "/feed remove 2")
    assert out.text("alice").startswith("F2")
    out = await world.say("admin", "/feed remove F3")
    assert out.text("admin").startswith("F3")
    text = await refused(world, "bob", "/feed remove F3")
    assert text == en("error.feed_not_found", feed="F3")
    text = await refused(world, "bob", "/feed remove feed3")
    assert text == en("error.bad_feed_id", value="feed3", example="F12")
    assert (await world.say("bob", "/feed list")).text("bob") == en("feeds.none_anywhere")


async def test_notify_feeds_goes_with_instant_only(world: World) -> None:
    await _news(world)
    text = await refused(world, "bob", "/notify news daily --feeds")
    assert text == with_usage(
        "en",
        en("error.notify_feeds_instant_only"),
        "/notify <group> instant|daily|weekly|mute|mail [--feeds]",
        "/notify news daily",
    )
    out = await world.say("bob", "/notify news instant --feeds")
    assert out.text("bob") == en("notify.instant_feeds", group="News")
    out = await world.say("bob", "/notify news instant")
    assert out.text("bob") == en("notify.instant", group="News")


async def test_feed_commands_speak_german(world: World) -> None:
    await _news(world)
    await world.say("bob", "/settings language de")
    out = await world.say("bob", f"/feed add news {URL}")
    assert out.text("bob") == de("feeds.added", feed="F1", group="News")
    listing = (await world.say("bob", "/feed list")).text("bob")
    assert de("feeds.not_checked") in listing
    text = await refused(world, "bob", "/feed add news ftp://x")
    assert text.startswith(de("error.feed_bad_url", url="ftp://x", max=2048))


# --- OPML in the operator CLI ------------------------------------------------------------

OPML = b"""<?xml version="1.0" encoding="utf-8"?>
<opml version="2.0"><head><title>Reader export</title></head><body>
<outline text="Tech">
  <outline type="rss" text="ACME" xmlUrl="https://acme.example/feed.xml" htmlUrl="https://acme.example/"/>
  <outline type="rss" title="Wire" xmlUrl="https://wire.example/atom" include="launch, poster"/>
</outline>
<outline type="rss" text="Already there" xmlUrl="https://old.example/rss"/>
<outline text="a folder without feeds"/>
</body></opml>"""


@pytest.fixture
def operator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Database:
    """A database for `pinwall` run in this process, with a group and a person."""
    monkeypatch.chdir(tmp_path)
    for name in [k for k in os.environ if k.startswith("PINWALL_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PINWALL_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    db = Database(f"sqlite:///{tmp_path / 'cli.db'}")
    db.upgrade()
    now = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    with db.uow() as uow:
        person = uow.people.create(name="bob", role=Role.MEMBER, now=now)
        group = uow.groups.create(
            slug="news",
            name="News",
            visibility="open",
            admits_externals=False,
            created_by=person.id,
            now=now,
        )
        uow.feeds.add(new_feed(group, "https://old.example/rss", added_by=None, now=now))
        uow.commit()
    return db


def feed_rows(db: Database) -> list[tuple[str, str | None, list[str], int | None]]:
    with db.uow() as uow:
        return [(f.url, f.title, f.include_words, f.added_by) for f in uow.feeds.all()]


def test_opml_import_adds_the_new_feeds_in_one_go(
    operator: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "feeds.opml").write_bytes(OPML)
    assert cli.main(["feeds", "import", "feeds.opml", "--group", "news", "--as", "@bob"]) == 0
    out = capsys.readouterr().out
    assert (
        out.strip().splitlines()[-1]
        == "imported 2 feed(s) into news (1 already there, 3 in the file)"
    )
    assert feed_rows(operator) == [
        ("https://old.example/rss", None, [], None),
        ("https://acme.example/feed.xml", "ACME", [], 1),
        ("https://wire.example/atom", "Wire", ["launch", "poster"], 1),
    ]
    # Exported again, the same feeds come back in.
    assert cli.main(["feeds", "export", "--group", "news", "-o", "out.opml"]) == 0
    exported = read_opml((tmp_path / "out.opml").read_bytes())
    assert [(f.url, f.include) for f in exported] == [
        ("https://old.example/rss", ()),
        ("https://acme.example/feed.xml", ()),
        ("https://wire.example/atom", ("launch", "poster")),
    ]


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"<opml><body><outline xmlUrl='https://a.example/'>", "not well-formed"),
        (b"<rss/>", "not OPML"),
        (
            b'<!DOCTYPE opml [<!ENTITY a "aaaa">]><opml><body>'
            b'<outline xmlUrl="https://a.example/&a;"/></body></opml>',
            "refused",
        ),
        (
            OPML.replace(b"https://wire.example/atom", b"ftp://wire.example/atom"),
            "unusable address",
        ),
        (b"<opml><body><outline text='x'/></body></opml>", "no feeds"),
    ],
)
def test_a_bad_opml_file_imports_nothing(
    operator: Database,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    why: str,
) -> None:
    (tmp_path / "bad.opml").write_bytes(content)
    before = feed_rows(operator)
    assert cli.main(["feeds", "import", "bad.opml", "--group", "news"]) == 1
    err = capsys.readouterr().err
    assert why in err
    assert "nothing imported" in err
    assert feed_rows(operator) == before


def test_opml_import_needs_a_known_group_and_person(
    operator: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "feeds.opml").write_bytes(OPML)
    before = feed_rows(operator)
    assert cli.main(["feeds", "import", "feeds.opml", "--group", "nope"]) == 1
    assert cli.main(["feeds", "import", "feeds.opml", "--group", "news", "--as", "zed"]) == 1
    err = capsys.readouterr().err
    assert "no group 'nope'" in err
    assert "nobody called 'zed'" in err
    assert feed_rows(operator) == before
