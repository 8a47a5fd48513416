"""End to end: conversations piped into `pinwall run` as a subprocess, checked by its output."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

PINWALL = [sys.executable, "-m", "app.cli"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINWALL_")}
    env["PINWALL_HTTP_PORT"] = "0"
    # Shares of example.com must not fetch a preview: tests never reach the internet.
    env["PINWALL_LINK_PREVIEWS"] = "off"
    env.update(extra)
    return env


def pinwall(cwd: Path, script: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PINWALL, *(args or ("run",))],
        input=script,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=_env(**env),
        timeout=60,
    )


def lines_to(output: str, who: str) -> list[str]:
    """The messages printed to `[who]`, each with its continuation lines."""
    messages: list[str] = []
    for line in output.splitlines():
        if line.startswith("["):
            messages.append(line)
        elif line.startswith("  ") and messages:
            messages[-1] += "\n" + line
    return [m for m in messages if m.startswith(f"[{who}] ")]


def running(cwd: Path, **env: str) -> subprocess.Popen[str]:
    """`pinwall run` with its standard streams as pipes, for talking to it live."""
    return subprocess.Popen(
        [*PINWALL, "run"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=_env(**env),
    )


ACCEPTANCE = """\
/group create marketing Marketing & Competitors
/as alice
/join marketing
/notify marketing instant
/as bob
/join marketing
/share marketing https://example.com/poster Competitor's new poster at the station
/items marketing
/settings language de
/help
"""


def test_acceptance_conversation(tmp_path: Path) -> None:
    done = pinwall(tmp_path, ACCEPTANCE)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert lines_to(out, "admin") == [
        "[admin] Group marketing (Marketing & Competitors) created (open). You are its moderator."
    ]
    share = [m for m in lines_to(out, "alice") if "bob in" in m]
    assert share == [
        "[alice] bob in Marketing & Competitors: Competitor's new poster at the station\n"
        "  https://example.com/poster\n"
        "  [1] Comment  [2] 👍"
    ]
    bob = lines_to(out, "bob")
    assert "Shared as #1 in Marketing & Competitors." in bob[1]
    assert "#1 · @bob" in bob[2]
    assert "https://example.com/poster" in bob[2]
    assert bob[3] == "[bob] Ab jetzt spreche ich Deutsch mit dir."
    assert bob[4].startswith("[bob] Hallo @bob! Das kannst du tun:")
    example = "/teilen marketing https://example.com/plakat Neues Plakat am Bahnhof"
    assert f"Probier's: {example}" in bob[4]
    assert len(bob[4].splitlines()) <= 12  # help fits one screen
    # Every line is a bot message or its continuation: nothing else on stdout.
    assert all(line.startswith(("[", "  ")) for line in out.splitlines())
    assert (tmp_path / "pinwall.db").exists()


def test_secret_groups_and_partner_invites(tmp_path: Path) -> None:
    first = pinwall(
        tmp_path,
        "/group create board Board --secret\n"
        "/group create franchise Franchise --externals\n"
        "/group create marketing Marketing\n"
        "/invite partner franchise\n"
        "/as alice\n"
        "/groups\n"
        "/join board\n",
    )
    assert first.returncode == 0, first.stderr
    alice = "\n".join(lines_to(first.stdout, "alice"))
    assert "franchise" in alice
    assert "marketing" in alice
    assert "board" not in alice.split("There is no group")[0]
    assert "There is no group **board**" not in alice  # markup never leaks to plain text
    assert "There is no group board" in alice
    code = re.search(r"Invite for a partner to Franchise: (\w{10})", first.stdout)
    assert code, first.stdout

    second = pinwall(
        tmp_path,
        f"/as pat\n/redeem {code.group(1)}\n/groups\n/items marketing\n/join marketing\n",
    )
    assert second.returncode == 0, second.stderr
    pat = lines_to(second.stdout, "pat")
    assert "Welcome to Pinwall, @pat! Your groups: Franchise (franchise)" in pat[0]
    assert "1 group:" in pat[1]
    assert "franchise" in pat[1]
    assert "marketing" not in pat[1]
    assert "board" not in pat[1]
    assert "There is no group marketing" in pat[2]
    assert "There is no group marketing" in pat[3]


def test_a_closed_group_is_for_members_and_joined_by_request(tmp_path: Path) -> None:
    done = pinwall(
        tmp_path,
        "/group create sales Sales --closed\n"
        "/share sales Q4 pipeline review https://crm.example/q4\n"
        "/as alice\n"
        "/groups\n"
        "/items sales\n"
        "/members sales\n"
        "/comment #1 me too\n"
        "/search pipeline\n"
        "/join sales\n"
        "/join sales\n"
        "/as admin\n"
        "/press 1\n"
        "/as alice\n"
        "/items sales\n"
        "/as bob\n"
        "/settings language de\n"
        "/items sales\n"
        "/join sales\n"
        "/as admin\n"
        "/press 2\n",
    )
    assert done.returncode == 0, done.stderr
    closed = (
        "[alice] Sales is a closed group: its posts and members are for its members only. "
        "Its moderators: @admin. To ask them to let you in, send: /join sales"
    )
    alice = lines_to(done.stdout, "alice")
    assert "sales — Sales (closed, 1 member)" in alice[0]
    assert alice[1:4] == [closed] * 3
    assert alice[4] == "[alice] Nothing found for “pipeline” in the groups you can see."
    assert alice[5].startswith("[alice] Sales is a closed group, so I asked its moderators")
    assert alice[6].startswith("[alice] You already asked to join Sales")
    assert alice[7].startswith("[alice] @admin let you into Sales.")
    assert "Q4 pipeline review" in alice[8]
    admin = lines_to(done.stdout, "admin")
    assert admin[2] == (
        "[admin] alice (@alice) asks to join Sales.\n"
        "  Or: /add alice sales\n"
        "  [1] Let in  [2] Decline"
    )
    assert len([m for m in admin if "asks to join" in m]) == 2  # alice, then bob: one card each
    assert admin[3] == "[admin] ✅ @alice is now a member of Sales: you let them in."
    assert admin[-1] == "[admin] ❌ You declined the request of @bob to join Sales."
    bob = lines_to(done.stdout, "bob")
    assert bob[1].startswith("[bob] Sales ist eine geschlossene Gruppe: Beiträge und Mitglieder")
    assert bob[-1].startswith("[bob] Deine Anfrage, Sales beizutreten, wurde diesmal abgelehnt.")


def test_share_flow_rooms_and_outbox(tmp_path: Path) -> None:
    done = pinwall(
        tmp_path,
        "/group create marketing Marketing\n"
        "/group create sales Sales\n"
        "/room lobby\n"
        "/bridge marketing\n"
        "/dm\n"
        "/as alice\n"
        "/join marketing\n"
        "/join sales\n"
        "Saw a great poster at the station\n"
        "/press 1\n"
        "/room lobby\n"
        "Reply from the lobby\n",
    )
    assert done.returncode == 0, done.stderr
    alice = lines_to(done.stdout, "alice")
    assert any(
        "Which group should I share this in?" in m and "[1] Marketing  [2] Sales" in m
        for m in alice
    )
    assert any("Shared as #1 in Marketing." in m for m in alice)
    lobby = lines_to(done.stdout, "#lobby")
    assert lobby[0].startswith("[#lobby] This room is now connected to Marketing")
    assert lobby[1].startswith("[#lobby] alice in Marketing: Saw a great poster at the station")
    # The message said in the bridged room is a post of the group, not echoed back there.
    assert len(lobby) == 2

    outbox = pinwall(tmp_path, "", "outbox")
    assert outbox.returncode == 0, outbox.stderr
    assert "nothing pending" in outbox.stdout


def test_http_endpoints_answer_while_running(tmp_path: Path) -> None:
    # Pinned on request (the default is off): the one CPU is checked below.
    with running(tmp_path, PINWALL_CPU_AFFINITY="auto") as proc:
        try:
            assert proc.stderr is not None
            assert proc.stdin is not None
            assert proc.stdout is not None
            deadline = time.monotonic() + 30
            address = None
            logged = []
            while time.monotonic() < deadline and address is None:
                logged.append(line := proc.stderr.readline())
                found = re.search(r"HTTP endpoints on (http://[\d.]+:\d+)", line)
                address = found.group(1) if found else None
            assert address, "no bound address logged"
            health = httpx.get(f"{address}/healthz", timeout=5)
            assert health.status_code == 200
            assert health.json() == {
                "status": "ok",
                "database": True,
                "adapters": {"console": True},
            }
            proc.stdin.write("/groups\n")
            proc.stdin.flush()
            assert proc.stdout.readline().startswith("[admin] There are no groups yet.")
            _event_loop_and_database_thread_share_one_cpu(proc.pid, "".join(logged))
            metrics = httpx.get(f"{address}/metrics", timeout=5)
            assert metrics.status_code == 200
            assert (
                'pinwall_deliveries_total{outcome="delivered",platform="console"} 1.0'
                in metrics.text
            )
            assert 'pinwall_outbox_messages{status="pending"} 0.0' in metrics.text
            proc.stdin.close()
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


def _event_loop_and_database_thread_share_one_cpu(pid: int, logged: str) -> None:
    """PINWALL_CPU_AFFINITY=auto on SQLite: the loop's thread (the main one) and the
    threads it started (the database thread) on one of the CPUs the process may use."""
    allowed = os.sched_getaffinity(0)
    cpus = {
        int(task.name): (task / "status").read_text().split("Cpus_allowed_list:")[1].split()[0]
        for task in Path(f"/proc/{pid}/task").iterdir()
    }
    if len(allowed) < 2:  # nothing to choose between: left alone
        assert "PINWALL_CPU_AFFINITY" not in logged
        return
    found = re.search(r"event loop and database thread on CPU (\d+)", logged)
    assert found, logged
    cpu = found.group(1)
    assert int(cpu) in allowed
    assert cpus[pid] == cpu
    assert sum(1 for tid, listed in cpus.items() if tid != pid and listed == cpu) >= 1


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"PINWALL_HTTP_PORT": "99999"}, "PINWALL_HTTP_PORT"),
        ({"PINWALL_DEFAULT_TIMEZONE": "Mars/Olympus"}, "PINWALL_DEFAULT_TIMEZONE"),
        ({"PINWALL_CONSOLE": "maybe"}, "PINWALL_CONSOLE"),
        ({"PINWALL_DATABASE_URL": "mysql://x"}, "PINWALL_DATABASE_URL"),
        ({"PINWALL_CPU_AFFINITY": "both"}, "PINWALL_CPU_AFFINITY"),
    ],
)
def test_a_wrong_setting_stops_start_with_one_line(
    tmp_path: Path, env: dict[str, str], setting: str
) -> None:
    done = pinwall(tmp_path, "/groups\n", **env)
    assert done.returncode == 2
    assert done.stdout == ""
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 1
    assert errors[0].startswith(f"pinwall: {setting}: ")


def test_config_redacts_secrets(tmp_path: Path) -> None:
    done = pinwall(
        tmp_path,
        "",
        "config",
        PINWALL_SECRET_KEY="very-secret",
        PINWALL_DATABASE_URL="postgresql://u:pw@db/pinwall",
    )
    assert done.returncode == 0, done.stderr
    assert "very-secret" not in done.stdout
    assert ":pw@" not in done.stdout
    assert '"secret_key": "********"' in done.stdout


def test_toml_file_sets_keys_and_environment_wins(tmp_path: Path) -> None:
    (tmp_path / "pinwall.toml").write_text(
        'default_language = "de"\nhttp_port = 0\nconsole = "on"\n'
    )
    done = pinwall(tmp_path, "", "config", PINWALL_CONSOLE="auto")
    assert '"default_language": "de"' in done.stdout
    assert '"console": "auto"' in done.stdout
    german = pinwall(tmp_path, "/groups\n")
    assert "[admin] Es gibt noch keine Gruppen." in german.stdout


def test_sigterm_stops_it_gracefully(tmp_path: Path) -> None:
    with running(tmp_path) as proc:
        assert proc.stderr is not None
        assert proc.stdin is not None
        while "HTTP endpoints on" not in proc.stderr.readline():
            pass
        proc.stdin.write("/group create marketing Marketing\n")
        proc.stdin.flush()
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("[admin] Group marketing")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    again = pinwall(tmp_path, "/groups\n")
    assert "marketing" in again.stdout  # the lock was released, the state kept


def test_guided_commands_as_numbered_choices(tmp_path: Path) -> None:
    """A bare command asks with numbered choices; a typed number or /press answers it,
    abbrechen ends a question, thanks get one line (the console is the one in German)."""
    done = pinwall(
        tmp_path,
        "/group create marketing Marketing\n"
        "/group create events Events\n"
        "/as alice\n"
        "/settings language de\n"
        "/join\n"
        "2\n"
        "/notify\n"
        "1\n"
        "/press 2\n"
        "/share\n"
        "abbrechen\n"
        "Danke!\n",
    )
    assert done.returncode == 0, done.stderr
    alice = lines_to(done.stdout, "alice")
    assert alice[1:] == [
        "[alice] Welcher Gruppe möchtest du beitreten?\n"
        "  (Oder schreib abbrechen.)\n"
        "  [1] Events  [2] Marketing",
        "[alice] Du bist Marketing beigetreten. Die Beiträge bekommst du in deiner täglichen"
        " Zusammenfassung.",
        "[alice] Für welche Gruppe möchtest du die Benachrichtigung ändern?\n"
        "  (Oder schreib abbrechen.)\n"
        "  [1] Marketing",
        "[alice] Wie soll ich dir neue Beiträge schicken?\n"
        "  (Oder schreib abbrechen.)\n"
        "  [1] sofort  [2] täglich  [3] wöchentlich  [4] stumm",
        "[alice] Marketing: Du bekommst die Beiträge jetzt in deiner täglichen Zusammenfassung.",
        "[alice] In welcher Gruppe möchtest du teilen?\n"
        "  (Oder schreib abbrechen.)\n"
        "  [1] Marketing",
        "[alice] Abgebrochen. Es wurde nichts gespeichert.",
        "[alice] Gern geschehen, alice! 🙂\n"
        "  Schick mir einen Link oder eine Datei, um sie mit deinen Gruppen zu teilen, oder"
        " /hilfe, um zu sehen, was ich kann.",
    ]
