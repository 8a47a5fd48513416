"""The Mastodon outlet against mastodon_mock (a stateful fake of Mastodon's REST API) on
loopback: statuses with media and alt text, the Idempotency-Key that makes a repeat safe,
and each kind of failure as the publishing job must see it."""

from __future__ import annotations

import contextlib
import json
import struct
import threading
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from mastodon_mock.testing import MockServer

from bot.errors import ConfigError
from bot.outlets import OutletSpec
from jobs.outlets import mastodon
from jobs.outlets.base import (
    MediaFile,
    OutletContext,
    PermanentPublishError,
    Publication,
    TransientPublishError,
    UncertainPublishError,
)
from store.db import Database

TOKEN = "alice_token"  # seeded in mastodon_mock's default test accounts


def png(width: int = 2, height: int = 2) -> bytes:
    """A valid, tiny RGB PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def publication(key: str, text: str = "Our new poster", **kw: Any) -> Publication:
    return Publication(
        proposal_id=kw.pop("proposal_id", 1),
        text=text,
        link=kw.pop("link", None),
        media=kw.pop("media", ()),
        idempotency_key=key,
    )


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with MockServer() as mock:
        yield mock


@pytest.fixture
def mock(server: MockServer) -> MockServer:
    httpx.delete(f"{server.base_url}/api/v1/_mock/faults").raise_for_status()
    httpx.post(f"{server.base_url}/api/v1/_mock/reset").raise_for_status()
    return server


def context(tmp_path: Path, timeout: float = 5.0) -> OutletContext:
    return OutletContext(
        db=Database("sqlite:///:memory:"), public_url=None, data_dir=tmp_path, timeout=timeout
    )


def spec(base_url: str, token: str | None = TOKEN, **options: Any) -> OutletSpec:
    return OutletSpec(
        name="fediverse", kind="mastodon", options={"base_url": base_url, **options}, token=token
    )


@pytest.fixture
async def publisher(mock: MockServer, tmp_path: Path) -> AsyncIterator[mastodon.MastodonPublisher]:
    p = mastodon.create(spec(mock.base_url), context(tmp_path))
    yield p
    await p.aclose()


def statuses(mock: MockServer) -> list[dict[str, Any]]:
    me = httpx.get(
        f"{mock.base_url}/api/v1/accounts/verify_credentials",
        headers={"Authorization": f"Bearer {TOKEN}"},
    ).json()
    response = httpx.get(f"{mock.base_url}/api/v1/accounts/{me['id']}/statuses")
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()
    return result


class Relay:
    """A loopback proxy in front of the mock that reads each request whole and has the mock
    handle it, then answers as a busier server would: a status post's answer held back
    for `delay` seconds (the post is made, the client hears nothing in time); media shown
    as still processing (url null, 202 / 206) for the next `processing` polls."""

    def __init__(self, upstream: str, delay: float = 0.0, processing: int = 0) -> None:
        self.upstream = upstream
        self.delay = delay
        self.processing = processing
        self.polls = 0
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")
                }
                answer = httpx.request(
                    self.command, relay.upstream + self.path, headers=headers, content=body
                )
                status, content = answer.status_code, answer.content
                if self.path.startswith(("/api/v2/media", "/api/v1/media/")):
                    if self.command == "GET":
                        relay.polls += 1
                    if relay.processing > 0:
                        relay.processing -= self.command == "GET"
                        status = 202 if self.command == "POST" else 206
                        content = json.dumps({**answer.json(), "url": None}).encode()
                if self.command == "POST" and self.path.startswith("/api/v1/statuses"):
                    time.sleep(relay.delay)
                with contextlib.suppress(OSError):  # the client may have given up
                    self.send_response(status)
                    for key in ("Content-Type", "Retry-After"):
                        if key in answer.headers:
                            self.send_header(key, answer.headers[key])
                    self.send_header("Content-Length", str(len(content)))
                    self.end_headers()
                    self.wfile.write(content)

            do_GET = do_POST = do_PUT = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Relay:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def fault(mock: MockServer, **rule: Any) -> None:
    httpx.post(f"{mock.base_url}/api/v1/_mock/faults", json=rule).raise_for_status()


async def test_publishes_text_with_the_link_below(
    publisher: mastodon.MastodonPublisher, mock: MockServer
) -> None:
    published = await publisher.publish(
        publication("k-text", "Our new poster is out", link="https://acme.example/poster")
    )

    [status] = statuses(mock)
    assert status["id"] == published.remote_id
    assert published.url
    assert published.url == status["url"]
    assert "Our new poster is out" in status["content"]
    assert "https://acme.example/poster" in status["content"]
    assert status["visibility"] == "public"


async def test_a_link_already_in_the_text_is_not_repeated() -> None:
    text = mastodon.full_text(
        publication("k", "See https://acme.example/poster now", link="https://acme.example/poster")
    )
    assert text == "See https://acme.example/poster now"


async def test_publishes_an_image_with_its_alt_text(
    publisher: mastodon.MastodonPublisher, mock: MockServer, tmp_path: Path
) -> None:
    path = tmp_path / "poster.png"
    path.write_bytes(png())
    image = MediaFile(
        name="poster.png",
        mime_type="image/png",
        path=path,
        size=path.stat().st_size,
        alt="A red poster",
    )

    published = await publisher.publish(publication("k-image", media=(image,)))

    [status] = statuses(mock)
    assert status["id"] == published.remote_id
    [attachment] = status["media_attachments"]
    assert attachment["type"] == "image"
    assert attachment["description"] == "A red poster"
    async with httpx.AsyncClient() as client:
        assert (await client.get(attachment["url"])).content == png()


async def test_an_upload_still_processing_is_waited_for(mock: MockServer, tmp_path: Path) -> None:
    """Mastodon answers 202 with url null while it converts a file, and refuses a status
    naming an unprocessed attachment: the publisher asks again until the url is there."""
    path = tmp_path / "poster.png"
    path.write_bytes(png())
    image = MediaFile("poster.png", "image/png", path, path.stat().st_size, alt="A poster")
    with Relay(mock.base_url, processing=2) as relay:
        publisher = mastodon.create(spec(relay.url), context(tmp_path))
        try:
            published = await publisher.publish(publication("k-processing", media=(image,)))
        finally:
            await publisher.aclose()
        assert relay.polls == 3  # two "still processing", then the url
    [status] = statuses(mock)
    assert status["id"] == published.remote_id
    assert len(status["media_attachments"]) == 1


async def test_an_upload_processing_for_too_long_is_transient(
    mock: MockServer, tmp_path: Path
) -> None:
    path = tmp_path / "poster.png"
    path.write_bytes(png())
    image = MediaFile("poster.png", "image/png", path, path.stat().st_size)
    with Relay(mock.base_url, processing=100) as relay:
        # The timeout bounds the wait for processing and each request alike: 0.5 s once
        # timed out the upload itself on a loaded machine ("server not reachable").
        publisher = mastodon.create(spec(relay.url), context(tmp_path, timeout=1.5))
        try:
            with pytest.raises(TransientPublishError, match="still processing"):
                await publisher.publish(publication("k-slow-media", media=(image,)))
        finally:
            await publisher.aclose()
    assert statuses(mock) == []


async def test_the_same_idempotency_key_twice_makes_one_status(
    publisher: mastodon.MastodonPublisher, mock: MockServer
) -> None:
    first = await publisher.publish(publication("k-once"))
    second = await publisher.publish(publication("k-once"))
    third = await publisher.publish(publication("k-other"))

    assert second == first
    assert third.remote_id != first.remote_id
    assert len(statuses(mock)) == 2


async def test_a_timeout_after_sending_is_uncertain_and_a_retry_posts_once(
    mock: MockServer, tmp_path: Path
) -> None:
    """The server takes the status but answers after the publisher gave up: uncertain.
    Retried with the same key (an admin's decision), it yields that status, not a second."""
    with Relay(mock.base_url, delay=1.0) as slow:
        publisher = mastodon.create(spec(slow.url), context(tmp_path, timeout=0.4))
        try:
            with pytest.raises(UncertainPublishError, match="may have been posted"):
                await publisher.publish(publication("k-slow"))
            [posted] = statuses(mock)

            slow.delay = 0
            again = await publisher.publish(publication("k-slow"))
        finally:
            await publisher.aclose()
    assert again.remote_id == posted["id"]
    assert len(statuses(mock)) == 1


async def test_a_refused_token_is_permanent(mock: MockServer, tmp_path: Path) -> None:
    publisher = mastodon.create(spec(mock.base_url, token="revoked"), context(tmp_path))
    try:
        with pytest.raises(PermanentPublishError, match="token"):
            await publisher.publish(publication("k-token"))
    finally:
        await publisher.aclose()
    assert statuses(mock) == []


async def test_server_errors_are_transient(
    publisher: mastodon.MastodonPublisher, mock: MockServer
) -> None:
    fault(
        mock,
        match={"methods": ["POST"], "path": "/api/v1/statuses"},
        effect={"type": "status", "status": 503},
        count=1,
    )
    with pytest.raises(TransientPublishError) as failed:
        await publisher.publish(publication("k-503"))
    assert failed.value.retry_after is None
    assert statuses(mock) == []

    await publisher.publish(publication("k-503"))  # the retry goes through
    assert len(statuses(mock)) == 1


async def test_too_many_requests_is_transient_with_retry_after(
    publisher: mastodon.MastodonPublisher, mock: MockServer
) -> None:
    fault(
        mock,
        match={"methods": ["POST"], "path": "/api/v1/statuses"},
        effect={"type": "ratelimit", "headers": {"Retry-After": "42"}},
        count=1,
    )
    with pytest.raises(TransientPublishError) as failed:
        await publisher.publish(publication("k-429"))
    assert failed.value.retry_after == 42
    assert statuses(mock) == []


async def test_a_refused_post_is_permanent(
    publisher: mastodon.MastodonPublisher, mock: MockServer
) -> None:
    with pytest.raises(PermanentPublishError, match="422"):
        await publisher.publish(publication("k-long", "x" * 501))
    assert statuses(mock) == []


async def test_an_unreachable_server_is_transient(tmp_path: Path) -> None:
    publisher = mastodon.create(spec("http://127.0.0.1:9"), context(tmp_path))
    try:
        with pytest.raises(TransientPublishError):
            await publisher.publish(publication("k-down"))
    finally:
        await publisher.aclose()


async def test_too_many_or_too_large_media_are_refused_before_any_call(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(png())
    small = MediaFile("a.png", "image/png", path, path.stat().st_size)
    big = MediaFile("big.png", "image/png", path, mastodon.MAX_MEDIA_BYTES + 1)
    publisher = mastodon.create(spec("http://127.0.0.1:9"), context(tmp_path))
    try:
        with pytest.raises(PermanentPublishError, match="at most 4"):
            await publisher.publish(publication("k", media=(small,) * 5))
        with pytest.raises(PermanentPublishError, match="16 MB"):
            await publisher.publish(publication("k", media=(big,)))
    finally:
        await publisher.aclose()


def test_settings_are_checked_at_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PINWALL_OUTLETS_FEDIVERSE_BASE_URL"):
        mastodon.create(OutletSpec("fediverse", "mastodon", {}, TOKEN), context(tmp_path))
    with pytest.raises(ConfigError, match="PINWALL_OUTLETS_FEDIVERSE_VISIBILITY"):
        mastodon.create(spec("https://m.example", visibility="everyone"), context(tmp_path))
    with pytest.raises(ConfigError, match="PINWALL_OUTLET_FEDIVERSE_TOKEN"):
        mastodon.create(spec("https://m.example", token=None), context(tmp_path))
