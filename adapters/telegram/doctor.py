"""What `pinwall doctor` asks Telegram: is the token accepted, and in webhook mode, is the
webhook registered where Pinwall listens and does Telegram reach it."""

from __future__ import annotations

from collections.abc import Sequence

from telegram import Bot
from telegram.error import InvalidToken, TelegramError

from adapters.telegram.adapter import WEBHOOK_PATH, file_base_url
from adapters.telegram.settings import TelegramSettings
from bot.messenger import Problem


async def check(settings: TelegramSettings) -> Sequence[Problem]:
    assert settings.telegram_token is not None
    base_url = settings.telegram_base_url
    bot = Bot(
        settings.telegram_token.get_secret_value(),
        base_url=base_url,
        base_file_url=file_base_url(base_url),
    )
    try:
        async with bot:  # getMe
            if settings.telegram_mode != "webhook":
                return ()
            info = await bot.get_webhook_info()
    except InvalidToken:
        return (
            Problem(
                "Telegram does not accept PINWALL_TELEGRAM_TOKEN",
                "copy the token again from @BotFather (/mybots → your bot → API Token)",
            ),
        )
    except TelegramError as exc:
        return (
            Problem(
                f"the Bot API at {base_url} does not answer ({exc})",
                "check PINWALL_TELEGRAM_BASE_URL and that this machine reaches it",
            ),
        )
    expected = (settings.public_url or "").rstrip("/") + WEBHOOK_PATH
    problems: list[Problem] = []
    if info.url != expected:
        problems.append(
            Problem(
                f"Telegram's webhook is {info.url or 'not set'}, Pinwall listens at {expected}",
                "start pinwall run once (it registers the webhook); check PINWALL_PUBLIC_URL",
            )
        )
    elif info.last_error_message:
        problems.append(
            Problem(
                f"Telegram cannot deliver to {expected}: {info.last_error_message}",
                "make that address reachable from the internet over HTTPS "
                "(a reverse proxy in front of Pinwall's HTTP port)",
            )
        )
    return problems
