"""Who may run what: one instance per SQLite file, singletons on PostgreSQL.

SQLite serves one running Pinwall; a second one on the same file is refused with a
clear message. On PostgreSQL several instances share the work; work that must run
once (the scheduler tick, Matrix sync, Telegram polling) runs where a session-level
advisory lock is held, on a connection kept for as long as the work runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import zlib
from pathlib import Path
from typing import IO

from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url

from store.db import Database

log = logging.getLogger(__name__)


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
    """Work named `name` runs only where this lock is held (always held on SQLite).

    The lock is a session-level advisory lock on a connection kept for it, so it dies
    with that connection: when PostgreSQL restarts, another instance may take it while
    this one still believes it holds it. So `try_acquire` does not trust the belief: it
    looks for the lock on the kept connection (one small query), and where the lock or
    the connection is gone it tries to take the lock afresh. A holder calls it before
    each unit of its work (a scheduler tick, a poll, a sync) and does that work only
    when it answers True. (A lease row with a fencing token would also fence work that is
    already under way, but each unit here is short and safe to repeat: the inbox records
    events once, and scheduled jobs keep their due times in transactions.)
    """

    def __init__(self, db: Database, name: str) -> None:
        self.db = db
        self.name = name
        self.key = lock_key(name)
        self._conn: Connection | None = None
        self._guard = threading.Lock()  # ticks of several jobs may check at once
        # How often the lock was newly taken: a holder that sees this change knows it
        # had lost it meanwhile (what it did then may have been done elsewhere too).
        self.acquisitions = 0

    @property
    def held(self) -> bool:
        """Whether this instance believed it held the lock when it last looked."""
        return self.db.is_sqlite or self._conn is not None

    def try_acquire(self) -> bool:
        """True when this instance holds the lock: still (checked now), or taken now."""
        if self.db.is_sqlite:
            return True
        with self._guard:
            if self._conn is not None:
                if self._still_held(self._conn):
                    return True
                log.warning(
                    "lost the %r lock (the database restarted, or its connection broke); "
                    "its work stops here until this instance holds it again",
                    self.name,
                )
                self._close()
            try:
                conn = self.db.engine.connect()
            except Exception as exc:
                log.warning("cannot reach the database for the %r lock: %s", self.name, exc)
                return False
            try:
                got = bool(
                    conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar()
                )
                conn.commit()
            except Exception as exc:
                log.warning("cannot take the %r lock: %s", self.name, exc)
                conn.invalidate()
                conn.close()
                return False
            if got:
                self._conn = conn
                self.acquisitions += 1
            else:
                conn.close()
            return got

    def _still_held(self, conn: Connection) -> bool:
        try:
            found = conn.execute(_HELD, {"hi": self.key >> 32, "lo": self.key & 0xFFFFFFFF})
            held = found.scalar() is not None
            conn.commit()
        except Exception:
            return False
        return held

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.invalidate()  # never back to the pool: it may hold a stale session
            with contextlib.suppress(Exception):
                conn.close()

    def release(self) -> None:
        with self._guard:
            if self._conn is not None:
                try:
                    self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                    self._conn.commit()
                except Exception:  # the connection is gone, and the lock with it
                    log.debug("releasing the %r lock failed", self.name, exc_info=True)
                finally:
                    self._close()


# The advisory lock of a bigint key, held by this session: pg_locks shows the key's high
# and low 32 bits as classid and objid, with objsubid 1.
_HELD = text(
    "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
    "AND granted AND classid::bigint = :hi AND objid::bigint = :lo AND objsubid = 1"
)
