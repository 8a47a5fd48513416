"""Fixtures shared by the core's tests: the operator's CLI against a World's database."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from app.cli import main
from tests.harness import World

Pinwall = Callable[..., tuple[int, str, str]]


@pytest.fixture
def pinwall(
    world: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Pinwall:
    """Runs `pinwall ARGS...` against the world's database; returns (exit code, out, err)."""
    monkeypatch.setenv("PINWALL_DATABASE_URL", world.db.url)
    monkeypatch.setenv("PINWALL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PINWALL_CONFIG", str(tmp_path / "none.toml"))

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run
