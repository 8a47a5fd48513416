"""`pinwall people` and `pinwall privacy`: the operator's side of people (bot.privacy)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bot.config import Settings
from store.blobs import BlobStore
from store.models import Account, Membership, Person, Role

GRANTABLE = [Role.MEMBER.value, Role.GATEKEEPER.value, Role.ADMIN.value]


def add_parsers(sub: Any) -> None:
    people = sub.add_parser("people", help="list people, grant and revoke roles, deactivate")
    ps = people.add_subparsers(dest="people_command", metavar="ACTION")
    ls = ps.add_parser("list", help="everyone with role, accounts and groups (default)")
    ls.add_argument("--all", action="store_true", help="deactivated people too")
    ls.add_argument("--role", choices=[r.value for r in Role])
    ls.add_argument("--json", action="store_true", help="as JSON")
    grant = ps.add_parser("grant", help="give a person a role")
    grant.add_argument("person", help="handle or number")
    grant.add_argument("role", choices=GRANTABLE)
    revoke = ps.add_parser("revoke", help="take gatekeeper or admin back (member again)")
    revoke.add_argument("person")
    revoke.add_argument("role", choices=[Role.GATEKEEPER.value, Role.ADMIN.value])
    off = ps.add_parser("deactivate", help="a person who left: accounts off, invites revoked")
    off.add_argument("person")
    on = ps.add_parser("activate", help="undo deactivate")
    on.add_argument("person")

    privacy = sub.add_parser("privacy", help="export or erase what is stored about a person")
    pv = privacy.add_subparsers(dest="privacy_command", metavar="ACTION", required=True)
    ex = pv.add_parser("export", help="everything stored about a person, as JSON")
    ex.add_argument("person")
    ex.add_argument("-o", "--output", type=Path, help="file to write (default: standard output)")
    fg = pv.add_parser("forget", help="erase a person's personal data")
    fg.add_argument("person")
    fg.add_argument(
        "--posts",
        choices=["anonymize", "delete"],
        help="their posts and comments (default: PINWALL_PRIVACY_FORGET_POSTS)",
    )
    fg.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def run(settings: Settings, args: argparse.Namespace) -> int:
    from app.wiring import configured_admins, open_database
    from bot import privacy
    from bot.clock import SystemClock

    db = open_database(settings)
    now = SystemClock().now()
    try:
        with db.uow() as uow:
            if args.command == "people":
                action = args.people_command or "list"
                if action == "list":
                    return _list(uow, args)
                person = privacy.find(uow, args.person)
                if action == "grant":
                    before = privacy.set_role(
                        uow,
                        person,
                        Role(args.role),
                        now,
                        admins=configured_admins(settings),
                        menus_by_role=_menus_by_role(),
                    )
                    message = f"{person.handle}: {before} -> {args.role}"
                elif action == "revoke":
                    if person.role != args.role:
                        raise privacy.PrivacyError(f"{person.handle} is not {args.role}")
                    before = privacy.set_role(
                        uow,
                        person,
                        Role.MEMBER,
                        now,
                        admins=configured_admins(settings),
                        menus_by_role=_menus_by_role(),
                    )
                    message = f"{person.handle}: {before} -> member"
                elif action == "deactivate":
                    outcome = privacy.deactivate(uow, person, now)
                    message = f"{person.handle} deactivated ({outcome.summary()})"
                else:
                    privacy.activate(uow, person, now)
                    message = f"{person.handle} active again"
                uow.commit()
                print(message)
                return 0
            person = privacy.find(uow, args.person)
            if args.privacy_command == "export":
                data = privacy.export(uow, person, now)
                text = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True)
                if args.output is None:
                    print(text)
                else:
                    args.output.write_text(text + "\n", encoding="utf-8")
                uow.commit()  # the audit entry of the export
                if args.output is not None:
                    rows = sum(len(v) for v in data.values() if isinstance(v, list))
                    print(f"{person.handle}: {rows} records written to {args.output}")
                return 0
            posts = args.posts or settings.privacy_forget_posts
            if not args.yes and not _confirmed(person.handle, posts):
                print("nothing changed", file=sys.stderr)
                return 1
            handle = person.handle
            outcome = privacy.forget(uow, person, now, posts=posts)
            uow.commit()
            store = BlobStore(settings.data_dir / "blobs")
            for blob_id in outcome.files:  # after the commit: a rollback keeps the files
                store.delete(blob_id)
            print(f"{handle} forgotten, now {person.handle} (posts: {posts}); {outcome.summary()}")
            return 0
    except privacy.PrivacyError as err:
        print(f"pinwall {args.command}: {err}", file=sys.stderr)
        return 1
    finally:
        db.dispose()


def _menus_by_role() -> frozenset[str]:
    """The messengers whose command menus follow a person's role (the running program
    sends the new menu from the outbox)."""
    from app.messengers import MESSENGERS

    return frozenset(m.name for m in MESSENGERS if m.menus_by_role)


def _confirmed(handle: str, posts: str) -> bool:
    if not sys.stdin.isatty():
        print(
            f"pinwall privacy forget: erasing {handle} cannot be undone; add --yes to confirm",
            file=sys.stderr,
        )
        return False
    question = f"Erase {handle}'s personal data (posts: {posts})? This cannot be undone. [y/N] "
    answer = input(question)
    return answer.strip().lower() in ("y", "yes", "j", "ja")


def _list(uow: Any, args: argparse.Namespace) -> int:
    query = select(Person).order_by(Person.handle)
    if not args.all:
        query = query.where(Person.active)
    if args.role:
        query = query.where(Person.role == args.role)
    people = uow.session.scalars(query).all()
    ids = [p.id for p in people]
    accounts: dict[int, list[str]] = {}
    for person_id, platform, external_id in uow.session.execute(
        select(Account.person_id, Account.platform, Account.external_id)
        .where(Account.person_id.in_(ids))
        .order_by(Account.id)
    ):
        accounts.setdefault(person_id, []).append(f"{platform}:{external_id}")
    groups = dict(
        uow.session.execute(
            select(Membership.person_id, func.count())
            .where(Membership.person_id.in_(ids))
            .group_by(Membership.person_id)
        ).all()
    )
    rows = [
        {
            "id": p.id,
            "handle": p.handle,
            "name": p.display_name,
            "role": p.role,
            "active": p.active,
            "accounts": accounts.get(p.id, []),
            "groups": groups.get(p.id, 0),
        }
        for p in people
    ]
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    if not rows:
        print("nobody yet")
        return 0
    for r in rows:
        state = "" if r["active"] else "  (deactivated)"
        print(
            f"{r['id']:>5}  {r['handle']:<20} {r['role']:<10} groups {r['groups']:<3} "
            f"{' '.join(r['accounts']) or '-'}{state}"
        )
    print(f"{len(rows)} {'person' if len(rows) == 1 else 'people'}")
    return 0
