"""How to add a messenger, proven: Echo (tests/fakes/messenger_echo) is a package with one
descriptor, registered in ONE place — the tuple of messengers below — and the whole
program takes it in: its settings, its adapter built and started, its webhook served,
commands answered with its prefix and in its name, deliveries paced by its rate limits,
and its health in /healthz. No other file knows about Echo."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.config import load_settings
from app.messengers import MESSENGERS
from app.wiring import Program, build, serve
from bot.errors import ConfigError
from bot.markup import to_plain
from bot.messenger import PlatformLimits, Rate
from tests.fakes import messenger_echo
from tests.fakes.messenger_echo.adapter import EchoAdapter

WITH_ECHO = (*MESSENGERS, messenger_echo.MESSENGER)  # the one registration line
_ids = itertools.count(1)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("PINWALL_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def settings_for(tmp_path: Path, **overrides: object) -> object:
    return load_settings(
        WITH_ECHO,
        database_url=f"sqlite:///{tmp_path / 'pinwall.db'}",
        data_dir=tmp_path / "data",
        http_port=0,
        cpu_affinity="off",  # the test's own thread must stay free
        link_previews=False,
        **overrides,
    )


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[tuple[Program, httpx.AsyncClient]]:
    settings = settings_for(
        tmp_path,
        echo_enabled=True,
        admins="echo:e1",
        rate_limits={"echo": {"per_dm": 20}},
    )
    program = build(settings)  # type: ignore[arg-type]
    task = asyncio.create_task(serve(program))
    try:
        while program.address is None or not program.hub.adapters["echo"].healthy():
            assert not task.done(), task.result()
            await asyncio.sleep(0.01)
        host, port = program.address
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
            yield program, http
    finally:
        program.stop.set()
        await task


async def say(program: Program, http: httpx.AsyncClient, user: str, text: str) -> str:
    """What Echo delivered to `user` in answer to `text`, as plain text."""
    echo = program.hub.adapters["echo"]
    assert isinstance(echo, EchoAdapter)
    before = len(echo.sent)
    response = await http.post(
        "/echo/events", json={"user": user, "text": text, "id": f"ev{next(_ids)}"}
    )
    assert response.status_code == 200
    await program.worker.drain()
    return "\n".join(to_plain(m.text) for t, m in echo.sent[before:] if t.address == user)


def test_the_settings_know_echo(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, echo_enabled=True, admins="echo:e1")
    assert settings.messengers == ["echo"]  # type: ignore[attr-defined]
    assert not settings.console_enabled  # type: ignore[attr-defined]
    assert settings.redacted()["echo_enabled"] is True  # `pinwall config` shows it
    # PINWALL_ADMINS accepts the new platform; it was refused before Echo was registered
    with pytest.raises(ConfigError, match=r"^PINWALL_ADMINS: .*'echo:e1' is not platform:id"):
        load_settings(admins="echo:e1")


async def test_echo_gets_commands_delivery_rate_limits_and_healthz(
    running: tuple[Program, httpx.AsyncClient],
) -> None:
    program, http = running
    assert list(program.hub.adapters) == ["echo"]  # the console stays off: a messenger runs
    assert program.worker.limiter.limits["echo"] == PlatformLimits(per_dm=Rate(20, 20))

    whoami = await say(program, http, "e1", "?whoami")
    assert "@e1 (admin)" in whoami  # PINWALL_ADMINS=echo:e1
    assert "Echo (e1)" in whoami  # its display name
    help_text = await say(program, http, "e1", "?help all")
    assert "?group create" in help_text  # usage lines with its prefix
    assert "?share" in help_text

    await say(program, http, "e1", "?group create news News")
    await say(program, http, "e2", "?join news")
    await say(program, http, "e2", "?notify news instant")
    await say(program, http, "e1", "?share news Fresh from Echo")
    echo = program.hub.adapters["echo"]
    assert isinstance(echo, EchoAdapter)
    delivered = [m for t, m in echo.sent if t.address == "e2" and m.title]
    assert "Fresh from Echo" in to_plain(delivered[-1].text)

    health = await http.get("/healthz")
    assert health.status_code == 200
    assert health.json()["adapters"] == {"echo": True}
    echo.broken = "Echo lost its voice"
    health = await http.get("/healthz")
    assert health.status_code == 503
    assert health.json()["problems"] == {"echo": "Echo lost its voice"}
