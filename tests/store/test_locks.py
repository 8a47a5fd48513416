"""One instance per SQLite file; singletons on PostgreSQL."""

from __future__ import annotations

import os

import pytest

from store.db import Database
from store.locks import AlreadyRunning, InstanceLock, Singleton


def test_a_second_instance_on_one_sqlite_file_is_refused(sqlite_db: Database) -> None:
    first = InstanceLock(sqlite_db)
    first.acquire()
    second = InstanceLock(Database(sqlite_db.url))
    with pytest.raises(AlreadyRunning, match=rf"pid {os.getpid()}.*use PostgreSQL"):
        second.acquire()
    first.release()
    second.acquire()  # free again once the first stopped
    second.release()


def test_singletons_are_always_held_on_sqlite(sqlite_db: Database) -> None:
    assert Singleton(sqlite_db, "scheduler").try_acquire()
    assert Singleton(sqlite_db, "scheduler").try_acquire()


@pytest.mark.postgres
def test_a_singleton_runs_on_one_instance_only(postgres_url: str) -> None:
    one, two = Database(postgres_url), Database(postgres_url)
    try:
        a, b = Singleton(one, "telegram-polling"), Singleton(two, "telegram-polling")
        assert a.try_acquire()
        assert not b.try_acquire()
        assert Singleton(two, "scheduler").try_acquire()  # other work is free
        a.release()
        assert b.try_acquire()  # taken over once the holder stops
        b.release()
    finally:
        one.dispose()
        two.dispose()
