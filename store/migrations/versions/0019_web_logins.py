"""one-time links into the operator's window

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 18:00:00

`admin web` sends an admin a link that logs them into Pinwall's small web page for
operators; the link works once and for ten minutes, so only the hash of its token is kept,
with when it was used.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "web_logins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name="fk_web_logins_person_id_people",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_web_logins"),
        sa.UniqueConstraint("token_hash", name="uq_web_logins_token_hash"),
    )


def downgrade() -> None:
    op.drop_table("web_logins")
