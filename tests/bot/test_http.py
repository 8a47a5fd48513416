"""The HTTP app: health, metrics and signed file links (in process, over ASGI)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from app.http import create_app
from bot.signing import UrlSigner
from store.blobs import BlobStore
from store.db import Database
from tests.harness import World

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


Served = tuple[World, httpx.AsyncClient]


@pytest.fixture
async def served(sqlite_db: Database, tmp_path: Path) -> AsyncIterator[Served]:
    world = World(sqlite_db)
    world.hub.blobs = BlobStore(tmp_path / "blobs")
    world.hub.signer = UrlSigner("test-key")
    transport = httpx.ASGITransport(app=create_app(world.hub))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield world, client
    world.close()


def _stored(world: World, content: bytes) -> str:
    assert world.hub.blobs is not None
    stored = world.hub.blobs.put(content)
    with world.db.uow() as uow:
        uow.blobs.record(stored, world.clock.now())
        uow.commit()
    return stored.id


async def test_healthz_and_metrics(served: Served) -> None:
    _, client = served
    health = await client.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "database": True, "adapters": {"memory": True}}
    metrics = await client.get("/metrics")
    assert "pinwall_outbox_messages" in metrics.text
    assert "pinwall_outbox_oldest_pending_seconds" in metrics.text


async def test_a_signed_link_serves_the_file_with_its_real_type(
    served: Served,
) -> None:
    world, client = served
    blob_id = _stored(world, PNG)
    assert world.hub.signer is not None
    url = world.hub.signer.file_url(
        "http://testserver", blob_id, "poster.exe", now=world.clock.now(), ttl=timedelta(hours=1)
    )
    response = await client.get(url.removeprefix("http://testserver"))
    assert response.status_code == 200, response.text
    assert response.content == PNG
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"].startswith("inline")


async def test_forged_and_expired_links_are_refused(served: Served) -> None:
    world, client = served
    blob_id = _stored(world, PNG)
    signer = world.hub.signer
    assert signer is not None
    url = signer.file_url("", blob_id, "a.png", now=world.clock.now(), ttl=timedelta(minutes=5))
    forged = url.replace("sig=", "sig=0")
    assert (await client.get(forged)).status_code == 403
    other = UrlSigner("another-key").file_url(
        "", blob_id, "a.png", now=world.clock.now(), ttl=timedelta(minutes=5)
    )
    assert (await client.get(other)).status_code == 403
    world.clock.advance(minutes=6)
    assert (await client.get(url)).status_code == 410
    assert (await client.get("/files/../../etc/passwd")).status_code == 404
