"""The bot's credentials, both ways: the access token Pinwall sends with every Bot
Connector call (OAuth client credentials at the tenant's token endpoint), and the check
of the JWT that the Bot Framework signs every request to /teams/messages with (the
Teams SDK's TokenValidator, with the keys named by the OpenID metadata)."""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from typing import Any

import httpx

log = logging.getLogger(__name__)

BOT_SCOPE = "https://api.botframework.com/.default"
BOT_ISSUER = "https://api.botframework.com"


class CredentialsRefused(Exception):
    """The token endpoint refused the app id and password (or could not be reached)."""


async def request_token(
    http: httpx.AsyncClient, token_url: str, app_id: str, password: str
) -> tuple[str, float]:
    """A Bot Connector access token and how many seconds it is good for."""
    try:
        answer = await http.post(
            token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": app_id,
                "client_secret": password,
                "scope": BOT_SCOPE,
            },
        )
    except httpx.HTTPError as exc:
        raise CredentialsRefused(
            f"cannot reach {token_url} ({type(exc).__name__}: {exc})"
        ) from None
    try:
        body: dict[str, Any] = answer.json()
    except ValueError:
        body = {}
    token = body.get("access_token")
    if answer.status_code != 200 or not isinstance(token, str):
        why = body.get("error_description") or body.get("error") or f"HTTP {answer.status_code}"
        raise CredentialsRefused(str(why).split("\n")[0][:300])
    return token, float(body.get("expires_in") or 3600)


class BotToken:
    """The current access token, fetched again a minute before it runs out."""

    def __init__(self, http: httpx.AsyncClient, token_url: str, app_id: str, password: str):
        self._http, self._url, self._id, self._password = http, token_url, app_id, password
        self._token: str | None = None
        self._until = 0.0
        self._lock = asyncio.Lock()

    async def __call__(self) -> str:
        async with self._lock:
            if self._token is None or time.monotonic() > self._until:
                token, seconds = await request_token(
                    self._http, self._url, self._id, self._password
                )
                self._token, self._until = token, time.monotonic() + max(seconds - 60, 30)
            return self._token

    def forget(self) -> None:
        self._token = None


async def jwks_uri(http: httpx.AsyncClient, openid_url: str) -> tuple[str, str]:
    """The signing keys' address and the issuer, from the Bot Framework's OpenID metadata."""
    answer = await http.get(openid_url)
    answer.raise_for_status()
    metadata = answer.json()
    return str(metadata["jwks_uri"]), str(metadata.get("issuer") or BOT_ISSUER)


def validator(app_id: str, keys: str, issuer: str) -> Any:
    """The Teams SDK's validator of Bot Framework tokens: RS256, signed by one of `keys`,
    issued by the Bot Framework, for this bot (aud), not expired; the service URL the
    activity names must be the one the token names (checked per request)."""
    with warnings.catch_warnings():
        # microsoft_teams.apps announces its preview features (HTML widgets) on import.
        warnings.simplefilter("ignore")
        from microsoft_teams.apps.auth.token_validator import (
            JwtValidationOptions,
            TokenValidator,
        )

    options = JwtValidationOptions(
        valid_issuers=[issuer],
        valid_audiences=[app_id, f"api://{app_id}"],
        jwks_uri=keys,
    )
    return TokenValidator(options)
