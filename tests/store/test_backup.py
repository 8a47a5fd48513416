"""`pinwall backup` and `pinwall restore`: a round trip gives back every row of every table
and every stored file; a restore refuses a place that is not empty and changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, select, table, text
from sqlalchemy.engine import make_url

from app.cli import main
from store.backup import MANIFEST, BackupError, Manifest, restore
from store.blobs import BlobStore
from store.db import Database, normalize_url
from tests.harness import World


def everything(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (Alembic's and SQLite's full-text index included), in a
    stable order."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with db.engine.connect() as conn:
        for name in sorted(inspect(conn).get_table_names()):
            rows = conn.execute(select(text("*")).select_from(table(name))).all()
            out[name] = sorted((tuple(r) for r in rows), key=repr)
    return out


def files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "tmp" not in p.parts
    }


@pytest.fixture
def empty_target(db: Database, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a new, empty database of the same backend as `db`."""
    if db.is_sqlite:
        yield f"sqlite:///{tmp_path / 'restored' / 'pinwall.db'}"
        return
    name = f"pinwall_restore_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalize_url(db.url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(db.url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


async def a_company(world: World, data_dir: Path) -> None:
    await world.script(
        ("admin", "/group create marketing Marketing"),
        ("admin", "/join marketing"),
        ("admin", "/share marketing https://example.org/launch The launch"),
        ("admin", "/comment 1 looks good"),
        ("admin", "/invite member marketing"),
        ("admin", "/settings language de"),
    )
    blobs = BlobStore(data_dir / "blobs")
    blobs.put(b"%PDF-1.4 the price list")
    blobs.put(b"\x89PNG\r\n\x1a\n a logo")
    (data_dir / "secret_key").write_bytes(b"k" * 32)


async def test_a_backup_restores_every_row_and_every_file(
    world: World, db: Database, empty_target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    await a_company(world, data_dir)
    backup_dir = tmp_path / "backup"
    monkeypatch.setenv("PINWALL_DATABASE_URL", db.url)
    monkeypatch.setenv("PINWALL_DATA_DIR", str(data_dir))
    assert main(["backup", str(backup_dir)]) == 0

    manifest = Manifest.read(backup_dir)
    assert manifest.backend == db.backend
    assert manifest.schema == db.head_revision()
    assert len(manifest.files) == 2
    assert manifest.rows["groups"] == 1
    assert manifest.rows["items"] == 1
    assert manifest.rows["invites"] == 1
    assert manifest.secret_key

    restored_dir = tmp_path / "restored-data"
    monkeypatch.setenv("PINWALL_DATABASE_URL", empty_target)
    monkeypatch.setenv("PINWALL_DATA_DIR", str(restored_dir))
    assert main(["restore", str(backup_dir)]) == 0

    restored = Database(empty_target)
    try:
        assert everything(restored) == everything(db)
        assert restored.current_revision() == db.head_revision()
    finally:
        restored.dispose()
    assert files(restored_dir) == files(data_dir)


async def test_a_restore_into_a_database_in_use_is_refused_and_changes_nothing(
    world: World, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    await a_company(world, data_dir)
    monkeypatch.setenv("PINWALL_DATABASE_URL", db.url)
    monkeypatch.setenv("PINWALL_DATA_DIR", str(data_dir))
    assert main(["backup", str(tmp_path / "backup")]) == 0
    await world.say("admin", "/group create sales Sales")
    before, stored = everything(db), files(data_dir)

    with pytest.raises(BackupError, match="restore into a new"):
        restore(db, tmp_path / "elsewhere", tmp_path / "backup", say=print)
    assert everything(db) == before
    assert files(data_dir) == stored


def test_a_backup_needs_a_new_directory_and_a_restore_a_backup(
    db: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PINWALL_DATABASE_URL", db.url)
    monkeypatch.setenv("PINWALL_DATA_DIR", str(tmp_path / "data"))
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    assert main(["backup", str(taken)]) == 1
    assert "is not empty: choose a new directory" in capsys.readouterr().err
    assert [p.name for p in taken.iterdir()] == ["notes.txt"]
    assert not any(p.name.endswith(".partial") for p in tmp_path.iterdir())

    assert main(["restore", str(taken)]) == 1
    assert f"holds no backup ({MANIFEST} is missing)" in capsys.readouterr().err
