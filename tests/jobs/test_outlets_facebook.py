"""The Facebook outlet against a fake of the Graph API (tests/fakes/facebook.py) over real
HTTP: posts to the page's feed with the token as access_token, a link for Facebook's
card, photos uploaded unpublished and attached to one post, Facebook's limits checked when
the proposal is made, and each failure as the publishing job must handle it — a 429 with
Retry-After and the rate-limit codes, an expired token (code 190, told to the admins), a
timeout after sending (flagged, never repeated)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot.errors import ConfigError
from bot.outlets import DEFAULT_LIMITS, NEWSROOM_SPEC, OutletSettings, OutletSpec
from jobs.outlets import facebook
from jobs.outlets.base import (
    MediaFile,
    OutletContext,
    PermanentPublishError,
    Publication,
    TokenRefusedError,
    TransientPublishError,
    UncertainPublishError,
)
from jobs.publish import PublishJob
from store.db import Database
from store.models import ProposalStatus
from tests.bot.conversation import en
from tests.fakes.facebook import FakeFacebook
from tests.harness import World
from tests.jobs.test_outlets_mastodon import png
from tests.jobs.test_publish import approved, proposal, tick

TOKEN = "EAAG-page-token"
PAGE = "104823568912345"


def publication(text: str, **kw: Any) -> Publication:
    return Publication(
        proposal_id=1,
        text=text,
        link=kw.pop("link", None),
        media=kw.pop("media", ()),
        idempotency_key="pinwall-p1-r1",
    )


@pytest.fixture(scope="module")
def server() -> Iterator[FakeFacebook]:
    with FakeFacebook() as fake:
        fake.add_page(PAGE, "Acme GmbH", TOKEN)
        yield fake


@pytest.fixture
def fake(server: FakeFacebook) -> FakeFacebook:
    server.reset()
    return server


def context(tmp_path: Path, timeout: float = 5.0) -> OutletContext:
    return OutletContext(
        db=Database("sqlite:///:memory:"), public_url=None, data_dir=tmp_path, timeout=timeout
    )


def spec(fake: FakeFacebook, token: str | None = TOKEN, **options: Any) -> OutletSpec:
    return OutletSpec(
        name="facebook",
        kind="facebook",
        options={"page": PAGE, "base_url": fake.url, **options},
        token=token,
        limits=DEFAULT_LIMITS["facebook"],
    )


@pytest.fixture
async def publisher(
    fake: FakeFacebook, tmp_path: Path
) -> AsyncIterator[facebook.FacebookPublisher]:
    p = facebook.create(spec(fake), context(tmp_path))
    yield p
    await p.aclose()


def image(tmp_path: Path, name: str = "a.png", alt: str = "") -> MediaFile:
    path = tmp_path / name
    path.write_bytes(png())
    return MediaFile(name, "image/png", path, path.stat().st_size, alt)


async def test_a_text_post_to_the_page_feed(
    publisher: facebook.FacebookPublisher, fake: FakeFacebook
) -> None:
    published = await publisher.publish(publication("Grüße aus Leipzig (ab Montag) #neu"))
    [post] = fake.posts
    assert (post.page, post.message, post.link, post.photos) == (
        PAGE,
        "Grüße aus Leipzig (ab Montag) #neu",
        None,
        [],
    )
    assert post.id.startswith(f"{PAGE}_")
    assert published.remote_id == post.id
    assert published.url == f"https://www.facebook.com/{post.id}"
    assert fake.calls == [("POST", f"/{facebook.DEFAULT_VERSION}/{PAGE}/feed")]


async def test_a_link_goes_as_the_link_parameter(
    publisher: facebook.FacebookPublisher, fake: FakeFacebook
) -> None:
    await publisher.publish(publication("Our new store", link="https://acme.example/leipzig"))
    [post] = fake.posts
    assert (post.message, post.link) == ("Our new store", "https://acme.example/leipzig")


async def test_photos_are_uploaded_unpublished_then_attached_to_one_post(
    publisher: facebook.FacebookPublisher, fake: FakeFacebook, tmp_path: Path
) -> None:
    media = (image(tmp_path, "a.png", alt="The poster"), image(tmp_path, "b.png"))
    await publisher.publish(publication("Two photos", media=media, link="https://acme.example/x"))
    [post] = fake.posts
    assert post.message == "Two photos\nhttps://acme.example/x"
    assert post.link is None
    assert len(post.photos) == 2
    assert [fake.photos[p].data for p in post.photos] == [m.path.read_bytes() for m in media]
    assert fake.photos[post.photos[0]].alt == "The poster"
    assert all(fake.photos[p].published for p in post.photos)  # shown with the post now
    edges = [path.rsplit("/", 1)[-1] for _, path in fake.calls]
    assert edges == ["photos", "photos", "feed"]


async def test_rate_limits_and_server_errors_are_transient(
    publisher: facebook.FacebookPublisher, fake: FakeFacebook
) -> None:
    fake.fail("feed", 429, headers={"Retry-After": "90"})
    with pytest.raises(TransientPublishError) as failed:
        await publisher.publish(publication("hello"))
    assert failed.value.retry_after == 90
    for code in (4, 17, 32, 613):
        fake.fail("feed", 400, {"message": "(#32) Page request limit reached", "code": code})
        with pytest.raises(TransientPublishError, match="too many requests"):
            await publisher.publish(publication("hello"))
    fake.fail("feed", 500)
    with pytest.raises(TransientPublishError, match="server error"):
        await publisher.publish(publication("hello"))
    assert fake.posts == []
    await publisher.publish(publication("hello"))
    assert len(fake.posts) == 1


async def test_an_expired_token_is_refused_for_the_admins_to_renew(
    publisher: facebook.FacebookPublisher, fake: FakeFacebook
) -> None:
    fake.expire(TOKEN)
    with pytest.raises(TokenRefusedError, match="190: Error validating access token") as failed:
        await publisher.publish(publication("hello"))
    assert failed.value.admin_key == "outlet.facebook.token_refused"
    assert fake.posts == []


async def test_other_refusals_are_permanent(
    publisher: facebook.FacebookPublisher, fake: FakeFacebook, tmp_path: Path
) -> None:
    with pytest.raises(PermanentPublishError, match="at most 10"):
        await publisher.publish(publication("x", media=(image(tmp_path),) * 11))
    big = MediaFile("big.png", "image/png", image(tmp_path).path, 4 * 1024 * 1024 + 1)
    with pytest.raises(PermanentPublishError, match="4 MB"):
        await publisher.publish(publication("x", media=(big,)))
    assert fake.calls == []
    fake.fail("feed", 400, {"message": "(#100) Invalid parameter", "code": 100})
    with pytest.raises(PermanentPublishError, match="100"):
        await publisher.publish(publication("x"))


async def test_a_timeout_after_sending_is_uncertain(fake: FakeFacebook, tmp_path: Path) -> None:
    publisher = facebook.create(spec(fake), context(tmp_path, timeout=0.3))
    try:
        fake.hang("feed", 1.0)
        with pytest.raises(UncertainPublishError, match="may have been posted"):
            await publisher.publish(publication("hello"))
    finally:
        await publisher.aclose()
    assert len(fake.posts) == 1


async def test_doctor_asks_the_graph_api(fake: FakeFacebook, tmp_path: Path) -> None:
    good = facebook.create(spec(fake), context(tmp_path))
    bad = facebook.create(spec(fake, token="wrong"), context(tmp_path))
    try:
        assert await good.check() == []
        [problem] = await bad.check()
    finally:
        await good.aclose()
        await bad.aclose()
    assert problem.what.startswith(f"Facebook refuses outlet facebook for page {PAGE} (190:")
    assert "PINWALL_OUTLET_FACEBOOK_TOKEN" in problem.fix


def test_settings_are_checked_at_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PINWALL_OUTLETS_FB_PAGE"):
        facebook.create(OutletSpec("fb", "facebook", {}, TOKEN), context(tmp_path))
    with pytest.raises(ConfigError, match="PINWALL_OUTLET_FB_TOKEN"):
        facebook.create(OutletSpec("fb", "facebook", {"page": PAGE}), context(tmp_path))
    with pytest.raises(ConfigError, match="PINWALL_OUTLETS_FB_VERSION"):
        facebook.create(
            OutletSpec("fb", "facebook", {"page": PAGE, "version": "24"}, TOKEN), context(tmp_path)
        )


# --- with the publishing job ------------------------------------------------------------

_JOBS: list[PublishJob] = []


@pytest.fixture
async def world(sqlite_db: Database) -> AsyncIterator[World]:
    w = World(sqlite_db)
    yield w
    while _JOBS:  # their publishers' HTTP clients
        await _JOBS.pop().aclose()
    w.close()


def job_for(world: World, tmp_path: Path, fb: OutletSpec, timeout: float = 5.0) -> PublishJob:
    outlets = OutletSettings((NEWSROOM_SPEC, fb))
    world.core.settings = replace(world.core.settings, outlets=outlets)
    context = OutletContext(db=world.db, public_url=None, data_dir=tmp_path, timeout=timeout)
    job = PublishJob(world.hub, outlets, context)
    _JOBS.append(job)
    return job


async def test_an_over_length_text_is_refused_when_proposed_naming_the_limit(
    world: World, tmp_path: Path, fake: FakeFacebook
) -> None:
    """Facebook's own 63,206 characters lie beyond Pinwall's 8,000 for any proposal, so
    that is the limit named; an outlet configured shorter (max_length) names its own."""
    job_for(world, tmp_path, spec(fake))
    await world.say("alice", "/whoami")
    before = world.snapshot()
    out = await world.say("alice", "/propose facebook " + "x" * 8001)
    assert out.text("alice") == en("error.text_too_long", max=8000)
    assert world.snapshot() == before

    short = replace(DEFAULT_LIMITS["facebook"], max_length=2000)
    job_for(world, tmp_path, replace(spec(fake), limits=short))
    out = await world.say("alice", "/propose facebook " + "x" * 2001)
    assert out.text("alice").startswith(
        en(
            "error.proposal_too_long",
            outlet="facebook",
            actual=2001,
            limit=2000,
            unit="characters",
        )
    )
    assert world.snapshot() == before


async def test_published_told_and_a_429_waits_for_retry_after(
    world: World, tmp_path: Path, fake: FakeFacebook
) -> None:
    job = job_for(world, tmp_path, spec(fake))
    await approved(world, "/propose facebook Hello Facebook")
    fake.fail("feed", 429, headers={"Retry-After": "600"})
    await tick(world, job)
    world.clock.advance(seconds=300)
    await tick(world, job)
    assert fake.posts == []
    world.clock.advance(seconds=301)
    told = await tick(world, job)
    [post] = fake.posts
    url = f"https://www.facebook.com/{post.id}"
    assert f"alice: Your proposal P1 is published on facebook: {url}" in told
    assert any(line.startswith("bob: ") and f"Published: {url}" in line for line in told)
    assert proposal(world)[:3] == (ProposalStatus.PUBLISHED, 2, url)


async def test_an_expired_token_fails_the_post_and_tells_the_admins(
    world: World, tmp_path: Path, fake: FakeFacebook
) -> None:
    job = job_for(world, tmp_path, spec(fake))
    await approved(world, "/propose facebook Hello")
    fake.expire(TOKEN)
    told = await tick(world, job)
    assert proposal(world)[0] == ProposalStatus.FAILED
    [admin] = [line for line in told if line.startswith("admin: ")]
    assert admin.startswith("admin: Facebook refused the page access token of channel facebook")
    assert "PINWALL_OUTLET_FACEBOOK_TOKEN" in admin


async def test_a_timeout_after_sending_is_flagged_and_never_repeated(
    world: World, tmp_path: Path, fake: FakeFacebook
) -> None:
    job = job_for(world, tmp_path, spec(fake), timeout=0.5)
    await approved(world, "/propose facebook Maybe")
    fake.hang("feed", 1.5)
    told = await tick(world, job)
    assert proposal(world)[0] == ProposalStatus.UNCERTAIN
    assert any(line.startswith("admin: Please check facebook: publishing P1") for line in told)
    world.clock.advance(hours=3)
    await tick(world, job)
    assert len(fake.posts) == 1
    assert [e for _, e in fake.calls if e.endswith("/feed")] == [
        f"/{facebook.DEFAULT_VERSION}/{PAGE}/feed"
    ]
