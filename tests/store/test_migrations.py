"""The Alembic migrations: up from empty, down to nothing, up again, and no drift from the models.

Each test gets its own empty database (on PostgreSQL a fresh one beside the session's,
dropped afterwards), so the migrated database that other tests share is never touched.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from store.db import Database, normalize_url
from store.models import UNMAPPED_TABLES, Base, Role

MODEL_TABLES = frozenset(Base.metadata.tables)
NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A Database on an empty database of each backend."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'migrations.db'}")
        yield database
        database.dispose()
        return
    session_url: str = request.getfixturevalue("postgres_url")
    name = f"pinwall_migrations_{uuid.uuid4().hex[:10]}"
    # The session database serves as the maintenance connection to the same server.
    admin = create_engine(normalize_url(session_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    database = Database(make_url(session_url).set(database=name).render_as_string(False))
    try:
        yield database
    finally:
        database.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def tables(db: Database) -> set[str]:
    """The tables, without SQLite's full-text index (its own, unmapped tables)."""
    return {t for t in inspect(db.engine).get_table_names() if not UNMAPPED_TABLES.match(t)}


def fts_tables(db: Database) -> set[str]:
    return {t for t in inspect(db.engine).get_table_names() if UNMAPPED_TABLES.match(t)}


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    return not (type_ in ("table", "index") and name is not None and UNMAPPED_TABLES.match(name))


def drift(db: Database) -> list[object]:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_name": include_name,
            },
        )
        return list(compare_metadata(context, Base.metadata))


def test_upgrade_from_empty_creates_every_table(empty_db: Database) -> None:
    assert tables(empty_db) == set()
    assert empty_db.current_revision() is None

    empty_db.upgrade()

    assert empty_db.current_revision() == empty_db.head_revision() is not None
    assert tables(empty_db) == MODEL_TABLES | {"alembic_version"}
    assert bool(fts_tables(empty_db)) == empty_db.is_sqlite


def test_downgrade_to_base_leaves_no_pinwall_tables_and_upgrades_again(
    empty_db: Database,
) -> None:
    empty_db.upgrade()
    with empty_db.uow() as uow:  # some data, so the downgrade drops tables in use
        uow.audit.add(
            at=NOW, actor_id=None, action="test.migrations", subject="x", details={"a": 1}
        )
        uow.commit()

    empty_db.downgrade("base")

    assert tables(empty_db) - {"alembic_version"} == set()
    assert fts_tables(empty_db) == set()
    assert empty_db.current_revision() is None

    empty_db.upgrade()

    assert tables(empty_db) == MODEL_TABLES | {"alembic_version"}
    assert empty_db.current_revision() == empty_db.head_revision()
    with empty_db.uow() as uow:
        assert uow.audit.newest(10) == []


def test_migrated_schema_matches_the_models(empty_db: Database) -> None:
    empty_db.upgrade()
    assert drift(empty_db) == []


def test_drift_check_sees_a_difference(empty_db: Database) -> None:
    """The comparison itself works: a table the migrations do not know is reported."""
    empty_db.upgrade()
    with empty_db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE stray (id INTEGER PRIMARY KEY)"))
    assert any(d[0] == "remove_table" for d in drift(empty_db) if isinstance(d, tuple))


# --- SQLite: batch migrations recreate tables -------------------------------------------


def add_alice(db: Database) -> int:
    with db.uow() as uow:
        person = uow.people.create(name="alice", role=Role.MEMBER, now=NOW)
        uow.people.add_account(person, platform="memory", external_id="alice", now=NOW)
        uow.commit()
        return person.id


def test_a_batch_migration_of_a_referenced_table_keeps_the_referencing_rows(
    sqlite_db: Database,
) -> None:
    """SQLite alters a table by recreating it (copy, drop, rename); with foreign keys on,
    dropping `people` would delete every account through ON DELETE CASCADE."""
    alice = add_alice(sqlite_db)

    with sqlite_db.migration_transaction() as conn:
        context = MigrationContext.configure(conn, opts={"render_as_batch": True})
        with Operations(context).batch_alter_table("people", recreate="always") as batch:
            batch.add_column(sa.Column("nickname", sa.String(20)))

    with sqlite_db.uow() as uow:
        assert [a.external_id for a in uow.people.accounts_of(alice)] == ["alice"]
    for _ in range(3):  # foreign keys are on again afterwards, on every pooled connection
        with sqlite_db.engine.connect() as conn:
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_a_migration_that_breaks_foreign_keys_is_rolled_back(sqlite_db: Database) -> None:
    alice = add_alice(sqlite_db)

    migration = sqlite_db.migration_transaction()
    with pytest.raises(RuntimeError, match="foreign keys"), migration as conn:
        conn.execute(text("DELETE FROM people"))  # leaves an account without its person

    with sqlite_db.uow() as uow:
        assert uow.people.get(alice) is not None


def test_posts_written_before_search_existed_are_found_after_the_upgrade(
    empty_db: Database,
) -> None:
    empty_db.upgrade("0009")
    with empty_db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO groups (id, slug, name, visibility, admits_externals, created_at) "
                "VALUES (1, 'marketing', 'Marketing', 'open', false, :now)"
            ),
            {"now": NOW.replace(tzinfo=None)},
        )
        conn.execute(
            text(
                "INSERT INTO items (id, group_id, kind, text, created_at) "
                "VALUES (7, 1, 'note', 'Neue Plakate am Bahnhof', :now)"
            ),
            {"now": NOW.replace(tzinfo=None)},
        )
        conn.execute(
            text(
                "INSERT INTO comments (id, item_id, text, created_at) "
                "VALUES (3, 7, 'The posters look great', :now)"
            ),
            {"now": NOW.replace(tzinfo=None)},
        )
    empty_db.upgrade()
    with empty_db.uow() as uow:
        hits, total = uow.search.search("plakat", [1], limit=10)
        assert (total, [(h.kind, h.item_id) for h in hits]) == (1, [("item", 7)])
        hits, total = uow.search.search("poster", [1], limit=10)
        assert (total, [(h.kind, h.ref_id) for h in hits]) == (1, [("comment", 3)])


# --- migrations at start: instances starting at once, a newer schema --------------------


def test_instances_starting_at_once_migrate_once(empty_db: Database) -> None:
    """Four instances start against one empty database at the same moment: each one's
    upgrade returns, and the schema is migrated once (a second run of the first
    migration would fail on its CREATE TABLE)."""
    import threading

    others = [Database(empty_db.url) for _ in range(3)]
    start = threading.Barrier(4)
    failures: list[BaseException] = []

    def upgrade(db: Database) -> None:
        start.wait()
        try:
            db.upgrade()
        except BaseException as exc:  # pragma: no cover - what the test looks for
            failures.append(exc)

    threads = [threading.Thread(target=upgrade, args=(db,)) for db in [empty_db, *others]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for db in others:
        db.dispose()
    assert failures == []
    assert empty_db.current_revision() == empty_db.head_revision()
    with empty_db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1


def test_a_schema_from_a_newer_pinwall_is_refused_and_left_alone(empty_db: Database) -> None:
    from store.db import SchemaTooNew

    empty_db.upgrade()
    head = empty_db.head_revision()
    with empty_db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099_from_the_future'"))
    before = tables(empty_db)
    with pytest.raises(SchemaTooNew) as refused:
        empty_db.upgrade()
    assert str(refused.value) == (
        f"the database's schema (0099_from_the_future) is newer than this Pinwall knows "
        f"(newest {head}): run the newer Pinwall, or restore a backup made with this version"
    )
    assert tables(empty_db) == before
    assert empty_db.current_revision() == "0099_from_the_future"
    assert empty_db.schema_problem() == str(refused.value)


def test_titles_given_twice_before_get_their_slug_so_that_titles_are_unique(
    empty_db: Database,
) -> None:
    empty_db.upgrade("0019")
    with empty_db.engine.begin() as conn:
        for group_id, slug, name in (
            (1, "sales", "Sales"),
            (2, "sales-2", "SALES"),
            (3, "hr", "HR"),
        ):
            conn.execute(
                text(
                    "INSERT INTO groups (id, slug, name, visibility, admits_externals, created_at) "
                    "VALUES (:id, :slug, :name, 'open', false, :now)"
                ),
                {"id": group_id, "slug": slug, "name": name, "now": NOW.replace(tzinfo=None)},
            )
    empty_db.upgrade()
    with empty_db.engine.connect() as conn:
        rows = conn.execute(text("SELECT name, title_key FROM groups ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [
        ("Sales", "sales"),
        ("SALES (sales-2)", "sales (sales-2)"),
        ("HR", "hr"),
    ]
