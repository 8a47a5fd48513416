"""The Microsoft Teams adapter (the Teams SDK, microsoft-teams-apps): the messenger most
companies of Pinwall's size already have.

inbound.py   activities -> Pinwall events (pure): commands, @mentions, card presses,
             "Share to Pinwall group", reactions, files
render.py    neutral messages -> Teams markdown and Adaptive Cards (pure)
auth.py      the bot's token (client credentials) and the inbound JWT check
files.py     fetching shared files (file.download.info) into the blob store
adapter.py   POST /teams/messages on Pinwall's HTTP app, the Bot Connector I/O
manifest.py  the Teams app package (`pinwall teams manifest`)
doctor.py    `pinwall doctor`: does the token endpoint take the credentials?
settings.py  PINWALL_TEAMS_*

MESSENGER is the package's descriptor (bot.messenger); the SDK is imported only when
the adapter is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from adapters.teams.settings import TeamsSettings
from bot.messenger import Messenger, PlatformLimits, Problem, Rate

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from adapters.teams.adapter import TeamsAdapter
    from bot.runtime import Hub


def _build(settings: TeamsSettings, hub: Hub) -> TeamsAdapter:
    from adapters.teams.adapter import TeamsAdapter

    assert settings.teams_app_id
    assert settings.teams_app_password
    assert settings.teams_tenant_id
    return TeamsAdapter(
        hub,
        app_id=settings.teams_app_id,
        password=settings.teams_app_password.get_secret_value(),
        tenant_id=settings.teams_tenant_id,
        openid_url=settings.teams_openid_url,
        token_url=settings.teams_token_endpoint(),
    )


def _routes(adapter: TeamsAdapter) -> Sequence[BaseRoute]:
    return adapter.routes()  # POST /teams/messages


async def _check(settings: TeamsSettings) -> Sequence[Problem]:
    from adapters.teams.doctor import check

    return await check(settings)


MESSENGER = Messenger(
    name="teams",
    display_name="Teams",
    command_prefix="",
    settings=TeamsSettings,
    configured=lambda settings: settings.teams_configured,
    build=_build,
    check=_check,
    routes=_routes,
    shown_in_place=True,  # PUT .../activities/{id}: cards updated in place
    # Microsoft's "Optimize your bot with rate limiting in Teams" (learn.microsoft.com,
    # microsoftteams/platform/bots/how-to/rate-limit): per bot per thread (a chat or a
    # channel) 7 operations a second, 8 in 2 s, 60 in 30 s, 1800 in an hour; per app per
    # tenant 50 requests a second. A bucket of 7 refilled at 0.5 a second keeps all four
    # thread limits; 429s beyond them are honoured by their Retry-After.
    rate_limits=PlatformLimits(overall=Rate(50, 50), per_dm=Rate(0.5, 7), per_room=Rate(0.5, 7)),
)

__all__ = ["MESSENGER"]
