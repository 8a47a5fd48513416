"""Issue 24 on the console, end to end: one conversation piped into `pinwall run` as a
subprocess, first in English, then in German (the admin switches language; two German
colleagues in a second group) — an announcement with --confirm, confirmed by number
(`/press 1`), the author's count and who is missing, a poll voted by number, a changed
vote, and closing it (every copy edited to the result, nothing open after)."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_console import lines_to, pinwall

ENGLISH = """\
/group create filialen Filialen
/as alice
/join filialen
/as bob
/join filialen
/as admin
/announce filialen New hygiene rules from Monday --confirm
/as alice
/press 1
/as admin
/announcement A1
/poll filialen Which date? | 12.1. | 19.1.
/as alice
/press 2
/as bob
/press 2
/press 1
/as admin
/poll close V1
"""


def english_part(out: str) -> None:
    alice, bob = lines_to(out, "alice"), lines_to(out, "bob")
    admin = [m for m in lines_to(out, "admin") if "V2" not in m and "A2" not in m]

    notes = [m for m in alice if "Announcement A1" in m]
    assert notes[0] == (
        "[alice] 📌 Announcement A1 from @admin: New hygiene rules from Monday\n"
        "  Please confirm that you have read it.\n"
        "  [1] Read ✓"
    )
    assert "✓ You confirmed it at" in notes[1]
    assert len([m for m in bob if "New hygiene rules" in m]) == 1  # once, unconfirmed
    status = next(m for m in admin if m.startswith("[admin] 📌 A1:"))
    assert "Read ✓: 1/2" in status
    assert "Not confirmed yet: @bob" in status
    assert "@alice" not in status

    cards = [m for m in bob if "Poll V1" in m]
    assert "[1] 1. 12.1.  [2] 2. 19.1." in cards[0]
    assert "✓ 1. 12.1.: 1" in cards[-1]  # his changed vote, on the final result
    assert "2. 19.1.: 1" in cards[-1]
    assert cards[-1].rstrip().endswith("Closed.")
    assert "[1]" not in cards[-1]
    assert [m for m in alice if "Poll V1" in m][-1].rstrip().endswith("Closed.")
    # The result is rendered when it goes: in German if the admin switched by then.
    result = next(m for m in admin if "Result of poll V1" in m or "Ergebnis der Umfrage V1" in m)
    assert "🏆 1. 12.1.: 1" in result
    assert "🏆 2. 19.1.: 1" in result


GERMAN = """\
/settings language de
/group create vertrieb Vertrieb
/as anna
/settings language de
/join vertrieb
/as bernd
/settings language de
/join vertrieb
/as admin
/ankündigen vertrieb Neue Hygieneregeln ab Montag --confirm
/as anna
/press 1
/as bernd
/press 1
/as admin
/ankündigung A2
/umfrage vertrieb Welcher Termin? | 12.1. | 19.1. | 26.1.
/as anna
/press 3
/as bernd
/press 3
/as admin
/umfrage close V2
"""


def german_part(out: str) -> None:
    anna = lines_to(out, "anna")
    admin = [m for m in lines_to(out, "admin") if "V2" in m or "A2" in m]

    note = next(m for m in anna if "Ankündigung A2" in m)
    assert note == (
        "[anna] 📌 Ankündigung A2 von @admin: Neue Hygieneregeln ab Montag\n"
        "  Bitte bestätige, dass du sie gelesen hast.\n"
        "  [1] Gelesen ✓"
    )
    assert any("Bestätigt ✓ – du hast sie am" in m for m in anna)
    status = next(m for m in admin if m.startswith("[admin] 📌 A2:"))
    assert "Gelesen ✓: 2/2" in status
    assert "Alle haben bestätigt." in status
    card = [m for m in admin if "Ankündigung A2 von dir" in m][-1]
    assert "Gelesen ✓: 2/2" in card

    cards = [m for m in anna if "Umfrage V2" in m]
    assert cards[0].startswith("[anna] 📊 Umfrage V2 in Vertrieb: Welcher Termin?")
    assert "Noch keine Stimmen." in cards[0]
    assert "🏆 ✓ 3. 26.1.: 2" in cards[-1]
    assert cards[-1].rstrip().endswith("Beendet.")
    result = next(m for m in admin if "Ergebnis" in m)
    assert "2 Personen haben abgestimmt." in result


def test_announce_confirm_and_poll_on_the_console_in_english_and_german(tmp_path: Path) -> None:
    done = pinwall(tmp_path, ENGLISH + GERMAN)
    assert done.returncode == 0, done.stderr
    english_part(done.stdout)
    german_part(done.stdout)
    # Every line is a bot message or its continuation: nothing else on stdout.
    assert all(line.startswith(("[", "  ")) for line in done.stdout.splitlines())
