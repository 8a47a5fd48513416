"""matrix: sync cursors, direct chats, button prompts, uploads

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 08:05:29.204142
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "button_prompts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("conversation", sa.String(length=255), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("buttons", sa.JSON(), nullable=False),
        sa.Column("post", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_button_prompts")),
        sa.UniqueConstraint(
            "platform",
            "conversation",
            "message_id",
            name=op.f("uq_button_prompts_platform_conversation_message_id"),
        ),
    )
    op.create_index(
        "ix_button_prompts_conversation",
        "button_prompts",
        ["platform", "conversation", "id"],
        unique=False,
    )
    op.create_table(
        "cursors",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_cursors")),
    )
    op.create_table(
        "direct_chats",
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("conversation", sa.String(length=255), nullable=False),
        sa.Column("address", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("platform", "conversation", name=op.f("pk_direct_chats")),
    )
    op.create_index(
        "ix_direct_chats_platform_address", "direct_chats", ["platform", "address"], unique=False
    )
    op.create_table(
        "uploads",
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("server", sa.String(length=255), nullable=False),
        sa.Column("blob_id", sa.String(length=64), nullable=False),
        sa.Column("uri", sa.String(length=1024), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["blob_id"], ["blobs.id"], name=op.f("fk_uploads_blob_id_blobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("platform", "server", "blob_id", name=op.f("pk_uploads")),
    )
    op.create_index(op.f("ix_uploads_blob_id"), "uploads", ["blob_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_uploads_blob_id"), table_name="uploads")
    op.drop_table("uploads")
    op.drop_index("ix_direct_chats_platform_address", table_name="direct_chats")
    op.drop_table("direct_chats")
    op.drop_table("cursors")
    op.drop_index("ix_button_prompts_conversation", table_name="button_prompts")
    op.drop_table("button_prompts")
