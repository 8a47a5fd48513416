"""The Telegram channel outlet against the fake Bot API (tests/fakes/telegram.py) on
loopback: text as escaped HTML, photos, files and albums with the text as caption, the
public link of the post, and each kind of failure as the publishing job must see it."""

from __future__ import annotations

import html
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.errors import ConfigError
from bot.outlets import OutletSpec
from jobs.outlets import telegram_channel
from jobs.outlets.base import (
    MediaFile,
    OutletContext,
    PermanentPublishError,
    Publication,
    TransientPublishError,
    UncertainPublishError,
)
from store.db import Database
from tests.fakes.telegram import FakeTelegram, TgChat
from tests.jobs.test_outlets_mastodon import png

NEWS = TgChat.channel("ACME News", username="acme_news")
PRIVATE = TgChat.channel("ACME Insiders")  # no username: no public link


def publication(text: str, **kw: Any) -> Publication:
    return Publication(
        proposal_id=1,
        text=text,
        link=kw.pop("link", None),
        media=kw.pop("media", ()),
        idempotency_key="P1-r1",
    )


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        server.add_channel(NEWS)
        server.add_channel(PRIVATE)
        yield server


def context(tmp_path: Path, timeout: float = 5.0) -> OutletContext:
    return OutletContext(
        db=Database("sqlite:///:memory:"), public_url=None, data_dir=tmp_path, timeout=timeout
    )


def spec(fake: FakeTelegram, chat: str | int = "@acme_news", **kw: Any) -> OutletSpec:
    return OutletSpec(
        name="channel",
        kind="telegram_channel",
        options={"chat": chat, "base_url": fake.base_url},
        token=kw.get("token", fake.token),
    )


@pytest.fixture
async def publisher(
    fake: FakeTelegram, tmp_path: Path
) -> AsyncIterator[telegram_channel.TelegramChannelPublisher]:
    p = telegram_channel.create(spec(fake), context(tmp_path))
    yield p
    await p.aclose()


def image(tmp_path: Path, name: str, width: int = 4) -> MediaFile:
    path = tmp_path / name
    path.write_bytes(png(width, 3))
    return MediaFile(name, "image/png", path, path.stat().st_size, alt="")


def pdf(tmp_path: Path) -> MediaFile:
    path = tmp_path / "flyer.pdf"
    path.write_bytes(b"%PDF-1.4\n% a flyer\n%%EOF\n")
    return MediaFile("flyer.pdf", "application/pdf", path, path.stat().st_size)


async def test_text_goes_out_as_escaped_html_with_the_link_previewed(
    publisher: telegram_channel.TelegramChannelPublisher, fake: FakeTelegram
) -> None:
    text = "Tom & Jerry <3 our <b>new</b> poster — 50% off"
    link = "https://acme.example/poster?a=1&b=2"

    published = await publisher.publish(publication(text, link=link))

    [sent] = fake.sent_to(NEWS.id)
    assert sent.method == "sendMessage"
    assert sent.text == f"{text}\n{link}"  # shown as written: nothing taken as markup
    assert sent.raw_text == html.escape(f"{text}\n{link}", quote=False)
    assert sent.parse_mode == "HTML"
    assert sent.message["link_preview_options"] == {"url": link}
    assert sent.message["sender_chat"]["username"] == "acme_news"  # posted as the channel
    assert published.url == f"https://t.me/acme_news/{sent.message_id}"
    assert published.remote_id == f"{NEWS.id}:{sent.message_id}"


async def test_a_channel_by_id_links_to_its_username_and_a_private_one_has_no_link(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    by_id = telegram_channel.create(spec(fake, str(NEWS.id)), context(tmp_path))
    private = telegram_channel.create(spec(fake, PRIVATE.id), context(tmp_path))
    try:
        public_post = await by_id.publish(publication("hello"))
        private_post = await private.publish(publication("hello"))
    finally:
        await by_id.aclose()
        await private.aclose()
    [sent] = fake.sent_to(NEWS.id)
    assert public_post.url == f"https://t.me/acme_news/{sent.message_id}"
    assert private_post.url is None
    assert len(fake.sent_to(PRIVATE.id)) == 1


async def test_one_photo_or_one_file_carries_the_text_as_caption(
    publisher: telegram_channel.TelegramChannelPublisher, fake: FakeTelegram, tmp_path: Path
) -> None:
    photo = image(tmp_path, "poster.png")
    await publisher.publish(publication("Poster <new>", media=(photo,)))
    await publisher.publish(publication("Flyer & more", media=(pdf(tmp_path),)))

    first, second = fake.sent_to(NEWS.id)
    assert (first.method, first.caption, first.raw_caption) == (
        "sendPhoto",
        "Poster <new>",
        "Poster &lt;new&gt;",
    )
    assert first.file_sha256 is not None
    assert (second.method, second.kind, second.caption) == (
        "sendDocument",
        "document",
        "Flyer & more",
    )
    assert (second.file_name, second.mime_type) == ("flyer.pdf", "application/pdf")


async def test_several_images_go_as_one_album_captioned_once(
    publisher: telegram_channel.TelegramChannelPublisher, fake: FakeTelegram, tmp_path: Path
) -> None:
    photos = tuple(image(tmp_path, f"p{i}.png", width=2 + i) for i in range(3))
    published = await publisher.publish(publication("Three posters", media=photos))

    album = fake.sent_to(NEWS.id)
    assert [s.method for s in album] == ["sendMediaGroup"] * 3
    assert [s.kind for s in album] == ["photo"] * 3
    assert [s.caption for s in album] == ["Three posters", None, None]
    assert len({s.message["media_group_id"] for s in album}) == 1
    assert published.url == f"https://t.me/acme_news/{album[0].message_id}"


async def test_images_with_a_file_go_as_an_album_of_files(
    publisher: telegram_channel.TelegramChannelPublisher, fake: FakeTelegram, tmp_path: Path
) -> None:
    await publisher.publish(
        publication("Poster and flyer", media=(image(tmp_path, "p.png"), pdf(tmp_path)))
    )
    album = fake.sent_to(NEWS.id)
    assert [(s.kind, s.file_name) for s in album] == [
        ("document", "p.png"),
        ("document", "flyer.pdf"),
    ]
    assert album[0].caption == "Poster and flyer"


async def test_too_long_or_too_many_is_refused_before_any_call(
    publisher: telegram_channel.TelegramChannelPublisher, fake: FakeTelegram, tmp_path: Path
) -> None:
    photo = image(tmp_path, "p.png")
    with pytest.raises(PermanentPublishError, match="1024"):
        await publisher.publish(publication("x" * 1025, media=(photo,)))
    with pytest.raises(PermanentPublishError, match="4096"):
        await publisher.publish(publication("x" * 4097))
    with pytest.raises(PermanentPublishError, match="at most 10"):
        await publisher.publish(publication("x", media=(photo,) * 11))
    assert fake.calls == []

    await publisher.publish(publication("x" * 1024, media=(photo,)))  # the limit itself fits
    await publisher.publish(publication("x" * 4096))
    assert len(fake.sent_to(NEWS.id)) == 2


async def test_a_channel_the_bot_may_not_post_in_is_permanent(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    fake.add_channel(TgChat.channel("Elsewhere", username="elsewhere"), admin=False)
    for chat, reason in (("@elsewhere", "(?i)not a member"), ("@nowhere", "(?i)chat not found")):
        publisher = telegram_channel.create(spec(fake, chat), context(tmp_path))
        try:
            with pytest.raises(PermanentPublishError, match=reason):
                await publisher.publish(publication("hello"))
        finally:
            await publisher.aclose()
    assert fake.sent == []


async def test_a_refused_token_is_permanent(fake: FakeTelegram, tmp_path: Path) -> None:
    publisher = telegram_channel.create(spec(fake, token="999:wrong-token"), context(tmp_path))
    try:
        with pytest.raises(PermanentPublishError, match="token"):
            await publisher.publish(publication("hello"))
    finally:
        await publisher.aclose()
    assert fake.sent == []


async def test_flood_control_is_transient_with_retry_after(
    publisher: telegram_channel.TelegramChannelPublisher, fake: FakeTelegram
) -> None:
    fake.flood(seconds=7)
    with pytest.raises(TransientPublishError) as failed:
        await publisher.publish(publication("hello"))
    assert failed.value.retry_after == 7
    assert fake.sent == []


async def test_a_timeout_after_sending_is_uncertain(fake: FakeTelegram, tmp_path: Path) -> None:
    """The Bot API posts the message but answers after the publisher gave up."""
    publisher = telegram_channel.create(spec(fake), context(tmp_path, timeout=0.5))
    try:
        await publisher.publish(publication("warm-up"))  # getMe and a first post
        fake.answer_delay = 1.0
        with pytest.raises(UncertainPublishError, match="may have been posted"):
            await publisher.publish(publication("hello"))
    finally:
        fake.answer_delay = 0
        await publisher.aclose()
    assert [s.text for s in fake.sent_to(NEWS.id)] == ["warm-up", "hello"]


async def test_an_unreachable_bot_api_is_transient(tmp_path: Path) -> None:
    publisher = telegram_channel.create(
        OutletSpec(
            "channel",
            "telegram_channel",
            {"chat": "@acme_news", "base_url": "http://127.0.0.1:9/bot"},
            "123:abc",
        ),
        context(tmp_path),
    )
    try:
        with pytest.raises(TransientPublishError, match="not reachable"):
            await publisher.publish(publication("hello"))
    finally:
        await publisher.aclose()


async def test_without_its_own_token_the_outlet_uses_pinwalls_bot(
    fake: FakeTelegram, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PINWALL_TELEGRAM_TOKEN", fake.token)
    monkeypatch.setenv("PINWALL_TELEGRAM_BASE_URL", fake.base_url)
    monkeypatch.setenv("PINWALL_CONFIG", str(tmp_path / "absent.toml"))
    publisher = telegram_channel.create(
        OutletSpec("channel", "telegram_channel", {"chat": "@acme_news"}), context(tmp_path)
    )
    try:
        await publisher.publish(publication("hello from Pinwall's bot"))
    finally:
        await publisher.aclose()
    [sent] = fake.sent_to(NEWS.id)
    assert sent.text == "hello from Pinwall's bot"


def test_settings_are_checked_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PINWALL_TELEGRAM_TOKEN", raising=False)
    monkeypatch.setenv("PINWALL_CONFIG", str(tmp_path / "absent.toml"))
    with pytest.raises(ConfigError, match="PINWALL_OUTLETS_NEWS_CHAT"):
        telegram_channel.create(
            OutletSpec("news", "telegram_channel", {"chat": "acme_news"}, "1:a"), context(tmp_path)
        )
    with pytest.raises(ConfigError, match="PINWALL_OUTLET_NEWS_TOKEN"):
        telegram_channel.create(
            OutletSpec("news", "telegram_channel", {"chat": "@acme_news"}), context(tmp_path)
        )
