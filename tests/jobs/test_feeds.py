"""The feed poller against local servers: entries become posts, conditional GET, discovery,
hostile documents, filters, de-duplication, intervals, backoff, pausing and who hears of
new entries. Time is a fake clock; each test calls the tick itself."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.markup import to_plain
from jobs.feed_read import Entry, FeedProblem, declares_entities, parse_feed
from jobs.feeds import FeedPolicy, FeedPoller, canonical_link, entry_keys, wanted
from jobs.fetch import GuardedClient
from store.models import Feed, Item, ItemKind, OutboxMessage
from tests.bot.conversation import en
from tests.harness import World
from tests.jobs.test_fetch import Bounds, LocalServer, Request, write_head

RSS_TYPE = {"Content-Type": "application/rss+xml; charset=utf-8"}
HTML_TYPE = {"Content-Type": "text/html; charset=utf-8"}


def rss(*items: tuple[str, str, str], title: str = "ACME News") -> bytes:
    """(guid, title, description) items; the link is the guid when it is a URL."""
    parts = []
    for guid, item_title, text in items:
        link = f"<link>{guid}</link>" if guid.startswith("http") else ""
        parts.append(
            f"<item><guid>{guid}</guid><title>{item_title}</title>{link}"
            f"<description>{text}</description></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{title}</title><link>https://acme.example/</link>"
        + "".join(parts)
        + "</channel></rss>"
    ).encode()


def atom(*entries: tuple[str, str, str], title: str = "Other Wire") -> bytes:
    """(id, title, link) entries."""
    body = "".join(
        f"<entry><id>{i}</id><title>{t}</title><link href='{link}'/>"
        f"<updated>2026-11-27T08:00:00Z</updated><summary>about {t}</summary></entry>"
        for i, t, link in entries
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>{title}</title><id>urn:x</id><updated>2026-11-27T08:00:00Z</updated>"
        f"{body}</feed>"
    ).encode()


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>&lol9;</title>
<item><title>&lol9;</title><description>&lol9;</description></item></channel></rss>"""


class FeedServer:
    """Serves documents by path, with ETag / 304 and a count of requests per path."""

    def __init__(self, server: LocalServer) -> None:
        self.server = server
        self.docs: dict[str, tuple[int, bytes, dict[str, str]]] = {}

    def put(
        self,
        path: str,
        body: bytes,
        headers: dict[str, str] | None = None,
        status: int = 200,
    ) -> str:
        self.docs[path] = (status, body, {**RSS_TYPE, **(headers or {})})
        return self.server.route(path, self._handle)

    def hits(self, path: str) -> list[Request]:
        return [r for r in self.server.requests if r.path == path]

    async def _handle(self, request: Request, writer: asyncio.StreamWriter) -> None:
        status, body, headers = self.docs[request.path]
        etag = f'"{hash(body) & 0xFFFFFFFF:x}"'
        if status == 200 and request.headers.get("if-none-match") == etag:
            await write_head(writer, 304, {"ETag": etag})
            return
        head = {**headers, "Content-Length": str(len(body))}
        if status == 200:
            head["ETag"] = etag
        await write_head(writer, status, head)
        writer.write(body)
        await writer.drain()


@pytest.fixture
async def feeds() -> AsyncIterator[FeedServer]:
    s = LocalServer()
    await s.start()
    yield FeedServer(s)
    await s.close()


def poller_of(world: World, **policy: object) -> FeedPoller:
    return FeedPoller(world.hub, GuardedClient(allowlist="127.0.0.0/8"), FeedPolicy(**policy))  # type: ignore[arg-type]


async def tick(world: World, poller: FeedPoller) -> list[str]:
    """One tick at the fake clock's time; what the adapter was sent meanwhile, as text."""
    before = len(world.adapter.sent)
    await poller.tick(world.clock.now())
    await world.worker.drain()
    return [f"{s.target.address}: {to_plain(s.message.text)}" for s in world.adapter.sent[before:]]


def items(world: World) -> list[Item]:
    with world.db.uow() as uow:
        rows = list(uow.session.scalars(select(Item).order_by(Item.id)))
        uow.session.expunge_all()  # read after the unit of work, as loaded
        return rows


def feed_row(world: World, feed_id: int = 1) -> Feed | None:
    with world.db.uow() as uow:
        feed = uow.session.get(Feed, feed_id)
        uow.session.expunge_all()
        return feed


async def news_group(world: World) -> None:
    await world.script(("alice", "/group create news News"), ("bob", "/join news"))


# --- reading ----------------------------------------------------------------------------


def test_rss_and_atom_entries_are_read_as_plain_text() -> None:
    parsed = parse_feed(
        rss(("https://acme.example/a", "First &amp; best", "<p>Hello <b>world</b></p>")),
        "https://acme.example/feed",
    )
    assert parsed.title == "ACME News"
    assert parsed.site_url == "https://acme.example/"
    assert parsed.entries == (
        Entry(
            title="First & best",
            link="https://acme.example/a",
            summary="Hello world",
            entry_id="https://acme.example/a",
        ),
    )
    parsed = parse_feed(atom(("urn:1", "Relative", "/posts/1")), "https://wire.example/atom")
    assert parsed.entries[0].link == "https://wire.example/posts/1"


def test_a_billion_laughs_is_refused_fast_and_small() -> None:
    with Bounds() as bounds, pytest.raises(FeedProblem) as caught:
        parse_feed(BILLION_LAUGHS, "https://evil.example/feed")
    assert caught.value.kind == "entities"
    assert bounds.seconds < 0.5
    assert bounds.peak < 2 * 1024 * 1024
    # In UTF-16 as well, where a byte search for "<!ENTITY" would miss it.
    wide = BILLION_LAUGHS.decode().replace('<?xml version="1.0"?>', "").encode("utf-16")
    assert declares_entities(wide)
    # ... and without a byte order mark, behind a blank line, in either byte order.
    for order in ("utf-16-le", "utf-16-be", "utf-32-le"):
        assert declares_entities(("\n " + wide.decode("utf-16")).encode(order))
    assert not declares_entities(rss(("https://a.example/1", "x", "y")))
    assert not declares_entities(
        ("\n" + rss(("https://a.example/1", "x", "y")).decode()).encode("utf-16-le")
    )


def test_filters_are_plain_whole_words_in_title_and_summary() -> None:
    entry = Entry(
        title="New Poster at the station", link=None, summary="Berlin (c) ACME", entry_id=None
    )
    assert wanted(entry, [], [])
    assert wanted(entry, ["poster", "flyer"], [])
    assert not wanted(entry, ["post"], [])  # whole words only
    assert not wanted(entry, [], ["berlin"])
    assert wanted(entry, ["(c)"], [])  # no patterns: punctuation is plain text
    assert not wanted(entry, [".*"], [])


def test_the_same_article_has_the_same_keys() -> None:
    assert canonical_link("HTTPS://Acme.Example:443/a/?utm_source=x&id=2#top") == (
        "https://acme.example/a?id=2"
    )
    a = entry_keys(1, Entry("T", "https://acme.example/a?utm_medium=rss", "S", "tag:acme,1"))
    b = entry_keys(2, Entry("Other title", "https://acme.example/a", "", "urn:other"))
    assert set(a.match) & set(b.match)  # by the canonical link, across feeds
    # A bare id counts within its feed only; without id or link, the content decides.
    assert not set(entry_keys(1, Entry("T", None, "S", "7")).match) & set(
        entry_keys(2, Entry("U", None, "V", "7")).match
    )
    assert (
        entry_keys(1, Entry("T", None, "S", None)).match
        == entry_keys(2, Entry(" t", None, "s ", None)).match
    )


# --- polling ----------------------------------------------------------------------------


async def test_add_first_poll_posts_the_entries_and_tells_the_adder(
    world: World, feeds: FeedServer
) -> None:
    await news_group(world)
    url = feeds.put(
        "/feed.xml",
        rss(
            ("https://acme.example/2", "Second", "two"),
            ("https://acme.example/1", "First", "one"),
        ),
    )
    out = await world.say("bob", f"/feed add news {url}")
    assert out.text("bob") == en("feeds.added", feed="F1", group="News")
    poller = poller_of(world)
    told = await tick(world, poller)
    assert told == [
        "bob: "
        + en("feeds.told.checked", feed="F1", group="News", title="ACME News", count=2, new=2)
    ]
    posts = items(world)
    assert [(i.title, i.url, i.text, i.kind, i.author_id, i.source_platform) for i in posts] == [
        ("First", "https://acme.example/1", "one", ItemKind.FEED_ENTRY, None, "feed"),
        ("Second", "https://acme.example/2", "two", ItemKind.FEED_ENTRY, None, "feed"),
    ]
    listing = (await world.say("bob", "/items news")).text("bob")
    assert "Second" in listing
    assert "First" in listing
    health = (await world.say("bob", "/feed list news")).text("bob")
    assert "ACME News" in health
    assert "entries: 2" in health
    assert "last success: 2026-11-27 09:00" in health  # Europe/Berlin
    # Not due again: nothing is fetched.
    assert await tick(world, poller) == []
    assert len(feeds.hits("/feed.xml")) == 1


async def test_the_second_poll_is_conditional_and_a_304_costs_nothing(
    world: World, feeds: FeedServer
) -> None:
    await news_group(world)
    url = feeds.put("/feed.xml", rss(("https://acme.example/1", "First", "one")))
    await world.say("bob", f"/feed add news {url}")
    poller = poller_of(world)
    await tick(world, poller)
    first = feed_row(world)
    assert first is not None
    assert first.etag
    world.clock.advance(minutes=20)  # the interval halved (new entries): 15 minutes
    assert await tick(world, poller) == []
    second_request = feeds.hits("/feed.xml")[-1]
    assert second_request.headers.get("if-none-match") == first.etag
    assert len(items(world)) == 1
    after = feed_row(world)
    assert after is not None
    assert after.interval_seconds == int(first.interval_seconds * 1.5)  # quiet: less often
    assert after.next_poll_at == world.clock.now() + timedelta(seconds=after.interval_seconds)


async def test_a_page_is_searched_for_its_feed(world: World, feeds: FeedServer) -> None:
    await news_group(world)
    feeds.put("/blog/feed.xml", atom(("urn:1", "Hello", "https://wire.example/1")))
    page = feeds.put(
        "/blog/",
        b"<html><head><title>Blog</title>"
        b'<link rel="alternate" type="application/atom+xml" href="feed.xml">'
        b"</head><body>hi</body></html>",
        HTML_TYPE,
    )
    await world.say("bob", f"/feed add news {page}")
    told = await tick(world, poller_of(world))
    assert told == [
        "bob: "
        + en("feeds.told.checked", feed="F1", group="News", title="Other Wire", count=1, new=1)
    ]
    feed = feed_row(world)
    assert feed is not None
    assert feed.url == feeds.server.url("/blog/feed.xml")
    assert [i.title for i in items(world)] == ["Hello"]


async def test_a_page_without_a_feed_is_removed_with_a_clear_word(
    world: World, feeds: FeedServer
) -> None:
    await news_group(world)
    page = feeds.put("/about", b"<!doctype html><html><body>About us</body></html>", HTML_TYPE)
    await world.say("bob", f"/feed add news {page}")
    told = await tick(world, poller_of(world))
    reason = en("feeds.error.no_feed")
    assert told == [
        "bob: " + en("feeds.told.unusable", feed="F1", group="News", reason=reason, url=page)
    ]
    assert feed_row(world) is None
    assert items(world) == []


async def test_html_where_a_working_feed_was_is_an_error(world: World, feeds: FeedServer) -> None:
    await news_group(world)
    url = feeds.put("/feed.xml", rss(("https://acme.example/1", "First", "one")))
    await world.say("bob", f"/feed add news {url}")
    poller = poller_of(world)
    await tick(world, poller)
    feeds.put("/feed.xml", b"<html><body>We moved!</body></html>", HTML_TYPE)
    world.clock.advance(hours=1)
    assert await tick(world, poller) == []
    feed = feed_row(world)
    assert feed is not None
    assert feed.last_error == "html"
    assert feed.failures == 1
    health = (await world.say("bob", "/feed list")).text("bob")
    assert en("feeds.error.html") in health


async def test_a_billion_laughs_feed_is_refused(world: World, feeds: FeedServer) -> None:
    await news_group(world)
    url = feeds.put("/evil.xml", BILLION_LAUGHS)
    await world.say("bob", f"/feed add news {url}")
    with Bounds() as bounds:
        told = await tick(world, poller_of(world))
    assert bounds.seconds < 5
    assert bounds.peak < 20 * 1024 * 1024
    reason = en("feeds.error.entities")
    assert told == [
        "bob: " + en("feeds.told.unusable", feed="F1", group="News", reason=reason, url=url)
    ]
    assert items(world) == []


async def test_include_and_exclude_words_filter_entries(world: World, feeds: FeedServer) -> None:
    await news_group(world)
    url = feeds.put(
        "/feed.xml",
        rss(
            ("https://acme.example/1", "Poster in Berlin", "x"),
            ("https://acme.example/2", "Poster in Munich", "x"),
            ("https://acme.example/3", "Flyer", "a new POSTER design"),
            ("https://acme.example/4", "Weather", "rain"),
        ),
    )
    await world.say("bob", f"/feed add news {url} --include poster --exclude munich")
    await tick(world, poller_of(world))
    assert [i.title for i in items(world)] == ["Flyer", "Poster in Berlin"]


async def test_the_same_article_from_two_feeds_is_one_post(world: World, feeds: FeedServer) -> None:
    await news_group(world)
    one = feeds.put(
        "/a.xml",
        rss(("https://acme.example/1", "Launch", "x"), ("https://acme.example/2", "Only A", "y")),
    )
    two = feeds.put(
        "/b.xml",
        atom(
            ("tag:wire,1", "Launch (wire)", "https://ACME.example/1?utm_source=wire"),
            ("tag:wire,2", "Only B", "https://wire.example/2"),
        ),
    )
    await world.say("bob", f"/feed add news {one}")
    await world.say("alice", f"/feed add news {two}")
    poller = poller_of(world)
    await tick(world, poller)
    # Both feeds are fetched at once; whichever answers first brings the article.
    titles = sorted(i.title or "" for i in items(world))
    launch = titles[0]
    assert launch in ("Launch", "Launch (wire)")
    assert titles == [launch, "Only A", "Only B"]
    # A changed feed (no 304) with the old entries again adds only what is new.
    feeds.put(
        "/a.xml",
        rss(
            ("https://acme.example/3", "Third", "z"),
            ("https://acme.example/1", "Launch", "x"),
            ("https://acme.example/2", "Only A", "y"),
        ),
    )
    world.clock.advance(hours=7)
    await tick(world, poller)
    assert sorted(i.title or "" for i in items(world)) == [launch, "Only A", "Only B", "Third"]
    a, b = feed_row(world, 1), feed_row(world, 2)
    assert a is not None
    assert b is not None
    assert (a.entries_seen, b.entries_seen) == ((3, 1) if launch == "Launch" else (2, 2))


async def test_errors_back_off_and_a_failing_feed_is_paused_and_reported(
    world: World, feeds: FeedServer
) -> None:
    await news_group(world)
    url = feeds.put("/feed.xml", rss(("https://acme.example/1", "First", "one")))
    await world.say("bob", f"/feed add news {url}")
    poller = poller_of(world)
    await tick(world, poller)
    feeds.put("/feed.xml", b"oops", status=500)
    delays = []
    told: list[str] = []
    for _ in range(10):
        feed = feed_row(world)
        assert feed is not None
        world.clock.set(feed.next_poll_at)
        told += await tick(world, poller)
        after = feed_row(world)
        assert after is not None
        if after.paused_at is None:
            delays.append((after.next_poll_at - world.clock.now()) / timedelta(minutes=1))
    assert delays == [10, 20, 40, 80, 160, 320, 360, 360, 360]
    feed = feed_row(world)
    assert feed is not None
    assert feed.paused_at == world.clock.now()
    assert feed.failures == 10
    reason = en("feeds.error.http", detail="500")
    assert told == [
        "bob: "
        + en(
            "feeds.told.paused", feed="F1", group="News", title="ACME News", count=10, reason=reason
        )
    ]
    # Paused: no more polls, however long.
    hits = len(feeds.hits("/feed.xml"))
    world.clock.advance(days=3)
    await tick(world, poller)
    assert len(feeds.hits("/feed.xml")) == hits
    assert "paused since" in (await world.say("bob", "/feed list news")).text("bob")
    # Adding it again resumes it.
    feeds.put("/feed.xml", rss(("https://acme.example/9", "Back", "again")))
    out = await world.say("bob", f"/feed add news {url}")
    assert out.text("bob") == en("feeds.resumed", feed="F1", group="News")
    await tick(world, poller)
    assert [i.title for i in items(world)] == ["First", "Back"]


async def test_a_retry_after_is_honoured_within_bounds(world: World, feeds: FeedServer) -> None:
    await news_group(world)
    url = feeds.put("/feed.xml", b"busy", {"Retry-After": "7200"}, status=503)
    await world.say("bob", f"/feed add news {url}")
    told = await tick(world, poller_of(world))
    reason = en("feeds.error.http", detail="503")
    assert told == ["bob: " + en("feeds.told.retrying", feed="F1", group="News", reason=reason)]
    feed = feed_row(world)
    assert feed is not None
    assert feed.next_poll_at == world.clock.now() + timedelta(hours=2)


async def test_a_busy_feed_is_polled_more_often_and_max_age_is_honoured(
    world: World, feeds: FeedServer
) -> None:
    await news_group(world)
    url = feeds.put("/feed.xml", rss(("https://acme.example/1", "One", "x")))
    await world.say("bob", f"/feed add news {url}")
    poller = poller_of(world)
    for n in range(2, 5):
        await tick(world, poller)
        feeds.put(
            "/feed.xml",
            rss(*((f"https://acme.example/{k}", f"E{k}", "x") for k in range(1, n + 1))),
        )
        feed = feed_row(world)
        assert feed is not None
        world.clock.set(feed.next_poll_at)
    feed = feed_row(world)
    assert feed is not None
    assert feed.interval_seconds == 600
    feeds.put(
        "/feed.xml", rss(("https://acme.example/1", "One", "x")), {"Cache-Control": "max-age=3600"}
    )
    await tick(world, poller)
    feed = feed_row(world)
    assert feed is not None
    assert feed.next_poll_at == world.clock.now() + timedelta(hours=1)


# --- who hears of new entries ------------------------------------------------------------


async def test_entries_reach_rooms_only_for_to_rooms_feeds(world: World, feeds: FeedServer) -> None:
    await news_group(world)
    await world.say("alice", "/bridge news", room="lobby")
    quiet = feeds.put("/quiet.xml", rss(("https://acme.example/1", "Quiet", "x")))
    loud = feeds.put("/loud.xml", rss(("https://acme.example/2", "Loud", "y")))
    await world.say("bob", f"/feed add news {quiet}")
    refused = await world.say("bob", f"/feed add news {loud} --to-rooms")
    assert refused.text("bob").startswith(en("error.feed_to_rooms", group="News"))
    await world.say("alice", f"/feed add news {loud} --to-rooms")
    sent = await tick(world, poller_of(world))
    in_room = [line for line in sent if line.startswith("lobby: ")]
    assert len(in_room) == 1
    assert "Loud" in in_room[0]


async def test_instant_members_get_entries_only_when_they_asked(
    world: World, feeds: FeedServer
) -> None:
    await news_group(world)
    await world.say("carol", "/join news")
    out = await world.say("bob", "/notify news instant --feeds")
    assert out.text("bob") == en("notify.instant_feeds", group="News")
    await world.say("carol", "/notify news instant")
    url = feeds.put("/feed.xml", rss(("https://acme.example/1", "Entry", "x")))
    await world.say("alice", f"/feed add news {url}")
    before = len(world.adapter.sent)
    await tick(world, poller_of(world))
    got = {s.target.address for s in world.adapter.sent[before:] if s.message.meta.get("item")}
    assert got == {"bob"}
    with world.db.uow() as uow:
        rows = uow.session.scalar(select(func.count()).select_from(OutboxMessage))
    assert rows


# --- dates ----------------------------------------------------------------------------------


def rss_dated(*items: tuple[str, str, str | None]) -> bytes:
    """(guid URL, title, RFC 822 pubDate or None) items, in this order."""
    parts = "".join(
        f"<item><guid>{guid}</guid><title>{title}</title><link>{guid}</link>"
        + (f"<pubDate>{date}</pubDate>" if date else "")
        + f"<description>about {title}</description></item>"
        for guid, title, date in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>ACME News</title><link>https://acme.example/</link>{parts}</channel></rss>"
    ).encode()


def listed(text: str) -> list[tuple[str, str]]:
    """(number, the date shown) of each post `items` lists, in its order."""
    return [
        (line.split(" · ")[0], line.split(" · ")[2].split(": ")[0])
        for line in text.splitlines()
        if line.startswith("#")
    ]


async def test_entries_are_numbered_listed_and_shown_by_their_own_date(
    world: World, feeds: FeedServer
) -> None:
    """A feed in no particular order: its entries are numbered oldest first by the date
    the feed gives them; `items` lists the newest first and shows that date — the fetch
    time only for an entry without one, and for one dated in the future (clamped)."""
    await news_group(world)
    url = feeds.put(
        "/feed.xml",
        rss_dated(
            ("https://acme.example/b", "Tuesday", "Tue, 24 Nov 2026 10:00:00 GMT"),
            ("https://acme.example/future", "Tomorrow", "Sat, 28 Nov 2026 12:00:00 GMT"),
            ("https://acme.example/c", "Wednesday", "Wed, 25 Nov 2026 10:00:00 +0000"),
            ("https://acme.example/undated", "Undated", None),
            ("https://acme.example/a", "Monday", "Mon, 23 Nov 2026 10:00:00 GMT"),
        ),
    )
    await world.say("bob", f"/feed add news {url}")
    await tick(world, poller_of(world))  # at 2026-11-27 08:00 UTC (09:00 in Berlin)
    assert [i.title for i in items(world)][:3] == ["Monday", "Tuesday", "Wednesday"]
    assert {i.title for i in items(world)[3:]} == {"Tomorrow", "Undated"}
    listing = (await world.say("bob", "/items news")).text("bob")
    assert listed(listing)[2:] == [
        ("#3", "2026-11-25 11:00"),
        ("#2", "2026-11-24 11:00"),
        ("#1", "2026-11-23 11:00"),
    ]
    assert {when for _, when in listed(listing)[:2]} == {"2026-11-27 09:00"}

    # Later, an entry dated before the others comes in: a higher number, listed by its date.
    world.clock.advance(hours=7)
    feeds.put(
        "/feed.xml",
        rss_dated(
            ("https://acme.example/late", "Late news of Sunday", "Sun, 22 Nov 2026 18:00:00 GMT"),
            ("https://acme.example/c", "Wednesday", "Wed, 25 Nov 2026 10:00:00 +0000"),
        ),
    )
    await tick(world, poller_of(world))
    listing = (await world.say("bob", "/items news 10")).text("bob")
    assert listed(listing)[-2:] == [("#1", "2026-11-23 11:00"), ("#6", "2026-11-22 19:00")]
    assert (await world.say("bob", "/items news 1")).text("bob").count("#6") == 0


async def test_an_entry_dated_before_what_a_digest_covered_still_comes_once(
    world: World, feeds: FeedServer
) -> None:
    """Digests remember what they covered by post number (a watermark per person and
    group), not by date: an entry stored later with an older date is in the next digest,
    once."""
    await news_group(world)  # bob's notify mode is daily: entries come in his digest
    url = feeds.put(
        "/feed.xml",
        rss_dated(("https://acme.example/a", "Monday", "Mon, 23 Nov 2026 10:00:00 GMT")),
    )
    await world.say("bob", f"/feed add news {url}")
    poller = poller_of(world)
    await tick(world, poller)
    assert "Monday" in (await world.say("bob", "/digest now")).text("bob")
    world.clock.advance(hours=7)
    feeds.put(
        "/feed.xml",
        rss_dated(
            ("https://acme.example/late", "Late news of Sunday", "Sun, 22 Nov 2026 18:00:00 GMT"),
            ("https://acme.example/a", "Monday", "Mon, 23 Nov 2026 10:00:00 GMT"),
        ),
    )
    await tick(world, poller)
    digest = (await world.say("bob", "/digest now")).text("bob")
    assert "Late news of Sunday" in digest
    assert "Monday" not in digest
    assert (await world.say("bob", "/digest now")).text("bob") == en("digest.nothing_new")


def test_an_entrys_date_is_its_published_else_its_updated_date() -> None:
    parsed = parse_feed(
        b'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        b"<title>W</title><id>urn:w</id><updated>2026-11-27T08:00:00Z</updated>"
        b"<entry><id>urn:1</id><title>Both</title><published>2026-11-20T10:00:00+01:00"
        b"</published><updated>2026-11-26T10:00:00Z</updated></entry>"
        b"<entry><id>urn:2</id><title>Updated</title><updated>2026-11-21T10:00:00Z</updated>"
        b"</entry><entry><id>urn:3</id><title>None</title></entry></feed>",
        "https://wire.example/atom",
    )
    assert [(e.title, e.date) for e in parsed.entries] == [
        ("Both", datetime(2026, 11, 20, 9, 0, tzinfo=UTC)),
        ("Updated", datetime(2026, 11, 21, 10, 0, tzinfo=UTC)),
        ("None", None),
    ]


async def test_a_digest_ranks_an_entry_by_how_old_its_feed_says_it_is(
    world: World, feeds: FeedServer
) -> None:
    """An article from five days ago, fetched now, is not fresh news: today's share ranks
    above it (both without comments or reactions)."""
    await news_group(world)
    await world.say("alice", "/share news Fresh poster at the station")
    url = feeds.put(
        "/feed.xml",
        rss_dated(("https://acme.example/old", "Old article", "Sun, 22 Nov 2026 08:00:00 GMT")),
    )
    await world.say("alice", f"/feed add news {url}")
    await tick(world, poller_of(world))
    digest = (await world.say("bob", "/digest now")).text("bob")
    ranked = [line for line in digest.splitlines() if line.startswith("• #")]
    assert [line.split(" ")[1] for line in ranked] == ["#1", "#2"], digest
    assert "Old article" in ranked[1]
