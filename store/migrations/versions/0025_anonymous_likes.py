"""message_refs.anonymous_likes: the 👍 a channel's readers gave a card anonymously
(issue 22)

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07 23:30:00

Telegram counts reactions in channels without saying whose they are
(message_reaction_count): the total of 👍 on each copy is kept with the copy, and a
post's like count adds them to the people's likes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("message_refs") as batch:
        batch.add_column(
            sa.Column("anonymous_likes", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("message_refs") as batch:
        batch.drop_column("anonymous_likes")
