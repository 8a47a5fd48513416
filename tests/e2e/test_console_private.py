"""Issue 18 through a real `pinwall run`: the takeover reproduced as it was reported
(a link code asked for in a console room, redeemed there by someone else)."""

from __future__ import annotations

import queue
import re
import subprocess
import threading
import time
from pathlib import Path

from tests.e2e.test_console import running


class Talk:
    """Lines typed into a running console; what it prints, read as it comes."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdin is not None
        assert proc.stdout is not None
        assert proc.stderr is not None
        self.proc = proc
        self.printed: list[str] = []
        self._taken: set[int] = set()
        self._lines: queue.Queue[str] = queue.Queue()
        stdout = proc.stdout
        threading.Thread(target=lambda: [self._lines.put(x) for x in stdout], daemon=True).start()
        while "HTTP endpoints on" not in proc.stderr.readline():
            pass

    def say(self, *lines: str) -> None:
        assert self.proc.stdin is not None
        for line in lines:
            self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def expect(self, pattern: str, within: float = 20.0) -> re.Match[str]:
        """A printed line matching `pattern` that no expect took yet, in whatever order
        the messages of one step were delivered."""
        for i, line in enumerate(self.printed):
            if i not in self._taken and (found := re.search(pattern, line)):
                self._taken.add(i)
                return found
        deadline = time.monotonic() + within
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"nothing matched {pattern!r}; printed: {self.printed}"
                ) from None
            self.printed.append(line.rstrip("\n"))
            found = re.search(pattern, line)
            if found:
                self._taken.add(len(self.printed) - 1)
                return found

    def close(self) -> int:
        """End of input: Pinwall drains its outbox and exits."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        return self.proc.wait(timeout=30)


def test_a_link_code_asked_for_in_a_room_takes_over_no_one(tmp_path: Path) -> None:
    with running(tmp_path) as proc:
        try:
            _takeover_attempt(Talk(proc))
        finally:
            if proc.poll() is None:
                proc.kill()


def _takeover_attempt(talk: Talk) -> None:
    talk.say("/group create secrets Secrets --secret", "/room lobby", "/link")
    code = talk.expect(r"^\[admin\] Your link code: (\w{10})").group(1)
    talk.expect(r"^\[#lobby\] admin, I've answered you in our private chat\.$")
    assert all(code not in line for line in talk.printed if line.startswith("[#lobby]"))

    # Mallory, in the same room, uses the code (as she could have read it there).
    talk.say("/as mallory", "/room lobby", f"/link {code}")
    talk.expect(r"^\[admin\] Someone wants to link the Console account mallory to you")
    talk.expect(r"^  \[1\] Yes, it's mine  \[2\] No$")
    talk.expect(r"^\[mallory\] I've asked @admin whether this account is theirs")
    # Until the owner answers she is still herself, with her own rights.
    talk.say("/audit", "/whoami")
    talk.expect(r"^\[mallory\] Only admins can do that\.$")
    talk.expect(r"^\[mallory\] You are @mallory \(member\)")
    talk.say("/as admin", "/dm", "/press 2")
    talk.expect(r"^\[admin\] Not linked: mallory on Console stays separate")
    talk.expect(r"^\[mallory\] The link was not confirmed")
    talk.say("/as mallory", "/dm", "/groups")
    talk.expect(r"^\[mallory\] There are no groups")
    assert talk.close() == 0
