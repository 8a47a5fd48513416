"""The Bluesky outlet against a fake PDS (tests/fakes/bluesky.py) on loopback, atproto's own
client pointed at it: posts with link facets at the right UTF-8 byte offsets, images with
alt text, a link card from the stored preview, Bluesky's 300 graphemes, one session for
many posts, and each kind of failure as the publishing job must see it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.errors import ConfigError
from bot.outlets import DEFAULT_LIMITS, OutletSpec, measure
from jobs.outlets import bluesky
from jobs.outlets.base import (
    MediaFile,
    OutletContext,
    PermanentPublishError,
    Publication,
    TransientPublishError,
    UncertainPublishError,
)
from store.db import Database
from store.models import Item
from tests.fakes.bluesky import FakeBluesky, graphemes
from tests.harness import World
from tests.jobs.test_outlets_mastodon import png

HANDLE = "acme.bsky.social"
PASSWORD = "abcd-efgh-ijkl-mnop"  # an app password's shape
CREATE = "com.atproto.repo.createRecord"


def publication(text: str, **kw: Any) -> Publication:
    return Publication(
        proposal_id=1,
        text=text,
        link=kw.pop("link", None),
        media=kw.pop("media", ()),
        idempotency_key="P1-r1",
    )


@pytest.fixture(scope="module")
def server() -> Iterator[FakeBluesky]:
    with FakeBluesky() as fake:
        fake.add_account(HANDLE, PASSWORD)
        yield fake


@pytest.fixture
def fake(server: FakeBluesky) -> FakeBluesky:
    server.posts.clear()
    server.calls.clear()
    server.blobs.clear()
    server.sessions_created = 0
    return server


def context(tmp_path: Path, db: Database | None = None, timeout: float = 5.0) -> OutletContext:
    return OutletContext(
        db=db or Database("sqlite:///:memory:"), public_url=None, data_dir=tmp_path, timeout=timeout
    )


def spec(fake: FakeBluesky, token: str | None = PASSWORD, **options: Any) -> OutletSpec:
    return OutletSpec(
        name="bsky",
        kind="bluesky",
        options={"handle": HANDLE, "base_url": fake.url, **options},
        token=token,
    )


@pytest.fixture
async def publisher(
    fake: FakeBluesky, sqlite_db: Database, tmp_path: Path
) -> AsyncIterator[bluesky.BlueskyPublisher]:
    p = bluesky.create(spec(fake), context(tmp_path, sqlite_db))
    yield p
    await p.aclose()


def byte_range(text: str, part: str) -> tuple[int, int]:
    start = text.encode().index(part.encode())
    return start, start + len(part.encode())


async def test_a_text_post_with_links_as_facets_at_utf8_byte_offsets(
    publisher: bluesky.BlueskyPublisher, fake: FakeBluesky
) -> None:
    link = "https://acme.example/campaigns/2026/spring/poster-at-the-station"
    published = await publisher.publish(
        publication("Grüße aus München 🥨 — unser Stand: https://acme.example/stand", link=link)
    )

    [post] = fake.posts
    text = post.record["text"]
    assert text == (
        "Grüße aus München 🥨 — unser Stand: https://acme.example/stand\n"
        "acme.example/campaigns/2026..."
    )
    facets = [
        (f["index"]["byteStart"], f["index"]["byteEnd"], f["features"][0]["uri"])
        for f in post.record["facets"]
    ]
    assert facets == [
        (*byte_range(text, "https://acme.example/stand"), "https://acme.example/stand"),
        (*byte_range(text, "acme.example/campaigns/2026..."), link),
    ]
    # 35 characters before the link, but 43 bytes: ü, ß and ü take 2, — 3 and 🥨 4.
    assert facets[0][:2] == (43, 69)
    assert post.record["$type"] == "app.bsky.feed.post"
    assert "langs" not in post.record  # no language configured: none claimed
    assert published.remote_id == post.uri
    assert published.url == f"https://bsky.app/profile/{HANDLE}/post/{post.rkey}"
    # No item carries the link: the card shows the link itself.
    assert post.record["embed"]["external"] == {
        "$type": "app.bsky.embed.external#external",
        "uri": link,
        "title": "acme.example/campaigns/2026...",
        "description": "",
    }


async def test_a_link_card_shows_the_stored_preview(
    fake: FakeBluesky, sqlite_db: Database, tmp_path: Path
) -> None:
    world = World(sqlite_db)
    link = "https://acme.example/poster"
    await world.say("admin", "/group create marketing Marketing")
    await world.say("admin", f"/share marketing New poster {link}")
    with sqlite_db.uow() as uow:
        uow.session.execute(
            update(Item)
            .where(Item.url == link)
            .values(title="The new poster & its story", description="Our campaign starts today.")
        )
        assert uow.session.scalar(select(Item.id).where(Item.url == link)) is not None
        uow.commit()
    publisher = bluesky.create(spec(fake), context(tmp_path, sqlite_db))
    try:
        await publisher.publish(publication("Our new poster", link=link))
    finally:
        await publisher.aclose()
        world.close()

    [post] = fake.posts
    assert post.record["text"] == "Our new poster\nacme.example/poster"
    assert post.record["embed"] == {
        "$type": "app.bsky.embed.external",
        "external": {
            "$type": "app.bsky.embed.external#external",
            "uri": link,
            "title": "The new poster & its story",
            "description": "Our campaign starts today.",
        },
    }


async def test_images_are_uploaded_as_blobs_with_alt_text(
    publisher: bluesky.BlueskyPublisher, fake: FakeBluesky, tmp_path: Path
) -> None:
    files = []
    for i, alt in enumerate(("A red poster", "")):
        path = tmp_path / f"p{i}.png"
        path.write_bytes(png(2 + i, 2))
        files.append(MediaFile(path.name, "image/png", path, path.stat().st_size, alt))

    await publisher.publish(
        publication("Two posters", link="https://acme.example/p", media=tuple(files))
    )

    [post] = fake.posts
    embed = post.record["embed"]
    assert embed["$type"] == "app.bsky.embed.images"  # images, so no link card
    assert [i["alt"] for i in embed["images"]] == ["A red poster", ""]
    for image, file in zip(embed["images"], files, strict=True):
        blob = fake.blobs[image["image"]["ref"]["$link"]]
        assert blob.data == file.path.read_bytes()
        assert (blob.mime_type, image["image"]["size"]) == ("image/png", file.size)


async def test_300_graphemes_with_emoji_are_accepted_301_refused_before_any_call(
    publisher: bluesky.BlueskyPublisher, fake: FakeBluesky
) -> None:
    family, flag, thumbs = "👩‍👩‍👧‍👦", "🇩🇪", "👍🏽"
    text = (family + flag + thumbs) * 50 + "x" * 150
    assert graphemes(text) == 300 < len(text)
    assert measure(text, DEFAULT_LIMITS["bluesky"]) == 300  # the core counts alike

    await publisher.publish(publication(text))
    [post] = fake.posts
    assert post.record["text"] == text

    fake.calls.clear()
    with pytest.raises(PermanentPublishError, match="300"):
        await publisher.publish(publication(text + "é"))
    assert fake.calls == []
    assert len(fake.posts) == 1


async def test_one_session_serves_many_posts_and_a_lapsed_one_is_renewed(
    publisher: bluesky.BlueskyPublisher, fake: FakeBluesky
) -> None:
    await publisher.publish(publication("one"))
    await publisher.publish(publication("two"))
    assert fake.sessions_created == 1

    fake.expire_access_tokens()  # e.g. revoked on the server; the client cannot know
    await publisher.publish(publication("three"))

    assert fake.sessions_created == 2
    assert [p.record["text"] for p in fake.posts] == ["one", "two", "three"]


async def test_a_refused_login_is_permanent(fake: FakeBluesky, tmp_path: Path) -> None:
    publisher = bluesky.create(spec(fake, token="wrong-password"), context(tmp_path))
    try:
        with pytest.raises(PermanentPublishError, match="Invalid identifier or password"):
            await publisher.publish(publication("hello"))
    finally:
        await publisher.aclose()
    assert fake.posts == []
    assert fake.calls == ["com.atproto.server.createSession"]  # tried once, not again


async def test_server_errors_are_transient(
    publisher: bluesky.BlueskyPublisher, fake: FakeBluesky
) -> None:
    fake.fail(CREATE, 500)
    with pytest.raises(TransientPublishError, match="500"):
        await publisher.publish(publication("hello"))
    fake.fail(CREATE, 502, "UpstreamFailure", "Bad Gateway")
    with pytest.raises(TransientPublishError, match="502"):
        await publisher.publish(publication("hello"))
    assert fake.posts == []

    await publisher.publish(publication("hello"))
    assert len(fake.posts) == 1


async def test_too_many_requests_is_transient_until_the_window_resets(
    publisher: bluesky.BlueskyPublisher, fake: FakeBluesky
) -> None:
    import time

    fake.fail(
        CREATE,
        429,
        "RateLimitExceeded",
        "Rate Limit Exceeded",
        headers={
            "RateLimit-Limit": "5000",
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(int(time.time()) + 60),
            "RateLimit-Policy": "5000;w=3600",
        },
    )
    with pytest.raises(TransientPublishError) as failed:
        await publisher.publish(publication("hello"))
    assert failed.value.retry_after is not None
    assert 55 <= failed.value.retry_after <= 61
    assert fake.posts == []


async def test_a_timeout_after_sending_is_uncertain(fake: FakeBluesky, tmp_path: Path) -> None:
    """The PDS reads the post whole and makes it, but answers after the publisher gave up."""
    publisher = bluesky.create(spec(fake), context(tmp_path, timeout=0.3))
    try:
        fake.hang(CREATE, 1.0)
        with pytest.raises(UncertainPublishError, match="may have been posted"):
            await publisher.publish(publication("hello"))
    finally:
        await publisher.aclose()
    assert len(fake.posts) == 1


async def test_an_unreachable_server_is_transient(tmp_path: Path) -> None:
    publisher = bluesky.create(
        OutletSpec("bsky", "bluesky", {"handle": HANDLE, "base_url": "http://127.0.0.1:9"}, "pw"),
        context(tmp_path),
    )
    try:
        with pytest.raises(TransientPublishError, match="not reachable"):
            await publisher.publish(publication("hello"))
    finally:
        await publisher.aclose()


async def test_media_bluesky_cannot_take_are_refused_before_any_call(
    publisher: bluesky.BlueskyPublisher, fake: FakeBluesky, tmp_path: Path
) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(png())
    image = MediaFile("a.png", "image/png", path, path.stat().st_size)
    with pytest.raises(PermanentPublishError, match="at most 4"):
        await publisher.publish(publication("x", media=(image,) * 5))
    with pytest.raises(PermanentPublishError, match="1,000,000"):
        await publisher.publish(
            publication("x", media=(MediaFile("b.png", "image/png", path, 1_000_001),))
        )
    with pytest.raises(PermanentPublishError, match="only images"):
        await publisher.publish(
            publication("x", media=(MediaFile("c.pdf", "application/pdf", path, 10),))
        )
    assert fake.calls == []


def test_settings_are_checked_at_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PINWALL_OUTLETS_BSKY_HANDLE"):
        bluesky.create(OutletSpec("bsky", "bluesky", {}, PASSWORD), context(tmp_path))
    with pytest.raises(ConfigError, match="PINWALL_OUTLET_BSKY_TOKEN"):
        bluesky.create(OutletSpec("bsky", "bluesky", {"handle": HANDLE}), context(tmp_path))
    with pytest.raises(ConfigError, match="PINWALL_OUTLETS_BSKY_BASE_URL"):
        bluesky.create(
            OutletSpec("bsky", "bluesky", {"handle": HANDLE, "base_url": "bsky.social"}, "pw"),
            context(tmp_path),
        )
