"""Shared fixtures: a real database on SQLite and PostgreSQL, a World to talk to, no network.

PostgreSQL: PINWALL_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres)
must reach a server where the user may create databases. Where none is reachable the
PostgreSQL cases are skipped and the report header says so; under CI=true that fails
the run instead.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bot.runtime import event_loop_factory
from store.db import Database
from store.models import Base
from tests.harness import World

# python-telegram-bot: time periods as timedelta, not the deprecated int (which warns).
os.environ.setdefault("PTB_TIMEDELTA", "true")

PG_ADMIN_URL = os.environ.get(
    "PINWALL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
_PG: dict[str, object] = {}


def _postgres_reason() -> str | None:
    """None when PostgreSQL is reachable, else why not."""
    if "reason" not in _PG:
        try:
            engine = create_engine(
                PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1),
                connect_args={"connect_timeout": 3},
            )
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            engine.dispose()
            _PG["reason"] = None
        except Exception as exc:
            _PG["reason"] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    reason = _PG["reason"]
    return reason if isinstance(reason, str) else None


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """The tests run on the event loop `pinwall run` makes (uvloop's where installed)."""
    return {"pinwall": event_loop_factory() or asyncio.new_event_loop}


def pytest_report_header(config: pytest.Config) -> str:
    reason = _postgres_reason()
    if reason is None:
        return f"postgresql: reachable at {PG_ADMIN_URL}"
    return f"postgresql: NOT reachable at {PG_ADMIN_URL} ({reason}) — PostgreSQL tests are SKIPPED"


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.environ.get("CI") == "true" and _postgres_reason() is not None:
        pytest.exit(f"CI=true but PostgreSQL is not reachable: {_postgres_reason()}", returncode=3)


# --- pytest-xdist: one worker per server ----------------------------------------------

# Fixtures that start a server of their own (a Synapse homeserver takes seconds, a
# throwaway PostgreSQL cluster too). Under `--dist loadgroup` the tests using one run on
# the same worker, so each starts once per run rather than once on every worker.
SERVER_FIXTURES = {
    "synapse": "synapse",
    "synapse_default_limits": "synapse",
    "cluster": "pgcluster",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names = getattr(item, "fixturenames", ())
        groups = sorted({g for f, g in SERVER_FIXTURES.items() if f in names})
        if groups:
            item.add_marker(pytest.mark.xdist_group("+".join(groups)))


# --- no network but loopback ------------------------------------------------------------

_real_connect = socket.socket.connect


def _guarded_connect(self: socket.socket, address: object) -> None:
    host = address[0] if isinstance(address, tuple) else None
    if host is not None and self.family in (socket.AF_INET, socket.AF_INET6):
        try:
            ip = ipaddress.ip_address(str(host).split("%")[0])
        except ValueError:
            ip = None
        if ip is None or not ip.is_loopback:
            raise ConnectionRefusedError(f"tests must not reach the network: {host}")
    _real_connect(self, address)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)


# --- databases ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database for this test session (one per xdist worker), migrated to head once."""
    reason = _postgres_reason()
    if reason is not None:
        pytest.skip(f"PostgreSQL not reachable: {reason}")
    name = f"pinwall_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(
        PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        # A throwaway database: a commit need not wait for the WAL's fsync (about 10 ms
        # each on this kind of machine). Nothing here outlives a crash of the server.
        conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    url = f"{base}/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def _pg_migrated(postgres_url: str) -> Iterator[Database]:
    db = Database(postgres_url)
    db.upgrade()
    yield db
    db.dispose()


_TABLES = [t.name for t in Base.metadata.sorted_tables]
# One round trip: which tables hold rows (most tests touch a handful of the 38).
_USED_TABLES = text(
    " UNION ALL ".join(
        f"SELECT '{name}' WHERE EXISTS (SELECT 1 FROM \"{name}\")" for name in _TABLES
    )
)
_USED_SEQUENCES = text(
    "SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename) FROM pg_sequences"
    " WHERE last_value IS NOT NULL"
)


def empty_postgres(db: Database) -> None:
    """Every table empty and every sequence back at 1, as TRUNCATE … RESTART IDENTITY
    CASCADE of all tables would leave them, but only where a test left something: a
    DELETE of a few rows costs far less than truncating 38 tables (new files for each)."""
    with db.engine.begin() as conn:
        used = {row[0] for row in conn.execute(_USED_TABLES)}
        for name in reversed(_TABLES):  # dependents first: no foreign key stands in the way
            if name in used:
                conn.execute(text(f'DELETE FROM "{name}"'))
        for (sequence,) in conn.execute(_USED_SEQUENCES).all():
            conn.execute(text(f"ALTER SEQUENCE {sequence} RESTART"))


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per session (per xdist worker); each test
    gets a copy instead of running every migration again."""
    path = tmp_path_factory.mktemp("template") / "pinwall.db"
    database = Database(f"sqlite:///{path}")
    database.upgrade()
    database.dispose()
    return path


def _sqlite_copy(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Database:
    """A migrated, empty SQLite database of the test's own: a copy of the template (through
    SQLite's backup API, so a WAL the template might keep is part of the copy)."""
    path = tmp_path_factory.mktemp("db") / "pinwall.db"
    source = sqlite3.connect(template)
    target = sqlite3.connect(path)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
    return Database(f"sqlite:///{path}")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """A migrated, empty database on each backend."""
    if request.param == "sqlite":
        database = _sqlite_copy(request.getfixturevalue("_sqlite_template"), tmp_path_factory)
        yield database
        database.dispose()
    else:
        database = request.getfixturevalue("_pg_migrated")
        empty_postgres(database)
        yield database


@pytest.fixture
def sqlite_db(
    _sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    database = _sqlite_copy(_sqlite_template, tmp_path_factory)
    yield database
    database.dispose()


@pytest.fixture
async def world(db: Database) -> AsyncIterator[World]:
    w = World(db)
    yield w
    w.close()
