"""An announcement with --confirm to 1,000 people on three rate-limited fake messengers,
then 1,000 confirmations.

    .venv/bin/python bench/announce.py [--backend sqlite|postgresql]

The people and their platforms are bench/fanout.py's: 1,000 members of one group,
evenly over "telegram" (30/s), "slack" (20/s) and "matrix" (10/s), each a FakePlatform
(tests/fakes/platform.py: real HTTP on 127.0.0.1 that answers 429 past its limits); the
author is on an unlimited in-process platform ("memory"), where their live card goes.

  commit_s          `await hub.submit(announce)`: the announcement, its post, 1,000
                    recipient rows, 1,000 outbox rows and the author's card, committed.
  send_rate_ratio   minimum time (messages / allowed rate, the slowest platform:
                    matrix, 333 / 10 = 33.3 s) / actual time to the last message a fake
                    server accepted (1.0: the limits were the only brake).
  lost, duplicated  recipients never reached / reached more than once.
  confirm_per_s     1,000 Read ✓ presses submitted one after the other (each its own
                    transaction, as a messenger delivers them): confirmations applied
                    per second.
  card_edits        edits of the author's card the worker sent meanwhile: coalesced to
                    at most one a second (card_edits_bound = the seconds the presses and
                    the last edit took, rounded up, plus one).
  confirmed         confirmations recorded, and the count the last edit showed.

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

# tests/ and bench/ are not installed packages: run as a script, the root is needed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.memory import MemoryAdapter
from app.wiring import make_core
from bench.fanout import AUTHOR, GROUP, SPECS, members, setup
from bench.scratch import postgres_unreachable, scratch_database
from bot.announcements import CONFIRM_ACTION
from bot.clock import SystemClock
from bot.core import CoreSettings
from bot.events import ButtonPressed
from bot.runtime import Hub, run_event_loop
from jobs.delivery import DeliveryWorker
from jobs.ratelimit import RateLimiter
from store.db import Database
from tests.fakes.platform import FakePlatform, FakePlatformAdapter

TEXT = "New hygiene rules from Monday: please read and confirm"


async def run_backend(backend: str, db: Database) -> dict[str, Any]:
    core = make_core(db, SystemClock(), CoreSettings())
    hub = Hub(core)
    servers: dict[str, FakePlatform] = {}
    adapters: list[FakePlatformAdapter] = []
    out: dict[str, Any] = {"backend": backend}
    try:
        await setup(hub)
        for spec in SPECS:
            server = servers[spec.name] = FakePlatform(spec.name, spec.server_limits())
            adapter = FakePlatformAdapter(spec.name, server.url)
            await adapter.start()
            adapters.append(adapter)
            hub.register(adapter)
        author = hub.adapters["memory"]
        assert isinstance(author, MemoryAdapter)
        author.sent.clear()
        limiter = RateLimiter({s.name: s.worker_limits() for s in SPECS})
        worker = DeliveryWorker(hub, limiter=limiter)
        stop = asyncio.Event()
        lanes = asyncio.create_task(worker.run(stop))
        await asyncio.sleep(0.3)

        t0 = time.monotonic()
        applied = await hub.submit(
            author.event(AUTHOR, f"/announce {GROUP} {TEXT} --confirm", hub.clock.now())
        )
        committed_at = time.monotonic()
        if not applied:
            raise SystemExit("the announcement was not applied")
        out["commit_s"] = round(committed_at - t0, 4)

        expected: dict[str, set[str]] = {s.name: set() for s in SPECS}
        for platform, who in members():
            expected[platform].add(who)
        minimum = max(len(expected[s.name]) / s.overall for s in SPECS)
        deadline = committed_at + 2 * minimum + 15.0
        last = committed_at
        while time.monotonic() < deadline:
            accepted = {s.name: list(servers[s.name].accepted) for s in SPECS}
            if all(expected[n] <= {a.conversation for a in accepted[n]} for n in expected):
                last = max(a.at for n in accepted for a in accepted[n])
                break
            await asyncio.sleep(0.05)
        else:
            out["timed_out"] = True
        counts = {n: Counter(a.conversation for a in servers[n].accepted) for n in expected}
        out["lost"] = sum(1 for n in expected for t in expected[n] if counts[n][t] == 0)
        out["duplicated"] = sum(max(0, c - 1) for n in counts for c in counts[n].values())
        out["minimum_s"] = round(minimum, 2)
        out["actual_s"] = round(last - committed_at, 2)
        out["send_rate_ratio"] = (
            round(minimum / (last - committed_at), 3) if not out["lost"] else None
        )

        # 1,000 presses of Read ✓, one event each, as fast as the core takes them.
        makers = {s.name: MemoryAdapter(platform=s.name) for s in SPECS}
        edits_before = len([s for s in author.sent if s.message.replaces])
        p0 = time.monotonic()
        for platform, who in members():
            meta = makers[platform].meta(who, hub.clock.now())
            press = ButtonPressed(meta=meta, action=CONFIRM_ACTION, value="1", message=None)
            await hub.submit(press)
        pressed_s = time.monotonic() - p0
        out["confirm_per_s"] = round(len(members()) / pressed_s, 1)
        # The last coalesced edit is due at most a second after the last press.
        hub.wake()
        await asyncio.sleep(1.5)
        hub.wake()
        await asyncio.sleep(0.5)
        edits = [s for s in author.sent if s.message.replaces][edits_before:]
        out["card_edits"] = len(edits)
        out["card_edits_bound"] = math.ceil(pressed_s + 1.5) + 1
        shown = edits[-1].message.text if edits else ""
        out["last_edit_shows_all"] = f"{len(members())}/{len(members())}" in shown
        with db.uow() as uow:
            out["confirmed"] = uow.announcements.counts(1)[0]
        stop.set()
        await asyncio.wait_for(lanes, timeout=30)
    finally:
        for adapter in adapters:
            await adapter.stop()
        for server in servers.values():
            server.close()
        hub.close()
    return out


def measure(backend: str) -> dict[str, Any]:
    with scratch_database(backend) as db:
        return run_event_loop(run_backend(backend, db))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args(argv)
    if args.backend == "postgresql" and (why := postgres_unreachable()):
        print(f"PostgreSQL is not reachable: {why}", file=sys.stderr)
        return 1
    figures = measure(args.backend)
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
