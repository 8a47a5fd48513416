"""search: stemmed terms of posts and comments (FTS5 on SQLite, tsvector on PostgreSQL)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 11:05:00
"""

from collections.abc import Sequence
from typing import cast

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import TSVECTOR

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_FTS = (
    # External content: the terms live once, in search_docs; triggers keep the index in step
    # (foreign-key cascades fire them too, so a deleted post leaves no terms behind).
    "CREATE VIRTUAL TABLE search_fts USING fts5("
    "terms, content='search_docs', content_rowid='id', tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER search_docs_ai AFTER INSERT ON search_docs BEGIN "
    "INSERT INTO search_fts(rowid, terms) VALUES (new.id, new.terms); END",
    "CREATE TRIGGER search_docs_ad AFTER DELETE ON search_docs BEGIN "
    "INSERT INTO search_fts(search_fts, rowid, terms) VALUES ('delete', old.id, old.terms); END",
    "CREATE TRIGGER search_docs_au AFTER UPDATE ON search_docs BEGIN "
    "INSERT INTO search_fts(search_fts, rowid, terms) VALUES ('delete', old.id, old.terms); "
    "INSERT INTO search_fts(rowid, terms) VALUES (new.id, new.terms); END",
)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "search_docs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("ref_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("terms", sa.Text().with_variant(TSVECTOR(), "postgresql"), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name="fk_search_docs_item_id_items", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_search_docs"),
        sa.UniqueConstraint("kind", "ref_id", name="uq_search_docs_kind_ref_id"),
    )
    op.create_index("ix_search_docs_item_id", "search_docs", ["item_id"])
    op.create_index("ix_search_docs_group_id", "search_docs", ["group_id"])
    if postgres:
        op.create_index("ix_search_docs_terms", "search_docs", ["terms"], postgresql_using="gin")
    else:
        for statement in _SQLITE_FTS:
            op.execute(statement)
    _index_what_exists(postgres)


def _index_what_exists(postgres: bool) -> None:
    """Posts and comments written before search existed become findable too."""
    from store.search import INSERT, item_terms, terms_of

    bind = op.get_bind()
    items = sa.table(
        "items",
        *(sa.column(c) for c in ("id", "group_id", "created_at", "title", "text", "url")),
        *(sa.column(c) for c in ("description", "site_name")),
    )
    comments = sa.table(
        "comments", *(sa.column(c) for c in ("id", "item_id", "text", "created_at"))
    )
    insert = INSERT["postgresql" if postgres else "sqlite"]
    rows = []
    for row in bind.execute(sa.select(items)).mappings():
        rows.append(
            {
                "kind": "item",
                "ref_id": row["id"],
                "item_id": row["id"],
                "group_id": row["group_id"],
                "created_at": row["created_at"],
                "terms": item_terms(_Row(row)),  # type: ignore[arg-type]
            }
        )
    query = sa.select(comments, items.c.group_id).join(items, items.c.id == comments.c.item_id)
    for row in bind.execute(query).mappings():
        rows.append(
            {
                "kind": "comment",
                "ref_id": row["id"],
                "item_id": row["item_id"],
                "group_id": row["group_id"],
                "created_at": row["created_at"],
                "terms": terms_of(row["text"]),
            }
        )
    if rows:
        bind.execute(cast(sa.TextClause, insert.stmt), rows)  # the SQL, with the values as read


class _Row:
    def __init__(self, row: sa.RowMapping) -> None:
        self.__dict__.update(row)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        for trigger in ("search_docs_ai", "search_docs_ad", "search_docs_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS search_fts")
    else:
        op.drop_index("ix_search_docs_terms", table_name="search_docs")
    op.drop_index("ix_search_docs_group_id", table_name="search_docs")
    op.drop_index("ix_search_docs_item_id", table_name="search_docs")
    op.drop_table("search_docs")
