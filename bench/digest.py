"""Digest building: every daily digest of a company, as the digest tick makes them.

    .venv/bin/python bench/digest.py [--people 1000] [--backend sqlite|postgresql|both]

Setup (untimed, written straight into the tables): 20 groups with 200 new posts each
(some with comments and reactions), 1,000 people each a member of 10 of the groups on
daily notify, with an account to send to and a schedule whose daily digest is due.

Timed:
  build_s   one digest tick (jobs.digests.DigestJob.tick) at the due time: finds who is
            due, loads what their digests need a batch at a time, ranks, caps and
            renders each digest, and — per person, in its own transaction — moves the
            due time and the watermarks and queues the message in the outbox.
  load_s    of that, loading and building alone for everyone (no writes), measured
            separately.
Afterwards it checks that every person got exactly one digest with their 10 groups
and that a second tick sends nothing. On SQLite (a temp file, WAL) and on PostgreSQL
(a scratch database created and dropped here). The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from adapters.memory import MemoryAdapter
from app.wiring import make_core
from bot.clock import FakeClock
from bot.core import Core, CoreSettings
from bot.digest import DigestBatch, new_schedule_row
from bot.runtime import Hub, run_event_loop
from jobs.digests import BATCH, DigestJob
from store.db import Database
from store.models import (
    Account,
    Comment,
    DigestSchedule,
    Group,
    Item,
    ItemKind,
    Membership,
    OutboxMessage,
    Person,
    Reaction,
)

# bench/ is not an installed package: run as a script, the repository root is needed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.scratch import PG_ADMIN_URL, postgres_unreachable, scratch_database

SEED = 20261127
GROUPS = 20
POSTS_PER_GROUP = 200
GROUPS_PER_PERSON = 10
START = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)  # people joined then; posts came after
DUE = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)  # 08:00 in Berlin


def populate(db: Database, people: int, rng: random.Random) -> None:
    """The company, written with a few multi-row INSERTs."""
    with db.engine.begin() as conn:
        conn.execute(
            insert(Person),
            [
                {
                    "id": i,
                    "handle": f"p{i}",
                    "display_name": f"Person {i}",
                    "role": "member",
                    "active": True,
                    "created_at": START,
                }
                for i in range(1, people + 1)
            ],
        )
        conn.execute(
            insert(Account),
            [
                {
                    "person_id": i,
                    "platform": "memory",
                    "external_id": f"p{i}",
                    "reachable": True,
                    "last_seen_at": START,
                    "created_at": START,
                }
                for i in range(1, people + 1)
            ],
        )
        conn.execute(
            insert(Group),
            [
                {
                    "id": g,
                    "slug": f"group-{g}",
                    "name": f"Group {g}",
                    "visibility": "open",
                    "admits_externals": False,
                    "created_by": 1,
                    "created_at": START,
                }
                for g in range(1, GROUPS + 1)
            ],
        )
        conn.execute(
            insert(Membership),
            [
                {
                    "person_id": i,
                    "group_id": g,
                    "notify": "daily",
                    "moderator": False,
                    "joined_at": START,
                }
                for i in range(1, people + 1)
                for g in rng.sample(range(1, GROUPS + 1), GROUPS_PER_PERSON)
            ],
        )
        items = []
        for n in range(GROUPS * POSTS_PER_GROUP):
            at = START + timedelta(seconds=20 * (n + 1))
            feed = n % 5 == 0
            items.append(
                {
                    "group_id": n % GROUPS + 1,
                    "author_id": None if feed else rng.randint(1, people),
                    "kind": ItemKind.FEED_ENTRY if feed else ItemKind.LINK,
                    "text": f"Post {n}: something the colleagues should see",
                    "url": f"https://news.example.com/{n}",
                    "title": f"Article {n} on the market",
                    "source_platform": "feed" if feed else "memory",
                    "created_at": at,
                    "preview_status": "done",
                }
            )
        conn.execute(insert(Item), items)
        item_ids = list(conn.scalars(select(Item.id)))
        discussed = rng.sample(item_ids, len(item_ids) // 10)
        conn.execute(
            insert(Comment),
            [
                {
                    "item_id": i,
                    "author_id": rng.randint(1, people),
                    "text": "good",
                    "created_at": DUE,
                }
                for i in discussed
                for _ in range(rng.randint(1, 3))
            ],
        )
        conn.execute(
            insert(Reaction),
            [
                {"item_id": i, "person_id": p, "emoji": "👍", "created_at": DUE}
                for i in rng.sample(item_ids, len(item_ids) // 5)
                for p in rng.sample(range(1, people + 1), rng.randint(1, 4))
            ],
        )
        conn.execute(
            insert(DigestSchedule),
            [
                new_schedule_row(i, "Europe/Berlin", DUE - timedelta(hours=1))
                for i in range(1, people + 1)
            ],
        )


def load_only(core: Core, now: datetime) -> int:
    """Loading and building every digest, without writing: (digests with something new)."""
    built = 0
    with core.db.uow() as uow:
        rows = uow.digests.due(now, 100_000)
        for start in range(0, len(rows), BATCH):
            people = uow.people.by_ids(r.person_id for r in rows[start : start + BATCH])
            batch = DigestBatch(uow, people, now)
            built += sum(not batch.build(p.id, "daily").empty for p in people)
    return built


async def run_backend(backend: str, db: Database, people: int) -> dict[str, Any]:
    populate(db, people, random.Random(SEED))
    clock = FakeClock(DUE)
    core = make_core(db, clock, CoreSettings())
    hub = Hub(core)
    hub.register(MemoryAdapter())
    try:
        started = time.perf_counter()
        built = await hub.call(load_only, core, DUE)
        load_s = time.perf_counter() - started

        started = time.perf_counter()
        sent = await DigestJob(hub).tick(DUE)
        build_s = time.perf_counter() - started

        again = await DigestJob(hub).tick(DUE + timedelta(seconds=30))
    finally:
        hub.close()
    with db.engine.connect() as conn:
        queued = conn.scalar(select(func.count()).select_from(OutboxMessage))
        payload = conn.scalar(select(OutboxMessage.payload).limit(1))
    problems = []
    if not (sent == built == queued == people):
        problems.append(f"{sent} sent, {built} built, {queued} queued for {people} people")
    if again:
        problems.append(f"a second tick sent {again}")
    groups_in_one = str(payload).count("new posts")
    if groups_in_one != GROUPS_PER_PERSON:
        problems.append(f"a digest holds {groups_in_one} groups, not {GROUPS_PER_PERSON}")
    if problems:
        raise SystemExit(f"{backend}: benchmark run went wrong: " + "; ".join(problems))
    return {
        "backend": backend,
        "build_s": round(build_s, 3),
        "load_s": round(load_s, 3),
        "digests": sent,
        "people": people,
        "posts": GROUPS * POSTS_PER_GROUP,
        "per_digest_ms": round(1000 * build_s / max(sent, 1), 3),
    }


def run_on(backend: str, people: int) -> dict[str, Any]:
    with scratch_database(backend) as db:
        return run_event_loop(run_backend(backend, db, people))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--people", type=int, default=1000, help="people (1000)")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args(argv)
    if args.people < 1:
        parser.error("--people must be at least 1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    runs: dict[str, dict[str, Any] | None] = {"sqlite": None, "postgresql": None}
    if args.backend in ("sqlite", "both"):
        runs["sqlite"] = run_on("sqlite", args.people)
    if args.backend in ("postgresql", "both"):
        reason = postgres_unreachable()
        if reason is None:
            runs["postgresql"] = run_on("postgresql", args.people)
        else:
            print(f"PostgreSQL not reachable at {PG_ADMIN_URL} ({reason}): no figures for it")
    print(f"{'backend':<12}{'build_s':>10}{'load_s':>10}{'digests':>10}{'ms/digest':>12}")
    for run in runs.values():
        if run is not None:
            print(
                f"{run['backend']:<12}{run['build_s']:>10.3f}{run['load_s']:>10.3f}"
                f"{run['digests']:>10}{run['per_digest_ms']:>12.3f}"
            )
    main_run = runs["sqlite"] or runs["postgresql"] or {}
    print(
        json.dumps(
            {
                "build_s": main_run.get("build_s"),
                "digests": main_run.get("digests"),
                "sqlite": runs["sqlite"],
                "postgresql": runs["postgresql"],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
