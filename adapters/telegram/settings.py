"""The Telegram messenger's settings (PINWALL_TELEGRAM_*). The bot's token and Bot API
address (PINWALL_TELEGRAM_TOKEN, _BASE_URL) are the core's: the telegram_channel outlet
posts as the same bot."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import SecretStr, field_validator

from bot.config import Settings


class TelegramSettings(Settings):
    telegram_mode: Literal["polling", "webhook"] = "polling"
    telegram_webhook_secret: SecretStr | None = None

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _telegram_secret(cls, value: SecretStr | None) -> SecretStr | None:
        # Telegram's own rule for secret_token; anything else it refuses at setWebhook.
        if value is not None and not re.fullmatch(
            r"[A-Za-z0-9_-]{1,256}", value.get_secret_value()
        ):
            raise ValueError("use 1 to 256 characters of A-Z, a-z, 0-9, _ and -")
        return value

    @property
    def telegram_configured(self) -> bool:
        return self.telegram_token is not None
