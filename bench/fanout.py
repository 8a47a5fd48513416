"""Fan-out of one share to 1,000 instant members over three rate-limited fake messengers.

    .venv/bin/python bench/fanout.py [--backend sqlite|postgresql|both] [--profile PREFIX]

A group with 1,000 members whose notify mode is instant, spread evenly over three
platforms run under the names "telegram", "slack" and "matrix" (334, 333, 333 by
member number modulo 3). Each is a FakePlatform (tests/fakes/platform.py): a real
HTTP server on 127.0.0.1 that enforces the platform's limits and answers 429 with
Retry-After when they are passed:

    telegram  30/s overall, 1/s per chat
    slack     20/s per workspace, 1/s per channel
    matrix    10/s overall

The delivery worker's RateLimiter gets the same limits, with burst 1 (the fake
servers space sends evenly and have no burst). The author of the share is a member
too, on a fourth, unlimited in-process platform ("memory"), so that the three fake
platforms carry exactly the 1,000 deliveries (the author's "shared" confirmation
goes to the memory platform).

Setup (people, the group, joins, notify modes) goes through the core, untimed, and
its replies are drained with an unlimited worker and in-process adapters. Then the
fake servers take the platforms' places, `DeliveryWorker.run(stop)` is started in the
background and left to go idle, and the share is submitted:

  commit_s        `await hub.submit(share)`: the event recorded and applied, the item
                  and its 1,000 outbox rows committed (the running worker is woken).
  minimum time    for each platform: its messages / its overall rate (per-chat limits
                  do not bind: every recipient gets one message); the slowest platform
                  decides (matrix: 333 / 10 = 33.3 s).
  actual time     from the end of the commit to the last message a fake server
                  accepted (the servers' monotonic timestamps).
  send_rate_ratio minimum time / actual time (1.0: the limits were the only brake).
  lost            recipients no server ever accepted a message for.
  duplicated      messages accepted beyond one per recipient (plus any to a
                  conversation that was not a recipient).

The run ends when every recipient was reached and one more second passed quietly (to
see late duplicates), or at a deadline of twice the minimum time plus 15 s. Figures
come from what the fake servers accepted, not from the worker's own records. The
worker is wrapped only to time its store calls (claim, record, release) and its
sends for the table. The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import itertools
import json
import logging
import os
import pstats
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from adapters.memory import MemoryAdapter
from app.wiring import make_core
from bot.clock import SystemClock
from bot.core import CoreSettings
from bot.message import SendResult
from bot.runtime import Hub, run_event_loop
from jobs.delivery import Claimed, DeliveryWorker
from jobs.ratelimit import PlatformLimits, Rate, RateLimiter
from store.db import Database
from store.models import Membership, OutboxMessage

# tests/ is not an installed package: run as a script, the repository root is needed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.scratch import PG_ADMIN_URL, postgres_unreachable, scratch_database
from tests.fakes.platform import FakePlatform, FakePlatformAdapter, Limits

MEMBERS = 1000
GROUP = "allhands"
AUTHOR = "author"
SHARE = "/share allhands https://example.com/news/4711 competitor poster at the station"


@dataclass(frozen=True)
class Spec:
    name: str
    overall: float  # messages per second across the platform
    per_conversation: float | None  # per chat / channel / room

    def server_limits(self) -> Limits:
        return Limits(overall=self.overall, per_conversation=self.per_conversation)

    def worker_limits(self) -> PlatformLimits:
        # Burst 1: the fake server spaces sends evenly (no bucket to draw on).
        conv = None if self.per_conversation is None else Rate(self.per_conversation, 1.0)
        return PlatformLimits(overall=Rate(self.overall, 1.0), per_dm=conv, per_room=conv)


SPECS = (
    Spec("telegram", 30.0, 1.0),
    Spec("slack", 20.0, 1.0),
    Spec("matrix", 10.0, None),
)


def address(platform: str, i: int) -> str:
    return f"{platform[:2]}-{i:04d}"


def members() -> list[tuple[str, str]]:
    """(platform, external id) of each of the 1,000 members, evenly spread."""
    return [
        (SPECS[i % len(SPECS)].name, address(SPECS[i % len(SPECS)].name, i)) for i in range(MEMBERS)
    ]


# --- the worker, with its store calls timed ------------------------------------------


@dataclass
class StoreTimes:
    """Time the worker spent in its store calls (on the hub's DB thread), by kind."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: Counter[str] = field(default_factory=Counter)
    claims: dict[str, list[tuple[float, float, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )  # platform -> (start, seconds, claimed)

    # platform -> seconds each send took, HTTP and recording its outcome
    sends: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    inflight: Counter[str] = field(default_factory=Counter)
    capped_since: dict[str, float] = field(default_factory=dict)
    capped_s: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def add(self, kind: str, seconds: float) -> None:
        self.seconds[kind] += seconds
        self.calls[kind] += 1


class TimedWorker(DeliveryWorker):
    """The delivery worker unchanged, with its store calls and sends timed (a few µs each)."""

    times: StoreTimes

    def _claim(self, platforms: list[str]) -> list[Claimed]:
        t0 = time.monotonic()
        out = super()._claim(platforms)
        dt = time.monotonic() - t0
        self.times.add("claim", dt)
        if out:
            self.times.claims[platforms[0]].append((t0, dt, len(out)))
        return out

    async def _send(self, claimed: Claimed) -> SendResult:
        times, platform = self.times, claimed.target.platform
        times.inflight[platform] += 1
        if times.inflight[platform] >= self.policy.concurrency:
            times.capped_since.setdefault(platform, time.monotonic())
        t0 = time.monotonic()
        try:
            return await super()._send(claimed)
        finally:
            now = time.monotonic()
            times.sends[platform].append(now - t0)
            times.inflight[platform] -= 1
            since = times.capped_since.pop(platform, None)
            if since is not None:
                times.capped_s[platform] += now - since

    def _record(self, results: list[tuple[Claimed, SendResult]]) -> None:
        t0 = time.monotonic()
        try:
            super()._record(results)
        finally:
            self.times.add("record", time.monotonic() - t0)

    def _release(self, ids: list[int], delay: float = 0.0) -> None:
        t0 = time.monotonic()
        try:
            super()._release(ids, delay)
        finally:
            self.times.add("release", time.monotonic() - t0)


# --- one run -------------------------------------------------------------------------


@dataclass
class PlatformResult:
    name: str
    rate: float
    expected: int
    accepted: int = 0
    lost: int = 0
    duplicated: int = 0
    refused: int = 0  # 429s the server answered
    early: int = 0  # sends that came back before a Retry-After had passed
    first_s: float | None = None  # after the commit
    last_s: float | None = None
    idle_s: float = 0.0  # time between accepted sends beyond the rate's interval
    idle_at_claims_s: float = 0.0  # the part of it in gaps during which the lane claimed
    gaps: int = 0  # gaps longer than two intervals
    longest_gap_s: float = 0.0

    @property
    def minimum_s(self) -> float:
        return self.expected / self.rate

    @property
    def ratio(self) -> float | None:
        if not self.last_s or self.lost:
            return None
        return self.minimum_s / self.last_s


@dataclass
class Run:
    backend: str
    commit_s: float = 0.0
    outbox_rows: int = 0
    platforms: list[PlatformResult] = field(default_factory=list)
    actual_s: float | None = None
    timed_out: bool = False
    outbox_status: dict[str, int] = field(default_factory=dict)
    store: StoreTimes = field(default_factory=StoreTimes)
    wall_s: float = 0.0
    cpu_s: float = 0.0
    setup_s: float = 0.0
    load: float = 0.0

    @property
    def minimum_s(self) -> float:
        return max(p.minimum_s for p in self.platforms)

    @property
    def lost(self) -> int:
        return sum(p.lost for p in self.platforms)

    @property
    def duplicated(self) -> int:
        return sum(p.duplicated for p in self.platforms)

    @property
    def refused(self) -> int:
        return sum(p.refused for p in self.platforms)

    @property
    def ratio(self) -> float | None:
        if self.actual_s is None or self.lost:
            return None
        return self.minimum_s / self.actual_s


async def setup(hub: Hub) -> None:
    """People, the group, joins and notify modes, through the core; replies drained."""
    adapters = {s.name: MemoryAdapter(platform=s.name, trust="member") for s in SPECS}
    author = MemoryAdapter(platform="memory", trust="member")
    for adapter in (*adapters.values(), author):
        hub.register(adapter)
    clock = hub.clock
    await hub.submit(author.event(AUTHOR, f"/group create {GROUP} All hands", clock.now()))
    for platform, who in members():
        adapter = adapters[platform]
        await hub.submit(adapter.event(who, f"/join {GROUP}", clock.now()))
        await hub.submit(adapter.event(who, f"/notify {GROUP} instant", clock.now()))
    # The setup's replies go out at once: no limits, in-process adapters.
    await DeliveryWorker(hub, limiter=RateLimiter({})).drain()
    with hub.db.engine.connect() as conn:
        count = conn.scalar(select(func.count()).select_from(Membership.__table__))
    if count != MEMBERS + 1:
        raise SystemExit(f"setup went wrong: {count} memberships, expected {MEMBERS + 1}")


def expected_targets(db: Database, item_id: int) -> dict[str, set[str]]:
    with db.engine.connect() as conn:
        rows = conn.execute(
            select(OutboxMessage.platform, OutboxMessage.target).where(
                OutboxMessage.item_id == item_id
            )
        ).all()
    out: dict[str, set[str]] = defaultdict(set)
    for platform, target in rows:
        out[platform].add(target)
    return out


def outbox_status(db: Database, item_id: int) -> dict[str, int]:
    """The worker's own record of the share's deliveries, by status."""
    with db.engine.connect() as conn:
        rows = conn.execute(
            select(OutboxMessage.status, func.count())
            .where(OutboxMessage.item_id == item_id)
            .group_by(OutboxMessage.status)
        ).all()
    return {str(status): int(n) for status, n in rows}


def latest_item(db: Database) -> int:
    with db.engine.connect() as conn:
        item_id = conn.scalar(text("SELECT max(id) FROM items"))
    if item_id is None:
        raise SystemExit("the share created no item")
    return int(item_id)


def tally(
    spec: Spec,
    server: FakePlatform,
    expected: set[str],
    committed_at: float,
    claims: list[tuple[float, float, int]],
) -> PlatformResult:
    result = PlatformResult(spec.name, spec.overall, len(expected))
    accepted = list(server.accepted)
    counts = Counter(a.conversation for a in accepted)
    result.accepted = len(accepted)
    result.lost = sum(1 for t in expected if counts[t] == 0)
    result.duplicated = sum(max(0, counts[t] - 1) for t in expected) + sum(
        n for t, n in counts.items() if t not in expected
    )
    result.refused, result.early = server.refused, server.early
    times = sorted(a.at for a in accepted)
    if times:
        result.first_s = times[0] - committed_at
        result.last_s = times[-1] - committed_at
    interval = 1.0 / spec.overall
    for a, b in itertools.pairwise(times):
        gap = b - a
        idle = max(0.0, gap - interval)
        result.idle_s += idle
        if any(a < start < b for start, _, _ in claims):
            result.idle_at_claims_s += idle  # a batch boundary: the lane was between passes
        result.longest_gap_s = max(result.longest_gap_s, gap)
        if gap > 2 * interval:
            result.gaps += 1
    return result


async def run_backend(backend: str, db: Database, profile: Path | None) -> Run:
    run = Run(backend)
    core = make_core(db, SystemClock(), CoreSettings())
    hub = Hub(core)
    servers: dict[str, FakePlatform] = {}
    adapters: list[FakePlatformAdapter] = []
    try:
        started = time.perf_counter()
        await setup(hub)
        run.setup_s = time.perf_counter() - started

        # The fake servers take the three platforms' places.
        for spec in SPECS:
            server = servers[spec.name] = FakePlatform(spec.name, spec.server_limits())
            adapter = FakePlatformAdapter(spec.name, server.url)
            await adapter.start()
            adapters.append(adapter)
            hub.register(adapter)
        limiter = RateLimiter({s.name: s.worker_limits() for s in SPECS})
        worker = TimedWorker(hub, limiter=limiter)
        worker.times = run.store
        author = hub.adapters["memory"]
        assert isinstance(author, MemoryAdapter)

        stop = asyncio.Event()
        with profiled(hub, profile):
            run.load = os.getloadavg()[0]
            cpu0, wall0 = time.process_time(), time.perf_counter()
            lanes = asyncio.create_task(worker.run(stop))
            await asyncio.sleep(0.3)  # the lanes have found nothing and wait for a wake-up

            event = author.event(AUTHOR, SHARE, hub.clock.now())
            t0 = time.monotonic()
            applied = await hub.submit(event)
            committed_at = time.monotonic()
            run.commit_s = committed_at - t0
            if not applied:
                raise SystemExit("the share was not applied")

            # Who must be reached, from the model (the store is asked after the run, so
            # that the measurement adds no work to the DB thread the lanes share).
            expected: dict[str, set[str]] = defaultdict(set)
            for platform, who in members():
                expected[platform].add(who)
            minimum = max(len(expected[s.name]) / s.overall for s in SPECS)
            deadline = committed_at + 2 * minimum + 15.0
            reached_at: float | None = None
            while time.monotonic() < deadline:
                done = all(
                    expected[s.name] <= {a.conversation for a in list(servers[s.name].accepted)}
                    for s in SPECS
                )
                if done and reached_at is None:
                    reached_at = time.monotonic()
                if reached_at is not None and time.monotonic() - reached_at >= 1.0:
                    break
                await asyncio.sleep(0.05)
            else:
                run.timed_out = reached_at is None
            stop.set()
            try:
                await asyncio.wait_for(lanes, timeout=30)
            except TimeoutError:
                print("the worker did not stop within 30 s of `stop`", file=sys.stderr)
            run.wall_s = time.perf_counter() - wall0
            run.cpu_s = time.process_time() - cpu0

        item_id = await hub.call(latest_item, db)
        in_outbox = await hub.call(expected_targets, db, item_id)
        if dict(in_outbox) != dict(expected):
            raise SystemExit("the share's outbox rows are not the 1,000 members' DMs")
        for spec in SPECS:
            run.platforms.append(
                tally(
                    spec,
                    servers[spec.name],
                    expected[spec.name],
                    committed_at,
                    run.store.claims[spec.name],
                )
            )
        lasts = [p.last_s for p in run.platforms if p.last_s is not None]
        run.actual_s = max(lasts) if lasts else None
        run.outbox_status = await hub.call(outbox_status, db, item_id)
        run.outbox_rows = sum(run.outbox_status.values())
        print(
            f"{backend}: setup {run.setup_s:.1f} s (untimed); "
            f"{run.outbox_rows} outbox rows for the item",
            file=sys.stderr,
        )
    finally:
        for adapter in adapters:
            await adapter.stop()
        for server in servers.values():
            server.close()
        hub.close()
    return run


@contextlib.contextmanager
def profiled(hub: Hub, path: Path | None) -> Iterator[None]:
    """cProfile of the event loop thread and the hub's database thread(s), merged."""
    if path is None:
        yield
        return
    loop_prof, db_prof = cProfile.Profile(), cProfile.Profile()
    # Profile.enable() hooks the calling thread only (on PostgreSQL: one of the 4 threads).
    hub._executor.submit(db_prof.enable).result()
    loop_prof.enable()
    try:
        yield
    finally:
        loop_prof.disable()
        hub._executor.submit(db_prof.disable).result()
        stats = pstats.Stats(loop_prof)
        stats.add(db_prof)
        stats.dump_stats(path)
        print(f"profile written to {path} (event loop and a DB thread)", file=sys.stderr)


# --- backends ------------------------------------------------------------------------


def run_on(backend: str, profile: Path | None) -> Run:
    with scratch_database(backend) as db:
        return run_event_loop(run_backend(backend, db, profile))


# --- figures -------------------------------------------------------------------------


def quantile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def print_table(runs: list[Run]) -> None:
    head = (
        f"{'backend':<11} {'platform':<9} {'rate/s':>6} {'msgs':>5} {'accepted':>8} "
        f"{'lost':>4} {'dup':>4} {'429s':>5} {'early':>5} {'min s':>6} {'first s':>7} "
        f"{'last s':>7} {'ratio':>6} {'idle s':>6} {'@claim':>6} {'gaps':>4} {'max gap':>7}"
    )
    print(head)
    print("-" * len(head))
    for run in runs:
        for p in run.platforms:
            print(
                f"{run.backend:<11} {p.name:<9} {p.rate:>6.0f} {p.expected:>5} "
                f"{p.accepted:>8} {p.lost:>4} {p.duplicated:>4} {p.refused:>5} {p.early:>5} "
                f"{p.minimum_s:>6.2f} {fmt(p.first_s):>7} {fmt(p.last_s):>7} "
                f"{fmt(p.ratio, '.3f'):>6} {p.idle_s:>6.2f} {p.idle_at_claims_s:>6.2f} "
                f"{p.gaps:>4} {p.longest_gap_s:>7.3f}"
            )
        print(
            f"{run.backend:<11} {'all':<9} {'':>6} {run.outbox_rows:>5} "
            f"{sum(p.accepted for p in run.platforms):>8} {run.lost:>4} {run.duplicated:>4} "
            f"{run.refused:>5} {sum(p.early for p in run.platforms):>5} "
            f"{run.minimum_s:>6.2f} {'':>7} {fmt(run.actual_s):>7} {fmt(run.ratio, '.3f'):>6}"
        )
    print()
    for run in runs:
        print(
            f"{run.backend}: commit_s {run.commit_s:.3f} (hub.submit of the share: "
            f"{run.outbox_rows} outbox rows committed)"
        )
        print(
            f"{run.backend}: send_rate_ratio {fmt(run.ratio, '.3f')} = minimum "
            f"{run.minimum_s:.2f} s / actual {fmt(run.actual_s)} s"
            + ("  (TIMED OUT before every recipient was reached)" if run.timed_out else "")
        )
        store = run.store
        parts = ", ".join(
            f"{kind} {store.calls[kind]}x {store.seconds[kind]:.2f} s"
            f" ({store.seconds[kind] / store.calls[kind] * 1000:.1f} ms each)"
            for kind in ("claim", "record", "release")
            if store.calls[kind]
        )
        print(f"{run.backend}: worker store calls: {parts}")
        for platform, claims in sorted(store.claims.items()):
            sizes = [n for _, _, n in claims]
            sends = sorted(store.sends[platform])
            print(
                f"{run.backend}: {platform} lane: {len(claims)} claims of "
                f"{min(sizes)}..{max(sizes)} messages, {sum(dt for _, dt, _ in claims):.2f} s "
                f"claiming; a send (HTTP + recording) p50 {quantile(sends, 0.5) * 1000:.0f} ms, "
                f"p95 {quantile(sends, 0.95) * 1000:.0f} ms, max {sends[-1] * 1000:.0f} ms; "
                f"{store.capped_s[platform]:.2f} s at the concurrency cap"
            )
        print(
            f"{run.backend}: the share's outbox rows after the run: "
            + ", ".join(f"{k} {v}" for k, v in sorted(run.outbox_status.items()))
        )
        print(
            f"{run.backend}: wall {run.wall_s:.1f} s, process CPU {run.cpu_s:.1f} s "
            f"(both threads and the fake servers); load average {run.load:.2f} on "
            f"{os.cpu_count()} CPUs at start"
        )
    print(
        "min s = messages / overall rate; first/last s = after the commit; ratio = min s / "
        "last s; idle s = time between accepted sends beyond 1/rate (@claim: in gaps during "
        "which the lane claimed its next batch); gaps = longer than 2/rate"
    )
    print(f"code: {code_version()}")


def summary(run: Run) -> dict[str, Any]:
    return {
        "commit_s": round(run.commit_s, 4),
        "send_rate_ratio": None if run.ratio is None else round(run.ratio, 4),
        "lost": run.lost,
        "duplicated": run.duplicated,
        "rate_limited_429": run.refused,
        "minimum_s": round(run.minimum_s, 2),
        "actual_s": None if run.actual_s is None else round(run.actual_s, 2),
        "timed_out": run.timed_out,
        "per_platform": {
            p.name: {
                "messages": p.expected,
                "accepted": p.accepted,
                "lost": p.lost,
                "duplicated": p.duplicated,
                "429s": p.refused,
                "minimum_s": round(p.minimum_s, 2),
                "last_s": None if p.last_s is None else round(p.last_s, 2),
                "ratio": None if p.ratio is None else round(p.ratio, 4),
                "idle_s": round(p.idle_s, 2),
                "idle_at_claims_s": round(p.idle_at_claims_s, 2),
            }
            for p in run.platforms
        },
    }


def code_version() -> str:
    import bot

    where = Path(bot.__file__).resolve().parent.parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=where, capture_output=True, text=True, check=False
        ).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except OSError:
        head, dirty = "", ""
    if not head:
        return f"{where} (not a git checkout)"
    return f"{head}{' with uncommitted changes' if dirty else ''} in {where}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="PREFIX",
        help="write a cProfile of each timed section to PREFIX.<backend>.pstats",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    def profile_path(backend: str) -> Path | None:
        return None if args.profile is None else Path(f"{args.profile}.{backend}.pstats")

    runs: list[Run] = []
    if args.backend in ("sqlite", "both"):
        runs.append(run_on("sqlite", profile_path("sqlite")))
    if args.backend in ("postgresql", "both"):
        reason = postgres_unreachable()
        if reason is None:
            runs.append(run_on("postgresql", profile_path("postgresql")))
        else:
            print(f"PostgreSQL not reachable at {PG_ADMIN_URL} ({reason}): no figures for it")
    print_table(runs)
    if not runs:
        print(json.dumps({"commit_s": None, "send_rate_ratio": None, "lost": None}))
        return 1
    # The headline keys are SQLite's (the goal is stated for it) or the one backend run.
    first = summary(runs[0])
    out: dict[str, Any] = {**first, "backend": runs[0].backend}
    for run in runs[1:]:
        out[run.backend] = summary(run)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
