"""What the database knows of stored files (the bytes live in store.blobs.BlobStore)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import (
    bindparam,
    delete,
    select,
)

from store.blobs import StoredBlob
from store.models import (
    Blob,
    Draft,
    HeldMail,
    Item,
    ItemFile,
)
from store.repositories.base import Repo

_FILES_OF = (
    select(ItemFile, Blob)
    .join(Blob, Blob.id == ItemFile.blob_id)
    .where(ItemFile.item_id == bindparam("item_id"))
    .order_by(ItemFile.position)
)


class BlobRepository(Repo):
    """What the database knows of stored files; the bytes live in store.blobs.BlobStore."""

    def record(self, stored: StoredBlob, now: datetime) -> Blob:
        blob = self.s.get(Blob, stored.id)
        if blob is None:
            blob = Blob(id=stored.id, size=stored.size, mime_type=stored.mime_type, created_at=now)
            self.s.add(blob)
            self.s.flush()
        return blob

    def get(self, blob_id: str) -> Blob | None:
        return self.s.get(Blob, blob_id)

    def attach(self, item_id: int, files: Sequence[tuple[str, str]]) -> None:
        """Attaches (blob id, name) pairs to an item, in order."""
        self.s.add_all(
            ItemFile(item_id=item_id, position=i, blob_id=blob_id, name=name[:255])
            for i, (blob_id, name) in enumerate(files)
        )
        self.s.flush()

    def files_of(self, item_id: int) -> Sequence[tuple[ItemFile, Blob]]:
        rows = self.s.execute(_FILES_OF, {"item_id": item_id}).all()
        return [(f, b) for f, b in rows]

    def unreferenced(self, blob_ids: Iterable[str]) -> set[str]:
        """Those of these files that no post and no unfinished share refers to any more."""
        candidates = set(blob_ids)
        if not candidates:
            return set()
        used = set(
            self.s.scalars(
                select(ItemFile.blob_id).where(ItemFile.blob_id.in_(candidates)).distinct()
            )
        )
        for files in self.s.scalars(select(Draft.files)):
            used.update(f.get("blob_id") for f in files or ())
        # a held mail's files wait for a moderator's decision (`mail release`)
        for content in self.s.scalars(select(HeldMail.content).where(HeldMail.status == "held")):
            used.update(f.get("blob_id") for f in (content or {}).get("files") or ())
        return candidates - used

    def forget(self, blob_ids: Iterable[str]) -> int:
        """Deletes the records of files (their uploads to messengers go with them)."""
        ids = list(blob_ids)
        if not ids:
            return 0
        result = self.s.execute(
            delete(Blob).where(Blob.id.in_(ids)), execution_options={"synchronize_session": False}
        )
        return int(getattr(result, "rowcount", 0))

    def of_items(self, item_ids: Iterable[int]) -> set[str]:
        ids = list(item_ids)
        if not ids:
            return set()
        return set(self.s.scalars(select(ItemFile.blob_id).where(ItemFile.item_id.in_(ids))))

    def shown_in_groups(self, blob_id: str) -> list[int]:
        """The groups whose posts carry this file (who may fetch it)."""
        return list(
            self.s.scalars(
                select(Item.group_id)
                .join(ItemFile, ItemFile.item_id == Item.id)
                .where(ItemFile.blob_id == blob_id)
                .distinct()
            )
        )
