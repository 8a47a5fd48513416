"""outbox conversation index

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 05:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_outbox_conversation",
        "outbox",
        ["target", "platform", "target_kind", "status", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_conversation", table_name="outbox")
