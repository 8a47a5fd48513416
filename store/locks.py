"""Who may run what: one instance per SQLite file, singletons on PostgreSQL.

SQLite serves one running Pinwall; a second one on the same file is refused with a
clear message. On PostgreSQL several instances share the work; work that must run
once (the scheduler tick, Matrix sync, Telegram polling) runs where a session-level
advisory lock is held, on a connection kept for as long as the work runs.
"""

from __future__ import annotations

import fcntl
import os
import zlib
from pathlib import Path
from typing import IO

from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url

from store.db import Database


class AlreadyRunning(Exception):
    pass


class InstanceLock:
    """An exclusive lock on `<database>.lock` beside a SQLite file, held while running."""

    def __init__(self, db: Database) -> None:
        database = make_url(db.url).database
        self.path: Path | None = (
            Path(database + ".lock")
            if db.is_sqlite and database and database != ":memory:"
            else None
        )
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        if self.path is None:
            return
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            handle.close()
            raise AlreadyRunning(
                f"another Pinwall (pid {holder}) is running on {self.path.with_suffix('')}; "
                "SQLite serves one instance — use PostgreSQL to run several"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def lock_key(name: str) -> int:
    """A stable 63-bit key for pg_try_advisory_lock from a readable name."""
    return zlib.crc32(f"pinwall:{name}".encode()) | (0x5057 << 32)


class Singleton:
    """Work named `name` runs only where this lock is held (always held on SQLite)."""

    def __init__(self, db: Database, name: str) -> None:
        self.db = db
        self.name = name
        self.key = lock_key(name)
        self._conn: Connection | None = None

    @property
    def held(self) -> bool:
        return self.db.is_sqlite or self._conn is not None

    def try_acquire(self) -> bool:
        if self.db.is_sqlite or self._conn is not None:
            return True
        conn = self.db.engine.connect()
        got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar())
        conn.commit()
        if got:
            self._conn = conn
        else:
            conn.close()
        return got

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                self._conn.commit()
            finally:
                self._conn.close()
                self._conn = None
