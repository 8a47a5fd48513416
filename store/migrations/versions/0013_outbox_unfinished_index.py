"""outbox: the conversation index holds only unfinished messages

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-27 13:40:00

ix_outbox_conversation held every message ever queued, with its status in the key: each
claim and each delivery moved an entry, on a page of its own for every conversation of a
fan-out. ix_outbox_unfinished holds only pending and sending messages (what "an earlier
unfinished message of the conversation" looks for): a claim leaves it as it is, a
delivery removes the entry, and it stays a few pages however long the outbox grows.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNFINISHED = sa.text("status IN ('pending', 'sending')")


def upgrade() -> None:
    op.create_index(
        "ix_outbox_unfinished",
        "outbox",
        ["target", "platform", "target_kind", "id"],
        unique=False,
        sqlite_where=UNFINISHED,
        postgresql_where=UNFINISHED,
    )
    op.drop_index("ix_outbox_conversation", table_name="outbox")


def downgrade() -> None:
    op.create_index(
        "ix_outbox_conversation",
        "outbox",
        ["target", "platform", "target_kind", "status", "id"],
        unique=False,
    )
    op.drop_index("ix_outbox_unfinished", table_name="outbox")
