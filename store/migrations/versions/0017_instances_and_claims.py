"""instances with a heartbeat; outbox claims name their instance and count take-backs

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-12 10:00:00

A claim not reported by its instance was only taken back when its lease ran out (two
minutes). Now every running Pinwall has a row in `instances` whose heartbeat it keeps
fresh, and its claims carry its id: a starting instance takes back at once the claims
of the earlier instances of its own home, and any instance takes back those of one whose
heartbeat stopped. `takebacks` counts how often that happened to a message, so that a
take-back is not counted as a failed attempt and a message whose sends keep dying still
ends as a dead letter.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "instances",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("home", sa.String(length=1024), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instances")),
    )
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(length=32), nullable=True))
        batch.add_column(
            sa.Column("takebacks", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("takebacks")
        batch.drop_column("claimed_by")
    op.drop_table("instances")
