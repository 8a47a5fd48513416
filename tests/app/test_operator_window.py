"""The operator's window in a real browser (Playwright driving Debian's Chromium,
headless): `admin web` sends an admin a one-time link; the page shows messengers, a
failing feed, dead letters (sent again with its one button), waiting proposals, the audit
log and versions; the link works once and for ten minutes; the public newsroom page.
Screenshots of each page are kept in test-artifacts/."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.async_api import Browser, Page, Response, async_playwright
from sqlalchemy import select, update

from app.http import create_app
from app.operator import routes as operator_routes
from jobs.outlets.newsroom import feed_routes
from store.db import Database
from store.models import Feed, NewsroomEntry, OutboxMessage, OutboxStatus
from tests.harness import World

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LINK = re.compile(r"https?://\S+/admin/login/\S+")


@dataclass
class Site:
    world: World
    base: str
    browser: Browser


@pytest.fixture
async def site(sqlite_db: Database) -> AsyncIterator[Site]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    world = World(sqlite_db, public_url=base)
    outlets = world.core.settings.outlets
    routes = feed_routes(world.hub, outlets, base) + operator_routes(
        world.hub, "test-secret", outlets, base
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(world.hub, routes), log_level="warning", lifespan="off")
    )
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            yield Site(world, base, browser)
            await browser.close()
    finally:
        server.should_exit = True
        await serving
        world.close()


async def signed_in(page: Page, link: str) -> Response:
    """Opens the login link and presses its button (a GET alone signs nobody in)."""
    await page.goto(link)
    async with page.expect_navigation() as navigation:
        await page.click("button[type=submit]")
    response = await navigation.value
    assert response is not None
    return response


async def login_link(world: World, who: str = "admin") -> str:
    said = (await world.say(who, "/admin web")).text(who)
    found = LINK.search(said)
    assert found is not None, said
    return found.group()


async def a_day_of_trouble(world: World) -> None:
    """A failing feed, a message that could not be delivered, a waiting proposal."""
    await world.script(
        ("admin", "/group create news News"),
        ("admin", "/role bob gatekeeper"),
        ("alice", "/propose newsroom Our new store opens on Monday!"),
    )
    now = world.clock.now()
    with world.db.uow() as uow:
        group = uow.groups.by_slug("news")
        assert group is not None
        uow.feeds.add(
            Feed(
                group_id=group.id,
                url="https://example.org/supplier.xml",
                title="Supplier news",
                interval_seconds=3600,
                next_poll_at=now,
                failing_since=now,
                failures=7,
                last_error="http:503",
                created_at=now,
            )
        )
        first = uow.session.scalars(select(OutboxMessage.id).order_by(OutboxMessage.id)).first()
        uow.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == first)
            .values(status=OutboxStatus.DEAD, attempts=8, last_error="Forbidden: bot was blocked")
        )
        uow.commit()
    world.clock.advance(3 * 3600)


async def test_an_admin_sees_what_is_wrong_and_sends_dead_letters_again(site: Site) -> None:
    world = site.world
    await a_day_of_trouble(world)
    link = await login_link(world)
    assert link.startswith(f"{site.base}/admin/login/")

    page = await site.browser.new_page()
    await signed_in(page, link)
    assert page.url == f"{site.base}/admin"
    text = await page.inner_text("main")
    assert "memory\nup" in text.replace("\t", "\n")
    feeds = await page.inner_text("#feeds")
    assert "Supplier news" in feeds
    assert "http:503" in feeds
    assert "failed: 1" in await page.inner_text("#outbox")
    proposals = await page.inner_text("#proposals")
    assert "P1" in proposals
    assert "@alice" in proposals
    assert "3 h" in proposals
    assert "admin.web_login" in await page.inner_text("#audit")
    assert "Pinwall 0.1.0" in await page.inner_text("#versions")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "operator.png"), full_page=True)

    await page.click("text=Send all failed messages again")
    assert "1 message(s) will be sent again." in await page.inner_text(".note")
    with world.db.uow() as uow:
        statuses = set(uow.session.scalars(select(OutboxMessage.status)))
    assert OutboxStatus.DEAD not in statuses
    await page.close()


async def test_a_login_link_works_once_and_for_ten_minutes(site: Site) -> None:
    world = site.world
    link = await login_link(world)
    # A link previewer or a mail scanner fetches it first: that uses nothing up.
    async with httpx.AsyncClient() as http:
        previewed = await http.get(link)
    assert previewed.status_code == 200
    assert "set-cookie" not in previewed.headers
    first = await site.browser.new_page()
    assert (await signed_in(first, link)).status == 200
    assert first.url.endswith("/admin")

    again = await site.browser.new_page()  # a second browser context would do the same
    answered = await signed_in(again, link)
    assert answered.status == 403
    assert "This link does not work (any more)" in await again.inner_text("h2")

    late = await login_link(world)
    world.clock.advance(11 * 60)
    stale = await site.browser.new_page()
    answered = await signed_in(stale, late)
    assert answered.status == 403

    nobody = await site.browser.new_page()
    answered = await nobody.goto(f"{site.base}/admin")
    assert answered is not None
    assert answered.status == 403


async def test_only_admins_get_a_link_and_the_page_speaks_their_language(site: Site) -> None:
    world = site.world
    refused = (await world.say("alice", "/admin web")).text("alice")
    assert LINK.search(refused) is None
    await world.say("admin", "/settings language de")
    await a_day_of_trouble(world)
    page = await site.browser.new_page()
    await signed_in(page, await login_link(world))
    assert "Feeds mit Fehlern" in await page.inner_text("#feeds")
    assert "Alle gescheiterten Nachrichten erneut senden" in await page.inner_text("#outbox")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "operator-de.png"), full_page=True)


async def test_the_public_newsroom_page_shows_what_was_published(site: Site) -> None:
    world = site.world
    with world.db.uow() as uow:
        uow.session.add(
            NewsroomEntry(
                outlet="newsroom",
                key="k1",
                text="Our new store opens on Monday! <script>alert(1)</script>",
                link="https://example.org/store",
                published_at=world.clock.now(),
            )
        )
        uow.commit()
    page = await site.browser.new_page()
    answered = await page.goto(f"{site.base}/public/newsroom")
    assert answered is not None
    assert answered.status == 200
    article = await page.inner_text("article")
    assert "Our new store opens on Monday! <script>alert(1)</script>" in article
    assert await page.get_attribute("header a", "href") == "/public/newsroom.atom"
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "newsroom.png"), full_page=True)
    atom = await page.goto(f"{site.base}/public/newsroom.atom")
    assert atom is not None
    assert atom.headers["content-type"].startswith("application/atom+xml")
