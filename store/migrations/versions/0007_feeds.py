"""feeds

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 10:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feeds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=True),
        sa.Column("site_url", sa.String(length=2048), nullable=True),
        sa.Column("added_by", sa.Integer(), nullable=True),
        sa.Column("include_words", sa.JSON(), nullable=False),
        sa.Column("exclude_words", sa.JSON(), nullable=False),
        sa.Column("to_rooms", sa.Boolean(), nullable=False),
        sa.Column("checked", sa.Boolean(), nullable=False),
        sa.Column("etag", sa.String(length=255), nullable=True),
        sa.Column("last_modified", sa.String(length=64), nullable=True),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("next_poll_at", sa.DateTime(), nullable=False),
        sa.Column("last_polled_at", sa.DateTime(), nullable=True),
        sa.Column("last_success_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("failing_since", sa.DateTime(), nullable=True),
        sa.Column("paused_at", sa.DateTime(), nullable=True),
        sa.Column("entries_seen", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["added_by"], ["people.id"], name="fk_feeds_added_by_people", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["group_id"], ["groups.id"], name="fk_feeds_group_id_groups", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_feeds"),
        sa.UniqueConstraint("group_id", "url", name="uq_feeds_group_id_url"),
    )
    op.create_index("ix_feeds_added_by", "feeds", ["added_by"], unique=False)
    op.create_index(
        "ix_feeds_paused_at_next_poll_at", "feeds", ["paused_at", "next_poll_at"], unique=False
    )
    op.create_table(
        "feed_entry_keys",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["groups.id"],
            name="fk_feed_entry_keys_group_id_groups",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name="fk_feed_entry_keys_item_id_items", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("group_id", "key", name="pk_feed_entry_keys"),
    )
    op.create_index("ix_feed_entry_keys_item_id", "feed_entry_keys", ["item_id"], unique=False)
    with op.batch_alter_table("memberships") as batch:
        batch.add_column(
            sa.Column("instant_feeds", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("memberships") as batch:
        batch.drop_column("instant_feeds")
    op.drop_index("ix_feed_entry_keys_item_id", table_name="feed_entry_keys")
    op.drop_table("feed_entry_keys")
    op.drop_index("ix_feeds_paused_at_next_poll_at", table_name="feeds")
    op.drop_index("ix_feeds_added_by", table_name="feeds")
    op.drop_table("feeds")
