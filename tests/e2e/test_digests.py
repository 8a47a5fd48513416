"""End to end: `digest now` in a conversation piped into `pinwall run`."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_console import lines_to, pinwall

SCRIPT = """\
/group create marketing Marketing
/as alice
/join marketing
/digest weekly fri 17:00
/as bob
/join marketing
/share marketing Competitor's new poster at the station
/share marketing https://example.com/review A review of our shop
/as alice
/digest now
/digest now
/digest off
"""


def test_digest_now_on_the_console(tmp_path: Path) -> None:
    done = pinwall(tmp_path, SCRIPT, PINWALL_DEFAULT_TIMEZONE="UTC")
    assert done.returncode == 0, done.stderr
    alice = lines_to(done.stdout, "alice")
    assert alice[1].startswith("[alice] Your weekly digest now comes every Friday at 17:00.")
    digest = alice[2].splitlines()
    # The console prints a message's title and its first line on one line.
    assert digest[0].startswith("[alice] Your digest · 2")
    assert digest[0].endswith(": Marketing · 2 new posts")
    assert digest[1:] == [
        "  • #2 A review of our shop · https://example.com/review · @bob",
        "  • #1 Competitor's new poster at the station · @bob",
        "  [1] Open #2  [2] Open #1",  # each post can be opened (show) from the digest
    ]
    assert alice[3] == "[alice] Nothing new in your daily and weekly groups since your last digest."
    assert alice[4].startswith("[alice] Your digests are paused.")
    assert len(alice) == 5
