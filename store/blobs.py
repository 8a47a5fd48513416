"""Content-addressed file storage: every file once, named by its SHA-256, under the data dir.

The type of a file is read from its content, never from the name a sender gave it.
A file over the size cap is refused while it streams in, so it never fills the disk.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import filetype

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
_BLOB_ID = re.compile(r"^[0-9a-f]{64}$")
_SNIFF = 8192


class BlobTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"file larger than {limit} bytes")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class StoredBlob:
    id: str
    size: int
    mime_type: str

    @property
    def is_image(self) -> bool:
        return self.mime_type.startswith("image/")


def sniff(head: bytes) -> str:
    """The MIME type of content, from its first bytes."""
    kind = filetype.guess_mime(head)
    if kind:
        return str(kind)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sniffed head is still text.
        if exc.start < len(head) - 3:
            return "application/octet-stream"
    return "text/plain" if head else "application/octet-stream"


def valid_blob_id(blob_id: str) -> bool:
    return bool(_BLOB_ID.match(blob_id))


class _Writer:
    """Streams into a temp file while hashing and counting."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        store.tmp.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=store.tmp)
        self.file: BinaryIO = os.fdopen(fd, "wb")
        self.path = Path(name)
        self.hash = hashlib.sha256()
        self.size = 0
        self.head = b""

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.store.max_bytes:
            self.abort()
            raise BlobTooLarge(self.store.max_bytes)
        if len(self.head) < _SNIFF:
            self.head += chunk[: _SNIFF - len(self.head)]
        self.hash.update(chunk)
        self.file.write(chunk)

    def abort(self) -> None:
        self.file.close()
        self.path.unlink(missing_ok=True)

    def finish(self) -> StoredBlob:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        blob = StoredBlob(self.hash.hexdigest(), self.size, sniff(self.head))
        final = self.store.path(blob.id)
        if final.exists():
            self.path.unlink()  # the same content is stored already
        else:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.path, final)
        return blob


class BlobStore:
    def __init__(self, root: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.max_bytes = max_bytes

    def path(self, blob_id: str) -> Path:
        if not valid_blob_id(blob_id):
            raise ValueError("not a blob id")
        return self.root / blob_id[:2] / blob_id[2:4] / blob_id

    def exists(self, blob_id: str) -> bool:
        return valid_blob_id(blob_id) and self.path(blob_id).is_file()

    def put(self, chunks: Iterable[bytes] | bytes) -> StoredBlob:
        writer = _Writer(self)
        try:
            for chunk in [chunks] if isinstance(chunks, bytes) else chunks:
                writer.write(chunk)
        except BlobTooLarge:
            raise
        except BaseException:
            writer.abort()
            raise
        return writer.finish()

    async def put_async(self, chunks: AsyncIterable[bytes]) -> StoredBlob:
        """For downloads from a messenger: refused as soon as the cap is passed."""
        writer = _Writer(self)
        try:
            async for chunk in chunks:
                writer.write(chunk)
        except BlobTooLarge:
            raise
        except BaseException:
            writer.abort()
            raise
        return writer.finish()

    def read(self, blob_id: str) -> bytes:
        return self.path(blob_id).read_bytes()

    def stored_before(self, cutoff: float) -> Iterator[str]:
        """The ids of the files last written before `cutoff` (a Unix time)."""
        if not self.root.is_dir():
            return
        for top in self.root.iterdir():
            if top == self.tmp or not top.is_dir():
                continue
            for path in top.glob("*/*"):
                if valid_blob_id(path.name) and path.stat().st_mtime < cutoff:
                    yield path.name

    def delete(self, blob_id: str) -> bool:
        """Removes a file (its last reference went); False when it was not there."""
        try:
            self.path(blob_id).unlink()
        except FileNotFoundError:
            return False
        return True
