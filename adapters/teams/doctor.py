"""`pinwall doctor` for Teams: does the tenant's token endpoint take the app id and
password, and can the Bot Framework's OpenID metadata be read (the keys that sign every
request to /teams/messages)?"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from adapters.teams.auth import CredentialsRefused, jwks_uri, request_token
from adapters.teams.settings import TeamsSettings
from bot.messenger import Problem


async def check(settings: TeamsSettings) -> Sequence[Problem]:
    assert settings.teams_app_id
    assert settings.teams_app_password
    problems: list[Problem] = []
    async with httpx.AsyncClient(timeout=15.0) as http:
        try:
            await request_token(
                http,
                settings.teams_token_endpoint(),
                settings.teams_app_id,
                settings.teams_app_password.get_secret_value(),
            )
        except CredentialsRefused as exc:
            problems.append(
                Problem(
                    what=f"Teams: the token endpoint refused the bot's credentials ({exc})",
                    fix="set PINWALL_TEAMS_APP_ID to the bot's Microsoft App ID, "
                    "PINWALL_TEAMS_APP_PASSWORD to a current client secret of that app and "
                    "PINWALL_TEAMS_TENANT_ID to its tenant (Entra ID → App registrations)",
                )
            )
        try:
            await jwks_uri(http, settings.teams_openid_url)
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            problems.append(
                Problem(
                    what=f"Teams: the Bot Framework's OpenID metadata cannot be read ({exc})",
                    fix="let Pinwall reach login.botframework.com, or unset "
                    "PINWALL_TEAMS_OPENID_URL",
                )
            )
    return problems
