"""notify by mail, digests by mail, held mails, per-sender mail counts (issue 23)

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 23:30:00

memberships.by_mail: `notify <group> mail`; people.digest_by_mail: `settings digest
mail`; held_mails: mails whose sender could not be verified, for a moderator to release
or drop; mail_sender_hits: the listener's per-sender rate limit, in the store.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("memberships") as batch:
        batch.add_column(
            sa.Column("by_mail", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("people") as batch:
        batch.add_column(
            sa.Column("digest_by_mail", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_table(
        "held_mails",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("sender", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("held_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"], name="fk_held_mails_person_id_people", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"],
            ["people.id"],
            name="fk_held_mails_decided_by_people",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_held_mails"),
    )
    op.create_index("ix_held_mails_person_id", "held_mails", ["person_id"])
    op.create_index("ix_held_mails_status", "held_mails", ["status"])
    op.create_table(
        "mail_sender_hits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sender", sa.String(length=320), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_mail_sender_hits"),
    )
    op.create_index("ix_mail_sender_hits_sender", "mail_sender_hits", ["sender"])
    op.create_index("ix_mail_sender_hits_at", "mail_sender_hits", ["at"])


def downgrade() -> None:
    op.drop_index("ix_mail_sender_hits_at", table_name="mail_sender_hits")
    op.drop_index("ix_mail_sender_hits_sender", table_name="mail_sender_hits")
    op.drop_table("mail_sender_hits")
    op.drop_index("ix_held_mails_status", table_name="held_mails")
    op.drop_index("ix_held_mails_person_id", table_name="held_mails")
    op.drop_table("held_mails")
    with op.batch_alter_table("people") as batch:
        batch.drop_column("digest_by_mail")
    with op.batch_alter_table("memberships") as batch:
        batch.drop_column("by_mail")
