"""join_requests: asking to join a closed group, until a moderator decides (issue 18)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08 10:00:00

Closed groups became members only: their posts, comments, files and members are no
longer shown to every employee. Who is not a member asks to join; the request waits here
for a moderator's decision and stays as its record. At most one open request per person
and group (a partial unique index).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = sa.text("decided_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "join_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["group_id"], ["groups.id"], name="fk_join_requests_group_id_groups", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name="fk_join_requests_person_id_people",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"],
            ["people.id"],
            name="fk_join_requests_decided_by_people",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_join_requests"),
    )
    op.create_index("ix_join_requests_person_id", "join_requests", ["person_id"])
    op.create_index("ix_join_requests_decided_by", "join_requests", ["decided_by"])
    op.create_index(
        "ix_join_requests_pending",
        "join_requests",
        ["group_id", "person_id"],
        unique=True,
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )


def downgrade() -> None:
    op.drop_index("ix_join_requests_pending", table_name="join_requests")
    op.drop_index("ix_join_requests_decided_by", table_name="join_requests")
    op.drop_index("ix_join_requests_person_id", table_name="join_requests")
    op.drop_table("join_requests")
