"""End to end: one share on the console reaches exactly who it should, and nothing stays queued."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_console import pinwall


def messages(output: str) -> list[str]:
    """Each printed message with its continuation lines."""
    out: list[str] = []
    for line in output.splitlines():
        if line.startswith("  ") and out:
            out[-1] += "\n" + line
        else:
            out.append(line)
    return out


SETUP = """\
/group create marketing Marketing
/group create sales Sales
/room lobby
/bridge marketing
/room sales-floor
/bridge sales
/dm
/as alice
/join marketing
/notify marketing instant
/as bob
/join marketing
/notify marketing weekly
/as carol
/join marketing
/notify marketing mute
/join sales
/notify sales instant
/as dave
/join marketing
"""


def test_one_share_produces_exactly_the_expected_lines(tmp_path: Path) -> None:
    setup = pinwall(tmp_path, SETUP)
    assert setup.returncode == 0, setup.stderr
    done = pinwall(tmp_path, "/as dave\n/share marketing https://example.com/p Our new poster\n")
    assert done.returncode == 0, done.stderr
    # alice is on instant; bob (weekly), carol (mute) and dave (the author) get nothing
    # now; the bridged room of marketing gets it, the one of sales does not.
    post = "dave in Marketing: Our new poster\n  https://example.com/p\n  [1] Comment  [2] 👍"
    assert sorted(messages(done.stdout)) == [
        f"[#lobby] {post}",
        f"[alice] {post}",
        "[dave] Shared as #1 in Marketing.",
    ]
    outbox = pinwall(tmp_path, "", "outbox")
    assert "nothing pending" in outbox.stdout
    assert "pending" not in outbox.stdout.splitlines()[0]
