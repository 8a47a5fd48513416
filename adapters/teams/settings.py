"""The Teams messenger's settings (PINWALL_TEAMS_*).

The three a registration gives (README, "Microsoft Teams"): the bot's Microsoft App ID,
its client secret and the Entra tenant. The two URLs are advanced settings, for tests
and sovereign clouds only: where the Bot Framework's OpenID metadata (and so the keys
that sign its requests) and the token endpoint are. Requests are always checked
against those keys; there is no setting that turns the check off.
"""

from __future__ import annotations

from pydantic import SecretStr, field_validator, model_validator

from bot.config import Settings
from bot.errors import ConfigError

OPENID_URL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
TOKEN_URL = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"  # noqa: S105


class TeamsSettings(Settings):
    teams_app_id: str | None = None
    teams_app_password: SecretStr | None = None
    teams_tenant_id: str | None = None
    # Advanced / tests: the OpenID metadata whose jwks_uri signs inbound requests, and
    # the OAuth token endpoint ({tenant} is replaced by PINWALL_TEAMS_TENANT_ID).
    teams_openid_url: str = OPENID_URL
    teams_token_url: str = TOKEN_URL

    @field_validator("teams_openid_url", "teams_token_url")
    @classmethod
    def _teams_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _teams_complete(self) -> TeamsSettings:
        # The app id alone is enough for `pinwall teams manifest`; running needs all three.
        if self.teams_app_password is not None or self.teams_tenant_id:
            missing = [
                name
                for name, value in (
                    ("PINWALL_TEAMS_APP_ID", self.teams_app_id),
                    ("PINWALL_TEAMS_APP_PASSWORD", self.teams_app_password),
                    ("PINWALL_TEAMS_TENANT_ID", self.teams_tenant_id),
                )
                if not value
            ]
            if missing:
                raise ConfigError(
                    f"{', '.join(missing)}: missing; Teams needs the bot's app id, a client "
                    "secret of it and the tenant id (README, Microsoft Teams)"
                )
        return self

    @property
    def teams_configured(self) -> bool:
        return bool(self.teams_app_id and self.teams_app_password and self.teams_tenant_id)

    def teams_token_endpoint(self) -> str:
        return self.teams_token_url.replace("{tenant}", self.teams_tenant_id or "botframework.com")
