"""groups.title_key: a title names one group, whatever its case (issue 21)

The key is the title case-folded (store.models.title_key). Titles that were given twice
before get their slug added ("Sales (sales-2)"); the first group of a title keeps it.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-10 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _key(title: str) -> str:  # store.models.title_key as of this revision
    return " ".join(title.casefold().split())[:200]


def upgrade() -> None:
    with op.batch_alter_table("groups") as batch:
        batch.add_column(sa.Column("title_key", sa.String(200), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, slug, name FROM groups ORDER BY id")).all()
    taken: set[str] = set()
    for group_id, slug, name in rows:
        title = name
        if _key(title) in taken:
            title = f"{name} ({slug})"[:200]
        while _key(title) in taken:
            title = f"{name} ({group_id})"[:200]
        taken.add(_key(title))
        conn.execute(
            sa.text("UPDATE groups SET name = :name, title_key = :key WHERE id = :id"),
            {"name": title, "key": _key(title), "id": group_id},
        )
    with op.batch_alter_table("groups") as batch:
        batch.alter_column("title_key", existing_type=sa.String(200), nullable=False)
        batch.create_unique_constraint("uq_groups_title_key", ["title_key"])


def downgrade() -> None:
    with op.batch_alter_table("groups") as batch:
        batch.drop_constraint("uq_groups_title_key", type_="unique")
        batch.drop_column("title_key")
