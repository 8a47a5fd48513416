"""The Matrix messenger's settings (PINWALL_MATRIX_*)."""

from __future__ import annotations

import re

from pydantic import SecretStr, field_validator, model_validator

from bot.config import Settings
from bot.errors import ConfigError


class MatrixSettings(Settings):
    matrix_homeserver: str | None = None
    matrix_user_id: str | None = None
    matrix_access_token: SecretStr | None = None
    matrix_password: SecretStr | None = None
    matrix_member_servers: str = ""

    @field_validator("matrix_homeserver")
    @classmethod
    def _matrix_homeserver(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must be the homeserver's http:// or https:// URL")
        return value

    @field_validator("matrix_user_id")
    @classmethod
    def _matrix_user(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"@[^:\s]+:\S+", value):
            raise ValueError("must be a full Matrix user id, like @pinwall:example.org")
        return value

    @model_validator(mode="after")
    def _matrix_complete(self) -> MatrixSettings:
        # Raised as it is (not a ValueError), so that the message names the setting.
        if self.matrix_homeserver is None:
            return self
        if not self.matrix_user_id:
            raise ConfigError(
                "PINWALL_MATRIX_USER_ID: missing; the bot's Matrix user id, like "
                "@pinwall:example.org (PINWALL_MATRIX_HOMESERVER is set)"
            )
        if self.matrix_access_token is None and self.matrix_password is None:
            raise ConfigError(
                "PINWALL_MATRIX_ACCESS_TOKEN: missing; set it or PINWALL_MATRIX_PASSWORD "
                "for the bot to log in (PINWALL_MATRIX_HOMESERVER is set)"
            )
        return self

    @property
    def matrix_configured(self) -> bool:
        return self.matrix_homeserver is not None

    def matrix_member_server_list(self) -> list[str]:
        """PINWALL_MATRIX_MEMBER_SERVERS; empty means the bot's own server."""
        return [e.strip().lower() for e in self.matrix_member_servers.split(",") if e.strip()]
