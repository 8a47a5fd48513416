"""A delivery worker in a process of its own, sending to FakePlatform servers; a test kills it.

    python -m tests.fakes.worker_main '{"database": "sqlite:///...", "platforms": [...]}'

The configuration is one JSON object:
    database     the database URL (the test's SQLite file, or PostgreSQL)
    platforms    [{"name": "telegram", "url": "http://127.0.0.1:PORT", "send_keys": false}]
    lease        seconds a claim holds (default 2)
    concurrency  sends in flight per platform lane (default 8)
    idle_poll    seconds between looks at an idle outbox (default 0.05)
    unclaim      take back the claims a killed process left, as `pinwall run` does on
                 SQLite, where it is the only instance (default true); without it they
                 go out again when their lease ran out

It wires Database, Core, Hub and DeliveryWorker as `pinwall run` does, with a
FakePlatformAdapter per platform and no send pacing of its own (the fake platforms
set the pace), runs `DeliveryWorker.run` until nothing is pending or being sent, and
exits 0. It prints one JSON line when it starts sending and one when it is done.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from datetime import timedelta
from typing import Any

from app.wiring import make_core
from bot.clock import SystemClock
from bot.runtime import Hub
from jobs.delivery import DeliveryPolicy, DeliveryWorker
from jobs.ratelimit import RateLimiter
from store.db import Database
from store.models import OutboxStatus
from tests.fakes.platform import FakePlatformAdapter


def _unclaim_all(db: Database) -> int:
    with db.uow() as uow:
        n = uow.outbox.unclaim_all()
        uow.commit()
    return n


def _counts(db: Database) -> dict[str, int]:
    with db.uow() as uow:
        return uow.outbox.counts()


def _say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


async def main(config: dict[str, Any]) -> int:
    db = Database(config["database"])
    hub = Hub(make_core(db, SystemClock()))
    adapters = [
        FakePlatformAdapter(p["name"], p["url"], send_keys=bool(p.get("send_keys", False)))
        for p in config["platforms"]
    ]
    for adapter in adapters:
        hub.register(adapter)
        await adapter.start()
    unclaimed = await hub.call(_unclaim_all, db) if config.get("unclaim", True) else 0
    policy = DeliveryPolicy(
        lease=timedelta(seconds=float(config.get("lease", 2.0))),
        concurrency=int(config.get("concurrency", 8)),
        idle_poll=float(config.get("idle_poll", 0.05)),
    )
    worker = DeliveryWorker(hub, policy, RateLimiter({}))
    stop = asyncio.Event()
    _say(event="started", unclaimed=unclaimed, counts=await hub.call(_counts, db))
    running = asyncio.create_task(worker.run(stop))
    try:
        while not running.done():
            await asyncio.sleep(0.05)
            counts = await hub.call(_counts, db)
            if not counts.get(OutboxStatus.PENDING) and not counts.get(OutboxStatus.SENDING):
                break
    finally:
        stop.set()
        await running
        for adapter in adapters:
            await adapter.stop()
        counts = await hub.call(_counts, db)
        hub.close()
        db.dispose()
    _say(event="done", counts=counts, sends={a.platform: a.sends for a in adapters})
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    sys.exit(asyncio.run(main(json.loads(sys.argv[1]))))
