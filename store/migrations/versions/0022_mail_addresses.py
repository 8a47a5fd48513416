"""mail_addresses, newsletter_senders: people's mail addresses, verified by a mailed code,
and the senders whose newsletters a group takes in (issue 23)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-11 10:00:00

An address becomes a person's own (an account of the platform "email") only when the
code mailed to it comes back with `email confirm`; a bounce marks it failing.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mail_addresses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=True),
        sa.Column("code_expires_at", sa.DateTime(), nullable=True),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("verified_at", sa.DateTime(), nullable=True),
        sa.Column("failing_since", sa.DateTime(), nullable=True),
        sa.Column("failure", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name="fk_mail_addresses_person_id_people",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_mail_addresses"),
    )
    op.create_index("ix_mail_addresses_person_id", "mail_addresses", ["person_id"])
    op.create_index("ix_mail_addresses_address", "mail_addresses", ["address"])
    op.create_table(
        "newsletter_senders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("added_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["groups.id"],
            name="fk_newsletter_senders_group_id_groups",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["added_by"],
            ["people.id"],
            name="fk_newsletter_senders_added_by_people",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_newsletter_senders"),
        sa.UniqueConstraint("group_id", "address", name="uq_newsletter_senders_group_id_address"),
    )
    op.create_index("ix_newsletter_senders_group_id", "newsletter_senders", ["group_id"])


def downgrade() -> None:
    op.drop_index("ix_newsletter_senders_group_id", table_name="newsletter_senders")
    op.drop_table("newsletter_senders")
    op.drop_index("ix_mail_addresses_address", table_name="mail_addresses")
    op.drop_index("ix_mail_addresses_person_id", table_name="mail_addresses")
    op.drop_table("mail_addresses")
