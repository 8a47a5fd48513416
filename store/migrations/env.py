"""Alembic environment: runs on the connection that store.db hands it."""

from alembic import context

from store.models import UNMAPPED_TABLES, Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only `alembic` run by hand takes this path
    from sqlalchemy import create_engine

    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    connection = engine.connect()

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    # SQLite's FTS5 index and its shadow tables are made by a migration, not by a model.
    include_name=lambda name, type_, _parents: (
        not (type_ in ("table", "index") and name is not None and UNMAPPED_TABLES.match(name))
    ),
)
with context.begin_transaction():
    context.run_migrations()
