"""Retention: content older than its kind's limit is deleted, by a scheduled job.

Per kind (settings `retention_*_days`, 0 keeps): feed entries, posts (with their
comments, reactions and search entries, by cascade), audit entries, and received
messenger events (kept only to recognise a redelivery); and, while read tracking is off
(PINWALL_READ_TRACKING, issue 9), every recorded read, so that switching it off erases
what it recorded. Deleting goes in batches, each its own short transaction, so a first
run over years of data never holds the database for long; what a run deleted is written
to the audit log. Stored files that nothing refers to any more (their posts deleted) are
removed from the blob store too.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, tuple_

from bot.config import Settings
from store.blobs import BlobStore
from store.db import Database
from store.models import (
    AuditEntry,
    CodeFailure,
    InboxEvent,
    InboxStatus,
    Item,
    ItemKind,
    ItemRead,
    LinkRequest,
)

log = logging.getLogger(__name__)

BATCH = 500
FILE_GRACE = timedelta(days=1)
SHORT_LIVED = timedelta(days=1)  # wrong codes and link requests
EVERY = 3600.0  # seconds between runs


@dataclass(frozen=True)
class Retention:
    feed_entries_days: int = 180
    posts_days: int = 0
    audit_days: int = 0
    inbox_days: int = 30
    read_tracking: bool = False  # off: every recorded read is deleted

    @classmethod
    def from_settings(cls, settings: Settings) -> Retention:
        return cls(
            settings.retention_feed_entries_days,
            settings.retention_posts_days,
            settings.retention_audit_days,
            settings.retention_inbox_days,
            settings.read_tracking,
        )


def _batches(db: Database, model: Any, key: Any, *where: Any) -> int:
    """Deletes the rows of `model` that match `where`, BATCH at a time; `key` is its
    primary key column, or a tuple of them."""
    columns = key if isinstance(key, tuple) else (key,)
    match = tuple_(*columns) if len(columns) > 1 else columns[0]
    deleted = 0
    while True:
        with db.uow() as uow:
            rows = uow.session.execute(select(*columns).where(*where).limit(BATCH)).all()
            if not rows:
                return deleted
            keys = [tuple(r) for r in rows] if len(columns) > 1 else [r[0] for r in rows]
            uow.session.execute(
                delete(model).where(match.in_(keys)),
                execution_options={"synchronize_session": False},
            )
            uow.commit()
        deleted += len(rows)
        if len(rows) < BATCH:
            return deleted


def collect_files(db: Database, store: BlobStore, now: datetime) -> int:
    """Deletes the stored files no post and no unfinished share refers to any more (their
    posts deleted, by retention or `privacy forget`), once they are a day old: a file a
    messenger adapter has just stored is referenced only when its share is applied."""
    candidates = list(store.stored_before((now - FILE_GRACE).timestamp()))
    removed = 0
    for start in range(0, len(candidates), BATCH):
        with db.uow() as uow:
            gone = uow.blobs.unreferenced(candidates[start : start + BATCH])
            uow.blobs.forget(gone)
            uow.commit()
        for blob_id in gone:  # the records first: a crash here leaves a file, not a hole
            removed += store.delete(blob_id)
    return removed


def apply(
    db: Database, retention: Retention, now: datetime, store: BlobStore | None = None
) -> dict[str, int]:
    """Deletes what is past its time; returns how many of each kind."""
    done: dict[str, int] = {}

    def cutoff(days: int) -> datetime:
        return now - timedelta(days=days)

    if retention.feed_entries_days:
        done["feed_entries"] = _batches(
            db,
            Item,
            Item.id,
            Item.kind == ItemKind.FEED_ENTRY,
            Item.created_at < cutoff(retention.feed_entries_days),
        )
    if retention.posts_days:
        done["posts"] = _batches(
            db,
            Item,
            Item.id,
            Item.kind != ItemKind.FEED_ENTRY,
            Item.created_at < cutoff(retention.posts_days),
        )
    if retention.audit_days:
        done["audit_entries"] = _batches(
            db, AuditEntry, AuditEntry.id, AuditEntry.at < cutoff(retention.audit_days)
        )
    done["received_events"] = _batches(
        db,
        InboxEvent,
        InboxEvent.id,
        InboxEvent.status != InboxStatus.RECEIVED,  # one not yet applied waits for its turn
        InboxEvent.received_at < cutoff(retention.inbox_days),
    )
    # Wrong codes count for the throttle for minutes, and link requests are answered
    # within minutes: a day is plenty for looking into either.
    done["code_failures"] = _batches(
        db, CodeFailure, CodeFailure.id, CodeFailure.at < now - SHORT_LIVED
    )
    done["link_requests"] = _batches(
        db, LinkRequest, LinkRequest.id, LinkRequest.expires_at < now - SHORT_LIVED
    )
    if not retention.read_tracking:
        done["item_reads"] = _batches(db, ItemRead, (ItemRead.item_id, ItemRead.person_id))
    if store is not None:
        done["files"] = collect_files(db, store, now)
    done = {k: v for k, v in done.items() if v}
    if done:
        with db.uow() as uow:
            uow.audit.add(
                at=now,
                actor_id=None,
                action="retention.applied",
                subject="retention",
                details={"deleted": done, "policy": retention.__dict__},
            )
            uow.commit()
        log.info("retention: deleted %s", ", ".join(f"{v} {k}" for k, v in done.items()))
    return done


class RetentionJob:
    """The scheduler's tick: the database work in a worker thread."""

    def __init__(self, db: Database, retention: Retention, store: BlobStore | None = None) -> None:
        self.db = db
        self.retention = retention
        self.store = store

    async def tick(self, now: datetime) -> dict[str, int]:
        return await asyncio.to_thread(apply, self.db, self.retention, now, self.store)
