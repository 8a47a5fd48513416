"""digests: schedules (times and next due instants) and watermarks per person and group

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 10:45:00

No rows are written here: the digest tick makes a schedule for everyone with a daily
or weekly group who has none yet (people from before this migration included), in
their time zone as the running program knows it (PINWALL_DEFAULT_TIMEZONE for people
who never set one) — something a migration cannot know. Until then no watermark
exists, so a first digest holds a group's posts since the person joined it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "digest_schedules",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("daily_minute", sa.Integer(), nullable=False),
        sa.Column("weekly_day", sa.Integer(), nullable=False),
        sa.Column("weekly_minute", sa.Integer(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("daily_due", sa.DateTime(), nullable=True),
        sa.Column("weekly_due", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name=op.f("fk_digest_schedules_person_id_people"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_digest_schedules")),
    )
    op.create_index(
        "ix_digest_schedules_daily_due", "digest_schedules", ["daily_due"], unique=False
    )
    op.create_index(
        "ix_digest_schedules_weekly_due", "digest_schedules", ["weekly_due"], unique=False
    )
    op.create_table(
        "digest_watermarks",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("last_item_id", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["groups.id"],
            name=op.f("fk_digest_watermarks_group_id_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name=op.f("fk_digest_watermarks_person_id_people"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("person_id", "group_id", name=op.f("pk_digest_watermarks")),
    )
    op.create_index(
        op.f("ix_digest_watermarks_group_id"), "digest_watermarks", ["group_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_digest_watermarks_group_id"), table_name="digest_watermarks")
    op.drop_table("digest_watermarks")
    op.drop_index("ix_digest_schedules_weekly_due", table_name="digest_schedules")
    op.drop_index("ix_digest_schedules_daily_due", table_name="digest_schedules")
    op.drop_table("digest_schedules")
