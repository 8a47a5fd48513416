"""The `pinwall` command for operators: run, config, db, outbox, doctor, audit, people,
privacy, feeds, backup, restore."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import timedelta

from app import cli_backup, cli_feeds, cli_people, cli_teams
from app.config import load_settings
from app.doctor import doctor
from bot.config import Settings
from bot.errors import ConfigError
from store.models import OutboxStatus


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pinwall", description="Pinwall: the internal network in your messengers."
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("run", help="start the configured adapters, HTTP endpoints and jobs")
    sub.add_parser("config", help="print the effective settings, secrets redacted")
    db = sub.add_parser("db", help="database migrations")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    up = db_sub.add_parser("upgrade", help="migrate to the newest schema (or --revision)")
    up.add_argument("--revision", default="head")
    down = db_sub.add_parser("downgrade", help="migrate back to a revision")
    down.add_argument("revision")
    db_sub.add_parser("current", help="print the schema revision")
    ob = sub.add_parser("outbox", help="the delivery queue: list, retry, purge")
    ob_sub = ob.add_subparsers(dest="outbox_command", metavar="ACTION")
    ls = ob_sub.add_parser("list", help="messages not yet delivered (default)")
    ls.add_argument("--status", choices=[s.value for s in OutboxStatus], action="append")
    ls.add_argument("--limit", type=int, default=50)
    rt = ob_sub.add_parser("retry", help="send dead messages again")
    rt.add_argument("ids", nargs="*", type=int)
    pg = ob_sub.add_parser("purge", help="delete sent and skipped messages older than --days")
    pg.add_argument("--days", type=int, default=7)
    pg.add_argument("--dead", action="store_true", help="dead messages too")
    sub.add_parser("doctor", help="check settings, database and schema")
    au = sub.add_parser("audit", help="the audit log (append-only)")
    au_sub = au.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    ex = au_sub.add_parser("export", help="every entry, oldest first, as CSV or JSON")
    ex.add_argument("--format", choices=["csv", "json"], default="csv")
    ex.add_argument("-o", "--output", help="write to this file (default: standard output)")
    cli_people.add_parsers(sub)
    cli_feeds.add_parsers(sub)
    cli_backup.add_parsers(sub)
    cli_teams.add_parsers(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    command = args.command
    if command is None:
        parser.print_help()
        return 0
    try:
        settings = load_settings()
        if command == "run":
            return _run(settings)
        if command == "config":
            print(json.dumps(settings.redacted(), indent=2, sort_keys=True, default=str))
            return 0
        if command == "db":
            return _db(settings, args)
        if command == "outbox":
            return _outbox(settings, args)
        if command == "doctor":
            return doctor(settings)
        if command == "audit":
            return _audit_export(settings, args)
        if command in ("backup", "restore"):
            return cli_backup.run(settings, args)
        if command == "teams":
            return cli_teams.run(settings, args)
        if command in ("people", "privacy"):
            return cli_people.run(settings, args)
        assert command == "feeds", command  # argparse admits only the commands above
        return cli_feeds.run(settings, args)
    except ConfigError as err:
        print(f"pinwall: {err}", file=sys.stderr)
        return 2


def _run(settings: Settings) -> int:
    from app import wiring
    from bot.runtime import run_event_loop

    wiring.configure_logging(settings.log_level)
    program = wiring.build(settings)
    try:
        return run_event_loop(wiring.serve(program), settings.event_loop)
    except KeyboardInterrupt:
        return 130


def _db(settings: Settings, args: argparse.Namespace) -> int:
    from app.wiring import open_database

    db = open_database(settings, upgrade=False)
    if args.db_command == "upgrade":
        db.upgrade(args.revision)
        print(f"database at revision {db.current_revision()}")
    elif args.db_command == "downgrade":
        db.downgrade(args.revision)
        print(f"database at revision {db.current_revision()}")
    else:
        print(db.current_revision() or "empty")
    return 0


def _outbox(settings: Settings, args: argparse.Namespace) -> int:
    from app.wiring import open_database
    from bot.clock import SystemClock

    db = open_database(settings)
    now = SystemClock().now()
    action = args.outbox_command or "list"
    with db.uow() as uow:
        if action == "retry":
            n = uow.outbox.retry_dead(now, args.ids or None)
            uow.commit()
            print(f"{n} message(s) queued again")
            return 0
        if action == "purge":
            statuses = [OutboxStatus.SENT, OutboxStatus.SKIPPED] + (
                [OutboxStatus.DEAD] if args.dead else []
            )
            n = uow.outbox.purge(statuses, now - timedelta(days=args.days))
            uow.commit()
            print(f"{n} message(s) purged")
            return 0
        counts = uow.outbox.counts()
        statuses = getattr(args, "status", None) or [
            OutboxStatus.PENDING,
            OutboxStatus.SENDING,
            OutboxStatus.DEAD,
        ]
        rows = uow.outbox.listing(statuses, getattr(args, "limit", 50))
        summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "empty"
        print(f"outbox: {summary}")
        if not rows:
            print("nothing pending")
        for row in rows:
            print(
                f"{row.id:>8} {row.status:<8} {row.platform}:{row.target_kind}:{row.target} "
                f"attempts={row.attempts} next={row.next_attempt_at:%Y-%m-%d %H:%M:%S}"
                + (f" error={row.last_error}" if row.last_error else "")
            )
    return 0


def _audit_export(settings: Settings, args: argparse.Namespace) -> int:
    import csv
    import io

    from app.wiring import open_database

    db = open_database(settings)
    with db.uow() as uow:
        entries = uow.proposals.audit_entries()
        handles = uow.proposals.handles(e.actor_id for e in entries)
        rows = [
            {
                "id": e.id,
                "at": e.at.isoformat(),
                "actor_id": e.actor_id,
                "actor": handles.get(e.actor_id) if e.actor_id is not None else None,
                "action": e.action,
                "subject": e.subject,
                "details": e.details,
            }
            for e in entries
        ]
    db.dispose()
    if args.format == "json":
        text = json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    else:
        buffer = io.StringIO()
        fields = ["id", "at", "actor_id", "actor", "action", "subject", "details"]
        writer = csv.DictWriter(buffer, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "details": json.dumps(row["details"], ensure_ascii=False)})
        text = buffer.getvalue()
    if args.output:
        with open(args.output, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        print(f"{len(rows)} audit entries written to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
