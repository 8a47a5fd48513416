"""End to end, the acceptance of proposals: on the console alice proposes to the
newsroom, her own approve is refused, the gatekeeper approves, the post appears in
/public/newsroom.atom served by the running `pinwall run`, alice gets the outcome, and
`audit` (and `pinwall audit export`) shows each step."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import threading
import time
from pathlib import Path

import feedparser
import httpx

from tests.e2e.test_console import PINWALL, _env, lines_to, pinwall

PUBLIC = "http://pinwall.test"


class Running:
    """`pinwall run` fed line by line, its output collected by two reader threads."""

    def __init__(self, cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [*PINWALL, "run"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env=_env(PINWALL_PUBLIC_URL=PUBLIC),
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self.readers = [
            threading.Thread(target=self._read, args=(stream, sink), daemon=True)
            for stream, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))
        ]
        for reader in self.readers:
            reader.start()

    def close(self) -> int:
        """Ends the input and waits for the exit; the return code."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            code = self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            for reader in self.readers:
                reader.join(timeout=5)
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream is not None:
                    stream.close()
        return code

    @staticmethod
    def _read(stream: io.TextIOBase | None, sink: list[str]) -> None:
        assert stream is not None
        for line in stream:
            sink.append(line)

    def say(self, *lines: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("".join(line + "\n" for line in lines))
        self.proc.stdin.flush()

    def wait_for(self, pattern: str, *, where: str = "out", timeout: float = 30) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, "".join(self.out if where == "out" else self.err))
            if found:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} in {''.join(self.out)}\n{''.join(self.err)}")

    @property
    def stdout(self) -> str:
        return "".join(self.out)


def test_acceptance_propose_approve_publish_audit(tmp_path: Path) -> None:
    run = Running(tmp_path)
    try:
        address = run.wait_for(r"HTTP endpoints on (http://[\d.]+:\d+)", where="err").group(1)
        run.say(
            "/as bob",
            "/whoami",
            "/as admin",
            "/role bob gatekeeper",
            "/as alice",
            "/propose newsroom Our new store in Leipzig opens on Monday! <Grand> & free coffee",
            "/approve P1",
            "/as bob",
            "/approve P1",
        )
        # The publish tick runs every few seconds: the entry shows in the feed.
        deadline = time.monotonic() + 30
        entries: list[feedparser.FeedParserDict] = []
        while time.monotonic() < deadline and not entries:
            response = httpx.get(f"{address}/public/newsroom.atom", timeout=5)
            assert response.status_code == 200
            entries = feedparser.parse(response.content).entries
            time.sleep(0.3)
        assert [e.title for e in entries] == [
            "Our new store in Leipzig opens on Monday! <Grand> & free coffee"
        ]
        assert entries[0].content[0].value == entries[0].title
        told = run.wait_for(r"\[alice\] Your proposal P1 is published on newsroom: (\S+)")
        assert told.group(1) == f"{PUBLIC}/public/newsroom.atom#entry-1"
        metrics = httpx.get(f"{address}/metrics", timeout=5).text
        assert (
            'pinwall_publish_outcomes_total{outcome="published",outlet="newsroom"} 1.0' in metrics
        )
        assert 'pinwall_approval_turnaround_seconds_count{outcome="approved"} 1.0' in metrics
        run.say("/as admin", "/audit 6")
        run.wait_for(r"P1 \(newsroom\) was published\.")
    finally:
        code = run.close()
    assert code == 0, "".join(run.err)

    out = run.stdout
    alice = lines_to(out, "alice")
    assert alice[0] == (
        "[alice] Proposal P1 for newsroom waits for the gatekeepers (1 approval). "
        "I'll tell you how they decide."
    )
    assert alice[1] == (
        "[alice] You can't approve your own proposal: another gatekeeper decides "
        "(four eyes see more than two)."
    )
    assert "[alice] Your proposal P1 for newsroom was approved by @bob." in alice
    bob = lines_to(out, "bob")
    card = next(m for m in bob if m.startswith("[bob] Proposal P1 for newsroom"))
    assert card.endswith("[1] Approve  [2] Reject  [3] Request changes")
    assert any(m.endswith("✅ Approved by @bob.") for m in bob)
    assert any(m.endswith(f"Published: {PUBLIC}/public/newsroom.atom#entry-1") for m in bob)
    audit = lines_to(out, "admin")[-1]
    # The audit log reads as sentences, one per step, in order.
    steps = re.findall(r"^\s*• [\d-]+ [\d:]+: (.*P1 \(newsroom\).*)$", audit, re.MULTILINE)
    assert steps == [
        "@alice proposed P1 (newsroom).",
        "@bob approved P1 (newsroom).",
        "Pinwall started publishing P1 (newsroom).",
        "P1 (newsroom) was published.",
    ]

    exported = pinwall(tmp_path, "", "audit", "export", "--format", "json")
    assert exported.returncode == 0, exported.stderr
    rows = json.loads(exported.stdout)
    assert [r["action"] for r in rows if r["subject"] == "P1"] == [
        "proposal.created",
        "proposal.approved",
        "proposal.publish_attempt",
        "proposal.published",
    ]
    target = tmp_path / "audit.csv"
    as_csv = pinwall(tmp_path, "", "audit", "export", "--format", "csv", "-o", str(target))
    assert as_csv.returncode == 0, as_csv.stderr
    table = list(csv.DictReader(io.StringIO(target.read_text())))
    published = next(r for r in table if r["action"] == "proposal.published")
    assert json.loads(published["details"])["url"] == f"{PUBLIC}/public/newsroom.atom#entry-1"
    assert published["subject"] == "P1"


def test_a_wrong_outlet_setting_stops_the_start_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "pinwall.toml").write_text(
        '[outlets.agency]\nkind = "webhook"\nurl = "https://x"\n'
    )
    done = pinwall(tmp_path, "/groups\n")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "pinwall: PINWALL_OUTLET_AGENCY_TOKEN: missing; the webhook outlet agency needs it"
    ]
