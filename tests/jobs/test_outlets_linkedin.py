"""The LinkedIn outlet against a fake of LinkedIn's REST API (tests/fakes/linkedin.py) over
real HTTP: posts as the organization with the versioned headers, little-text escaping,
an article card for a link, images through the Images API, LinkedIn's limits checked when
the proposal is made, and each failure as the publishing job must handle it — a 429
with Retry-After, an expired token (told to the admins), a timeout after sending
(flagged, never repeated) — plus the token's expiry told ahead of time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import update

from bot.errors import ConfigError
from bot.outlets import DEFAULT_LIMITS, NEWSROOM_SPEC, OutletSettings, OutletSpec
from jobs.outlets import linkedin
from jobs.outlets.base import (
    MediaFile,
    OutletContext,
    Publication,
    TokenRefusedError,
    TransientPublishError,
    UncertainPublishError,
)
from jobs.publish import PublishJob
from store.db import Database
from store.models import Item, ProposalStatus
from tests.bot.conversation import de, en
from tests.fakes.linkedin import FakeLinkedIn
from tests.harness import World
from tests.jobs.test_outlets_mastodon import png
from tests.jobs.test_publish import approved, proposal, tick

TOKEN = "AQV-page-admin-token"
ORG = "2414183"
AUTHOR = f"urn:li:organization:{ORG}"
POSTS = "/rest/posts"


def publication(text: str, **kw: Any) -> Publication:
    return Publication(
        proposal_id=1,
        text=text,
        link=kw.pop("link", None),
        media=kw.pop("media", ()),
        idempotency_key="pinwall-p1-r1",
        **kw,
    )


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLinkedIn]:
    with FakeLinkedIn() as fake:
        fake.add_organization(ORG, "Acme GmbH")
        fake.add_token(TOKEN, {AUTHOR})
        yield fake


@pytest.fixture
def fake(server: FakeLinkedIn) -> FakeLinkedIn:
    server.reset()
    return server


def context(tmp_path: Path, timeout: float = 5.0) -> OutletContext:
    return OutletContext(
        db=Database("sqlite:///:memory:"), public_url=None, data_dir=tmp_path, timeout=timeout
    )


def spec(fake: FakeLinkedIn, token: str | None = TOKEN, **options: Any) -> OutletSpec:
    return OutletSpec(
        name="linkedin",
        kind="linkedin",
        options={"organization": ORG, "base_url": fake.url, **options},
        token=token,
        limits=DEFAULT_LIMITS["linkedin"],
    )


@pytest.fixture
async def publisher(
    fake: FakeLinkedIn, tmp_path: Path
) -> AsyncIterator[linkedin.LinkedInPublisher]:
    p = linkedin.create(spec(fake), context(tmp_path))
    yield p
    await p.aclose()


def image(tmp_path: Path, name: str = "a.png", alt: str = "") -> MediaFile:
    path = tmp_path / name
    path.write_bytes(png())
    return MediaFile(name, "image/png", path, path.stat().st_size, alt)


async def test_a_text_post_as_the_organization_escaped_as_little_text(
    publisher: linkedin.LinkedInPublisher, fake: FakeLinkedIn
) -> None:
    text = "Neu (ab Montag): #Leipzig [Filiale] — 50 % auf *alles* @ https://acme.example/a_b"
    published = await publisher.publish(publication(text))

    [post] = fake.posts
    assert post.body["author"] == AUTHOR
    assert post.body["lifecycleState"] == "PUBLISHED"
    assert post.body["visibility"] == "PUBLIC"
    assert post.body["distribution"]["feedDistribution"] == "MAIN_FEED"
    assert "content" not in post.body
    # Unescaped, LinkedIn would have cut the text at "(": readers see all of it.
    assert post.shown == text
    assert post.body["commentary"].startswith(r"Neu \(ab Montag\): \#Leipzig \[Filiale\]")
    assert post.body["commentary"].endswith("https://acme.example/a_b")  # the URL untouched
    assert post.version == linkedin.DEFAULT_VERSION
    assert published.remote_id == post.urn
    assert published.url == f"https://www.linkedin.com/feed/update/{post.urn}"


async def test_a_link_becomes_an_article_card_from_the_stored_preview(
    publisher: linkedin.LinkedInPublisher, fake: FakeLinkedIn
) -> None:
    link = "https://acme.example/news/leipzig"
    await publisher.publish(
        publication(
            "Our new store",
            link=link,
            link_title="Acme opens in Leipzig",
            link_description="The 40th store, by the station.",
        )
    )
    [post] = fake.posts
    assert post.shown == "Our new store"  # the card carries the link
    assert post.body["content"] == {
        "article": {
            "source": link,
            "title": "Acme opens in Leipzig",
            "description": "The 40th store, by the station.",
        }
    }


@pytest.fixture
async def image_host() -> AsyncIterator[str]:
    """A web server with the link preview's image, on loopback."""

    async def card(_: web.Request) -> web.Response:
        return web.Response(body=png(), content_type="image/png")

    app = web.Application()
    app.router.add_get("/card.png", card)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/card.png"
    await runner.cleanup()


async def test_the_preview_image_becomes_the_article_thumbnail_through_the_guard(
    fake: FakeLinkedIn, tmp_path: Path, image_host: str
) -> None:
    allowed = linkedin.create(spec(fake), replace(context(tmp_path), fetch_allowlist="127.0.0.1"))
    guarded = linkedin.create(spec(fake), context(tmp_path))  # loopback is not public
    draft = publication(
        "Our new store",
        link="https://acme.example/leipzig",
        link_title="Acme in Leipzig",
        link_image=image_host,
    )
    try:
        await allowed.publish(draft)
        await guarded.publish(draft)
    finally:
        await allowed.aclose()
        await guarded.aclose()
    with_picture, without = fake.posts
    thumbnail = with_picture.body["content"]["article"]["thumbnail"]
    assert fake.images[thumbnail].data == png()
    assert fake.images[thumbnail].mime_type == "image/png"
    assert "thumbnail" not in without.body["content"]["article"]  # refused, posted anyway
    assert without.body["content"]["article"]["title"] == "Acme in Leipzig"


async def test_images_go_through_the_images_api(
    publisher: linkedin.LinkedInPublisher, fake: FakeLinkedIn, tmp_path: Path
) -> None:
    one = image(tmp_path, "one.png", alt="The poster")
    await publisher.publish(publication("One image", media=(one,), link="https://acme.example/x"))
    three = tuple(image(tmp_path, f"{n}.png") for n in "abc")
    await publisher.publish(publication("Three images", media=three))

    single, multi = fake.posts
    urn = single.body["content"]["media"]["id"]
    assert single.body["content"]["media"]["altText"] == "The poster"
    assert fake.images[urn].data == one.path.read_bytes()
    assert fake.images[urn].owner == AUTHOR
    # With images the link cannot be a card: it goes on its own line.
    assert single.shown == "One image\nhttps://acme.example/x"
    ids = [i["id"] for i in multi.body["content"]["multiImage"]["images"]]
    assert len(ids) == 3
    assert [fake.images[i].data for i in ids] == [m.path.read_bytes() for m in three]
    assert fake.calls.count(("POST", "/rest/images")) == 4
    assert fake.calls.count(("POST", POSTS)) == 2


async def test_too_many_requests_is_transient_with_retry_after(
    publisher: linkedin.LinkedInPublisher, fake: FakeLinkedIn
) -> None:
    fake.fail(
        POSTS,
        429,
        {"status": 429, "serviceErrorCode": 101, "message": "Resource level throttle limit"},
        headers={"Retry-After": "120"},
    )
    with pytest.raises(TransientPublishError) as failed:
        await publisher.publish(publication("hello"))
    assert failed.value.retry_after == 120
    fake.fail(POSTS, 503)
    with pytest.raises(TransientPublishError, match="503"):
        await publisher.publish(publication("hello"))
    assert fake.posts == []
    await publisher.publish(publication("hello"))
    assert len(fake.posts) == 1


async def test_an_expired_token_is_refused_for_the_admins_to_renew(
    publisher: linkedin.LinkedInPublisher, fake: FakeLinkedIn
) -> None:
    fake.expire(TOKEN)
    with pytest.raises(TokenRefusedError, match="EXPIRED_ACCESS_TOKEN") as failed:
        await publisher.publish(publication("hello"))
    assert failed.value.admin_key == "outlet.linkedin.token_refused"
    assert fake.posts == []


async def test_a_timeout_after_sending_is_uncertain(fake: FakeLinkedIn, tmp_path: Path) -> None:
    publisher = linkedin.create(spec(fake), context(tmp_path, timeout=0.3))
    try:
        fake.hang(POSTS, 1.0)
        with pytest.raises(UncertainPublishError, match="may have been posted"):
            await publisher.publish(publication("hello"))
    finally:
        await publisher.aclose()
    assert len(fake.posts) == 1  # LinkedIn made it; the publisher cannot know


async def test_an_unreachable_server_is_transient(tmp_path: Path) -> None:
    p = linkedin.create(
        OutletSpec("li", "linkedin", {"organization": ORG, "base_url": "http://127.0.0.1:9"}, "t"),
        context(tmp_path),
    )
    try:
        with pytest.raises(TransientPublishError, match="not reachable"):
            await p.publish(publication("hello"))
    finally:
        await p.aclose()


def test_settings_are_checked_at_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PINWALL_OUTLETS_LI_ORGANIZATION"):
        linkedin.create(OutletSpec("li", "linkedin", {}, TOKEN), context(tmp_path))
    with pytest.raises(ConfigError, match="PINWALL_OUTLETS_LI_ORGANIZATION"):
        linkedin.create(
            OutletSpec("li", "linkedin", {"organization": "urn:li:person:1"}, TOKEN),
            context(tmp_path),
        )
    with pytest.raises(ConfigError, match="PINWALL_OUTLET_LI_TOKEN"):
        linkedin.create(OutletSpec("li", "linkedin", {"organization": ORG}), context(tmp_path))
    with pytest.raises(ConfigError, match="PINWALL_OUTLETS_LI_TOKEN_EXPIRES"):
        linkedin.create(
            OutletSpec("li", "linkedin", {"organization": ORG, "token_expires": "soon"}, TOKEN),
            context(tmp_path),
        )
    made = linkedin.create(
        OutletSpec("li", "linkedin", {"organization": f"urn:li:organization:{ORG}"}, TOKEN),
        context(tmp_path),
    )
    assert made.author == AUTHOR


# --- with the publishing job ------------------------------------------------------------


_JOBS: list[PublishJob] = []


@pytest.fixture
async def world(sqlite_db: Database) -> AsyncIterator[World]:
    w = World(sqlite_db)
    yield w
    while _JOBS:  # their publishers' HTTP clients
        await _JOBS.pop().aclose()
    w.close()


def job_for(world: World, tmp_path: Path, li: OutletSpec, timeout: float = 5.0) -> PublishJob:
    outlets = OutletSettings((NEWSROOM_SPEC, li))
    world.core.settings = replace(world.core.settings, outlets=outlets)
    context = OutletContext(db=world.db, public_url=None, data_dir=tmp_path, timeout=timeout)
    job = PublishJob(world.hub, outlets, context)
    _JOBS.append(job)
    return job


async def test_an_over_length_text_is_refused_when_proposed_naming_the_limit(
    world: World, tmp_path: Path, fake: FakeLinkedIn
) -> None:
    job_for(world, tmp_path, spec(fake))
    await world.say("alice", "/whoami")
    before = world.snapshot()
    out = await world.say("alice", "/propose linkedin " + "x" * 3001)
    assert out.text("alice").startswith(
        en("error.proposal_too_long", outlet="linkedin", actual=3001, limit=3000, unit="characters")
    )
    assert world.snapshot() == before
    out = await world.say("bjoern", "/propose linkedin " + "ü" * 3001, language="de")
    assert out.text("bjoern").startswith(
        de("error.proposal_too_long", outlet="linkedin", actual=3001, limit=3000, unit="Zeichen")
    )
    assert de("outlets.kind.linkedin") == "LinkedIn-Seite"
    out = await world.say("alice", "/propose linkedin " + "x" * 3000)
    assert "Proposal P1 for linkedin waits" in out.text("alice")


async def test_a_published_post_s_url_reaches_author_and_gatekeepers(
    world: World, tmp_path: Path, fake: FakeLinkedIn
) -> None:
    job = job_for(world, tmp_path, spec(fake))
    await approved(world, "/propose linkedin Hello LinkedIn (from Pinwall)")
    told = await tick(world, job)
    [post] = fake.posts
    url = f"https://www.linkedin.com/feed/update/{post.urn}"
    assert post.shown == "Hello LinkedIn (from Pinwall)"
    assert f"alice: Your proposal P1 is published on linkedin: {url}" in told
    assert any(line.startswith("bob: ") and f"Published: {url}" in line for line in told)
    assert proposal(world)[:3] == (ProposalStatus.PUBLISHED, 1, url)


async def test_a_429_waits_at_least_retry_after(
    world: World, tmp_path: Path, fake: FakeLinkedIn
) -> None:
    job = job_for(world, tmp_path, spec(fake))
    await approved(world, "/propose linkedin Later")
    fake.fail(POSTS, 429, {"status": 429, "message": "throttled"}, headers={"Retry-After": "600"})
    await tick(world, job)
    assert proposal(world)[:2] == (ProposalStatus.APPROVED, 1)
    world.clock.advance(seconds=300)  # past the first backoff (30 s), not past Retry-After
    await tick(world, job)
    assert fake.posts == []
    world.clock.advance(seconds=301)
    await tick(world, job)
    assert len(fake.posts) == 1
    assert proposal(world)[:2] == (ProposalStatus.PUBLISHED, 2)


async def test_an_expired_token_fails_the_post_and_tells_the_admins(
    world: World, tmp_path: Path, fake: FakeLinkedIn
) -> None:
    job = job_for(world, tmp_path, spec(fake))
    await approved(world, "/propose linkedin Hello")
    fake.expire(TOKEN)
    told = await tick(world, job)
    assert proposal(world)[0] == ProposalStatus.FAILED
    admin = [line for line in told if line.startswith("admin: ")]
    assert len(admin) == 1
    assert admin[0].startswith("admin: LinkedIn refused the access token of channel linkedin")
    assert "PINWALL_OUTLET_LINKEDIN_TOKEN" in admin[0]
    assert "/approve P1" in admin[0]
    assert any(line.startswith("alice: Your proposal P1 could not be published") for line in told)
    # A new token; the admin publishes it again.
    fake.reset()
    await world.say("admin", "/approve P1")
    await tick(world, job)
    assert len(fake.posts) == 1


async def test_a_timeout_after_sending_is_flagged_and_never_repeated(
    world: World, tmp_path: Path, fake: FakeLinkedIn
) -> None:
    job = job_for(world, tmp_path, spec(fake), timeout=0.5)
    await approved(world, "/propose linkedin Maybe")
    fake.hang(POSTS, 1.5)
    told = await tick(world, job)
    assert proposal(world)[0] == ProposalStatus.UNCERTAIN
    assert any(line.startswith("admin: Please check linkedin: publishing P1") for line in told)
    world.clock.advance(hours=3)
    await tick(world, job)
    await tick(world, job)
    assert len(fake.posts) == 1
    assert fake.calls.count(("POST", POSTS)) == 1


async def test_admins_hear_of_the_token_expiry_a_week_ahead_once(
    world: World, tmp_path: Path, fake: FakeLinkedIn
) -> None:
    today = world.clock.now().date()
    job = job_for(world, tmp_path, spec(fake, token_expires=str(today + timedelta(days=9))))
    await world.say("admin", "/whoami")
    assert await tick(world, job) == []  # nine days ahead: not yet
    world.clock.advance(days=2)
    told = await tick(world, job)
    assert told == [
        "admin: "
        + en(
            "outlet.linkedin.token_expiring",
            outlet="linkedin",
            date=str(today + timedelta(days=9)),
            days=7,
            variable="PINWALL_OUTLET_LINKEDIN_TOKEN",
        )
    ]
    world.clock.advance(days=1)
    assert await tick(world, job) == []  # once
    # A new token with a new date is warned about in its turn.
    renewed = job_for(world, tmp_path, spec(fake, token_expires=str(today + timedelta(days=12))))
    assert await tick(world, renewed) == []
    world.clock.advance(days=60)
    assert len(await tick(world, renewed)) == 1


async def test_doctor_warns_about_a_token_that_expires_within_seven_days(
    fake: FakeLinkedIn, tmp_path: Path
) -> None:
    from datetime import date

    soon = date.today() + timedelta(days=5)
    p = linkedin.create(spec(fake, token_expires=soon.isoformat()), context(tmp_path))
    try:
        [problem] = await p.check()
    finally:
        await p.aclose()
    assert problem.what == f"the LinkedIn token of outlet linkedin expires on {soon} (in 5 days)"
    assert "PINWALL_OUTLET_LINKEDIN_TOKEN" in problem.fix

    later = date.today() + timedelta(days=40)
    p = linkedin.create(spec(fake, token_expires=later.isoformat()), context(tmp_path))
    try:
        assert await p.check() == []
    finally:
        await p.aclose()
    p = linkedin.create(spec(fake, token="wrong", token_expires=later), context(tmp_path))
    try:
        [problem] = await p.check()
    finally:
        await p.aclose()
    assert "LinkedIn refuses the token of outlet linkedin" in problem.what
    assert "INVALID_ACCESS_TOKEN" in problem.what


async def test_the_approval_card_shows_how_the_post_will_look_and_it_does(
    world: World, tmp_path: Path, fake: FakeLinkedIn
) -> None:
    """The gatekeeper sees the text cut where LinkedIn's feed cuts it and the link card
    made of the stored preview; after approval exactly that card reaches LinkedIn."""
    job = job_for(world, tmp_path, spec(fake))
    link = "https://www.acme.example/news/leipzig"
    for name in ("bob", "alice"):
        await world.say(name, "/whoami")
    await world.say("admin", "/role bob gatekeeper")
    await world.say("admin", "/group create news News")
    await world.say("alice", "/join news")
    await world.say("alice", f"/share news {link}")
    with world.db.uow() as uow:
        uow.session.execute(
            update(Item)
            .where(Item.url == link)
            .values(
                title="Acme opens in Leipzig",
                description="The 40th store.",
                image_url="https://www.acme.example/leipzig.jpg",
            )
        )
        uow.commit()
    text = "Wir eröffnen in Leipzig! " * 12  # 300 characters: LinkedIn folds at 210
    out = await world.say("alice", f"/propose linkedin {text.strip()} --item 1")
    card = out.text("bob")
    assert "How it will look on LinkedIn:" in card
    shown = card.split("How it will look on LinkedIn:\n", 1)[1].split("\n")
    above = shown[0].removeprefix("> ")
    assert 180 < len(above) <= 210
    assert text.startswith(above + " ")  # cut between two words
    assert shown[1] == "… see more"
    assert shown[2] == "Link card with picture: Acme opens in Leipzig · acme.example"

    await world.say("bob", "/approve P1")
    await tick(world, job)
    [post] = fake.posts
    assert post.shown == text.strip()
    assert post.body["content"]["article"]["title"] == "Acme opens in Leipzig"
    assert post.body["content"]["article"]["source"] == link


def test_the_outlet_table_takes_a_toml_date_and_needs_the_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json
    from datetime import date

    from app.config import load_settings
    from bot.config import outlet_settings
    from bot.outlets import token_expires

    table = {"kind": "linkedin", "organization": ORG, "token_expires": date(2027, 2, 5)}
    monkeypatch.delenv("PINWALL_OUTLET_LINKEDIN_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="PINWALL_OUTLET_LINKEDIN_TOKEN: missing"):
        load_settings(outlets={"linkedin": table})
    monkeypatch.setenv("PINWALL_OUTLET_LINKEDIN_TOKEN", TOKEN)
    facebook = {"kind": "facebook", "page": "1"}
    monkeypatch.delenv("PINWALL_OUTLET_FB_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="PINWALL_OUTLET_FB_TOKEN: missing"):
        load_settings(outlets={"fb": facebook})
    monkeypatch.setenv("PINWALL_OUTLET_FB_TOKEN", "page-token")
    settings = load_settings(outlets={"linkedin": table, "fb": facebook})
    specs = {s.name: s for s in outlet_settings(settings).outlets}
    assert token_expires(specs["linkedin"]) == date(2027, 2, 5)
    assert specs["linkedin"].limits == DEFAULT_LIMITS["linkedin"]
    assert specs["fb"].limits.max_length == 63_206
    shown = json.loads(json.dumps(settings.redacted(), default=str))  # `pinwall config`
    assert shown["outlets"]["linkedin"]["token_expires"] == "2027-02-05"
