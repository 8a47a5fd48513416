"""End to end: `pinwall run` as a subprocess with Telegram (against FakeTelegram over real
HTTP) and the console beside it — a franchisee joins by deep link, shares a photo from
the phone, and a console member gets it."""

from __future__ import annotations

import queue
import re
import subprocess
import threading
import time
from pathlib import Path

from tests.e2e.test_console import PINWALL, _env, pinwall
from tests.fakes.telegram import FakeTelegram, TgUser, png_bytes

FRANZ = TgUser(id=5001, first_name="Franz", username="franz_nord", language_code="de")


class Lines:
    """A process's output, read line by line in a thread, waited on with a deadline."""

    def __init__(self, stream: object) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: object) -> None:
        try:
            for line in stream:  # type: ignore[attr-defined]
                self._queue.put(line.rstrip("\n"))
        except (ValueError, OSError):  # closed under us at the end of the test
            return

    def wait_for(self, pattern: str, within: float = 15.0) -> re.Match[str]:
        deadline = time.monotonic() + within
        while True:
            for line in self.seen:
                found = re.search(pattern, line)
                if found:
                    return found
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line matching {pattern!r} in:\n" + "\n".join(self.seen))
            try:
                self.seen.append(self._queue.get(timeout=left))
            except queue.Empty:
                continue


def test_a_franchisee_on_telegram_shares_a_photo_with_a_console_member(tmp_path: Path) -> None:
    with FakeTelegram() as fake:
        proc = subprocess.Popen(
            [*PINWALL, "run"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env=_env(
                PINWALL_TELEGRAM_TOKEN=fake.token,
                PINWALL_TELEGRAM_BASE_URL=fake.base_url,
                PINWALL_CONSOLE="on",
            ),
        )
        assert proc.stdin is not None
        out = Lines(proc.stdout)
        try:
            proc.stdin.write(
                "/group create marketing Marketing --externals\n"
                "/invite partner marketing\n"
                "/as alice\n/join marketing\n/notify marketing instant\n"
            )
            proc.stdin.flush()
            code = out.wait_for(r"https://t\.me/pinwall_test_bot\?start=(\w{10})").group(1)
            out.wait_for(r"^\[alice\] Marketing: you now get every post instantly")

            fake.user_starts(FRANZ, code)
            fake.wait_for(lambda: len(fake.sent_to(FRANZ.id)) == 1, 15, "the welcome")
            assert "Willkommen bei Pinwall" in (fake.sent_to(FRANZ.id)[0].text or "")

            fake.user_sends_photo(FRANZ, None, png_bytes(32, 32), caption="Plakat am Bahnhof")
            fake.wait_for(lambda: len(fake.sent_to(FRANZ.id)) == 2, 15, "the question")
            question = fake.sent_to(FRANZ.id)[1]
            assert question.text == "In welcher Gruppe soll ich das teilen?"
            assert question.reply_markup is not None
            [[choice]] = question.reply_markup["inline_keyboard"]
            fake.user_presses(FRANZ, None, question.message_id, choice["callback_data"])

            post = out.wait_for(r"^\[alice\] franz_nord via Telegram in Marketing: (.*)")
            assert post.group(1) == "Plakat am Bahnhof"
            fake.wait_for(lambda: len(fake.edits) == 1, 15, "the outcome in place")
            assert fake.edits[0].text == "Geteilt als #1 in Marketing."
            assert len(fake.answered_callbacks) == 1
        finally:
            proc.stdin.close()
            code_ = proc.wait(timeout=30)
            stderr = proc.stderr.read() if proc.stderr else ""
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        assert code_ == 0, stderr
        assert fake.errors == []


def test_webhook_mode_without_a_secret_refuses_to_start(tmp_path: Path) -> None:
    with FakeTelegram() as fake:
        done = pinwall(
            tmp_path,
            "",
            PINWALL_TELEGRAM_TOKEN=fake.token,
            PINWALL_TELEGRAM_BASE_URL=fake.base_url,
            PINWALL_TELEGRAM_MODE="webhook",
            PINWALL_PUBLIC_URL="https://pinwall.example.com",
        )
        assert fake.calls == []  # refused before talking to Telegram
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "pinwall: PINWALL_TELEGRAM_WEBHOOK_SECRET: webhook mode needs a secret "
        "(1-256 characters of A-Z, a-z, 0-9, _ and -)"
    ]


def test_a_token_telegram_refuses_stops_the_start_with_one_line(tmp_path: Path) -> None:
    with FakeTelegram() as fake:
        done = pinwall(
            tmp_path,
            "",
            PINWALL_TELEGRAM_TOKEN="999:not-the-token",
            PINWALL_TELEGRAM_BASE_URL=fake.base_url,
        )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "pinwall: PINWALL_TELEGRAM_TOKEN: Telegram does not accept this token "
        "(copy it again from BotFather)"
    )
