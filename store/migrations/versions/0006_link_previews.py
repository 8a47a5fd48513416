"""link previews

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 08:41:40.631010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("description", sa.Text(), nullable=True))
        batch.add_column(sa.Column("image_url", sa.String(length=2048), nullable=True))
        batch.add_column(sa.Column("site_name", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("canonical_url", sa.String(length=2048), nullable=True))
        batch.add_column(sa.Column("preview_status", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("preview_at", sa.DateTime(), nullable=True))
    op.create_index(
        "ix_items_kind_preview_status",
        "items",
        ["kind", "preview_status", "preview_at"],
        unique=False,
    )
    # Links shared before previews existed were delivered long ago: none is fetched now.
    op.execute("UPDATE items SET preview_status = 'skipped' WHERE kind = 'link'")


def downgrade() -> None:
    op.drop_index("ix_items_kind_preview_status", table_name="items")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("preview_at")
        batch.drop_column("preview_status")
        batch.drop_column("canonical_url")
        batch.drop_column("site_name")
        batch.drop_column("image_url")
        batch.drop_column("description")
