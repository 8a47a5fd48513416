"""A real Synapse homeserver for the tests: generated config, loopback only, no federation.

`Synapse(workdir).start()` writes a config (server name `localhost`, one client listener
on 127.0.0.1 at a free port, SQLite, a media store, a signing key, shared-secret
registration, authenticated media, no federation listener and no federation at all)
and runs `python -m synapse.app.homeserver` as a subprocess until `stop()`. With
`relaxed=True` (the default) every rate limit is raised far out of the tests' way; with
`relaxed=False` Synapse keeps its defaults (rc_message: 0.2/s, burst 10).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SERVER_NAME = "localhost"
START_TIMEOUT = 60.0

_FAST = {"per_second": 10_000, "burst_count": 10_000}
RELAXED_LIMITS: dict[str, Any] = {
    "rc_message": _FAST,
    "rc_registration": _FAST,
    "rc_login": {"address": _FAST, "account": _FAST, "failed_attempts": _FAST},
    "rc_joins": {"local": _FAST, "remote": _FAST},
    "rc_joins_per_room": _FAST,
    "rc_invites": {"per_room": _FAST, "per_user": _FAST, "per_issuer": _FAST},
    "rc_3pid_validation": _FAST,
    "rc_admin_redaction": _FAST,
    "rc_media_create": _FAST,
    "rc_room_creation": _FAST,
    "rc_delayed_event_mgmt": _FAST,
    "rc_reports": _FAST,
    "rc_user_directory": _FAST,
    "rc_profile": _FAST,
    "rc_presence": {"per_user": _FAST},
    "rc_key_requests": _FAST,
}


class SynapseUnavailable(RuntimeError):
    """Synapse could not be started here (not installed, or it died at start)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class MatrixUser:
    user_id: str
    password: str
    access_token: str
    device_id: str

    @property
    def localpart(self) -> str:
        return self.user_id[1:].split(":", 1)[0]


class Synapse:
    def __init__(self, workdir: Path, *, relaxed: bool = True) -> None:
        self.workdir = workdir
        self.relaxed = relaxed
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.shared_secret = secrets.token_hex(16)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "homeserver.log"
        self.started_in = 0.0
        self._users = 0

    # --- config -------------------------------------------------------------------

    def write_config(self) -> Path:
        from signedjson.key import generate_signing_key, write_signing_keys

        self.workdir.mkdir(parents=True, exist_ok=True)
        key_path = self.workdir / f"{SERVER_NAME}.signing.key"
        with key_path.open("w") as f:
            write_signing_keys(f, [generate_signing_key("a_test")])
        log_config = self.workdir / "log.yaml"
        log_config.write_text(
            json.dumps(
                {
                    "version": 1,
                    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(message)s"}},
                    "handlers": {
                        "file": {
                            "class": "logging.FileHandler",
                            "formatter": "plain",
                            "filename": str(self.log_path),
                        }
                    },
                    "root": {"level": "WARNING", "handlers": ["file"]},
                    "disable_existing_loggers": False,
                }
            )
        )
        config: dict[str, Any] = {
            "server_name": SERVER_NAME,
            "public_baseurl": self.url + "/",
            "pid_file": str(self.workdir / "homeserver.pid"),
            "listeners": [
                {
                    "port": self.port,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "tls": False,
                    "x_forwarded": False,
                    "resources": [{"names": ["client"], "compress": False}],
                }
            ],
            "database": {
                "name": "sqlite3",
                "args": {"database": str(self.workdir / "homeserver.db")},
            },
            "log_config": str(log_config),
            "media_store_path": str(self.workdir / "media"),
            "enable_authenticated_media": True,
            "max_upload_size": "50M",
            "url_preview_enabled": False,
            "registration_shared_secret": self.shared_secret,
            "enable_registration": False,
            "report_stats": False,
            "signing_key_path": str(key_path),
            "macaroon_secret_key": secrets.token_hex(16),
            "form_secret": secrets.token_hex(16),
            # No federation: no federation listener, no key servers, no remote servers.
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "federation_domain_whitelist": [],
            "presence": {"enabled": False},
            "user_directory": {"enabled": False},
            "enable_metrics": False,
            "include_profile_data_on_invite": True,
        }
        if self.relaxed:
            config.update(RELAXED_LIMITS)
        path = self.workdir / "homeserver.yaml"
        path.write_text(json.dumps(config, indent=1))  # JSON is YAML
        return path

    # --- process ------------------------------------------------------------------

    def start(self) -> Synapse:
        try:
            import synapse  # noqa: F401
        except ImportError as exc:
            raise SynapseUnavailable(f"matrix-synapse is not installed ({exc})") from None
        config = self.write_config()
        began = time.monotonic()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PINWALL_")}
        with (self.workdir / "stdout.log").open("wb") as output:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "synapse.app.homeserver", "-c", str(config)],
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = began + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise SynapseUnavailable(
                    f"Synapse exited with {self.proc.returncode} at start: {self._tail()}"
                )
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise SynapseUnavailable(f"Synapse did not answer /health in time: {self._tail()}")
            time.sleep(0.1)
        self.started_in = time.monotonic() - began
        return self

    def _tail(self) -> str:
        texts = []
        for path in (self.workdir / "stdout.log", self.log_path):
            if path.exists():
                texts.append(path.read_text(errors="replace")[-1500:])
        return " | ".join(t.strip().replace("\n", " / ") for t in texts if t.strip())

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    # --- the client-server API, for setting up tests --------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        token: str | None = None,
    ) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                result: dict[str, Any] = json.loads(answer.read() or b"{}")
                return result
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{method} {path}: {exc.code} {exc.read()!r}") from None

    def register(self, localpart: str | None = None, *, admin: bool = False) -> MatrixUser:
        """A new user through the shared-secret admin API (/_synapse/admin/v1/register);
        the localpart gets a number, so that every test has fresh people."""
        self._users += 1
        name = f"{localpart or 'user'}{self._users}"
        password = secrets.token_hex(8)
        nonce = self.request("GET", "/_synapse/admin/v1/register")["nonce"]
        mac = hmac.new(self.shared_secret.encode(), digestmod=hashlib.sha1)
        mac.update(b"\x00".join([nonce.encode(), name.encode(), password.encode()]))
        mac.update(b"\x00admin" if admin else b"\x00notadmin")
        answer = self.request(
            "POST",
            "/_synapse/admin/v1/register",
            {
                "nonce": nonce,
                "username": name,
                "password": password,
                "admin": admin,
                "mac": mac.hexdigest(),
            },
        )
        return MatrixUser(answer["user_id"], password, answer["access_token"], answer["device_id"])
