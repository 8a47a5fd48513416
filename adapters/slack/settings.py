"""The Slack messenger's settings (PINWALL_SLACK_*)."""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr, field_validator

from bot.config import Settings


class SlackSettings(Settings):
    slack_bot_token: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_mode: Literal["socket", "http"] = "socket"
    slack_api_url: str = "https://slack.com/api/"
    # A profile's mail address (users.info, scope users:read.email) proves the address
    # when Slack says it is confirmed (is_email_confirmed); with this on, also when it
    # does not: the workspace's admins set the addresses (SSO/SCIM), not the people.
    slack_trust_profile_email: bool = False

    @field_validator("slack_api_url")
    @classmethod
    def _slack_api_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @property
    def slack_configured(self) -> bool:
        return self.slack_bot_token is not None
