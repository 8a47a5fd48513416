"""announcements, their recipients and confirmations; polls and their votes; live cards
(issue 24)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-11 10:00:00

An announcement reaches each person once (announcement_recipients' primary key), who
confirms it there; the reminder to those missing is recorded on the announcement
(reminded_at) in the transaction that queues it. A vote is one row per voter and slot
(poll_votes' primary key), so two votes at the same instant both count. live_cards are
the messages edited in place as counts change, at most once a second each.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "announcements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("everyone", sa.Boolean(), nullable=False),
        sa.Column("confirm", sa.Boolean(), nullable=False),
        sa.Column("until", sa.DateTime(), nullable=True),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("remind_at", sa.DateTime(), nullable=True),
        sa.Column("reminded_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["people.id"],
            name="fk_announcements_author_id_people",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name="fk_announcements_item_id_items", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_announcements"),
    )
    op.create_index("ix_announcements_author_id", "announcements", ["author_id"], unique=False)
    op.create_index("ix_announcements_remind_at", "announcements", ["remind_at"], unique=False)
    op.create_table(
        "polls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("multi", sa.Boolean(), nullable=False),
        sa.Column("anonymous", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("closes_at", sa.DateTime(), nullable=True),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["author_id"], ["people.id"], name="fk_polls_author_id_people", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["group_id"], ["groups.id"], name="fk_polls_group_id_groups", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name="fk_polls_item_id_items", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_polls"),
    )
    op.create_index("ix_polls_author_id", "polls", ["author_id"], unique=False)
    op.create_index("ix_polls_closes_at", "polls", ["closed_at", "closes_at"], unique=False)
    op.create_index("ix_polls_group_id", "polls", ["group_id"], unique=False)
    op.create_table(
        "announcement_groups",
        sa.Column("announcement_id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["announcement_id"],
            ["announcements.id"],
            name="fk_announcement_groups_announcement_id_announcements",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["groups.id"],
            name="fk_announcement_groups_group_id_groups",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["items.id"],
            name="fk_announcement_groups_item_id_items",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("announcement_id", "group_id", name="pk_announcement_groups"),
    )
    op.create_index(
        "ix_announcement_groups_group_id", "announcement_groups", ["group_id"], unique=False
    )
    op.create_index(
        "ix_announcement_groups_item_id", "announcement_groups", ["item_id"], unique=False
    )
    op.create_table(
        "announcement_recipients",
        sa.Column("announcement_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("via", sa.String(length=8), nullable=False),
        sa.Column("digested_at", sa.DateTime(), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(), nullable=True),
        sa.Column("confirmed_on", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["announcement_id"],
            ["announcements.id"],
            name="fk_announcement_recipients_announcement_id_announcements",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name="fk_announcement_recipients_person_id_people",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("announcement_id", "person_id", name="pk_announcement_recipients"),
    )
    op.create_index(
        "ix_announcement_recipients_person_id",
        "announcement_recipients",
        ["person_id"],
        unique=False,
    )
    op.create_table(
        "live_cards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("ref_id", sa.Integer(), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("target_kind", sa.String(length=8), nullable=False),
        sa.Column("target", sa.String(length=255), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("next_edit_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["outbox_id"], ["outbox.id"], name="fk_live_cards_outbox_id_outbox", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"], name="fk_live_cards_person_id_people", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_live_cards"),
    )
    op.create_index("ix_live_cards_kind_ref_id", "live_cards", ["kind", "ref_id"], unique=False)
    op.create_index("ix_live_cards_outbox_id", "live_cards", ["outbox_id"], unique=False)
    op.create_table(
        "poll_votes",
        sa.Column("poll_id", sa.Integer(), nullable=False),
        sa.Column("voter", sa.String(length=64), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("option", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"], name="fk_poll_votes_person_id_people", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["poll_id"], ["polls.id"], name="fk_poll_votes_poll_id_polls", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("poll_id", "voter", "slot", name="pk_poll_votes"),
    )
    op.create_index("ix_poll_votes_person_id", "poll_votes", ["person_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_poll_votes_person_id", table_name="poll_votes")
    op.drop_table("poll_votes")
    op.drop_index("ix_live_cards_outbox_id", table_name="live_cards")
    op.drop_index("ix_live_cards_kind_ref_id", table_name="live_cards")
    op.drop_table("live_cards")
    op.drop_index("ix_announcement_recipients_person_id", table_name="announcement_recipients")
    op.drop_table("announcement_recipients")
    op.drop_index("ix_announcement_groups_item_id", table_name="announcement_groups")
    op.drop_index("ix_announcement_groups_group_id", table_name="announcement_groups")
    op.drop_table("announcement_groups")
    op.drop_index("ix_polls_group_id", table_name="polls")
    op.drop_index("ix_polls_closes_at", table_name="polls")
    op.drop_index("ix_polls_author_id", table_name="polls")
    op.drop_table("polls")
    op.drop_index("ix_announcements_remind_at", table_name="announcements")
    op.drop_index("ix_announcements_author_id", table_name="announcements")
    op.drop_table("announcements")
