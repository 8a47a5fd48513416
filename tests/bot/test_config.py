"""Settings: environment, pinwall.toml, secret files, and one-line errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.config import load_settings
from bot.errors import ConfigError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("PINWALL_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def test_defaults_are_the_documented_ones() -> None:
    s = load_settings()
    assert s.database_url == "sqlite:///./pinwall.db"
    assert s.data_dir == Path("pinwall-data")
    assert (s.http_host, s.http_port) == ("127.0.0.1", 8080)
    assert (s.default_language, s.default_timezone) == ("en", "Europe/Berlin")
    assert s.console == "auto"
    assert s.console_enabled  # no messenger configured
    assert s.messengers == []
    assert s.cpu_affinity == "off"  # pinning to a CPU is asked for, never assumed


def test_environment_beats_toml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "pinwall.toml").write_text(
        'default_language = "de"\nhttp_port = 9000\nadmins = "slack:U1"\n'
    )
    monkeypatch.setenv("PINWALL_HTTP_PORT", "9100")
    s = load_settings()
    assert s.default_language == "de"
    assert s.http_port == 9100
    assert s.admin_accounts() == frozenset({("slack", "U1")})


def test_another_toml_file_and_secret_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    conf = tmp_path / "etc" / "pinwall.toml"
    conf.parent.mkdir()
    conf.write_text('default_timezone = "America/New_York"\n')
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "pinwall_secret_key").write_text("from-a-file")
    monkeypatch.setenv("PINWALL_CONFIG", str(conf))
    monkeypatch.setenv("PINWALL_SECRETS_DIR", str(secrets))
    s = load_settings()
    assert s.default_timezone == "America/New_York"
    assert s.secret_key_value() == "from-a-file"


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("PINWALL_HTTP_PORT", "70000", "PINWALL_HTTP_PORT:"),
        ("PINWALL_HTTP_PORT", "eighty", "PINWALL_HTTP_PORT:"),
        ("PINWALL_DEFAULT_LANGUAGE", "fr", "PINWALL_DEFAULT_LANGUAGE:"),
        ("PINWALL_DEFAULT_TIMEZONE", "Europe/Atlantis", "unknown time zone"),
        ("PINWALL_ADMINS", "U0123", "is not platform:id"),
        ("PINWALL_FETCH_ALLOWLIST", "10.0.0.0/33", "neither a host nor a CIDR"),
        ("PINWALL_SLACK_MODE", "websocket", "PINWALL_SLACK_MODE:"),
        ("PINWALL_EVENT_LOOP", "trio", "PINWALL_EVENT_LOOP:"),
        ("PINWALL_CPU_AFFINITY", "fast", "must be auto, off or a CPU number"),
        ("PINWALL_CPU_AFFINITY", "²", "must be auto, off or a CPU number"),
        ("PINWALL_CPU_AFFINITY", "4096", "CPU 4096 is not one this process may use"),
    ],
)
def test_a_wrong_value_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    message = str(err.value)
    assert message.startswith(name + ":")
    assert says in message
    assert "\n" not in message


def test_secret_key_is_generated_once_into_the_data_dir(tmp_path: Path) -> None:
    s = load_settings(data_dir=tmp_path / "data")
    key = s.secret_key_value()
    assert len(key) >= 32
    assert s.secret_key_value() == key
    assert (tmp_path / "data" / "secret_key").stat().st_mode & 0o777 == 0o600


def test_redacted_hides_secrets_and_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PINWALL_TELEGRAM_TOKEN", "123:abc")
    monkeypatch.setenv("PINWALL_DATABASE_URL", "postgresql://pinwall:hunter2@db:5432/pinwall")
    shown = load_settings().redacted()
    assert shown["telegram_token"] == "********"
    assert shown["database_url"] == "postgresql://pinwall:********@db:5432/pinwall"
    assert "hunter2" not in repr(shown)
    assert "123:abc" not in repr(shown)


def test_console_auto_turns_off_when_a_messenger_is_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PINWALL_TELEGRAM_TOKEN", "123:abc")
    assert not load_settings().console_enabled
    monkeypatch.setenv("PINWALL_CONSOLE", "on")
    assert load_settings().console_enabled


def test_links_point_at_the_public_url_else_at_the_local_http_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().links_url() == "http://127.0.0.1:8080"
    monkeypatch.setenv("PINWALL_HTTP_HOST", "0.0.0.0")
    assert load_settings().links_url() == "http://localhost:8080"
    monkeypatch.setenv("PINWALL_HTTP_HOST", "::1")
    assert load_settings().links_url() == "http://[::1]:8080"
    monkeypatch.setenv("PINWALL_HTTP_PORT", "0")
    assert load_settings().links_url() is None  # a free port: not known before binding
    monkeypatch.setenv("PINWALL_PUBLIC_URL", "https://pinwall.example.com")
    assert load_settings().links_url() == "https://pinwall.example.com"


def test_uvloop_asked_for_where_it_is_not_installed_stops_start_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "uvloop", None)  # as if not installed
    monkeypatch.setenv("PINWALL_EVENT_LOOP", "uvloop")
    with pytest.raises(ConfigError, match=r"^PINWALL_EVENT_LOOP: .*uvloop is not installed"):
        load_settings()
    monkeypatch.setenv("PINWALL_EVENT_LOOP", "auto")
    assert load_settings().event_loop == "auto"


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux only")
def test_cpu_affinity_takes_a_number_from_the_toml_file(tmp_path: Path) -> None:
    cpu = min(os.sched_getaffinity(0))
    (tmp_path / "pinwall.toml").write_text(f"cpu_affinity = {cpu}\n")
    assert load_settings().cpu_affinity == str(cpu)
