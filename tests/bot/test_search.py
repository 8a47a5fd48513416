"""search, as conversations: German and English words found by their stems, posts and
comments from every messenger, ranked and paged, and nothing from a group the reader may
not see — on SQLite (FTS5) and PostgreSQL (tsvector) alike."""

from __future__ import annotations

import re
from datetime import timedelta

from store.models import Item, ItemKind
from store.search import query_groups, stems, terms_of
from tests.bot.conversation import asked, en, other_messenger, refused, say_on
from tests.harness import World


def found_ids(answer: str) -> list[str]:
    """The posts a search answer lists, in its order."""
    return re.findall(r"^(#\d+) ·", answer, re.MULTILINE)


async def _boards(world: World) -> None:
    await world.say("admin", "/group create marketing Marketing")
    await world.say("admin", "/group create sales Sales")
    await world.say("alice", "/join marketing")
    await world.say("bob", "/join sales")


def test_both_languages_stem_a_word() -> None:
    assert "plakat" in stems("plakate")
    assert "poster" in stems("posters")
    assert set(stems("plakat")) & set(stems("plakate"))
    assert terms_of("Neue Plakate!", None) == "neue neu plakat"


def test_a_query_keeps_stop_words_only_when_nothing_else_is_left() -> None:
    assert query_groups("the poster") == [stems("poster")]
    assert query_groups("the") == [stems("the")]
    assert query_groups("  ,;  ") == []


async def test_german_and_english_words_are_found_by_their_stems(world: World) -> None:
    await _boards(world)
    await world.say("alice", "/share marketing Neue Plakate am Bahnhof")
    await world.say("bob", "/share sales New posters for the trade fair")
    await world.say("bob", "/share sales Quarterly numbers")

    found = (await world.say("alice", "/search Plakat")).text("alice")
    assert found.splitlines()[0] == en("search.header", count=1, query="Plakat")
    assert found_ids(found) == ["#1"]
    assert "Marketing · @alice: Neue Plakate am Bahnhof" in found

    found = (await world.say("alice", "/search poster")).text("alice")
    assert found_ids(found) == ["#2"]
    assert "Sales" in found


async def test_every_word_must_match_and_comments_are_found_too(world: World) -> None:
    await _boards(world)
    await world.say("alice", "/share marketing Poster draft for the station")
    await world.say("alice", "/share marketing Poster for the airport")
    await world.say("bob", "/join marketing")
    await world.say("bob", "/comment #2 the airport wants it bigger")

    found = (await world.say("alice", "/search airport poster")).text("alice")
    assert found_ids(found) == ["#2"]
    found = (await world.say("alice", "/search bigger")).text("alice")
    assert found.splitlines()[1].startswith("#2 · Marketing · 💬 @bob:")


async def test_posts_from_another_messenger_are_found(world: World) -> None:
    await _boards(world)
    telegram = other_messenger(world, "telegram")
    await say_on(world, telegram, "carol", "/join marketing")
    await say_on(world, telegram, "carol", "/share marketing Messestand Entwürfe")
    found = (await world.say("alice", "/search Entwurf")).text("alice")
    assert found_ids(found) == ["#1"]
    assert "@carol" in found


async def test_a_preview_makes_its_words_findable(world: World) -> None:
    await _boards(world)
    await world.say("alice", "/share marketing https://example.com/x")
    with world.db.uow() as uow:
        uow.items.claim_previews(world.clock.now(), 1, timedelta(minutes=1))
        uow.commit()
    with world.db.uow() as uow:
        assert uow.items.store_preview(
            1,
            1,
            world.clock.now(),
            title="Spring campaign",
            description="Billboards",
            image_url=None,
            site_name=None,
            canonical_url=None,
        )
        uow.commit()
    assert "#1" in (await world.say("alice", "/search billboard")).text("alice")


async def test_nothing_from_a_group_the_reader_may_not_see(world: World) -> None:
    await world.say("admin", "/group create marketing Marketing")
    await world.say("admin", "/group create board Board --secret")
    await world.say("admin", "/share board Confidential merger plans")
    await world.say("admin", "/share marketing Merger rumours are false")

    found = (await world.say("alice", "/search merger")).text("alice")
    assert found_ids(found) == ["#2"]
    assert "Board" not in found
    assert "#1" in (await world.say("admin", "/search merger")).text("admin")  # admins see all


async def test_a_partner_finds_only_in_their_groups(world: World) -> None:
    await world.say("admin", "/group create marketing Marketing")
    await world.say("admin", "/group create franchise Franchise --externals")
    await world.say("admin", "/share marketing Pricing strategy internal")
    await world.say("admin", "/share franchise Pricing sheet for franchisees")
    out = await world.say("admin", "/invite partner franchise")
    code = out.to("admin")[0].message.meta["invite_code"]
    world.adapter.trust = "unknown"
    await world.say("paul", f"/redeem {code}")
    world.adapter.trust = "member"

    found = (await world.say("paul", "/search pricing")).text("paul")
    assert found_ids(found) == ["#2"]
    assert (await world.say("paul", "/search strategy")).text("paul") == en(
        "search.none", query="strategy"
    )


async def test_results_are_paged(world: World) -> None:
    await _boards(world)
    for n in range(12):
        await world.say("alice", f"/share marketing Flyer number {n}")
    first = (await world.say("alice", "/search flyer")).text("alice")
    assert first.splitlines()[0] == en("search.header", count=12, query="flyer")
    assert len(first.splitlines()) == 1 + 10 + 1
    assert "--page 2" in first.splitlines()[-1]
    second = (await world.say("alice", "/search flyer --page 2")).text("alice")
    assert len(second.splitlines()) == 1 + 2 + 1
    assert second.splitlines()[-1] == en("search.last_page", page=2, pages=2)
    past = (await world.say("alice", "/search flyer --page 5")).text("alice")
    assert past == en("search.past_end", query="flyer", total=12)


async def test_bad_searches_are_refused_and_change_nothing(world: World) -> None:
    await _boards(world)
    out = await world.say("alice", "/search")  # the words are asked for
    assert out.text("alice") == asked("en", "guide.ask.search.words")
    text = await refused(world, "alice", '/search ",;"')
    assert text.startswith(en("search.no_words"))
    text = await refused(world, "alice", "/search flyer --page 0")
    assert "--page" in text


async def test_search_syntax_in_a_query_is_only_words(world: World) -> None:
    await _boards(world)
    await world.say("alice", "/share marketing NEAR the OR AND station")
    for query in (
        '"station"',
        "station*",
        "OR station",
        "station:",
        "(station",
        "'station'",
        "NEAR station",
    ):
        assert "#1" in (await world.say("alice", f"/search {query}")).text("alice"), query


async def test_a_feed_entry_is_shown_with_its_feed_not_as_a_person(world: World) -> None:
    await _boards(world)
    with world.db.uow() as uow:
        uow.items.add(
            Item(
                group_id=1,
                kind=ItemKind.FEED_ENTRY,
                text="Neue Plakate überall",
                title="Plakatwoche",
                url="https://news.example.com/1",
                site_name="Acme News",
                source_platform="feed",
                created_at=world.clock.now(),
            )
        )
        uow.commit()
    found = (await world.say("alice", "/search plakat")).text("alice")
    assert (
        "#1 · Marketing · Acme News: Plakatwoche (news.example.com) — Neue Plakate überall" in found
    )
    listing = (await world.say("alice", "/items marketing")).text("alice")
    assert "#1 · Acme News · " in listing
    assert "@" not in listing.splitlines()[1]
