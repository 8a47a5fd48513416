"""The Slack adapter (slack-bolt, async): employees at their desks.

inbound.py     Slack payloads -> Pinwall events (pure)
render.py      neutral messages and homes -> Block Kit (pure): posts with Open, Comment,
               👍; digests a section per post; real mentions; the App Home's selects
modals.py      the share, propose and settings modals, their submissions (pure)
files.py       downloading what people share, within Slack's 3 seconds
adapter.py     Socket Mode or HTTP (/slack/events), the Web API, App Home, modals
settings.py    PINWALL_SLACK_*
manifest.yaml  the app, its scopes, command, shortcut, events and App Home

MESSENGER is the package's descriptor (bot.messenger); the SDK is imported only when
the adapter is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from adapters.slack.settings import SlackSettings
from bot.messenger import Messenger, PlatformLimits, Problem, Rate

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from adapters.slack.adapter import SlackAdapter
    from bot.runtime import Hub


def _build(settings: SlackSettings, hub: Hub) -> SlackAdapter:
    from adapters.slack.adapter import SlackAdapter

    assert settings.slack_bot_token is not None
    app_token, secret = settings.slack_app_token, settings.slack_signing_secret
    return SlackAdapter(
        hub,
        bot_token=settings.slack_bot_token.get_secret_value(),
        app_token=app_token.get_secret_value() if app_token else None,
        signing_secret=secret.get_secret_value() if secret else None,
        mode=settings.slack_mode,
        api_url=settings.slack_api_url,
        trust_profile_email=settings.slack_trust_profile_email,
    )


def _routes(adapter: SlackAdapter) -> Sequence[BaseRoute]:
    return adapter.routes()  # /slack/events, in HTTP mode


async def _check(settings: SlackSettings) -> Sequence[Problem]:
    from adapters.slack.doctor import check

    return await check(settings)


MESSENGER = Messenger(
    name="slack",
    display_name="Slack",
    command_prefix="/pinwall ",
    settings=SlackSettings,
    configured=lambda settings: settings.slack_configured,
    build=_build,
    check=_check,
    routes=_routes,
    private_in_room=True,  # ephemeral messages
    shown_in_place=True,  # chat.update
    decided_in_place=True,
    # Slack's documented limits: about one message a second per channel, 20 a second
    # for the workspace.
    rate_limits=PlatformLimits(overall=Rate(20, 20), per_dm=Rate(1, 1), per_room=Rate(1, 1)),
)

__all__ = ["MESSENGER"]
