"""Engine set-up for SQLite and PostgreSQL, migrations, and the unit-of-work factory."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import ResolutionError
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from store.repositories.ledger import OutboxLedger
from store.uow import UnitOfWork

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
# Pages in the WAL at which a commit checkpoints itself (the background one should first).
WAL_AUTOCHECKPOINT = 8000


def normalize_url(url: str) -> str:
    """`postgresql://` means psycopg 3 here, the driver Pinwall installs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


class _Checkpointer:
    """Copies committed pages from the WAL back into the database file, on its own thread.

    SQLite does that in whichever commit takes the WAL past `wal_autocheckpoint` pages,
    and with synchronous=NORMAL that commit then also syncs the WAL and the database
    file: a pause of milliseconds every few hundred commits, in some unlucky request.
    Here a PASSIVE checkpoint runs shortly after commits instead, beside the writers
    (WAL allows that); the automatic one stays as a backstop, at WAL_AUTOCHECKPOINT
    pages: at SQLite's 1,000 a busy writer (a few hundred commands a second, each
    dirtying dozens of index pages) reached it between two of these checkpoints, and
    the syncs were back in the requests.
    """

    def __init__(self, path: str, pause: float = 0.05) -> None:
        self._path = path
        self._pause = pause  # commits that follow within it share one checkpoint
        self._due = threading.Event()
        self._closed = False
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def committed(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None and not self._closed:
                    self._thread = threading.Thread(
                        target=self._run, name="pinwall-wal-checkpoint", daemon=True
                    )
                    self._thread.start()
        self._due.set()

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, timeout=30, isolation_level=None)
        try:
            while True:
                self._due.wait()
                if self._closed:
                    return
                time.sleep(self._pause)
                self._due.clear()
                if self._closed:  # close() came during the pause: its wake-up was cleared
                    return
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # the next commit's automatic one does it then
                    log.warning("WAL checkpoint failed: %s", exc)
        finally:
            conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            thread = self._thread
        self._due.set()
        if thread is not None:
            thread.join(timeout=10)


# orjson takes these to the `default` below, as the json module would not write them.
_ORJSON_OPTIONS = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)


def _not_json(value: Any) -> Any:
    raise TypeError(f"not JSON: {type(value).__name__}")


def _json_dumps(value: Any) -> str:
    try:
        return orjson.dumps(value, default=_not_json, option=_ORJSON_OPTIONS).decode()
    except TypeError:
        # What orjson refuses and the json module writes (a lone surrogate from a
        # messenger, an integer beyond 64 bits) is written as before; the rest fails
        # there as it always did.
        return json.dumps(value)


def _json_loads(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # written by the json module: NaN, lone surrogates
        return json.loads(text)


# JSON columns (inbox events, outbox payloads, audit details) through orjson: several per
# command, each a few times faster than the json module, which stays the fallback.
JSON_CODEC: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": _json_loads}


def _sqlite_engine(url: str) -> tuple[Engine, _Checkpointer | None]:
    parsed = make_url(url)
    checkpointer = None
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        if not parsed.query and not parsed.database.startswith("file:"):  # a plain path
            checkpointer = _Checkpointer(parsed.database)
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30}, **JSON_CODEC
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event own transactions, so they can start IMMEDIATE.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Take the write lock at BEGIN: a deferred transaction that later upgrades to a
        # writer fails at once with "database is locked", whatever the busy timeout.
        # Straight to the driver: every transaction passes here, and a statement through
        # SQLAlchemy's execution path costs more than the BEGIN itself.
        conn.connection.dbapi_connection.execute("BEGIN IMMEDIATE")

    if checkpointer is not None:

        @event.listens_for(engine, "commit")
        def _on_commit(_conn: Any) -> None:
            checkpointer.committed()

    return engine, checkpointer


def _sqlite_pragma(conn: Connection, pragma: str) -> None:
    """Runs a pragma outside any transaction (on the DB-API connection, in autocommit)."""
    dbapi_conn = conn.connection.dbapi_connection
    assert dbapi_conn is not None
    cur = dbapi_conn.cursor()
    try:
        cur.execute(pragma)
    finally:
        cur.close()


def _postgres_connect_args(url: str) -> dict[str, Any]:
    """No server-side prepared statements (unless the URL asks for them): PostgreSQL then
    plans each statement for the data as it is. A prepared statement's cached generic
    plan can be one made while the outbox was nearly empty (a sequential scan inside the
    claim's anti-join), kept until the next ANALYZE: claims took several times as long
    once the outbox had grown."""
    return {} if "prepare_threshold" in make_url(url).query else {"prepare_threshold": None}


# The key of the transaction-level advisory lock that migrations take on PostgreSQL.
MIGRATION_LOCK = 0x70696E77616C6C  # "pinwall"
MIGRATION_TRIES = 5  # SQLite: runs of the migrations tried when the file was locked


class SchemaTooNew(Exception):
    """The database was migrated by a newer Pinwall than this one."""

    def __init__(self, current: str, head: str | None) -> None:
        super().__init__(
            f"the database's schema ({current}) is newer than this Pinwall knows (newest "
            f"{head}): run the newer Pinwall, or restore a backup made with this version"
        )
        self.current = current
        self.head = head


class Database:
    """One database: the engine, its sessions and its migrations."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalize_url(url)
        self.is_sqlite = make_url(self.url).get_backend_name() == "sqlite"
        self._checkpointer: _Checkpointer | None = None
        if self.is_sqlite:
            self.engine, self._checkpointer = _sqlite_engine(self.url)
        else:
            self.engine = create_engine(
                self.url,
                pool_size=10,
                max_overflow=10,
                pool_pre_ping=True,
                connect_args=_postgres_connect_args(self.url),
                **JSON_CODEC,
            )
        self.engine.echo = echo
        self._sessions = sessionmaker(self.engine, expire_on_commit=False, autoflush=True)
        # SQLite has one writer; threads of this process queue here instead of polling
        # the busy handler. PostgreSQL needs no such lock.
        self._write_lock: threading.Lock | None = threading.Lock() if self.is_sqlite else None
        self._conn: Connection | None = None  # SQLite: see _kept

    @property
    def backend(self) -> str:
        return "sqlite" if self.is_sqlite else "postgresql"

    @contextmanager
    def uow(self) -> Iterator[UnitOfWork]:
        """A unit of work: commit() makes everything in it durable at once."""
        lock = self._write_lock
        if lock is not None:
            lock.acquire()
        try:
            # SQLite: on the kept connection (see _kept); the session begins and ends its
            # own transaction on it.
            session: Session = (
                self._sessions() if lock is None else self._sessions(bind=self._kept())
            )
            try:
                yield UnitOfWork(session, backend=self.backend)
            finally:
                session.rollback()
                session.close()
        finally:
            if lock is not None:
                lock.release()

    def _kept(self) -> Connection:
        """SQLite: the one connection that units of work and ledgers take turns on, under
        the write lock, instead of a checkout from the pool and back for each (which cost
        more than a transaction's own BEGIN and COMMIT)."""
        conn = self._conn
        if conn is None or conn.closed or conn.invalidated:
            conn = self._conn = self.engine.connect()
        return conn

    @contextmanager
    def ledger(self) -> Iterator[OutboxLedger]:
        """A write transaction for delivery bookkeeping on a plain connection, past the
        ORM (a unit of work's session costs more than the few statements it wraps). It
        commits when the block ends and rolls back when it raises."""
        lock = self._write_lock
        if lock is None:
            with self.engine.begin() as conn:
                yield OutboxLedger(conn)
            return
        with lock:
            conn = self._kept()
            with conn.begin():
                yield OutboxLedger(conn)

    @contextmanager
    def joined_uow(self, ledger: OutboxLedger) -> Iterator[UnitOfWork]:
        """A unit of work for reading within a ledger's transaction (rendering what was
        just claimed). Its commit() does not end that transaction: the ledger's does."""
        session = Session(
            bind=ledger.conn,
            join_transaction_mode="rollback_only",
            expire_on_commit=False,
            autoflush=True,
        )
        try:
            yield UnitOfWork(session, backend=self.backend)
        finally:
            session.close()

    # --- migrations -------------------------------------------------------------

    def _alembic_config(self) -> Config:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        return cfg

    @contextmanager
    def migration_transaction(self) -> Iterator[Connection]:
        """One transaction for a migration run.

        On SQLite, foreign keys are off meanwhile: a batch migration recreates a table
        (copy, drop, rename), and dropping a referenced table with them on would delete
        every referencing row through ON DELETE CASCADE. The pragma is ignored inside a
        transaction, so it is set before; the result is checked before the commit.
        """
        with self.engine.connect() as conn:
            if not self.is_sqlite:
                with conn.begin():
                    # Instances starting at once migrate one after the other: the first
                    # runs the migrations, the others wait here and then find nothing to
                    # do. (SQLite's BEGIN IMMEDIATE serializes them already.)
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
                    yield conn
                return
            _sqlite_pragma(conn, "PRAGMA foreign_keys=OFF")
            try:
                with conn.begin():
                    yield conn
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise RuntimeError(f"migration broke foreign keys: {broken[:5]}")
            finally:
                _sqlite_pragma(conn, "PRAGMA foreign_keys=ON")

    def upgrade(self, revision: str = "head") -> None:
        """Migrates to `revision`; refuses (SchemaTooNew) a database whose schema was made
        by a newer Pinwall, before changing anything."""
        for attempt in range(1, MIGRATION_TRIES + 1):
            try:
                self._upgrade(revision)
                return
            except OperationalError as exc:
                # SQLite, instances starting at once on a new file: a lock SQLite refuses
                # at once instead of waiting (seen rarely, on the switch to WAL). The run
                # is one transaction, so trying again is safe.
                if not self.is_sqlite or "locked" not in str(exc) or attempt == MIGRATION_TRIES:
                    raise
                log.warning("migrations: the database was locked, trying again (%s)", attempt)
                time.sleep(0.2 * attempt)

    def _upgrade(self, revision: str) -> None:
        cfg = self._alembic_config()
        with self.migration_transaction() as conn:
            self._refuse_unknown(MigrationContext.configure(conn).get_current_revision())
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)

    def _refuse_unknown(self, current: str | None) -> None:
        if current is None:
            return
        script = ScriptDirectory.from_config(self._alembic_config())
        try:
            script.revision_map.get_revision(current)
        except ResolutionError:
            raise SchemaTooNew(current, script.get_current_head()) from None

    def schema_problem(self) -> str | None:
        """Why this Pinwall cannot use the database's schema as it is, or None."""
        current, head = self.current_revision(), self.head_revision()
        if current == head:
            return None
        try:
            self._refuse_unknown(current)
        except SchemaTooNew as exc:
            return str(exc)
        return f"schema at {current}, newest is {head}: run pinwall db upgrade"

    def downgrade(self, revision: str) -> None:
        cfg = self._alembic_config()
        with self.migration_transaction() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, revision)

    def current_revision(self) -> str | None:
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head_revision(self) -> str | None:
        return ScriptDirectory.from_config(self._alembic_config()).get_current_head()

    def ping(self) -> bool:
        return self.problem() is None

    def problem(self) -> str | None:
        """None when the database answers, else the first line of why not."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            log.warning("database not reachable: %s", reason)
            return reason
        return None

    def dispose(self) -> None:
        lock = self._write_lock
        if lock is not None and lock.acquire(timeout=10):  # not under a running transaction
            try:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
            finally:
                lock.release()
        if self._checkpointer is not None:
            self._checkpointer.close()
        self.engine.dispose()
