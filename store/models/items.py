"""Posts, comments and reactions, drafts and prompts, stored files, the search index and
read tracking."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import (
    Base,
)


class Item(Base):
    """A post of a group: a link, a note, a file or a feed entry."""

    __tablename__ = "items"
    __table_args__ = (
        Index("ix_items_group_id_id", "group_id", "id"),
        # The preview worker's look-up: links whose preview is due (see PreviewStatus).
        Index("ix_items_kind_preview_status", "kind", "preview_status", "preview_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str | None] = mapped_column(String(2048))
    title: Mapped[str | None] = mapped_column(String(500))
    source_platform: Mapped[str | None] = mapped_column(String(16))
    source_room_id: Mapped[int | None] = mapped_column(ForeignKey("rooms.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]
    # The link preview (jobs.previews); `title` holds its title, else the URL.
    description: Mapped[str | None] = mapped_column(Text)
    image_url: Mapped[str | None] = mapped_column(String(2048))
    site_name: Mapped[str | None] = mapped_column(String(200))
    canonical_url: Mapped[str | None] = mapped_column(String(2048))
    preview_status: Mapped[str | None] = mapped_column(String(8))  # PreviewStatus
    preview_at: Mapped[datetime | None]  # when fetched; or when a claim/retry falls due
    # A feed entry's own date (published, else updated; never after it was fetched); NULL
    # for other posts and for entries whose feed gives none. See `dated_at`.
    published_at: Mapped[datetime | None]

    @hybrid_property
    def dated_at(self) -> datetime:
        """When the post is from, as lists show and order it: a feed entry's own date,
        else when it was stored. (Numbers and digest watermarks follow the storing.)"""
        return self.published_at or self.created_at

    @dated_at.inplace.expression
    @classmethod
    def _dated_at(cls) -> ColumnElement[datetime]:
        return func.coalesce(cls.published_at, cls.created_at)


class Comment(Base):
    __tablename__ = "comments"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL"), index=True
    )
    text: Mapped[str] = mapped_column(Text)
    source_platform: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime]


class Reaction(Base):
    __tablename__ = "reactions"
    __table_args__ = (UniqueConstraint("item_id", "person_id", "emoji"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    emoji: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


class Draft(Base):
    """Something sent to the bot that waits for the sender to pick a group."""

    __tablename__ = "drafts"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    # [{"blob_id", "name", "mime_type", "size"}]: files sent with it, already stored
    files: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    source_platform: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime]
    # The album it was started by: the album's other files join this draft.
    album: Mapped[str | None] = mapped_column(String(64))


class Prompt(Base):
    """The bot asked a person for input; their next plain message answers it."""

    __tablename__ = "prompts"

    person_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    ref: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    # What a guided command collected so far and offers now (bot.guide); None otherwise.
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class Blob(Base):
    """A stored file's content, once, by its SHA-256 (bytes live in the blob store)."""

    __tablename__ = "blobs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    mime_type: Mapped[str] = mapped_column(String(127))
    created_at: Mapped[datetime]


class ItemFile(Base):
    """A file attached to a post, under the name its sender gave it."""

    __tablename__ = "item_files"

    item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    blob_id: Mapped[str] = mapped_column(ForeignKey("blobs.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))


# --- search (migration 0010) -------------------------------------------------------------


class SearchDoc(Base):
    """One searchable post or comment: its stemmed terms (store.search). On SQLite an
    FTS5 table (`search_fts`, not mapped: see UNMAPPED_TABLES) indexes `terms`; on
    PostgreSQL `terms` is a tsvector with a GIN index (made by the migration only)."""

    __tablename__ = "search_docs"
    __table_args__ = (UniqueConstraint("kind", "ref_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # "item" | "comment"
    ref_id: Mapped[int] = mapped_column(Integer)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    group_id: Mapped[int] = mapped_column(Integer, index=True)
    created_at: Mapped[datetime]
    terms: Mapped[str] = mapped_column(Text().with_variant(TSVECTOR(), "postgresql"))


# Tables and indexes the migrations create that no model maps (SQLite's FTS5 index and
# its shadow tables, PostgreSQL's GIN index of the terms); the drift check between
# models and migrations leaves them out.
UNMAPPED_TABLES = re.compile(r"^(search_fts(_.*)?|ix_search_docs_terms)$")


# --- read tracking (issue 9) ---------------------------------------------------------------


class ItemRead(Base):
    """That a person was shown a post (by `items` or `search`), the first time only.
    Written only while an admin has switched read tracking on (PINWALL_READ_TRACKING);
    retention erases every row while it is off. Shown only as a count, never by name."""

    __tablename__ = "item_reads"

    item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    first_read_at: Mapped[datetime]
