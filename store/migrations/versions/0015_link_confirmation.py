"""link requests wait for the code's owner; wrong codes are counted

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 15:00:00

A redeemed link code used to merge the redeeming account into the code's owner at once,
so a code said in a shared room let anyone there become its owner. Now redeeming it
makes a link request that the owner confirms on the account that asked for the code
(link_codes remembers which). Wrong link and invite codes are recorded per account, so
that guessing is throttled.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("link_codes") as batch:
        batch.add_column(sa.Column("platform", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("external_id", sa.String(length=255), nullable=True))
    op.create_table(
        "link_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("owner_platform", sa.String(length=32), nullable=False),
        sa.Column("owner_external_id", sa.String(length=255), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=True),
        sa.Column("display_name", sa.String(length=255), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name="fk_link_requests_person_id_people",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_link_requests"),
    )
    op.create_index("ix_link_requests_person_id", "link_requests", ["person_id"])
    op.create_table(
        "code_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_code_failures"),
    )
    op.create_index("ix_code_failures_account", "code_failures", ["platform", "external_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_code_failures_account", table_name="code_failures")
    op.drop_table("code_failures")
    op.drop_index("ix_link_requests_person_id", table_name="link_requests")
    op.drop_table("link_requests")
    with op.batch_alter_table("link_codes") as batch:
        batch.drop_column("external_id")
        batch.drop_column("platform")
