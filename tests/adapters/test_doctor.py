"""`pinwall doctor` asks each configured messenger what `pinwall run` would need, without
starting it: one broken setting per test, each named with the one thing to do, exit 1; a
sound set-up, exit 0. Against the Telegram and Slack fakes over HTTP and a real Synapse."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from app.cli import main
from store.db import Database
from tests.fakes.slack import APP_TOKEN, BOT_TOKEN, FakeSlack
from tests.fakes.synapse import Synapse
from tests.fakes.telegram import FakeTelegram


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No messenger yet, a fresh SQLite database: what every test adds one thing to."""
    for name in ("TELEGRAM_TOKEN", "SLACK_BOT_TOKEN", "MATRIX_HOMESERVER", "CONSOLE"):
        monkeypatch.delenv(f"PINWALL_{name}", raising=False)
    monkeypatch.setenv("PINWALL_DATABASE_URL", f"sqlite:///{tmp_path / 'pinwall.db'}")
    monkeypatch.setenv("PINWALL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PINWALL_CONSOLE", "off")
    Database(f"sqlite:///{tmp_path / 'pinwall.db'}").upgrade()
    return tmp_path


def doctor(capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["doctor"])
    return code, capsys.readouterr().out.splitlines()[1:]  # after the settings line


def test_a_sound_telegram_and_slack_pass(
    setup: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeTelegram() as telegram, FakeSlack() as slack:
        monkeypatch.setenv("PINWALL_TELEGRAM_TOKEN", telegram.token)
        monkeypatch.setenv("PINWALL_TELEGRAM_BASE_URL", telegram.base_url)
        monkeypatch.setenv("PINWALL_SLACK_BOT_TOKEN", BOT_TOKEN)
        monkeypatch.setenv("PINWALL_SLACK_APP_TOKEN", APP_TOKEN)
        monkeypatch.setenv("PINWALL_SLACK_API_URL", slack.api_url)
        assert doctor(capsys) == (
            0,
            [
                "database: ok (sqlite, schema current)",
                "telegram: ok",
                "slack: ok",
                "fetch allow-list: empty (links and feeds reach public addresses only)",
            ],
        )


def test_a_wrong_telegram_token_is_named(
    setup: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeTelegram() as telegram:
        monkeypatch.setenv("PINWALL_TELEGRAM_TOKEN", "999:not-the-token")
        monkeypatch.setenv("PINWALL_TELEGRAM_BASE_URL", telegram.base_url)
        code, lines = doctor(capsys)
    assert code == 1
    assert lines[1:3] == [
        "telegram: PROBLEM Telegram does not accept PINWALL_TELEGRAM_TOKEN",
        "          → copy the token again from @BotFather (/mybots → your bot → API Token)",
    ]


def test_a_telegram_webhook_that_is_not_registered_is_named(
    setup: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeTelegram() as telegram:
        monkeypatch.setenv("PINWALL_TELEGRAM_TOKEN", telegram.token)
        monkeypatch.setenv("PINWALL_TELEGRAM_BASE_URL", telegram.base_url)
        monkeypatch.setenv("PINWALL_TELEGRAM_MODE", "webhook")
        monkeypatch.setenv("PINWALL_TELEGRAM_WEBHOOK_SECRET", "s3cret")
        monkeypatch.setenv("PINWALL_PUBLIC_URL", "https://pinwall.example.com")
        code, lines = doctor(capsys)
        assert telegram.calls == ["getMe", "getWebhookInfo"]  # asked, nothing changed
    assert code == 1
    assert lines[1:3] == [
        "telegram: PROBLEM Telegram's webhook is not set, Pinwall listens at "
        "https://pinwall.example.com/telegram/webhook",
        "          → start pinwall run once (it registers the webhook); check PINWALL_PUBLIC_URL",
    ]


def test_a_missing_slack_scope_is_named(
    setup: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    scopes = [s for s in FakeSlack().scopes if s not in ("reactions:write", "files:read")]
    with FakeSlack(scopes=scopes) as slack:
        monkeypatch.setenv("PINWALL_SLACK_BOT_TOKEN", BOT_TOKEN)
        monkeypatch.setenv("PINWALL_SLACK_APP_TOKEN", APP_TOKEN)
        monkeypatch.setenv("PINWALL_SLACK_API_URL", slack.api_url)
        code, lines = doctor(capsys)
    assert code == 1
    assert lines[1:3] == [
        "slack: PROBLEM the Slack app lacks the scopes files:read, reactions:write",
        "       → add them under OAuth & Permissions (or create the app from "
        "adapters/slack/manifest.yaml) and reinstall it to the workspace",
    ]


def test_a_wrong_slack_token_is_named(
    setup: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeSlack() as slack:
        monkeypatch.setenv("PINWALL_SLACK_BOT_TOKEN", "xoxb-0-0-revoked")
        monkeypatch.setenv("PINWALL_SLACK_APP_TOKEN", APP_TOKEN)
        monkeypatch.setenv("PINWALL_SLACK_API_URL", slack.api_url)
        code, lines = doctor(capsys)
    assert code == 1
    assert lines[1] == "slack: PROBLEM Slack does not accept PINWALL_SLACK_BOT_TOKEN (invalid_auth)"


def test_matrix_tokens_are_asked_of_the_homeserver(
    setup: Path,
    synapse: Synapse,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bot = synapse.register("pinwall")
    monkeypatch.setenv("PINWALL_MATRIX_HOMESERVER", synapse.url)
    monkeypatch.setenv("PINWALL_MATRIX_USER_ID", bot.user_id)
    monkeypatch.setenv("PINWALL_MATRIX_ACCESS_TOKEN", bot.access_token)
    assert doctor(capsys)[1][1] == "matrix: ok"

    monkeypatch.setenv("PINWALL_MATRIX_ACCESS_TOKEN", f"syt_{uuid.uuid4().hex}")
    code, lines = doctor(capsys)
    assert code == 1
    assert (
        lines[1] == "matrix: PROBLEM the homeserver does not accept PINWALL_MATRIX_ACCESS_TOKEN "
        "(M_UNKNOWN_TOKEN)"
    )

    someone = synapse.register("someone")
    monkeypatch.setenv("PINWALL_MATRIX_ACCESS_TOKEN", someone.access_token)
    assert doctor(capsys)[1][1] == (
        f"matrix: PROBLEM PINWALL_MATRIX_ACCESS_TOKEN belongs to {someone.user_id}, "
        f"not to PINWALL_MATRIX_USER_ID {bot.user_id}"
    )


def test_a_schema_from_a_newer_pinwall_is_named(
    setup: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = Database(f"sqlite:///{setup / 'pinwall.db'}")
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099_future'"))
    db.dispose()
    code, lines = doctor(capsys)
    assert code == 1
    assert lines[0].startswith("database: PROBLEM the database's schema (0099_future) is newer")


def outlets(setup: Path, monkeypatch: pytest.MonkeyPatch, toml: str) -> None:
    (setup / "pinwall.toml").write_text(toml)
    monkeypatch.setenv("PINWALL_CONFIG", str(setup / "pinwall.toml"))


def test_an_outlet_whose_token_mastodon_refuses_is_named(
    setup: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mastodon_mock.testing import MockServer

    with MockServer() as mastodon:
        outlets(
            setup,
            monkeypatch,
            f'[outlets.social]\nkind = "mastodon"\nbase_url = "{mastodon.base_url}"\n',
        )
        monkeypatch.setenv("PINWALL_OUTLET_SOCIAL_TOKEN", "alice_token")
        assert doctor(capsys) == (
            0,
            [
                "database: ok (sqlite, schema current)",
                "outlet social: ok",
                "fetch allow-list: empty (links and feeds reach public addresses only)",
            ],
        )
        monkeypatch.setenv("PINWALL_OUTLET_SOCIAL_TOKEN", "revoked")
        code, lines = doctor(capsys)
    assert code == 1
    assert lines[1].startswith("outlet social: PROBLEM Mastodon does not accept the token of")
    assert lines[2].endswith("and set PINWALL_OUTLET_SOCIAL_TOKEN")


def test_a_telegram_channel_the_bot_may_not_post_in_is_named(
    setup: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.fakes.telegram import TgChat

    with FakeTelegram() as telegram:
        telegram.add_channel(TgChat.channel("Acme News", username="acme_news"), admin=False)
        telegram.add_channel(TgChat.channel("Acme Intern", username="acme_intern"))
        monkeypatch.setenv("PINWALL_OUTLET_NEWS_TOKEN", telegram.token)
        monkeypatch.setenv("PINWALL_OUTLET_INTERN_TOKEN", telegram.token)
        outlets(
            setup,
            monkeypatch,
            f'[outlets.news]\nkind = "telegram_channel"\nchat = "@acme_news"\n'
            f'base_url = "{telegram.base_url}"\n'
            f'[outlets.intern]\nkind = "telegram_channel"\nchat = "@acme_intern"\n'
            f'base_url = "{telegram.base_url}"\n',
        )
        code, lines = doctor(capsys)
    assert code == 1
    assert lines[1:4] == [
        "outlet news: PROBLEM the bot may not post in the channel @acme_news of outlet news",
        "             → make it an administrator of the channel with the right to post messages",
        "outlet intern: ok",
    ]
