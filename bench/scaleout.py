"""Two Pinwall instances on one PostgreSQL against one: effects exactly once, scheduled
jobs once, throughput of two over one, and a kill of one mid-run.

    .venv/bin/python bench/scaleout.py [--updates 10000] [--people 300] [--kill]

For one and then two instances (`pinwall run` processes, Telegram in webhook mode, each on
its own HTTP port, one scratch PostgreSQL database per run) it feeds Telegram webhook
updates from `--people` people (each a member of one of 30 groups, all on instant): half
share a note into their group (a post, its fan-out to the group's other members and the
author's answer), half ask for their group's `items`. Beside them, a tenth of the updates are
Slack Events API callbacks: messages that Slack people post in Slack channels bridged to
every third group (a post, its copies to the group's members; a Telegram share into such a
group also goes to its channel). Each update goes to a random instance; 30 % are delivered a
second time, to a random instance (Telegram and Slack redeliver what they are not sure was
taken; Slack with the same event_id and X-Slack-Retry-Num). The fake Telegram
(tests/fakes/telegram.py) and the fake Slack Web API (tests/fakes/slack.py) answer the sends
over HTTP.

It reports, per run: updates per second from the first POST until the outbox is empty;
exactly once — every update recorded once, every share posted once, every copy and every
answer sent once (from the database and the fake's record); each scheduled job run by one
instance only (the scheduler is a singleton: its jobs' log lines come from one process).
With `--kill` the two-instance run kills one instance with SIGKILL halfway; updates it did
not confirm go to the survivor again, and the time until the survivor took back the dead
one's claimed deliveries is reported (the goal: within 15 s). Its exactly-once allows what
at-least-once delivery must: a send the dead one had under way (a claim it held at the kill)
may arrive twice (`sent_twice`, at most `claims_at_kill`); every other effect exactly once.
Its scheduler moves to the survivor (job runs in both logs, one after the other).
Each run also says where the CPU went (`cpu`): the machine's busy cores, the instances',
PostgreSQL's and the bench's own (the fakes answering every send, and the feeder).

The last line printed is one JSON object: `one`, `two` (figures per run), `ratio`
(throughput of two over one; the goal is 1.6 on two cores, less when this machine is
shared), `exactly_once`, `take_back_s`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scratch import postgres_unreachable, scratch_database  # noqa: E402
from bot.clock import SystemClock  # noqa: E402
from store.db import Database  # noqa: E402
from store.models import (  # noqa: E402
    InboxEvent,
    Instance,
    Item,
    NotifyMode,
    OutboxMessage,
    OutboxStatus,
    Role,
    Visibility,
)
from tests.fakes.slack import (  # noqa: E402
    BOT_TOKEN as SLACK_BOT_TOKEN,
)
from tests.fakes.slack import (  # noqa: E402
    SIGNING_SECRET as SLACK_SIGNING_SECRET,
)
from tests.fakes.slack import FakeSlack, SlackRequests  # noqa: E402
from tests.fakes.telegram import FakeTelegram, Injected, TgUser  # noqa: E402

GROUPS = 30
FIRST_ID = 700_001
SECRET = "scaleout-secret"
PUBLIC_URL = "https://pinwall.example.com"
TOML = "".join(
    f"[rate_limits.{m}]\noverall = 0\nper_dm = 0\nper_room = 0\n" for m in ("telegram", "slack")
)
# Slack beside Telegram: every third group is bridged to a Slack channel, where Slack people
# (not members: they speak in the channel) post; a tenth of the updates are such messages,
# Events API callbacks redelivered as Slack does (the same event_id, X-Slack-Retry-Num).
BRIDGED_EVERY = 3
SLACK_PEOPLE = 30
SLACK_SHARE = 0.1
SEND_CONCURRENCY = 16
REDELIVER = 0.3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def slack_channel(group: int) -> str:
    return f"C{group:08d}"


def slack_user(n: int) -> str:
    return f"U{n:08d}"


def seed(db: Database, people: int, slack: FakeSlack) -> list[TgUser]:
    """`people` Telegram members, each in one of GROUPS open groups, all on instant; every
    BRIDGED_EVERY-th group bridged to a Slack channel, and SLACK_PEOPLE Slack people."""
    now = SystemClock().now()
    users = [
        TgUser(id=FIRST_ID + n, first_name=f"Person {n}", username=f"person{n:04d}")
        for n in range(people)
    ]
    with db.uow() as uow:
        owner = uow.people.create(name="office", role=Role.ADMIN, now=now)
        groups = []
        for g in range(GROUPS):
            groups.append(
                uow.groups.create(
                    slug=f"g{g:02d}",
                    name=f"Group {g}",
                    visibility=Visibility.OPEN,
                    admits_externals=False,
                    created_by=owner.id,
                    now=now,
                )
            )
        for n, user in enumerate(users):
            person = uow.people.create(name=user.username or "", role=Role.MEMBER, now=now)
            uow.people.add_account(person, platform="telegram", external_id=str(user.id), now=now)
            uow.groups.add_member(
                person.id, groups[n % GROUPS].id, now=now
            ).notify = NotifyMode.INSTANT
        for g in range(0, GROUPS, BRIDGED_EVERY):
            room = uow.rooms.get_or_create("slack", slack_channel(g), name=f"g{g:02d}", now=now)
            room.group_id = groups[g].id
            slack.add_channel(slack_channel(g), f"g{g:02d}")
        for n in range(SLACK_PEOPLE):
            person = uow.people.create(name=f"slack{n:02d}", role=Role.MEMBER, now=now)
            uow.people.add_account(person, platform="slack", external_id=slack_user(n), now=now)
            slack.add_user(slack_user(n), f"slack{n:02d}", real_name=f"Slack {n}")
        uow.commit()
    return users


@dataclass
class Proc:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None


def start(home: Path, db: Database, fake: FakeTelegram, slack: FakeSlack, name: str) -> Proc:
    home.mkdir(parents=True, exist_ok=True)
    (home / "pinwall.toml").write_text(TOML)
    port = free_port()
    log = home / f"{name}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINWALL_")}
    env.update(
        PINWALL_DATABASE_URL=db.url,
        PINWALL_DATA_DIR=str(home / "data"),
        PINWALL_SECRET_KEY="scaleout-shared-key",
        PINWALL_HTTP_PORT=str(port),
        PINWALL_TELEGRAM_TOKEN=fake.token,
        PINWALL_TELEGRAM_BASE_URL=fake.base_url,
        PINWALL_TELEGRAM_MODE="webhook",
        PINWALL_TELEGRAM_WEBHOOK_SECRET=SECRET,
        PINWALL_SLACK_BOT_TOKEN=SLACK_BOT_TOKEN,
        PINWALL_SLACK_SIGNING_SECRET=SLACK_SIGNING_SECRET,
        PINWALL_SLACK_MODE="http",
        PINWALL_SLACK_API_URL=slack.api_url,
        PINWALL_PUBLIC_URL=PUBLIC_URL,
        PINWALL_CONSOLE="off",
        PINWALL_LINK_PREVIEWS="off",
        PINWALL_LOG_LEVEL="info",
    )
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "run"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            cwd=home,
            env=env,
        )
    return Proc(proc, f"http://127.0.0.1:{port}", log)


def wait_healthy(procs: list[Proc], within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    for p in procs:
        while True:
            if not p.alive():
                raise SystemExit(f"pinwall stopped at start:\n{p.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{p.url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"pinwall not healthy within {within} s")
            time.sleep(0.2)


def stop(p: Proc) -> None:
    if p.alive():
        p.proc.send_signal(signal.SIGTERM)
    try:
        p.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.proc.kill()
        p.proc.wait()


@dataclass(frozen=True)
class SlackEvent:
    """A message in a bridged Slack channel, as the Events API calls back with it."""

    event: dict[str, Any]
    event_id: str


@dataclass
class Plan:
    """The updates to send, each with the instances it goes to (a second one: redelivered)."""

    updates: list[tuple[Injected | SlackEvent, str]]  # (update, kind: share | items | slack)
    shares: dict[int, tuple[int, str]] = field(default_factory=dict)  # update no -> (user, text)
    slack_shares: dict[int, int] = field(default_factory=dict)  # update no -> group


def plan(fake: FakeTelegram, users: list[TgUser], n: int, rng: random.Random) -> Plan:
    out = Plan([])
    events = SlackRequests("unused")  # builds the callbacks' bodies; feed() posts them
    bridged = list(range(0, GROUPS, BRIDGED_EVERY))
    for i in range(n):
        if rng.random() < SLACK_SHARE:
            s = rng.randrange(SLACK_PEOPLE)
            g = bridged[s % len(bridged)]
            text = f"slack note {i} from slack{s:02d}"
            event = events.message_event(
                slack_user(s), slack_channel(g), text, channel_type="channel"
            )
            out.slack_shares[i] = g
            out.updates.append((SlackEvent(event, f"Ev{i:08d}"), "slack"))
            continue
        k = rng.randrange(len(users))
        user = users[k]
        group = f"g{k % GROUPS:02d}"
        if i % 2 == 0:
            text = f"note {i} from {user.username}"
            out.shares[i] = (user.id, text)
            out.updates.append(
                (fake.user_sends_text(user, None, f"/share {group} {text}"), "share")
            )
        else:
            out.updates.append((fake.user_sends_text(user, None, f"/items {group}"), "items"))
    return out


async def feed(
    fake: FakeTelegram,
    the_plan: Plan,
    procs: list[Proc],
    rng: random.Random,
    kill_at: int | None,
    db: Database,
) -> tuple[float, float | None, float | None, int, int]:
    """POSTs every update (and 30 % of them again) to random live instances; returns when
    it started, when the kill happened (or None), how long after the kill the survivor had
    taken back the dead one's claims (None: not yet), and how many POSTs were made.

    The take-back is watched while the feeding goes on (the survivor is under the whole
    load then, as in a real outage), not only once the feeding is over."""
    queue: asyncio.Queue[tuple[int, Injected | SlackEvent, int]] = asyncio.Queue()
    for i, (update, _) in enumerate(the_plan.updates):
        queue.put_nowait((i, update, 0))
        if rng.random() < REDELIVER:
            queue.put_nowait((i, update, 1))
    posts = 0
    killed_at: float | None = None
    killing = False
    held_at_kill = 0  # the dead one's claims: the sends that may go twice
    taken_back: float | None = None
    watcher: asyncio.Task[None] | None = None
    started = time.monotonic()

    async def watch(pid: int, since: float) -> None:
        nonlocal taken_back
        for _ in range(6000):  # polls the database every 0.1 s, for ten minutes at most
            if not await asyncio.to_thread(claims_of_pid, db, pid):
                taken_back = time.monotonic() - since
                return
            await asyncio.sleep(0.1)

    async def post(update: Injected | SlackEvent, retry: int) -> bool:
        nonlocal posts
        live = [p for p in procs if p.alive()]
        target = rng.choice(live)
        posts += 1
        try:
            if isinstance(update, SlackEvent):
                slack = SlackRequests(
                    f"{target.url}/slack/events", SLACK_SIGNING_SECRET, timeout=30
                )
                slack.client = client
                answer = await slack.event(
                    update.event, event_id=update.event_id, retry_num=retry or None
                )
                code = answer.status_code
            else:
                code = await fake.post_webhook_async(
                    update, url=f"{target.url}/telegram/webhook", timeout=30, client=client
                )
        except httpx.HTTPError:
            return False
        return 200 <= code < 300

    async def worker() -> None:
        nonlocal killed_at, watcher, killing, held_at_kill
        while True:
            try:
                i, update, retry = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            if kill_at is not None and not killing and i >= kill_at:
                killing = True  # before the await below: one worker kills, not two
                victim = procs[-1].proc
                had = held_at_kill = await asyncio.to_thread(claims_of_pid, db, victim.pid)
                killed_at = time.monotonic()
                os.kill(victim.pid, signal.SIGKILL)
                victim.wait()
                print(f"killed pid {victim.pid} holding {had} claims", file=sys.stderr)
                watcher = asyncio.create_task(watch(victim.pid, killed_at))
            # Telegram and Slack send again what was not confirmed: to whoever answers.
            for attempt in range(100):
                if await post(update, retry + attempt):
                    break
                await asyncio.sleep(0.05)

    # One client for every POST, as Telegram's and Slack's senders keep their connections
    # (a client per POST spent two thirds of this process in building SSL contexts).
    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*(worker() for _ in range(SEND_CONCURRENCY)))
    if watcher is not None and taken_back is None:
        # Fed before the take-back: the drain below goes on watching.
        watcher.cancel()
    return started, killed_at, taken_back, posts, held_at_kill


TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a live process used so far, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def postgres_cpu() -> float:
    """CPU seconds PostgreSQL's processes (server and backends alive now) used so far."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if stat.with_name("comm").read_text().strip() in ("postgres", "postmaster"):
                total += proc_cpu(int(stat.parent.name))
        except (OSError, ValueError):
            continue
    return total


def machine_busy() -> float:
    """CPU seconds all of this machine's cores were busy so far (/proc/stat), whoever used
    them: beside the instances, the bench's own fake and feeder, PostgreSQL, and others."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(v) for v in Path("/proc/stat").read_text().split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / TICK


def drained(db: Database, expected_events: int) -> bool:
    with db.uow() as uow:
        events = uow.session.scalar(select(func.count()).select_from(InboxEvent)) or 0
        open_ = uow.session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING]))
        )
    return events >= expected_events and open_ == 0


def claims_of_pid(db: Database, pid: int) -> int:
    with db.uow() as uow:
        ids = list(uow.session.scalars(select(Instance.id).where(Instance.pid == pid)))
        if not ids:
            return 0
        return int(
            uow.session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(
                    OutboxMessage.status == OutboxStatus.SENDING,
                    OutboxMessage.claimed_by.in_(ids),
                )
            )
            or 0
        )


def check(
    db: Database, fake: FakeTelegram, slack: FakeSlack, the_plan: Plan, users: list[TgUser]
) -> dict[str, Any]:
    """Exactly once, from the database and the fake's record: each update recorded once,
    each share posted once, each copy queued once per member (outbox rows by item and
    recipient) and each queued message sent once (the fake accepted as many messages as
    the outbox marked sent)."""
    members = Counter(k % GROUPS for k in range(len(users)))
    with db.uow() as uow:
        events = uow.session.scalar(select(func.count()).select_from(InboxEvent)) or 0
        posts = uow.session.scalar(select(func.count()).select_from(Item)) or 0
        statuses = Counter(uow.session.scalars(select(OutboxMessage.status)))
        per_copy = Counter(
            uow.session.execute(
                select(OutboxMessage.target, OutboxMessage.item_id).where(
                    OutboxMessage.item_id.is_not(None)
                )
            ).all()
        )
    # A Telegram share: to the group's other members, and to its Slack channel if it has
    # one; a message in a Slack channel: to every member (its author is none).
    copies_expected = sum(
        members[(uid - FIRST_ID) % GROUPS] - 1 + (((uid - FIRST_ID) % GROUPS) % BRIDGED_EVERY == 0)
        for uid, _ in the_plan.shares.values()
    ) + sum(members[g] for g in the_plan.slack_shares.values())
    return {
        "updates": len(the_plan.updates),
        "inbox_events": events,
        "shares": len(the_plan.shares) + len(the_plan.slack_shares),
        "slack_shares": len(the_plan.slack_shares),
        "posts": posts,
        "copies": sum(per_copy.values()),
        "copies_expected": copies_expected,
        "copies_twice": sum(c - 1 for c in per_copy.values() if c > 1),
        "outbox_sent": statuses.get(OutboxStatus.SENT, 0),
        "messages_sent": len(fake.sent) + len(slack.posted),
        "outbox_dead": statuses.get(OutboxStatus.DEAD, 0),
    }


def scheduler_runs(procs: list[Proc]) -> dict[str, int]:
    """Scheduled-job runs per instance, from their logs (APScheduler's 'Running job')."""
    runs = {}
    for i, p in enumerate(procs):
        runs[f"instance{i + 1}"] = len(re.findall(r'Running job "', p.log.read_text()))
    return runs


def run(instances: int, n: int, people: int, kill: bool, seed_value: int) -> dict[str, Any]:
    rng = random.Random(seed_value)
    with (
        scratch_database("postgresql") as db,
        tempfile.TemporaryDirectory() as tmp,
        FakeTelegram(latency=0.002) as fake,
        FakeSlack() as slack,
    ):
        users = seed(db, people, slack)
        for user in users:
            fake.add_chat(user.chat)
        procs = [start(Path(tmp) / f"i{k}", db, fake, slack, f"i{k}") for k in range(instances)]
        try:
            wait_healthy(procs)
            while fake.webhook_url is None:  # set by an instance after its HTTP is up
                time.sleep(0.1)
            the_plan = plan(fake, users, n, rng)
            kill_at = n // 2 if kill and instances > 1 else None
            victim_pid = procs[-1].proc.pid
            busy0, own0, pg0 = machine_busy(), time.process_time(), postgres_cpu()
            started, killed_at, take_back, posts, held_at_kill = asyncio.run(
                feed(fake, the_plan, procs, rng, kill_at, db)
            )
            while not drained(db, n):
                if (
                    killed_at is not None
                    and take_back is None
                    and claims_of_pid(db, victim_pid) == 0
                ):
                    take_back = time.monotonic() - killed_at
                if time.monotonic() - started > 600:
                    raise SystemExit("the outbox did not drain within 10 minutes")
                time.sleep(0.05)
            wall = time.monotonic() - started
            # Where the CPU went, to see where two instances flatten: the machine's busy
            # cores over the run, each instance's share, and the bench's own (the fake
            # Telegram answering every send, and the feeder).
            cpu = {
                "machine_busy_cores": round((machine_busy() - busy0) / wall, 2),
                "cores": os.cpu_count(),
                "bench_process_cores": round((time.process_time() - own0) / wall, 2),
                # Backends that ended during the run (the instances' pools) are not counted.
                "postgres_cores": round((postgres_cpu() - pg0) / wall, 2),
                "instances_cpu_s": [round(proc_cpu(p.proc.pid), 1) for p in procs if p.alive()],
                "instances_cores": round(
                    sum(proc_cpu(p.proc.pid) for p in procs if p.alive()) / wall, 2
                ),
            }
            if killed_at is not None and take_back is None:
                take_back = time.monotonic() - killed_at
            figures = check(db, fake, slack, the_plan, users)
        finally:
            for p in procs:
                stop(p)
        runs = scheduler_runs(procs)
        if os.environ.get("SCALEOUT_LOGS"):
            for p in procs:
                print(p.log.read_text()[-6000:], file=sys.stderr)
    # Sent twice: accepted by a fake, not recorded as sent (only a kill can leave such).
    resent = figures["messages_sent"] - figures["outbox_sent"]
    exactly_once = (
        figures["inbox_events"] == n
        and figures["posts"] == figures["shares"]
        and figures["copies"] == figures["copies_expected"]
        and figures["copies_twice"] == 0
        # After a kill, at least once for the sends the dead one had under way, and no more.
        and (0 <= resent <= held_at_kill if killed_at is not None else resent == 0)
        and figures["outbox_dead"] == 0
    )
    out: dict[str, Any] = {
        "instances": instances,
        "updates_per_s": round(n / wall, 1),
        "wall_s": round(wall, 2),
        "posts_made": posts,
        "exactly_once": exactly_once,
        "scheduler_runs": runs,
        "scheduler_single": sum(1 for v in runs.values() if v > 0) <= 1,
        "cpu": cpu,
        **figures,
    }
    if kill and instances > 1:
        out["killed"] = True
        out["take_back_s"] = round(take_back or 0.0, 2)
        out["claims_at_kill"] = held_at_kill
        out["sent_twice"] = resent
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=10_000)
    parser.add_argument("--people", type=int, default=300)
    parser.add_argument("--kill", action="store_true", help="kill one of two instances halfway")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    reason = postgres_unreachable()
    if reason is not None:
        print(f"PostgreSQL is needed: {reason}", file=sys.stderr)
        return 2
    one = run(1, args.updates, args.people, False, args.seed)
    print(f"one instance:  {one}", file=sys.stderr)
    two = run(2, args.updates, args.people, False, args.seed)
    print(f"two instances: {two}", file=sys.stderr)
    result: dict[str, Any] = {
        "one": one,
        "two": two,
        "ratio": round(two["updates_per_s"] / one["updates_per_s"], 3),
        "exactly_once": one["exactly_once"] and two["exactly_once"],
        "cpus": os.cpu_count(),
        "load_avg_at_start": round(os.getloadavg()[0], 2),
    }
    if args.kill:
        killed = run(2, args.updates, args.people, True, args.seed)
        print(f"two, one killed: {killed}", file=sys.stderr)
        result["killed"] = killed
        result["take_back_s"] = killed["take_back_s"]
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
