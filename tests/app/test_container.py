"""The container's parts that run without a container engine: every setting that
compose.yaml and the Dockerfile give exists in the configuration, and the entrypoint
script starts `pinwall`, refuses a data directory it cannot write, and runs anything else
as given. (Building and running the image: deploy/README.md and the closing note.)"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from app.config import settings_class

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
# Variables that name where settings come from, not settings themselves.
SOURCES = {"PINWALL_CONFIG", "PINWALL_SECRETS_DIR"}


def known(variable: str) -> bool:
    name = variable.lower().removeprefix("pinwall_")
    fields = settings_class().model_fields
    return (
        variable.upper() in SOURCES
        or name in fields
        or bool(re.fullmatch(r"PINWALL_OUTLET_[A-Z0-9_]+_TOKEN", variable.upper()))
    )


def test_every_setting_of_compose_and_the_dockerfile_exists() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    service = compose["services"]["pinwall"]
    given = [k for k in service["environment"] if k.startswith("PINWALL_")]
    secrets = [s for s in service["secrets"] if s.startswith("pinwall_")]
    dockerfile = re.findall(r"\b(PINWALL_[A-Z_]+)=", (ROOT / "Dockerfile").read_text())
    assert given
    assert secrets
    assert dockerfile
    unknown = [v for v in [*given, *secrets, *dockerfile] if not known(v)]
    assert unknown == []
    # Every secret the service names is declared with a file.
    assert set(service["secrets"]) <= set(compose["secrets"])


def entrypoint(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    bin_dir = str(Path(sys.executable).parent)  # the venv's `pinwall`
    return subprocess.run(
        ["/bin/sh", str(ENTRYPOINT), *args],
        env={
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "HOME": str(tmp_path),
            "PINWALL_DATABASE_URL": f"sqlite:///{tmp_path / 'pinwall.db'}",
            "PINWALL_SECRETS_DIR": "/run/secrets-not-mounted",
            "PINWALL_CONSOLE": "off",
            **env,
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_entrypoint_runs_pinwall_with_the_data_directory(tmp_path: Path) -> None:
    done = entrypoint(tmp_path, "config", PINWALL_DATA_DIR=str(tmp_path / "data"))
    assert done.returncode == 0, done.stderr
    assert f'"data_dir": "{tmp_path / "data"}"' in done.stdout
    assert (tmp_path / "data").is_dir()


def test_the_entrypoint_refuses_a_data_directory_it_cannot_write(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    data = tmp_path / "a-file" / "data"
    done = entrypoint(tmp_path, "run", PINWALL_DATA_DIR=str(data))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"pinwall: {data} is not writable by user {os.getuid()}: mount a volume there that "
        f"it owns (chown {os.getuid()} on the host)"
    )


def test_the_entrypoint_runs_anything_else_as_given(tmp_path: Path) -> None:
    done = entrypoint(tmp_path, "echo", "a shell command", PINWALL_DATA_DIR=str(tmp_path))
    assert (done.returncode, done.stdout) == (0, "a shell command\n")
