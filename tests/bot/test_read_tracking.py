"""Read tracking (issue 9), as conversations: off unless an admin switches it on; on, a
post shown by `items` or `search` counts once per person and `items` shows how many saw
it (never who); nobody reads what they may not see; switching it off erases the reads;
`privacy export` holds them and `privacy forget` removes them — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from app.cli import main
from app.config import load_settings
from app.wiring import build_core
from jobs.retention import Retention, apply
from store.models import ItemRead, Person
from tests.bot.conftest import Pinwall
from tests.bot.conversation import de, en, link_accounts, other_messenger, refused, say_on
from tests.harness import World


def track(world: World) -> None:
    """What PINWALL_READ_TRACKING=on does to the core."""
    world.core.settings = replace(world.core.settings, read_tracking=True)


def reads(world: World) -> list[tuple[int, str]]:
    """(post, handle) of every recorded read."""
    with world.db.uow() as uow:
        rows = uow.session.execute(
            select(ItemRead.item_id, Person.handle)
            .join(Person, Person.id == ItemRead.person_id)
            .order_by(ItemRead.item_id, Person.handle)
        )
        return [(item_id, handle) for item_id, handle in rows]


def first_read(world: World, item_id: int, handle: str) -> datetime:
    with world.db.uow() as uow:
        when = uow.session.scalar(
            select(ItemRead.first_read_at)
            .join(Person, Person.id == ItemRead.person_id)
            .where(ItemRead.item_id == item_id, Person.handle == handle)
        )
        assert when is not None
        return when


def stats_lines(listing: str) -> list[str]:
    """The stats line under each post of an `items` answer, newest post first."""
    return [line.strip() for line in listing.splitlines() if line.startswith("  💬")]


async def _marketing(world: World) -> None:
    await world.say("admin", "/group create marketing Marketing")
    await world.say("alice", "/join marketing")
    await world.say("bob", "/join marketing")
    await world.say("alice", "/share marketing Poster draft for the station")
    await world.say("alice", "/share marketing Flyer for the trade fair")
    await world.say("bob", "/comment #1 Looks great")


# --- off (the default) ------------------------------------------------------------------


def test_it_is_off_unless_switched_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.startswith("PINWALL_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    assert load_settings().read_tracking is False
    assert Retention.from_settings(load_settings()).read_tracking is False
    (tmp_path / "pinwall.toml").write_text("read_tracking = true\n")
    assert load_settings().read_tracking is True
    monkeypatch.setenv("PINWALL_READ_TRACKING", "off")  # the environment wins
    assert load_settings().read_tracking is False
    monkeypatch.setenv("PINWALL_READ_TRACKING", "on")
    settings = load_settings()
    assert Retention.from_settings(settings).read_tracking is True


async def test_the_core_and_pinwall_config_get_the_setting(
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PINWALL_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("PINWALL_DATA_DIR", str(tmp_path / "data"))
    assert build_core(load_settings(), world.db).settings.read_tracking is False
    assert build_core(load_settings(read_tracking=True), world.db).settings.read_tracking is True
    monkeypatch.setenv("PINWALL_READ_TRACKING", "on")
    capsys.readouterr()
    assert main(["config"]) == 0
    assert json.loads(capsys.readouterr().out)["read_tracking"] is True


async def test_off_items_and_search_record_nothing_and_show_no_count(world: World) -> None:
    await _marketing(world)
    before = world.snapshot()
    listing = (await world.say("alice", "/items marketing")).text("alice")
    found = (await world.say("bob", "/search poster")).text("bob")
    assert world.snapshot() == before  # not a row written anywhere
    assert reads(world) == []
    assert stats_lines(listing) == [en("items.stats", comments=1, reactions="👍 0")]  # #1 only
    assert "seen by" not in listing
    assert "#1" in found


# --- on ---------------------------------------------------------------------------------


async def test_a_post_shown_by_items_counts_once_per_person(world: World) -> None:
    await _marketing(world)
    track(world)

    listing = (await world.say("alice", "/items marketing")).text("alice")
    assert reads(world) == [(1, "alice"), (2, "alice")]
    assert stats_lines(listing) == [
        en("items.stats_read", comments=0, reactions="👍 0", readers=1),  # #2, seen by her now
        en("items.stats_read", comments=1, reactions="👍 0", readers=1),
    ]
    assert "seen by 1" in listing
    shown_at = first_read(world, 1, "alice")

    world.clock.advance(minutes=5)
    listing = (await world.say("alice", "/items marketing")).text("alice")
    assert reads(world) == [(1, "alice"), (2, "alice")]  # showing it again does not double
    assert first_read(world, 1, "alice") == shown_at  # the first read wins
    assert "seen by 2" not in listing

    await world.say("bob", "/items marketing 1")  # only the newest, #2
    assert reads(world) == [(1, "alice"), (2, "alice"), (2, "bob")]
    listing = (await world.say("alice", "/items marketing")).text("alice")
    assert stats_lines(listing) == [
        en("items.stats_read", comments=0, reactions="👍 0", readers=2),
        en("items.stats_read", comments=1, reactions="👍 0", readers=1),
    ]
    assert "bob" not in listing  # a count, never names


async def test_the_count_speaks_german(world: World) -> None:
    await _marketing(world)
    track(world)
    listing = (await world.say("bob", "/items marketing", language="de")).text("bob")
    assert stats_lines(listing)[0] == de(
        "items.stats_read", comments=0, reactions="👍 0", readers=1
    )
    assert "gesehen von 1" in listing


async def test_search_records_the_posts_on_the_page_shown(world: World) -> None:
    await world.say("admin", "/group create marketing Marketing")
    for n in range(12):
        await world.say("admin", f"/share marketing Poster number {n}")
    await world.say("admin", "/comment #1 the flyer is better")
    track(world)

    await world.say("carol", "/search poster")  # newest first, ten to a page
    assert [i for i, who in reads(world) if who == "carol"] == list(range(3, 13))
    await world.say("carol", "/search poster --page 2")
    assert [i for i, who in reads(world) if who == "carol"] == list(range(1, 13))

    found = (await world.say("dave", "/search flyer")).text("dave")
    assert "#1" in found  # the comment is shown, not the post it is on
    assert [i for i, who in reads(world) if who == "dave"] == []
    listing = (await world.say("dave", "/items marketing 1")).text("dave")
    assert stats_lines(listing) == [en("items.stats_read", comments=0, reactions="👍 0", readers=2)]


async def test_nobody_reads_a_post_they_may_not_see(world: World) -> None:
    await world.say("admin", "/group create marketing Marketing")
    await world.say("admin", "/group create board Board --secret")
    await world.say("admin", "/group create franchise Franchise --externals")
    await world.say("admin", "/share board Quarterly numbers are in")
    await world.say("admin", "/share marketing Quarterly campaign")
    await world.say("admin", "/share franchise Quarterly franchise meeting")
    out = await world.say("admin", "/invite partner franchise")
    code = out.to("admin")[0].message.meta["invite_code"]
    world.adapter.trust = "unknown"
    await world.say("paul", f"/redeem {code}")
    world.adapter.trust = "member"
    track(world)

    # A member outside the secret group, and a partner outside the internal ones.
    assert await refused(world, "alice", "/items board") == en(
        "error.group_not_found", group="board"
    )
    for group in ("board", "marketing"):
        assert await refused(world, "paul", f"/items {group}") == en(
            "error.group_not_found", group=group
        )
    found = (await world.say("alice", "/search quarterly")).text("alice")
    assert "#1" not in found
    found = (await world.say("paul", "/search quarterly")).text("paul")
    assert "#1" not in found
    assert "#2" not in found
    # Only what each was shown: alice the two open groups' posts, paul his group's.
    assert reads(world) == [(2, "alice"), (3, "alice"), (3, "paul")]


# --- switching it off, privacy ----------------------------------------------------------


async def test_switching_it_off_erases_every_read(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _marketing(world)
    track(world)
    await world.say("alice", "/items marketing")
    await world.say("bob", "/items marketing")
    await world.say("admin", "/search station")
    now = world.clock.now()
    assert apply(world.db, Retention(read_tracking=True), now) == {}
    assert len(reads(world)) == 5

    monkeypatch.setattr("jobs.retention.BATCH", 2)  # several batches of (post, person) keys
    assert apply(world.db, Retention(read_tracking=False), now) == {"item_reads": 5}
    assert reads(world) == []
    with world.db.uow() as uow:
        entry = uow.audit.newest(1)[0]
        assert entry.action == "retention.applied"
        assert entry.details["deleted"] == {"item_reads": 5}
        assert entry.details["policy"]["read_tracking"] is False
    assert apply(world.db, Retention(), now) == {}  # nothing left to erase

    world.core.settings = replace(world.core.settings, read_tracking=False)
    listing = (await world.say("alice", "/items marketing")).text("alice")
    assert "seen by" not in listing
    assert reads(world) == []


async def test_an_export_holds_the_reads_and_forget_removes_them(
    world: World, tmp_path: Path, pinwall: Pinwall
) -> None:
    await _marketing(world)
    track(world)
    await world.say("alice", "/items marketing")
    await world.say("bob", "/items marketing 1")
    with world.db.uow() as uow:
        alice = uow.people.by_handle("alice")
        assert alice is not None
        alice_id = alice.id

    target = tmp_path / "alice.json"
    assert pinwall("privacy", "export", "alice", "-o", str(target))[0] == 0
    exported = json.loads(target.read_text())["item_reads"]
    assert [(r["item_id"], r["person_id"]) for r in exported] == [(1, alice_id), (2, alice_id)]
    assert exported[0]["first_read_at"] == first_read(world, 1, "alice").isoformat()

    code, out, _ = pinwall("privacy", "forget", "alice", "--yes")
    assert code == 0
    assert "item_reads deleted 2" in out
    assert reads(world) == [(2, "bob")]
    listing = (await world.say("bob", "/items marketing")).text("bob")
    assert stats_lines(listing) == [
        en("items.stats_read", comments=0, reactions="👍 0", readers=1),
        en("items.stats_read", comments=1, reactions="👍 0", readers=1),
    ]


async def test_linking_two_accounts_keeps_their_reads_once(world: World) -> None:
    slack = other_messenger(world, "slack")
    await _marketing(world)
    await world.say("admin", "/group create sales Sales")
    await world.say("admin", "/share sales Slack news")
    track(world)
    await world.say("alice", "/items marketing 1")  # #2
    await say_on(world, slack, "U1", "/items marketing")  # #2 and #1, as @u1
    await say_on(world, slack, "U1", "/items sales")  # #3
    world.clock.advance(minutes=1)
    await link_accounts(world, "alice", slack, "U1")
    assert reads(world) == [(1, "alice"), (2, "alice"), (3, "alice")]
    listing = (await world.say("bob", "/items marketing")).text("bob")
    assert stats_lines(listing)[0] == en(
        "items.stats_read", comments=0, reactions="👍 0", readers=2
    )
