"""proposals and outlets: proposals, votes, approval cards, gatekeeper rooms, newsroom

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 10:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "proposals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("outlet", sa.String(length=32), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("publish_at", sa.DateTime(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revised_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("attempt_started_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("remote_id", sa.String(length=255), nullable=True),
        sa.Column("url", sa.String(length=2048), nullable=True),
        sa.Column("published_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["author_id"], ["people.id"], name="fk_proposals_author_id_people", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name="fk_proposals_item_id_items", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_proposals"),
    )
    op.create_index("ix_proposals_author_id", "proposals", ["author_id"], unique=False)
    op.create_index(
        "ix_proposals_status_next_attempt_at",
        "proposals",
        ["status", "next_attempt_at"],
        unique=False,
    )
    op.create_index(
        "ix_proposals_status_expires_at", "proposals", ["status", "expires_at"], unique=False
    )
    op.create_table(
        "proposal_votes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("gatekeeper_id", sa.Integer(), nullable=False),
        sa.Column("vote", sa.String(length=8), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["gatekeeper_id"],
            ["people.id"],
            name="fk_proposal_votes_gatekeeper_id_people",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["proposals.id"],
            name="fk_proposal_votes_proposal_id_proposals",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_proposal_votes"),
        sa.UniqueConstraint(
            "proposal_id",
            "revision",
            "gatekeeper_id",
            name="uq_proposal_votes_proposal_id_revision_gatekeeper_id",
        ),
    )
    op.create_index(
        "ix_proposal_votes_gatekeeper_id", "proposal_votes", ["gatekeeper_id"], unique=False
    )
    op.create_table(
        "approval_cards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("target_kind", sa.String(length=8), nullable=False),
        sa.Column("target", sa.String(length=255), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["outbox_id"],
            ["outbox.id"],
            name="fk_approval_cards_outbox_id_outbox",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name="fk_approval_cards_person_id_people",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["proposals.id"],
            name="fk_approval_cards_proposal_id_proposals",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_approval_cards"),
    )
    op.create_index("ix_approval_cards_outbox_id", "approval_cards", ["outbox_id"], unique=False)
    op.create_index(
        "ix_approval_cards_proposal_id", "approval_cards", ["proposal_id"], unique=False
    )
    op.create_table(
        "gatekeeper_rooms",
        sa.Column("room_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["room_id"], ["rooms.id"], name="fk_gatekeeper_rooms_room_id_rooms", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("room_id", name="pk_gatekeeper_rooms"),
    )
    op.create_table(
        "newsroom_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("outlet", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("link", sa.String(length=2048), nullable=True),
        sa.Column("published_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["proposals.id"],
            name="fk_newsroom_entries_proposal_id_proposals",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_newsroom_entries"),
        sa.UniqueConstraint("outlet", "key", name="uq_newsroom_entries_outlet_key"),
    )
    op.create_index(
        "ix_newsroom_entries_outlet_published_at",
        "newsroom_entries",
        ["outlet", "published_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_newsroom_entries_outlet_published_at", table_name="newsroom_entries")
    op.drop_table("newsroom_entries")
    op.drop_table("gatekeeper_rooms")
    op.drop_index("ix_approval_cards_proposal_id", table_name="approval_cards")
    op.drop_index("ix_approval_cards_outbox_id", table_name="approval_cards")
    op.drop_table("approval_cards")
    op.drop_index("ix_proposal_votes_gatekeeper_id", table_name="proposal_votes")
    op.drop_table("proposal_votes")
    op.drop_index("ix_proposals_status_expires_at", table_name="proposals")
    op.drop_index("ix_proposals_status_next_attempt_at", table_name="proposals")
    op.drop_index("ix_proposals_author_id", table_name="proposals")
    op.drop_table("proposals")
