"""Draining a backlog: what the delivery worker does after a messenger was down a while.

    .venv/bin/python bench/backlog.py [--commands 5000] [--backend sqlite|postgresql|both]

The population and command mix of bench/commands.py (200 people, 20 groups, 40% shares),
but nothing is delivered while the commands are applied: their replies and fan-outs pile
up in the outbox (about 7 messages a command), as they do while a messenger is
unreachable. Then the delivery worker drains it through the unlimited in-process
MemoryAdapter, lane pass by lane pass, and each pass's claim (the one statement that
picks the next batch, in order per conversation) is timed on its own.

On PostgreSQL the outbox is analyzed before the drain, as autovacuum does on a default
server after such growth (the setting is printed: this machine's server has it off, and
without statistics the planner takes a plan that is slower by orders of magnitude).

Figures: messages drained per second (wall), and the claim's p50 and max in ms. The
last line printed is one JSON object with them per backend.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

# bench/ is not an installed package: run as a script, the repository root is needed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.commands import SEED, Pinwall, Town
from bench.scratch import PG_ADMIN_URL, postgres_unreachable, scratch_database
from bot.runtime import run_event_loop
from store.db import Database


async def drain_backlog(db: Database, commands: int) -> dict[str, Any]:
    town = Town.build(random.Random(SEED))
    app = Pinwall(db)
    try:
        for who, line, room in town.setup_lines():
            await app.say(who, line, room)
        for _ in range(commands):  # applied, nothing delivered: the backlog
            _, who, line = town.next_command()
            app.clock.advance(seconds=1)
            await app.hub.submit(app.adapter.event(who, line, app.clock.now()))
        autovacuum = ""
        if not db.is_sqlite:
            with db.engine.connect() as conn:
                autovacuum = str(conn.exec_driver_sql("SHOW autovacuum").scalar())
                conn.exec_driver_sql("ANALYZE outbox")
                conn.commit()
        app.adapter.clear()
        worker = app.worker
        claims: list[float] = []
        claim = worker._claim

        def timed_claim(platforms: list[str]) -> Any:
            started = time.perf_counter()
            try:
                return claim(platforms)
            finally:
                claims.append(time.perf_counter() - started)

        worker._claim = timed_claim  # type: ignore[method-assign]
        started = time.perf_counter()
        while await worker._lane_pass(app.adapter.platform):
            pass
        wall = time.perf_counter() - started
        sent = len(app.adapter.sent)
    finally:
        app.close()
    claims.sort()
    return {
        "commands": commands,
        "messages": sent,
        "drain_s": round(wall, 2),
        "messages_per_s": round(sent / wall, 1),
        "claims": len(claims),
        "claim_p50_ms": round(claims[max(0, math.ceil(len(claims) / 2) - 1)] * 1000, 2),
        "claim_max_ms": round(claims[-1] * 1000, 2),
        **({"autovacuum": autovacuum} if autovacuum else {}),
    }


def run_on(backend: str, commands: int) -> dict[str, Any]:
    with scratch_database(backend) as db:
        return run_event_loop(drain_backlog(db, commands))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--commands", type=int, default=5000, help="commands applied (5000)")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args(argv)
    if args.commands < 1:
        parser.error("--commands must be at least 1")
    out: dict[str, dict[str, Any] | None] = {"sqlite": None, "postgresql": None}
    for backend in ("sqlite", "postgresql"):
        if args.backend not in (backend, "both"):
            continue
        if backend == "postgresql" and (reason := postgres_unreachable()) is not None:
            print(f"PostgreSQL not reachable at {PG_ADMIN_URL} ({reason}): no figures for it")
            continue
        print(f"{backend}: applying {args.commands} commands with delivery held back ...")
        figures = out[backend] = run_on(backend, args.commands)
        print(
            f"{backend}: {figures['messages']} messages drained in {figures['drain_s']} s "
            f"({figures['messages_per_s']}/s); {figures['claims']} claims, "
            f"p50 {figures['claim_p50_ms']} ms, max {figures['claim_max_ms']} ms"
        )
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
