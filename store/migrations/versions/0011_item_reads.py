"""item_reads: who was shown which post, first time only (read tracking, issue 9)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27 11:20:00

Empty at first and written only while an admin has switched read tracking on
(PINWALL_READ_TRACKING); nothing from before can be known.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "item_reads",
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("first_read_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name="fk_item_reads_item_id_items", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"], name="fk_item_reads_person_id_people", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("item_id", "person_id", name="pk_item_reads"),
    )
    op.create_index("ix_item_reads_person_id", "item_reads", ["person_id"])


def downgrade() -> None:
    op.drop_index("ix_item_reads_person_id", table_name="item_reads")
    op.drop_table("item_reads")
