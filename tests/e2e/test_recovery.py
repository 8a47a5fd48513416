"""End to end: a running `pinwall run` applies events that were recorded but never
applied (an instance stopped between the two), without waiting for a restart."""

from __future__ import annotations

import queue
import subprocess
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import IO

from sqlalchemy import func, select

from adapters.memory import MemoryAdapter
from app.wiring import STRAGGLER_AGE, make_core
from bot.clock import FakeClock, SystemClock
from store.db import Database
from store.models import Group, InboxStatus, OutboxMessage
from tests.e2e.test_console import PINWALL, _env


class Lines:
    """The lines a stream gives, read on a thread, taken with a time limit."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._stream = stream
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self._stream:
            self._lines.put(line)

    def close(self) -> None:
        """After the process ended: the rest is read, the pipe closed."""
        self._reader.join(timeout=10)
        self._stream.close()

    def until(self, needle: str, within: float) -> str:
        deadline = time.monotonic() + within
        while True:
            left = deadline - time.monotonic()
            try:
                line = self._lines.get(timeout=max(left, 0.01))
            except queue.Empty:
                raise AssertionError(f"no line with {needle!r} in {within}s: {self.seen}") from None
            self.seen.append(line)
            if needle in line:
                return line

    def rest(self) -> list[str]:
        out = []
        while not self._lines.empty():
            out.append(self._lines.get())
        self.seen += out
        return out


def test_an_event_recorded_but_not_applied_is_applied_while_pinwall_runs_once(
    db: Database, tmp_path: Path
) -> None:
    """Another instance (or this one, before a crash) recorded and acknowledged an event
    and stopped before applying it. The running Pinwall's inbox tick applies it — once,
    answering once — with no restart."""
    proc = subprocess.Popen(
        [*PINWALL, "run"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=_env(
            PINWALL_DATABASE_URL=db.url,
            PINWALL_DATA_DIR=str(tmp_path / "data"),
            PINWALL_LOG_LEVEL="info",
        ),
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    assert proc.stderr is not None
    out, err = Lines(proc.stdout), Lines(proc.stderr)
    try:
        err.until("scheduler ticking", within=30)
        proc.stdin.write("/groups\n")
        proc.stdin.flush()
        out.until("[admin] There are no groups yet.", within=10)

        # Recorded a minute ago by an instance that stopped before applying it.
        clock = FakeClock(SystemClock().now() - timedelta(minutes=1))
        event = MemoryAdapter(platform="console", trust="local").event(
            "bob", "/group create late Late", clock.now()
        )
        assert make_core(db, clock).record(event)
        recorded = time.monotonic()
        answer = out.until("[bob] ", within=2 * STRAGGLER_AGE.total_seconds() + 10)
        took = time.monotonic() - recorded
        assert "Group late (Late) created" in answer

        proc.stdin.write("/groups\n")
        proc.stdin.flush()
        out.until("late", within=10)
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0, err.rest()
    finally:
        if not proc.stdin.closed:
            proc.stdin.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        out.close()
        err.close()
    assert not [line for line in out.rest() if line.startswith("[bob] ")]  # answered once
    with db.uow() as uow:
        row = uow.inbox.get("console", event.meta.event_id)
        assert row is not None
        assert row.status == InboxStatus.APPLIED
        assert uow.session.scalar(select(func.count()).select_from(Group)) == 1
        to_bob = select(func.count()).where(OutboxMessage.target == "bob")
        assert uow.session.scalar(to_bob) == 1
    print(
        f"\n[recorded, not applied, {db.backend}] applied by the running Pinwall {took:.1f}s later"
    )
