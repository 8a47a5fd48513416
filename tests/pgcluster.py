"""A throwaway PostgreSQL server of the test's own, to restart (the machine's is shared).

    @pytest.fixture(scope="module")
    def cluster() -> Iterator[Cluster]:
        yield from throwaway_cluster()

initdb into a new directory under /tmp, `pg_ctl start` on a free port of 127.0.0.1 (trust
authentication, user postgres, no fsync: nothing here needs to survive the machine);
`restart()` stops it (ending every connection and with them every advisory lock) and
starts it again. initdb refuses to run as root: as root the server runs as the OS user
`postgres`. Where the server binaries are missing the tests using it are skipped with one
line (under CI=true they fail, as the other PostgreSQL fixtures do).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SEARCHED = "/usr/lib/postgresql/*/bin"


def _bindir() -> Path | None:
    """The newest PostgreSQL server binaries: /usr/lib/postgresql/<version>/bin, else PATH."""
    found = sorted(
        (Path(p).parent for p in glob.glob(f"{SEARCHED}/initdb")),
        key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0,
    )
    if found and (found[-1] / "pg_ctl").exists():
        return found[-1]
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl and Path(initdb).parent == Path(pg_ctl).parent:
        return Path(initdb).parent
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but no throwaway PostgreSQL: {reason}")
    pytest.skip(f"no throwaway PostgreSQL: {reason}")


class Cluster:
    def __init__(self, bindir: Path, root: Path, user: str | None) -> None:
        self.bindir = bindir
        self.root = root
        self.user = user  # the OS user the server runs as (None: this one)
        self.data = root / "data"
        self.log = root / "server.log"
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str, timeout: float = 60) -> None:
        command = [str(self.bindir / tool), *args]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr or done.stdout}")

    def init(self) -> None:
        self._run(
            "initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync",
            "-E", "UTF8", "--locale=C",
        )  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w",
                  "-t", "60", "start")  # fmt: skip
        self._until_accepting()

    def _until_accepting(self, within: float = 30.0) -> None:
        """pg_ctl waits for the server's socket file; clients here come over TCP."""
        deadline = time.monotonic() + within
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"PostgreSQL does not accept on port {self.port}") from None
                time.sleep(0.02)

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self) -> float:
        """Stops (every connection ends, and every advisory lock) and starts again;
        returns how long the server was away, in seconds."""
        began = time.monotonic()
        self.stop()
        self.start()
        return time.monotonic() - began


def throwaway_cluster() -> Iterator[Cluster]:
    """A fixture's body: a started Cluster, stopped and removed afterwards."""
    bindir = _bindir()
    if bindir is None:
        _unavailable(f"no initdb and pg_ctl in {SEARCHED} or on PATH")
        return
    user: str | None = None
    if os.geteuid() == 0:  # initdb refuses root: the server runs as postgres
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            _unavailable("running as root and there is no OS user postgres to run it as")
            return
        if shutil.which("runuser") is None:
            _unavailable("running as root and runuser is missing")
            return
        user = "postgres"
    root = Path(tempfile.mkdtemp(prefix="pinwall-pg-"))
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    cluster = Cluster(bindir, root, user)
    try:
        cluster.init()
        cluster.start()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(root, ignore_errors=True)
        _unavailable(str(exc).strip().splitlines()[0])
        return
    try:
        yield cluster
    finally:
        with contextlib.suppress(RuntimeError, OSError, subprocess.TimeoutExpired):
            cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
