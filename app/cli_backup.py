"""`pinwall backup <dir>` and `pinwall restore <dir>`: a consistent snapshot of the
database, the stored files and the secret key while Pinwall runs, and its restore into an
empty database and data directory (see store/backup.py)."""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bot.config import Settings
from store.backup import BackupError, backup, restore
from store.db import Database


def add_parsers(sub: Any) -> None:
    b = sub.add_parser("backup", help="a consistent snapshot of database, files and key")
    b.add_argument("dir", type=Path, help="a new (or empty) directory to write it to")
    r = sub.add_parser("restore", help="restore a backup into an empty database and data dir")
    r.add_argument("dir", type=Path, help="the directory `pinwall backup` wrote")


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run(settings: Settings, args: argparse.Namespace) -> int:
    from app.wiring import open_database

    try:
        if args.command == "backup":
            db = open_database(settings, upgrade=False)
            try:
                manifest = backup(
                    db, settings.data_dir, args.dir, version=version("pinwall"), say=_say
                )
            finally:
                db.dispose()
            print(
                f"backup written to {args.dir}: {sum(manifest.rows.values())} rows in "
                f"{len(manifest.rows)} tables, {len(manifest.files)} files "
                f"(schema {manifest.schema})"
            )
            return 0
        db = Database(settings.database_url)
        try:
            manifest = restore(db, settings.data_dir, args.dir, say=_say)
        finally:
            db.dispose()
        print(
            f"restored from {args.dir} (taken {manifest.created_at}): "
            f"{sum(manifest.rows.values())} rows, {len(manifest.files)} files; "
            "start Pinwall as usual (it migrates a backup of an older version)"
        )
        return 0
    except BackupError as exc:
        print(f"pinwall {args.command}: {exc}", file=sys.stderr)
        return 1
