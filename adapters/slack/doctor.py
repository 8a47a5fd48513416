"""What `pinwall doctor` asks Slack: is the bot token accepted, has the app every scope
Pinwall uses (Slack names the granted ones in each answer's X-OAuth-Scopes header), and
is the app-level token there for Socket Mode."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import aiohttp
import yaml
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.settings import SlackSettings
from bot.messenger import Problem

MANIFEST = Path(__file__).with_name("manifest.yaml")


def required_scopes() -> frozenset[str]:
    """The bot scopes of the app manifest (adapters/slack/manifest.yaml): what the app is
    installed with, and what Pinwall's calls need."""
    manifest = yaml.safe_load(MANIFEST.read_text())
    return frozenset(manifest["oauth_config"]["scopes"]["bot"])


async def check(settings: SlackSettings) -> Sequence[Problem]:
    assert settings.slack_bot_token is not None
    client = AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url
    )
    try:
        answer = await client.auth_test()
    except SlackApiError as exc:
        return (
            Problem(
                f"Slack does not accept PINWALL_SLACK_BOT_TOKEN ({exc.response.get('error')})",
                "copy the Bot User OAuth Token (xoxb-…) again from the app's OAuth & Permissions",
            ),
        )
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        return (
            Problem(
                f"Slack at {settings.slack_api_url} does not answer ({exc})",
                "check PINWALL_SLACK_API_URL and that this machine reaches it",
            ),
        )
    problems: list[Problem] = []
    header = {k.lower(): v for k, v in answer.headers.items()}.get("x-oauth-scopes", "")
    granted = {s.strip() for s in header.split(",") if s.strip()}
    missing = sorted(required_scopes() - granted)
    if missing:
        problems.append(
            Problem(
                f"the Slack app lacks the scopes {', '.join(missing)}",
                "add them under OAuth & Permissions (or create the app from "
                "adapters/slack/manifest.yaml) and reinstall it to the workspace",
            )
        )
    if settings.slack_mode == "socket" and settings.slack_app_token is None:
        problems.append(
            Problem(
                "Socket Mode needs PINWALL_SLACK_APP_TOKEN",
                "create an app-level token with connections:write (Basic Information) "
                "and set it, or use PINWALL_SLACK_MODE=http",
            )
        )
    if settings.slack_mode == "http" and settings.slack_signing_secret is None:
        problems.append(
            Problem(
                "HTTP mode needs PINWALL_SLACK_SIGNING_SECRET",
                "copy the Signing Secret from the app's Basic Information and set it",
            )
        )
    return problems
