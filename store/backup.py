"""Backups: a consistent snapshot of the database, the stored files and the secret key,
with a manifest, taken while Pinwall runs; and the restore of one into an empty place.

A backup directory holds:

    manifest.json   what is in it: when, which Pinwall, backend, schema, rows per table,
                    every file with its size
    database.sqlite SQLite's online backup of the database (SQLite), or
    database.dump   pg_dump's custom format (PostgreSQL)
    blobs/          the stored files, as the blob store keeps them
    secret_key      the key that signs links and tokens (without it, links sent before
                    the restore stop working)

The database is copied first and the files after it: a file is stored before any row
refers to it, so every file the snapshot refers to is there when the files are copied.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, inspect, select, table, text
from sqlalchemy.engine import make_url

from store.blobs import valid_blob_id
from store.db import Database

MANIFEST = "manifest.json"
SQLITE_FILE = "database.sqlite"
PG_DUMP_FILE = "database.dump"
BLOBS = "blobs"
SECRET_KEY = "secret_key"  # noqa: S105 - the name of the key's file
FORMAT = 1

Progress = Callable[[str], None]


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Manifest:
    created_at: str
    pinwall_version: str
    backend: str
    schema: str | None
    rows: dict[str, int]
    files: dict[str, int]  # blob id -> size in bytes
    secret_key: bool

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT} | {f: getattr(self, f) for f in self.__slots__}

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        path = directory / MANIFEST
        if not path.is_file():
            raise BackupError(f"{directory} holds no backup ({MANIFEST} is missing)")
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT:
            raise BackupError(
                f"{path}: format {data.get('format')!r} is not one this Pinwall reads"
            )
        return cls(**{f: data[f] for f in cls.__slots__})


def row_counts(db: Database) -> dict[str, int]:
    """Rows per table (Alembic's version table included), by name."""
    with db.engine.connect() as conn:
        return _count(conn)


def _count(conn: Connection) -> dict[str, int]:
    return {
        name: int(conn.execute(select(func.count()).select_from(table(name))).scalar_one())
        for name in sorted(inspect(conn).get_table_names())
    }


def _libpq_env(db: Database) -> dict[str, str]:
    """The connection of a PostgreSQL URL as libpq's environment (no password on a
    command line, where `ps` would show it)."""
    url = make_url(db.url)
    env = dict(os.environ)
    for key, value in (
        ("PGHOST", url.host),
        ("PGPORT", url.port),
        ("PGUSER", url.username),
        ("PGPASSWORD", url.password),
        ("PGDATABASE", url.database),
    ):
        if value is not None:
            env[key] = str(value)
    return env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} is not installed: install PostgreSQL's client programs "
            "(Debian: apt install postgresql-client)"
        )
    return found


def _run(args: list[str], env: dict[str, str]) -> None:
    # The program is pg_dump or pg_restore found on PATH; no shell, no input of a person.
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise BackupError(f"{Path(args[0]).name} failed: {first}")


def _sqlite_path(db: Database) -> Path:
    database = make_url(db.url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(database)


def _blob_files(root: Path) -> Iterator[Path]:
    if not root.is_dir():
        return
    for top in sorted(root.iterdir()):
        if top.is_dir() and top.name != "tmp":
            for path in sorted(top.glob("*/*")):
                if valid_blob_id(path.name) and path.is_file():
                    yield path


def backup(db: Database, data_dir: Path, target: Path, *, version: str, say: Progress) -> Manifest:
    """Writes a backup of `db` and `data_dir` into `target` (new or empty)."""
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty: choose a new directory")
    # Written beside the target and renamed when whole: a failed backup leaves no
    # directory that looks like one.
    partial = target.with_name(f".{target.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        manifest = _write(db, data_dir, partial, version=version, say=say)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if target.exists():
        target.rmdir()
    partial.rename(target)
    return manifest


def _write(db: Database, data_dir: Path, target: Path, *, version: str, say: Progress) -> Manifest:
    schema = db.current_revision()
    if db.is_sqlite:
        say("database: SQLite online backup …")
        source = sqlite3.connect(_sqlite_path(db))
        copy = sqlite3.connect(target / SQLITE_FILE)
        try:
            with copy:
                source.backup(copy, pages=4096)
        finally:
            copy.close()
            source.close()
        counted = Database(f"sqlite:///{target / SQLITE_FILE}")
        try:
            rows = row_counts(counted)
        finally:
            counted.dispose()
    else:
        say("database: pg_dump …")
        # The rows are counted in the snapshot that pg_dump then reads (exported from a
        # repeatable-read transaction kept open meanwhile): the manifest says what the
        # dump holds, whatever was written since.
        repeatable = db.engine.connect().execution_options(isolation_level="REPEATABLE READ")
        with repeatable as conn, conn.begin():
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            rows = _count(conn)
            _run(
                [
                    _tool("pg_dump"),
                    "--format=custom",
                    "--no-owner",
                    f"--snapshot={snapshot}",
                    "--file",
                    str(target / PG_DUMP_FILE),
                ],
                _libpq_env(db),
            )
    files: dict[str, int] = {}
    blobs = list(_blob_files(data_dir / BLOBS))
    for i, path in enumerate(blobs, 1):
        relative = path.relative_to(data_dir / BLOBS)
        (target / BLOBS / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target / BLOBS / relative)
        files[path.name] = path.stat().st_size
        if i % 500 == 0 or i == len(blobs):
            say(f"files: {i}/{len(blobs)}")
    key = data_dir / SECRET_KEY
    if key.is_file():
        shutil.copy2(key, target / SECRET_KEY)
        os.chmod(target / SECRET_KEY, 0o600)
    manifest = Manifest(
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        pinwall_version=version,
        backend=db.backend,
        schema=schema,
        rows=rows,
        files=files,
        secret_key=key.is_file(),
    )
    (target / MANIFEST).write_text(json.dumps(manifest.to_json(), indent=2, sort_keys=True))
    return manifest


def _refuse_unless_empty(db: Database, data_dir: Path) -> None:
    if db.is_sqlite:
        path = _sqlite_path(db)
        if path.exists() and path.stat().st_size > 0:
            raise BackupError(f"{path} exists: restore into a new database file")
    elif inspect(db.engine).get_table_names():
        raise BackupError("the database has tables: restore into a new, empty database")
    if (data_dir / BLOBS).is_dir() and any(_blob_files(data_dir / BLOBS)):
        raise BackupError(f"{data_dir / BLOBS} holds files: restore into a new data directory")
    if (data_dir / SECRET_KEY).exists():
        raise BackupError(f"{data_dir / SECRET_KEY} exists: restore into a new data directory")


def restore(db: Database, data_dir: Path, source: Path, *, say: Progress) -> Manifest:
    """Restores the backup in `source` into an empty database and data directory; checks
    the rows and files against the manifest."""
    manifest = Manifest.read(source)
    if manifest.backend != db.backend:
        raise BackupError(
            f"the backup is of a {manifest.backend} database, PINWALL_DATABASE_URL is "
            f"{db.backend}: restore into a {manifest.backend} database"
        )
    _refuse_unless_empty(db, data_dir)
    if db.is_sqlite:
        say("database: copying the SQLite file …")
        db.dispose()
        path = _sqlite_path(db)
        path.parent.mkdir(parents=True, exist_ok=True)
        source_db = sqlite3.connect(source / SQLITE_FILE)
        copy = sqlite3.connect(path)
        try:
            with copy:
                source_db.backup(copy)
        finally:
            copy.close()
            source_db.close()
    else:
        say("database: pg_restore …")
        _run(
            [
                _tool("pg_restore"),
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--single-transaction",
                "--dbname",
                make_url(db.url).database or "",
                str(source / PG_DUMP_FILE),
            ],
            _libpq_env(db),
        )
    counts = row_counts(db)
    if counts != manifest.rows:
        differ = sorted(
            t for t in counts.keys() | manifest.rows.keys() if counts.get(t) != manifest.rows.get(t)
        )
        raise BackupError(
            f"the restored database differs from the manifest in: {', '.join(differ)}"
        )
    files = sorted(manifest.files.items())
    for i, (blob_id, size) in enumerate(files, 1):
        relative = Path(blob_id[:2]) / blob_id[2:4] / blob_id
        copied = source / BLOBS / relative
        if not copied.is_file() or copied.stat().st_size != size:
            raise BackupError(f"file {blob_id} is missing or damaged in the backup")
        (data_dir / BLOBS / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(copied, data_dir / BLOBS / relative)
        if i % 500 == 0 or i == len(files):
            say(f"files: {i}/{len(files)}")
    if manifest.secret_key:
        data_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / SECRET_KEY, data_dir / SECRET_KEY)
        os.chmod(data_dir / SECRET_KEY, 0o600)
    return manifest
