"""The SQLite set-up: WAL, foreign keys, and concurrent writers that never see "database is locked".

A running server writes from its threads while the `pinwall outbox` CLI (another
Database object, in real life another process) writes to the same file.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from store.db import Database
from store.models import Account, AuditEntry
from store.repositories.ledger import _claim_statement

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
THREADS, COMMITS = 8, 50


def audit_count(db: Database) -> int:
    with db.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(AuditEntry)) or 0


def write_entries(db: Database, worker: int, commits: int) -> int:
    for n in range(commits):
        with db.uow() as uow:
            # Read, then write: a deferred transaction would fail to upgrade to a writer.
            uow.audit.newest(1)
            uow.audit.add(at=NOW, actor_id=worker, action="test.write", subject=f"{worker}/{n}")
            uow.commit()
    return commits


def test_wal_and_foreign_keys_are_on(sqlite_db: Database) -> None:
    with sqlite_db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 5000


def test_a_foreign_key_violation_is_refused(sqlite_db: Database) -> None:
    with sqlite_db.uow() as uow:
        uow.session.add(
            Account(
                person_id=4242,
                platform="memory",
                external_id="nobody",
                reachable=True,
                last_seen_at=NOW,
                created_at=NOW,
            )
        )
        with pytest.raises(IntegrityError):
            uow.flush()


def test_a_second_database_object_on_the_same_file_sees_wal(sqlite_db: Database) -> None:
    other = Database(sqlite_db.url)
    try:
        with other.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        other.dispose()


def test_writes_from_many_threads_all_commit(sqlite_db: Database) -> None:
    with ThreadPoolExecutor(THREADS) as pool:
        done = list(pool.map(write_entries, [sqlite_db] * THREADS, range(THREADS), [COMMITS] * 8))
    assert sum(done) == THREADS * COMMITS
    assert audit_count(sqlite_db) == THREADS * COMMITS


def test_writes_from_two_database_objects_on_one_file_all_commit(sqlite_db: Database) -> None:
    """The server's Database and the CLI's, each with threads of its own, on one file."""
    cli = Database(sqlite_db.url)
    try:
        databases = [sqlite_db if n % 2 == 0 else cli for n in range(THREADS)]
        with ThreadPoolExecutor(THREADS) as pool:
            done = list(pool.map(write_entries, databases, range(THREADS), [COMMITS] * THREADS))
        assert sum(done) == THREADS * COMMITS
        assert audit_count(sqlite_db) == audit_count(cli) == THREADS * COMMITS
    finally:
        cli.dispose()


def test_a_writer_waits_for_a_long_transaction_of_the_other_database(
    sqlite_db: Database,
) -> None:
    """The CLI holds a write transaction open; the server's write waits, then succeeds."""
    cli = Database(sqlite_db.url)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with cli.uow() as uow:
            uow.audit.add(at=NOW, actor_id=None, action="test.hold", subject="cli")
            uow.flush()
            holding.set()
            release.wait(timeout=10)
            uow.commit()

    try:
        with ThreadPoolExecutor(2) as pool:
            held = pool.submit(hold)
            assert holding.wait(timeout=10)
            writer = pool.submit(write_entries, sqlite_db, 1, 3)
            # The writer is blocked behind the CLI's transaction, not failed.
            with pytest.raises(TimeoutError):
                writer.result(timeout=0.3)
            release.set()
            held.result(timeout=10)
            assert writer.result(timeout=10) == 3
        assert audit_count(sqlite_db) == 4
    finally:
        release.set()
        cli.dispose()


def test_reads_see_what_the_other_database_committed(sqlite_db: Database) -> None:
    cli = Database(sqlite_db.url)
    try:
        write_entries(cli, 7, 2)
        assert audit_count(sqlite_db) == 2
        write_entries(sqlite_db, 8, 1)
        assert audit_count(cli) == 3
    finally:
        cli.dispose()


def checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "pinwall-wal-checkpoint"]


def test_wal_checkpoints_run_beside_the_writers_and_stop_with_the_database(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    before = set(checkpoint_threads())
    db = Database(f"sqlite:///{tmp_path_factory.mktemp('db') / 'pinwall.db'}")
    db.upgrade()
    try:
        write_entries(db, 1, 20)
        (thread,) = set(checkpoint_threads()) - before
        assert thread.is_alive()
        write_entries(db, 1, 1)  # and at once (in its pause after a commit) ...
    finally:
        started = time.monotonic()
        db.dispose()  # ... it stops without waiting out anything
    assert time.monotonic() - started < 5
    assert not thread.is_alive()
    again = Database(db.url)
    try:
        assert audit_count(again) == 21
    finally:
        again.dispose()


def test_no_checkpoint_thread_for_a_database_in_memory() -> None:
    before = set(checkpoint_threads())
    db = Database("sqlite://")
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            conn.commit()
        assert set(checkpoint_threads()) == before
    finally:
        db.dispose()


def subjects(db: Database) -> list[str]:
    with db.uow() as uow:
        return list(uow.session.scalars(select(AuditEntry.subject).order_by(AuditEntry.id)))


def fail_in_a_unit_of_work(db: Database) -> None:
    with db.uow() as uow:
        uow.audit.add(at=NOW, actor_id=1, action="test.write", subject="raised")
        uow.flush()
        raise RuntimeError("in the middle")


def fail_in_a_ledger(db: Database) -> None:
    with db.ledger() as ledger:
        ledger.conn.execute(
            insert(AuditEntry).values(
                at=NOW, actor_id=1, action="test.write", subject="ledger raised", details={}
            )
        )
        raise RuntimeError("in the middle")


def test_units_of_work_and_ledgers_sharing_a_connection_leave_it_clean(
    sqlite_db: Database,
) -> None:
    """They take turns on one kept connection: what one did not commit (it raised, or just
    ended) is gone for the next, and the next commits its own."""
    with pytest.raises(RuntimeError):
        fail_in_a_unit_of_work(sqlite_db)
    with sqlite_db.uow() as uow:
        uow.audit.add(at=NOW, actor_id=1, action="test.write", subject="not committed")
        uow.flush()
    with pytest.raises(RuntimeError):
        fail_in_a_ledger(sqlite_db)
    with sqlite_db.uow() as uow:
        uow.audit.add(at=NOW, actor_id=1, action="test.write", subject="committed")
        uow.commit()
    other = Database(sqlite_db.url)
    try:
        assert subjects(other) == subjects(sqlite_db) == ["committed"]
    finally:
        other.dispose()
    sqlite_db.dispose()  # closes the kept connection; the next unit of work opens another
    assert subjects(sqlite_db) == ["committed"]


def test_a_claim_looks_up_earlier_messages_of_a_conversation_in_the_unfinished_index(
    sqlite_db: Database,
) -> None:
    """ix_outbox_unfinished holds only pending and sending messages; SQLite uses such a
    partial index only where the query's condition says the same, literally."""
    claim = _claim_statement("sqlite", "one")
    assert isinstance(claim, ClauseElement)
    with sqlite_db.engine.connect() as conn:
        compiled = claim.compile(dialect=conn.dialect)
        assert isinstance(compiled, SQLCompiler)
        assert compiled.positiontup is not None
        params = (None,) * len(compiled.positiontup)
        plan = " / ".join(
            row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", params)
        )
    assert "USING INDEX ix_outbox_unfinished (target=? AND platform=? AND target_kind=?" in plan
