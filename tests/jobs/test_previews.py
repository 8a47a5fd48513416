"""Link previews: what a page says about itself, read and stored by the preview worker, and
shown in deliveries rendered afterwards. Pages come from local servers; the allow-list
admits loopback where a test must reach its server."""

from __future__ import annotations

import asyncio
import gzip
import logging
import os
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from adapters.memory import MemoryAdapter
from app.wiring import PREVIEW_WAIT, make_core
from bot.clock import SystemClock
from bot.core import CoreSettings
from bot.markup import to_plain
from bot.runtime import Hub
from jobs.delivery import DeliveryWorker
from jobs.fetch import FetchFailed, GuardedClient
from jobs.previews import (
    Preview,
    PreviewPolicy,
    PreviewWorker,
    decode_html,
    fetch_preview,
    parse_html,
)
from store.db import Database
from store.models import Item, OutboxMessage, PreviewStatus
from tests.harness import World
from tests.jobs.test_fetch import LocalServer, Request, respond, stream

LOOPBACK = "127.0.0.0/8"
HTML = {"Content-Type": "text/html; charset=utf-8"}

OPENGRAPH = b"""<!doctype html>
<html><head>
<meta charset="utf-8">
<title>Poster | ACME</title>
<meta property="og:title" content="The new poster &amp; its story">
<meta property="og:description" content="  Our campaign
   starts today.  ">
<meta property="og:image" content="/img/poster.jpg">
<meta property="og:site_name" content="ACME News">
<meta property="og:url" content="https://acme.example/poster">
<meta name="twitter:title" content="Twitter title (not used)">
<link rel="canonical" href="https://acme.example/poster?ref=canonical">
</head><body><h1>Poster</h1></body></html>"""

TWITTER = b"""<html><head>
<title>Plain title</title>
<meta name="twitter:card" content="summary_large_image">
<meta name="twitter:title" content="Card title">
<meta name="twitter:description" content="Card description">
<meta name="twitter:image" content="https://cdn.example/card.png">
<meta name="description" content="meta description (not used)">
</head><body></body></html>"""

PLAIN = b"""<html><head>
<base href="https://static.example/base/">
<svg><title>an icon, not the page</title></svg>
<title>
   Quarterly   report
</title>
<meta name="description" content="Numbers, as promised.">
<link rel="icon canonical" href="report.html">
<meta property="og:image" content="javascript:alert(1)">
</head><body><meta property="og:title" content="in the body: not read"></body></html>"""


# --- reading pages --------------------------------------------------------------------------


def test_opengraph_comes_first() -> None:
    preview = parse_html(OPENGRAPH.decode(), "https://acme.example/p/1")
    assert preview == Preview(
        title="The new poster & its story",
        description="Our campaign starts today.",
        image_url="https://acme.example/img/poster.jpg",
        site_name="ACME News",
        canonical_url="https://acme.example/poster?ref=canonical",
    )


def test_twitter_cards_come_next() -> None:
    preview = parse_html(TWITTER.decode(), "https://x.example/a")
    assert preview == Preview(
        title="Card title",
        description="Card description",
        image_url="https://cdn.example/card.png",
    )


def test_plain_html_is_the_fallback() -> None:
    preview = parse_html(PLAIN.decode(), "https://x.example/a")
    assert preview == Preview(
        title="Quarterly report",
        description="Numbers, as promised.",
        canonical_url="https://static.example/base/report.html",
    )


def test_a_page_without_anything_has_an_empty_preview() -> None:
    assert parse_html("<p>hello", "https://x.example/") == Preview()
    assert parse_html("", "https://x.example/") == Preview()
    assert parse_html("<title>never closed", "https://x.example/").title == "never closed"


def test_long_and_odd_texts_are_tamed() -> None:
    page = f"<title>{'word ' * 200}</title><meta name=description content='a\x00b\u202ec'>"
    preview = parse_html(page, "https://x.example/")
    assert preview.title is not None
    assert len(preview.title) == 300
    assert preview.title.endswith("…")
    assert preview.description == "a b c"


@pytest.mark.parametrize(
    ("body", "charset", "text"),
    [
        ("Grüße".encode("iso-8859-1"), "ISO-8859-1", "Grüße"),
        (b'<meta charset="iso-8859-1"><title>Gr\xfc\xdfe</title>', None, "Grüße"),
        (
            b'<meta http-equiv="Content-Type" content="text/html; charset=windows-1252">\x80',
            None,
            "€",
        ),
        ("€ und Grüße".encode(), None, "€ und Grüße"),
        (b"\xef\xbb\xbfBOM \xc3\xa4", "iso-8859-1", "BOM ä"),  # the BOM wins
        (b"caf\xe9 without a label", None, "café"),  # not UTF-8: what browsers assume
        ("cut at the cap: ä".encode()[:-1], None, "cut at the cap: \ufffd"),
        (b"x", "no-such-charset", "x"),
    ],
)
def test_charsets(body: bytes, charset: str | None, text: str) -> None:
    assert text in decode_html(body, charset)


# --- fetching pages -----------------------------------------------------------------------


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    s = LocalServer()
    await s.start()
    yield s
    await s.close()


@pytest.fixture
async def client() -> AsyncIterator[GuardedClient]:
    async with GuardedClient(allowlist=LOOPBACK, total_timeout=5.0) as c:
        yield c


async def test_fetching_a_page_with_opengraph(server: LocalServer, client: GuardedClient) -> None:
    url = server.route("/p/1", respond(200, OPENGRAPH, HTML))
    preview = await fetch_preview(client, url)
    assert preview.title == "The new poster & its story"
    assert preview.image_url == server.url("/img/poster.jpg")
    assert server.requests[0].headers["accept"].startswith("text/html")


async def test_an_iso_8859_1_page(server: LocalServer, client: GuardedClient) -> None:
    page = "<html><head><title>Größenänderung</title><meta name=description content='Über uns'>"
    url = server.route(
        "/de",
        respond(
            200,
            gzip.compress(page.encode("iso-8859-1")),
            {"Content-Type": "text/html; charset=ISO-8859-1", "Content-Encoding": "gzip"},
        ),
    )
    preview = await fetch_preview(client, url)
    assert (preview.title, preview.description) == ("Größenänderung", "Über uns")


async def test_only_the_head_of_a_huge_page_is_read(
    server: LocalServer, client: GuardedClient
) -> None:
    head = b"<html><head><title>Huge</title></head><body>" + b"<p>filler</p>" * 1000
    url = server.route("/huge", stream(1024 * 1024 * 1024, head * 100, HTML))
    preview = await asyncio.wait_for(fetch_preview(client, url), 10)
    assert preview.title == "Huge"


async def test_an_image_keeps_the_url_as_title(server: LocalServer, client: GuardedClient) -> None:
    url = server.route("/pic.png", respond(200, b"\x89PNG" * 1000, {"Content-Type": "image/png"}))
    server.route("/doc.pdf", respond(200, b"%PDF-1.7", {"Content-Type": "application/pdf"}))
    assert await fetch_preview(client, url) == Preview(image_url=url)
    assert await fetch_preview(client, server.url("/doc.pdf")) == Preview()


async def test_an_error_page_is_no_preview(server: LocalServer, client: GuardedClient) -> None:
    url = server.route("/gone", respond(404, b"<title>Not found</title>", HTML))
    with pytest.raises(FetchFailed, match="HTTP 404"):
        await fetch_preview(client, url)


# --- the worker, through the core -----------------------------------------------------------


def item(world: World, item_id: int = 1) -> Item:
    with world.db.uow() as uow:
        found = uow.session.scalar(select(Item).where(Item.id == item_id))
        assert found is not None
        uow.session.expunge(found)
        return found


async def marketing(world: World) -> None:
    await world.say("admin", "/group create marketing Marketing")
    await world.say("alice", "/join marketing")
    await world.say("alice", "/notify marketing instant")
    await world.say("bob", "/join marketing")


@pytest.fixture
async def previews(world: World) -> AsyncIterator[PreviewWorker]:
    async with GuardedClient(allowlist=LOOPBACK, total_timeout=5.0) as client:
        yield PreviewWorker(world.hub, client)


async def test_a_share_is_answered_at_once_and_shown_with_its_preview_later(
    world: World, server: LocalServer, previews: PreviewWorker
) -> None:
    url = server.route("/poster", respond(200, OPENGRAPH, HTML))
    await marketing(world)

    out = await world.say("bob", f"/share marketing Look {url}")
    # The answer and alice's copy go at once, before any preview: the URL is the title.
    assert out.text("bob") == "Shared as #1 in Marketing."
    assert out.text("alice") == f"bob in Marketing\nLook\n{url}\nComment  👍"
    assert server.requests == []
    assert item(world).preview_status is None  # due

    assert await previews.pass_once() == 1
    stored = item(world)
    assert stored.preview_status == PreviewStatus.DONE
    assert (stored.title, stored.site_name) == ("The new poster & its story", "ACME News")
    assert stored.canonical_url == "https://acme.example/poster?ref=canonical"
    assert await previews.pass_once() == 0  # nothing due any more

    # Rendered again now (as a retry of alice's copy would be), the post shows it.
    with world.db.uow() as uow:
        row = uow.session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.item_id == 1, OutboxMessage.person_id.is_not(None)
            )
        ).one()
        message = world.hub.renderer.render(uow, row)
    assert message is not None
    assert to_plain(message.text) == (
        f"Look\nThe new poster & its story (127.0.0.1) ({url})\nOur campaign starts today."
        "\nACME News"
    )


async def test_a_delivery_sent_after_the_preview_shows_it(
    world: World, server: LocalServer, previews: PreviewWorker
) -> None:
    url = server.route("/poster", respond(200, OPENGRAPH, HTML))
    await marketing(world)
    # The share is applied; its delivery to alice waits in the outbox meanwhile.
    await world.hub.submit(
        world.adapter.event("bob", f"/share marketing Look {url}", world.clock.now())
    )
    await previews.drain()
    before = len(world.adapter.sent)
    await world.worker.drain()
    sent = [s for s in world.adapter.sent[before:] if s.target.address == "alice"]
    assert len(sent) == 1
    assert to_plain(sent[0].message.text) == (
        f"Look\nThe new poster & its story (127.0.0.1) ({url})\nOur campaign starts today."
        "\nACME News"
    )


async def test_a_failing_site_leaves_a_working_post_and_is_tried_once_more(
    world: World, server: LocalServer, previews: PreviewWorker, caplog: pytest.LogCaptureFixture
) -> None:
    url = server.route("/down", respond(503, b"busy"))
    await marketing(world)
    await world.say("bob", f"/share marketing {url}")

    with caplog.at_level(logging.INFO, logger="jobs.previews"):
        assert await previews.pass_once() == 1
    first = item(world)
    assert (first.preview_status, first.title) == (PreviewStatus.RETRY, url)
    assert [r.getMessage() for r in caplog.records] == [
        f"link preview of post 1 failed: HTTP 503 ({url}); trying once more later"
    ]
    assert all(r.exc_info is None for r in caplog.records)  # one line, no traceback

    assert await previews.pass_once() == 0  # not yet
    world.clock.advance(minutes=11)
    assert await previews.pass_once() == 1
    assert item(world).preview_status == PreviewStatus.FAILED
    world.clock.advance(days=1)
    assert await previews.pass_once() == 0  # given up: at most one retry
    assert len(server.requests) == 2

    # The post keeps working, with its URL as title.
    await world.say("alice", "/comment 1 still there?")
    listing = (await world.say("alice", "/items marketing")).text("alice")
    assert f"  {url}" in listing.splitlines()


async def test_a_refused_link_is_not_tried_again(
    world: World, server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    url = server.route("/x", respond(200, OPENGRAPH, HTML))
    await marketing(world)
    await world.say("bob", f"/share marketing {url}")
    async with GuardedClient() as client:  # no allow-list: loopback is refused
        worker = PreviewWorker(world.hub, client)
        with caplog.at_level(logging.INFO):
            assert await worker.pass_once() == 1
    assert item(world).preview_status == PreviewStatus.FAILED
    assert server.requests == []
    assert [r.levelname for r in caplog.records] == ["WARNING"]  # the guard's one line
    assert "loopback" in caplog.records[0].getMessage()


async def test_example_com_fails_fast_and_quietly_in_tests(
    world: World, previews: PreviewWorker, caplog: pytest.LogCaptureFixture
) -> None:
    """The test guard refuses non-loopback connects (or DNS has nothing): a failed preview."""
    await marketing(world)
    out = await world.say("bob", "/share marketing https://example.com/poster Competitor's poster")
    assert "https://example.com/poster" in out.text("alice")
    with caplog.at_level(logging.INFO):
        await asyncio.wait_for(previews.pass_once(), 10)
    assert item(world).preview_status == PreviewStatus.RETRY
    assert item(world).title == "https://example.com/poster"
    assert len(caplog.records) == 1
    assert caplog.records[0].levelname == "INFO"
    assert caplog.records[0].exc_info is None


async def test_previews_run_beside_the_core_and_stop_cleanly(
    world: World, server: LocalServer
) -> None:
    """The worker in the background: a share is answered while its page hangs, the
    fetches run a few at a time, and what is in flight at the stop is given back."""
    running = 0
    peak = 0
    release = asyncio.Event()

    async def slow(request: Request, writer: asyncio.StreamWriter) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            await release.wait()
            await respond(200, b"<title>Slow</title>", HTML)(request, writer)
        finally:
            running -= 1

    server.route("/slow/", slow)
    await marketing(world)
    stop = asyncio.Event()
    async with GuardedClient(allowlist=LOOPBACK, total_timeout=30.0) as client:
        worker = PreviewWorker(world.hub, client, PreviewPolicy(concurrency=2, idle_poll=0.05))
        task = asyncio.create_task(worker.run(stop))
        for n in range(5):
            out = await asyncio.wait_for(
                world.say("bob", f"/share marketing {server.url(f'/slow/{n}')}"), 5
            )
            assert out.text("bob") == f"Shared as #{n + 1} in Marketing."
        for _ in range(200):
            if running == 2:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        assert (running, peak) == (2, 2)  # bounded: two at a time

        stop.set()
        await asyncio.wait_for(task, 5)
        statuses = [item(world, n).preview_status for n in range(1, 6)]
        assert statuses == [None] * 5  # given back untried: due again after a restart

        release.set()
        task = asyncio.create_task(worker.run(stop := asyncio.Event()))
        for _ in range(300):
            if all(item(world, n).preview_status == PreviewStatus.DONE for n in range(1, 6)):
                break
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, 5)
    assert [item(world, n).title for n in range(1, 6)] == ["Slow"] * 5


async def test_a_claim_whose_process_died_counts_as_a_try(
    world: World, server: LocalServer, previews: PreviewWorker
) -> None:
    url = server.route("/ok", respond(200, TWITTER, HTML))
    await marketing(world)
    await world.say("bob", f"/share marketing {url}")
    with world.db.uow() as uow:  # another instance claimed it, then died
        assert uow.items.claim_previews(world.clock.now(), 10, timedelta(minutes=2)) == [
            (1, url, 1)
        ]
        uow.commit()
    assert await previews.pass_once() == 0  # the claim holds
    world.clock.advance(minutes=3)
    assert await previews.pass_once() == 1
    assert (item(world).preview_status, item(world).title) == (PreviewStatus.DONE, "Card title")


async def test_the_console_answers_at_once_and_the_live_copy_shows_the_preview(
    server: LocalServer, tmp_path: Path
) -> None:
    """`pinwall run` as the acceptance conversation runs it, with previews on: the share is
    answered at once, and alice's live copy waits the moment it takes to fetch the page,
    so it shows the page's title (issue 19), before the next line is read."""
    url = server.route("/poster", respond(200, OPENGRAPH, HTML))
    script = (
        "/group create marketing Marketing\n"
        "/as alice\n/join marketing\n/notify marketing instant\n"
        f"/as bob\n/join marketing\n/share marketing {url} Look\n"
        "/items marketing\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINWALL_")}
    env.update(PINWALL_HTTP_PORT="0", PINWALL_FETCH_ALLOWLIST="127.0.0.1")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        "run",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=tmp_path,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(script.encode()), 60)
    assert proc.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    answer = lines.index("[bob] Shared as #1 in Marketing.")
    share = lines.index("[alice] bob in Marketing: Look")
    assert answer < share  # the answer does not wait for the preview
    assert lines[share + 1 : share + 4] == [
        f"  The new poster & its story (127.0.0.1) ({url})",
        "  Our campaign starts today.",
        "  ACME News",
    ]
    listing = lines.index("[bob] Marketing — the newest post:")
    assert share < listing  # the copy was out before the next line was read
    assert f"    The new poster & its story (127.0.0.1) ({url})" in lines[listing:]
    assert [r.path for r in server.requests] == ["/poster"]


# --- live copies wait for the preview, a little (issue 19) ----------------------------------


@dataclass
class Live:
    """A Pinwall on the system clock, with its delivery and preview workers running."""

    hub: Hub
    adapter: MemoryAdapter

    async def say(self, who: str, text: str) -> None:
        await self.hub.submit(self.adapter.event(who, text, self.hub.clock.now()))

    def copies(self, who: str) -> list[str]:
        return [to_plain(s.message.text) for s in self.adapter.to(who)]


@pytest.fixture
async def live(db: Database) -> AsyncIterator[Live]:
    core = make_core(db, SystemClock(), CoreSettings(admins=frozenset({("memory", "admin")}),
                                                preview_wait=PREVIEW_WAIT))  # fmt: skip
    hub = Hub(core)
    adapter = MemoryAdapter()
    hub.register(adapter)
    stop = asyncio.Event()
    async with GuardedClient(allowlist=LOOPBACK, total_timeout=10.0) as client:
        tasks = [
            asyncio.create_task(DeliveryWorker(hub).run(stop)),
            asyncio.create_task(PreviewWorker(hub, client).run(stop)),
        ]
        world = Live(hub, adapter)
        for who, line in [
            ("admin", "/group create marketing Marketing"),
            ("alice", "/join marketing"),
            ("alice", "/notify marketing instant"),
            ("bob", "/join marketing"),
        ]:
            await world.say(who, line)
        for _ in range(500):  # until the answers to all that are out
            if not await hub.call(unfinished, db):
                break
            await asyncio.sleep(0.01)
        adapter.sent.clear()
        try:
            yield world
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 10)
            hub.close()


def unfinished(db: Database) -> int:
    with db.uow() as uow:
        counts = uow.outbox.counts()
    return counts.get("pending", 0) + counts.get("sending", 0)


async def until_sent(live: Live, who: str, within: float) -> float:
    """Seconds until `who` got something (fails after `within`)."""
    started = time.monotonic()
    while not live.adapter.to(who):
        assert time.monotonic() - started < within, f"nothing for {who} in {within} s"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def test_a_live_copy_shows_the_preview_when_the_page_answers_in_time(
    live: Live, server: LocalServer
) -> None:
    url = server.route("/poster", respond(200, OPENGRAPH, HTML))
    started = time.monotonic()
    await live.say("bob", f"/share marketing Look {url}")
    answered = await until_sent(live, "bob", 1.0)
    took = await until_sent(live, "alice", PREVIEW_WAIT + 1.0) + answered
    assert live.copies("bob") == ["Shared as #1 in Marketing."]
    assert live.copies("alice") == [
        f"Look\nThe new poster & its story (127.0.0.1) ({url})\n"
        "Our campaign starts today.\nACME News"
    ]
    assert took < PREVIEW_WAIT  # let go when the preview came, not at the bound
    assert answered < 0.5
    assert time.monotonic() - started < PREVIEW_WAIT + 0.5


async def test_a_slow_page_holds_the_live_copy_no_longer_than_the_bound(
    live: Live, server: LocalServer
) -> None:
    release = asyncio.Event()

    async def slow(request: Request, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        await respond(200, b"<title>Too late</title>", HTML)(request, writer)

    url = server.route("/slow", slow)
    try:
        await live.say("bob", f"/share marketing {url}")
        answered = await until_sent(live, "bob", 1.0)
        assert answered < 0.5  # the answer to the sharer does not wait
        waited = await until_sent(live, "alice", PREVIEW_WAIT + 1.0) + answered
        assert PREVIEW_WAIT - 0.1 <= waited < PREVIEW_WAIT + 0.5
        assert live.copies("alice") == [url]  # without the preview, which has not come
    finally:
        release.set()
