"""End to end (issue 19): `pinwall run` killed with SIGKILL in the middle of a fan-out of one
share to 300 instant members on Telegram (FakeTelegram, over real HTTP), then started
again: nobody is left out, every recipient has the post within 20 s of the restart, and
only deliveries that were in flight can arrive twice.

- sqlite: the restart takes back every claim at once (SQLite serves one instance);
- postgresql: the restart, in the same data directory, takes back the claims of the
  killed instance at once (it holds that home's lock, so the earlier one is gone);
- postgresql-elsewhere: another instance (another data directory) takes over: it sends
  what was never claimed at once, and takes back the dead one's claims when its
  heartbeat has been silent for 10 s.

The figures are printed (`pytest -s`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text

from bot.clock import SystemClock
from store.db import Database
from store.models import Base, NotifyMode, OutboxMessage, OutboxStatus, Role, Visibility
from tests.e2e.test_console import PINWALL, _env
from tests.fakes.telegram import FakeTelegram, TgUser

MEMBERS = 300
FIRST_MEMBER = 910_001
AUTHOR = TgUser(id=900_001, first_name="Nora", username="nora_nord", language_code="en")
KILL_AT = 100  # copies accepted by Telegram before the kill
CONCURRENCY = 8  # sends in flight at once on a lane (DeliveryPolicy.concurrency)
WITHIN = 20.0  # seconds after the restart by which every recipient has the post
TEXT = "Q3 figures are out"
# Pinwall's own pacing out of the way (Telegram's 30/s would make it take 10 s): the
# fake answers each call after 20 ms, so eight sends in flight go at about 300/s.
TOML = "[rate_limits.telegram]\noverall = 0\nper_dm = 0\nper_room = 0\n"


@pytest.fixture(params=["sqlite", "postgresql", "postgresql-elsewhere"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'pinwall.db'}")
        db.upgrade()
        yield db
        db.dispose()
        return
    db = request.getfixturevalue("_pg_migrated")
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield db


def seed(db: Database) -> None:
    """The author and 300 members on Telegram, all on instant in one open group."""
    now = SystemClock().now()
    with db.uow() as uow:
        author = uow.people.create(name="nora_nord", role=Role.MEMBER, now=now)
        uow.people.add_account(author, platform="telegram", external_id=str(AUTHOR.id), now=now)
        group = uow.groups.create(
            slug="allhands",
            name="All hands",
            visibility=Visibility.OPEN,
            admits_externals=False,
            created_by=author.id,
            now=now,
        )
        uow.groups.add_member(author.id, group.id, now=now, moderator=True)
        for n in range(MEMBERS):
            person = uow.people.create(name=f"member{n:03d}", role=Role.MEMBER, now=now)
            uow.people.add_account(
                person, platform="telegram", external_id=str(FIRST_MEMBER + n), now=now
            )
            uow.groups.add_member(person.id, group.id, now=now).notify = NotifyMode.INSTANT
        uow.commit()


def start(cwd: Path, db: Database, fake: FakeTelegram, log: str) -> subprocess.Popen[bytes]:
    cwd.mkdir(exist_ok=True)
    (cwd / "pinwall.toml").write_text(TOML)
    with (cwd / log).open("wb") as err:
        return subprocess.Popen(
            [*PINWALL, "run"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            cwd=cwd,
            env=_env(
                PINWALL_DATABASE_URL=db.url,
                PINWALL_TELEGRAM_TOKEN=fake.token,
                PINWALL_TELEGRAM_BASE_URL=fake.base_url,
                PINWALL_CONSOLE="off",
                PINWALL_LOG_LEVEL="info",
            ),
        )


def copies(fake: FakeTelegram) -> Counter[int]:
    """How many copies of the post each member's chat got."""
    return Counter(
        m.chat_id for m in fake.sent if m.chat_id >= FIRST_MEMBER and TEXT in (m.text or "")
    )


def statuses(db: Database) -> dict[str, int]:
    with db.uow() as uow:
        return uow.outbox.counts()


def copies_by_status(db: Database) -> Counter[str]:
    """The outbox rows of the post's copies (not the answer to the author), by status."""
    with db.uow() as uow:
        rows = uow.session.execute(
            select(OutboxMessage.status).where(OutboxMessage.item_id.is_not(None))
        )
        return Counter(status for (status,) in rows)


def until(condition: object, within: float, what: str, proc: subprocess.Popen[bytes]) -> float:
    """Waits for condition(); returns the seconds it took."""
    started = time.monotonic()
    while not condition():  # type: ignore[operator]
        assert proc.poll() is None, f"pinwall stopped while waiting for {what}"
        assert time.monotonic() - started < within, f"no {what} within {within} s"
        time.sleep(0.005)
    return time.monotonic() - started


def stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def test_kill_9_mid_fan_out_then_a_restart_serves_everyone_within_20_s(
    database: Database, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    variant = request.node.callspec.params["database"]
    seed(database)
    home = tmp_path / "home"
    with FakeTelegram(latency=0.01, answer_delay=0.01) as fake:
        for n in range(MEMBERS):  # each has talked to the bot before
            fake.add_chat(TgUser(id=FIRST_MEMBER + n, first_name=f"Member {n}").chat)
        first = start(home, database, fake, "first.log")
        try:
            until(lambda: fake.polling > 0, 30, "polling", first)
            fake.user_sends_text(AUTHOR, None, f"/share allhands {TEXT}")
            until(lambda: sum(copies(fake).values()) >= KILL_AT, 30, "the fan-out", first)
            os.kill(first.pid, signal.SIGKILL)
            first.wait(timeout=10)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
        assert first.returncode == -signal.SIGKILL
        time.sleep(0.3)  # answers to the dead process's last sends drain away
        at_kill = copies_by_status(database)
        claimed = at_kill[OutboxStatus.SENDING]  # claimed, no outcome recorded
        accepted_at_kill = sum(copies(fake).values())
        # In flight: sent (Telegram has it) but the outcome never recorded.
        in_flight = accepted_at_kill - at_kill[OutboxStatus.SENT]
        assert KILL_AT <= accepted_at_kill < MEMBERS, "the kill did not land mid fan-out"
        assert 0 < in_flight <= CONCURRENCY < claimed

        where = tmp_path / "elsewhere" if variant == "postgresql-elsewhere" else home
        restarted = time.monotonic()
        second = start(where, database, fake, "second.log")
        try:
            until(lambda: len(copies(fake)) == MEMBERS, WITHIN, "copy for everyone", second)
            took = time.monotonic() - restarted
            until(
                lambda: set(statuses(database)) == {OutboxStatus.SENT},
                30,
                "an empty outbox",
                second,
            )
        finally:
            code = stop(second)
        log = (where / "second.log").read_text()
        assert code == 0, log

    got = copies(fake)
    duplicates = sum(n - 1 for n in got.values())
    lost = MEMBERS - len(got)
    print(
        f"\n[kill -9 mid fan-out, {variant}] {MEMBERS} members; at the kill: "
        f"{accepted_at_kill} copies accepted by Telegram, {at_kill[OutboxStatus.SENT]} "
        f"recorded as sent, {claimed} claimed and not recorded, of them {in_flight} in flight "
        f"(sent, outcome not recorded); after the restart: lost {lost}, duplicates "
        f"{duplicates}, everyone served {took:.1f} s after the restart"
    )
    assert lost == 0
    assert duplicates <= in_flight
    assert took <= WITHIN
    assert "took back" in log  # the claims went back at once, or by the heartbeat
    assert fake.errors == []
