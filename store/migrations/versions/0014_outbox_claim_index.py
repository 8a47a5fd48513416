"""outbox: unfinished messages by platform in the order they were written

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 21:00:00

A lane's claim takes the oldest due messages of its platform. Without this index SQLite
gathered every due message by status, checked each for an earlier message of its
conversation that must go first, and only then sorted and cut: with a backlog of 37,000
messages (a messenger down for a while, or a big fan-out) one claim of 200 took 4.4 s,
under the write lock. With it the claim walks the platform's unfinished messages in
order and stops after 200: 0.5 ms on the same backlog.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNFINISHED = sa.text("status IN ('pending', 'sending')")


def upgrade() -> None:
    op.create_index(
        "ix_outbox_claim",
        "outbox",
        ["platform", "id"],
        unique=False,
        sqlite_where=UNFINISHED,
        postgresql_where=UNFINISHED,
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_claim", table_name="outbox")
