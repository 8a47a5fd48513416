"""Throw-away databases for the benchmarks: a temp SQLite file, or a PostgreSQL database
created beside PINWALL_BENCH_POSTGRES_URL's and dropped afterwards; migrated either way."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

from store.db import Database

PG_ADMIN_URL = os.environ.get(
    "PINWALL_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _admin_url() -> str:
    return PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1)


def postgres_unreachable() -> str | None:
    """None when PostgreSQL answers, else why not (one line)."""
    try:
        engine = create_engine(_admin_url(), connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
    return None


@contextmanager
def scratch_database(backend: str) -> Iterator[Database]:
    """A migrated, empty database of `backend` ("sqlite" or "postgresql")."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="pinwall-bench-") as tmp:
            db = Database(f"sqlite:///{Path(tmp) / 'pinwall.db'}")
            try:
                db.upgrade()
                yield db
            finally:
                db.dispose()
        return
    name = f"pinwall_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(_admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        db = Database(f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}")
        try:
            db.upgrade()
            yield db
        finally:
            db.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
