"""The blob store: content-addressed, typed by content, capped while streaming."""

from __future__ import annotations

from pathlib import Path

import pytest

from store.blobs import BlobStore, BlobTooLarge, sniff

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.7\n" + b"x" * 64


def test_the_same_content_is_stored_once(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    first = store.put(PNG)
    second = store.put([PNG[:10], PNG[10:]])
    assert first == second
    assert len(first.id) == 64
    assert store.path(first.id).read_bytes() == PNG
    assert sum(1 for p in tmp_path.rglob("*") if p.is_file()) == 1


@pytest.mark.parametrize(
    ("content", "mime"),
    [
        (PNG, "image/png"),
        (PDF, "application/pdf"),
        ("Grüße aus der Filiale\n".encode(), "text/plain"),
        (b"\x00\x01\x02\xff\xfe" * 20, "application/octet-stream"),
    ],
)
def test_type_comes_from_content_not_name(tmp_path: Path, content: bytes, mime: str) -> None:
    assert BlobStore(tmp_path).put(content).mime_type == mime
    assert sniff(content) == mime


def test_an_oversized_file_is_refused_while_streaming_and_leaves_nothing(tmp_path: Path) -> None:
    store = BlobStore(tmp_path, max_bytes=1000)
    produced = []

    def chunks():  # type: ignore[no-untyped-def]
        for i in range(100):
            produced.append(i)
            yield b"x" * 100

    with pytest.raises(BlobTooLarge):
        store.put(chunks())
    assert len(produced) == 11  # stopped right after passing the cap, not at the end
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


async def test_async_streams_are_capped_too(tmp_path: Path) -> None:
    store = BlobStore(tmp_path, max_bytes=10)

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(5):
            yield b"abcd"

    with pytest.raises(BlobTooLarge):
        await store.put_async(chunks())


def test_blob_ids_are_checked(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    with pytest.raises(ValueError, match="not a blob id"):
        store.path("../../etc/passwd")
    assert not store.exists("0" * 63)
