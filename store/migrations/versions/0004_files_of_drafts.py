"""files of drafts

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 05:49:33.189249
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Drafts waiting at upgrade time have no files; the default serves only them.
    op.add_column(
        "drafts", sa.Column("files", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
    )
    with op.batch_alter_table("drafts") as batch:
        batch.alter_column("files", server_default=None)


def downgrade() -> None:
    op.drop_column("drafts", "files")
