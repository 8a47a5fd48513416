"""This running Pinwall among those sharing the database: its id, its heartbeat, and the
claims of instances that are gone, taken back (issue 19).

The delivery worker's claims carry the instance's id. Without more, a claim of an
instance that died (kill -9, a lost machine) waited for its lease (two minutes) before
another instance sent it. Now:

- at start, an instance takes back at once the claims of the earlier instances of its
  own home (the same host and data directory: a restart). It knows they are gone because
  it holds the home's lock file, which a running Pinwall keeps locked. On SQLite there is
  only one instance (store.locks.InstanceLock), so it takes back every claim;
- every few seconds each instance writes its heartbeat and takes back the claims of any
  instance whose heartbeat is older than `gone_after`: within `gone_after + every`
  seconds of a death (13 s by default), by whichever instance looks first;
- the lease stays as the last resort (a claim of an instance nobody knows).

Clocks of instances on different hosts must agree to within a few seconds (NTP), as the
lease already assumed.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

from bot.runtime import Hub

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeartbeatPolicy:
    every: float = 3.0  # seconds between heartbeats (and looks for silent instances)
    gone_after: float = 10.0  # a heartbeat older than this: the instance is gone


def home_of(data_dir: Path) -> str:
    """Where an instance runs: host and data directory (a restart has the same home)."""
    return f"{socket.gethostname()}:{data_dir.resolve()}"


class _HomeLock:
    """An exclusive lock on `instance.lock` in the data directory while Pinwall runs:
    whoever holds it knows no other Pinwall of this home is alive."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def acquire(self) -> bool:
        try:
            handle = self.path.open("a+")
        except OSError as exc:  # a read-only data directory: no take-back at start then
            log.warning("cannot lock %s (%s); claims wait for their heartbeat", self.path, exc)
            return False
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class Heartbeat:
    """The running instance's row in `instances`, kept fresh; `id` marks its claims."""

    def __init__(
        self, hub: Hub, *, data_dir: Path | None = None, policy: HeartbeatPolicy | None = None
    ) -> None:
        self.hub = hub
        self.policy = policy or HeartbeatPolicy()
        self.id = uuid.uuid4().hex
        self.home = home_of(data_dir) if data_dir is not None else ""
        self._lock = _HomeLock(data_dir / "instance.lock") if data_dir is not None else None
        # The home it registers with: only while it holds the home's lock, so that a
        # restart there knows every earlier instance of that home is gone ("": none).
        self._registered_home = ""
        self._beaten_at: datetime | None = None  # its last heartbeat that was written

    # --- store side (the hub's DB thread) -------------------------------------------

    def start(self) -> int:
        """Registers this instance and takes back the claims of earlier ones known to be
        gone; returns how many it took back."""
        db, now = self.hub.db, self.hub.clock.now()
        sole = bool(self.home) and self._lock is not None and self._lock.acquire()
        if not sole and self.home:
            log.info("another Pinwall runs in this data directory; sharing its work")
        self._registered_home = self.home if sole else ""
        with db.uow() as uow:
            if db.is_sqlite:
                # This process holds the instance lock: every claim is a dead process's.
                earlier = [i.id for i in uow.instances.all()]
                taken = uow.outbox.unclaim_all()
            else:
                earlier = uow.instances.of_home(self.home, besides=self.id) if sole else []
                taken = uow.outbox.take_back(earlier)
            uow.instances.drop(earlier)
            uow.instances.register(self.id, home=self._registered_home, pid=os.getpid(), now=now)
            uow.commit()
        self._beaten_at = now
        if taken:
            log.info("took back %d deliveries a stopped Pinwall had in flight", taken)
        return taken

    def beat(self) -> int:
        """The heartbeat, and the claims of instances gone silent taken back; returns how
        many were taken back.

        Only an instance whose own heartbeat went on looks for silent ones: after the
        database was away for a while every heartbeat is old, and the first instance back
        must not take the claims of the others, which are alive and about to beat."""
        now = self.hub.clock.now()
        last, steady = self._beaten_at, False
        if last is not None:
            # Its own heartbeat went on if its last one is younger than what counts as
            # gone. (Twice `every` was too strict: a survivor busy with its dead peer's
            # share of the load beats late, and then never looked for the dead one while
            # the load lasted — 63 s in bench/scaleout.py --kill.)
            steady = (now - last).total_seconds() < self.policy.gone_after
        with self.hub.db.uow() as uow:
            if not uow.instances.beat(self.id, now):
                # Declared gone while alive (a stall longer than gone_after): back again.
                log.warning("this Pinwall's heartbeat was found stale; registering again")
                uow.instances.register(
                    self.id, home=self._registered_home, pid=os.getpid(), now=now
                )
            silent = []
            if steady:
                gone = now - timedelta(seconds=self.policy.gone_after)
                silent = [i for i in uow.instances.silent_since(gone) if i != self.id]
            taken = uow.outbox.take_back(silent)
            uow.instances.drop(silent)
            uow.commit()
        self._beaten_at = now
        if silent:
            log.info(
                "took back %d deliveries of %d Pinwall instance(s) whose heartbeat stopped",
                taken,
                len(silent),
            )
        return taken

    def _leave(self) -> None:
        with self.hub.db.uow() as uow:
            uow.instances.drop([self.id])
            uow.commit()

    # --- running ------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`: a heartbeat every `every` seconds; deliveries taken back wake the
        delivery worker. A failing beat (the database away) is tried again next time.

        The beats run on a thread of their own, not behind the commands on the hub's
        database thread nor on the event loop's timers: an instance busy with its dead
        peer's share of the load still beats on time and takes the dead one's claims back
        within `gone_after` + `every` (bench/scaleout.py --kill had 38 s behind the queue).
        On SQLite the store's write lock lets the thread take its turn."""
        loop = asyncio.get_running_loop()
        halt = threading.Event()

        def beating() -> None:
            while not halt.wait(self.policy.every):
                try:
                    taken = self.beat()
                except Exception as exc:
                    log.warning("heartbeat failed (%s); trying again", type(exc).__name__)
                    continue
                if taken:
                    try:
                        loop.call_soon_threadsafe(self.hub.wake)
                    except RuntimeError:  # the loop closed: nobody waits any more
                        return

        thread = threading.Thread(target=beating, name="pinwall-heartbeat", daemon=True)
        thread.start()
        try:
            await stop.wait()
        finally:
            halt.set()
            await asyncio.to_thread(thread.join)

    async def stop(self) -> None:
        """Leaves the instances (after the delivery worker gave back its claims)."""
        try:
            await self.hub.call(self._leave)
        except Exception:
            log.warning("could not remove this Pinwall's heartbeat row", exc_info=True)
        finally:
            if self._lock is not None:
                self._lock.release()
