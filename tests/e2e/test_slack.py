"""End to end: `pinwall run` as a subprocess in Slack's HTTP mode (the Web API answered by
FakeSlack), signed requests into its /slack/events, a console member beside it."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from tests.e2e.test_console import PINWALL, _env, pinwall
from tests.e2e.test_telegram import Lines
from tests.fakes.slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack, SlackRequests


async def test_a_share_from_slack_reaches_a_console_member(tmp_path: Path) -> None:
    with FakeSlack() as fake:
        fake.add_user("U1ALICE", "alice", real_name="Alice", locale="de-DE")
        proc = subprocess.Popen(  # noqa: ASYNC220 - starting it does not block
            [*PINWALL, "run"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env=_env(
                PINWALL_SLACK_BOT_TOKEN=BOT_TOKEN,
                PINWALL_SLACK_SIGNING_SECRET=SIGNING_SECRET,
                PINWALL_SLACK_MODE="http",
                PINWALL_SLACK_API_URL=fake.api_url,
                PINWALL_CONSOLE="on",
            ),
        )
        assert proc.stdin is not None
        out, err = Lines(proc.stdout), Lines(proc.stderr)
        try:
            port = err.wait_for(r"HTTP endpoints on http://127\.0\.0\.1:(\d+)").group(1)
            proc.stdin.write(
                "/group create marketing Marketing\n/as carla\n/join marketing\n"
                "/notify marketing instant\n"
            )
            proc.stdin.flush()
            out.wait_for(r"^\[carla\] Marketing: you now get every post instantly")
            slack = SlackRequests(f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET)
            dm = fake.dm_channel("U1ALICE")
            forged = await slack.slash_command("U1ALICE", dm, "join marketing", bad_signature=True)
            assert forged.status_code == 401
            for text in ("join marketing", "share marketing https://example.com/p Plakat"):
                answer = await slack.slash_command("U1ALICE", dm, text)
                assert answer.status_code == 200
            post = await asyncio.to_thread(
                out.wait_for, r"^\[carla\] alice via Slack in Marketing: (.*)"
            )
            assert post.group(1) == "Plakat"
            await fake.wait_for_async(
                lambda: any("Geteilt als #1" in (p.text or "") for p in fake.posted), 10
            )
        finally:
            proc.stdin.close()
            code = proc.wait(timeout=30)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        assert code == 0, "\n".join(err.seen)
        assert fake.errors == []


def test_http_mode_without_a_signing_secret_refuses_to_start(tmp_path: Path) -> None:
    with FakeSlack() as fake:
        done = pinwall(
            tmp_path,
            "",
            PINWALL_SLACK_BOT_TOKEN=BOT_TOKEN,
            PINWALL_SLACK_MODE="http",
            PINWALL_SLACK_API_URL=fake.api_url,
        )
        assert fake.calls == []
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "pinwall: PINWALL_SLACK_SIGNING_SECRET: HTTP mode needs the app's signing secret "
        "(Basic Information → App Credentials)"
    ]
