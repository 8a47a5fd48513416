"""`pinwall feeds export|import`: a group's feeds as OPML, out and in.

Import is all or nothing: the file is read and checked whole, then every new feed is
written in one transaction (a bad file writes nothing). Feeds the group has already
are skipped. Imported feeds are due at once: a running Pinwall checks them within a
minute and tells the person named with `--as` what it found.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bot.clock import SystemClock
from bot.config import Settings
from bot.opml import OpmlError, read_opml, write_opml

PROGRESS_EVERY = 100
MAX_FILE = 20 * 1024 * 1024


def add_parsers(sub: Any) -> None:
    feeds = sub.add_parser("feeds", help="feed import and export (OPML)")
    actions = feeds.add_subparsers(dest="feeds_command", metavar="ACTION", required=True)
    export = actions.add_parser("export", help="write the feeds as OPML")
    export.add_argument("--group", help="only this group's feeds (its slug)")
    export.add_argument("-o", "--output", help="a file to write (default: standard output)")
    imp = actions.add_parser("import", help="subscribe a group to the feeds of an OPML file")
    imp.add_argument("file", help="the OPML file ('-' for standard input)")
    imp.add_argument("--group", required=True, help="the group (its slug)")
    imp.add_argument(
        "--as", dest="as_handle", help="the person the feeds count as added by (handle)"
    )


def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.feeds_command == "export":
        return _export(settings, args)
    return _import(settings, args)


def _fail(message: str) -> int:
    print(f"pinwall feeds: {message}", file=sys.stderr)
    return 1


def _export(settings: Settings, args: argparse.Namespace) -> int:
    from app.wiring import open_database

    db = open_database(settings)
    with db.uow() as uow:
        groups = {g.id: g for g in uow.groups.all()}
        if args.group:
            group = uow.groups.by_slug(args.group.removeprefix("#"))
            if group is None:
                return _fail(f"there is no group {args.group!r}")
            feeds = uow.feeds.of_groups([group.id])
        else:
            feeds = uow.feeds.all()
        data = write_opml(groups, feeds, SystemClock().now())
    if args.output:
        Path(args.output).write_bytes(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    print(f"exported {len(feeds)} feed(s)", file=sys.stderr)
    return 0


def _import(settings: Settings, args: argparse.Namespace) -> int:
    from app.wiring import open_database
    from bot.errors import UserError
    from bot.feeds import clean_url, filter_words, new_feed

    try:
        if args.file == "-":
            data = sys.stdin.buffer.read(MAX_FILE + 1)
        else:
            with Path(args.file).open("rb") as f:
                data = f.read(MAX_FILE + 1)
    except OSError as exc:
        return _fail(f"cannot read {args.file}: {exc.strerror}")
    if len(data) > MAX_FILE:
        return _fail(f"{args.file} is larger than {MAX_FILE // (1024 * 1024)} MB")
    try:
        entries = read_opml(data)
    except OpmlError as exc:
        return _fail(f"{args.file}: {exc}; nothing imported")
    if not entries:
        return _fail(f"{args.file}: no feeds (outlines with an xmlUrl) in it; nothing imported")
    for n, entry in enumerate(entries, 1):
        if clean_url(entry.url) is None:
            return _fail(
                f"{args.file}: feed {n} has an unusable address {entry.url!r}; nothing imported"
            )
        try:
            filter_words(entry.include)
            filter_words(entry.exclude)
        except UserError:
            return _fail(
                f"{args.file}: feed {n} has too many or too long filter words; nothing imported"
            )

    db = open_database(settings)
    now = SystemClock().now()
    with db.uow() as uow:
        group = uow.groups.by_slug(args.group.removeprefix("#"))
        if group is None:
            return _fail(f"there is no group {args.group!r}; nothing imported")
        adder = None
        if args.as_handle:
            adder = uow.people.by_handle(args.as_handle.removeprefix("@").lower())
            if adder is None or not adder.active:
                return _fail(f"there is nobody called {args.as_handle!r}; nothing imported")
        known = uow.feeds.urls_of(group.id)
        added = skipped = 0
        for n, entry in enumerate(entries, 1):
            url = clean_url(entry.url)
            assert url is not None  # checked above
            if url in known:
                skipped += 1
            else:
                known.add(url)
                uow.feeds.add(
                    new_feed(
                        group,
                        url,
                        added_by=adder.id if adder else None,
                        now=now,
                        include=entry.include,
                        exclude=entry.exclude,
                        to_rooms=entry.to_rooms,
                        title=entry.title,
                    )
                )
                added += 1
            if n % PROGRESS_EVERY == 0:
                print(f"  {n}/{len(entries)} read", file=sys.stderr)
        uow.audit.add(
            at=now,
            actor_id=adder.id if adder else None,
            action="feeds.imported",
            subject=group.slug,
            details={"file": str(args.file), "added": added, "skipped": skipped},
        )
        uow.commit()
    print(
        f"imported {added} feed(s) into {group.slug}"
        f" ({skipped} already there, {len(entries)} in the file)"
    )
    return 0
