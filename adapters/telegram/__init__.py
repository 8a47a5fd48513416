"""The Telegram adapter (python-telegram-bot v22): franchisees and branches on their phones.

inbound.py   updates -> Pinwall events (pure)
render.py    neutral messages -> Telegram HTML and inline keyboards (pure)
adapter.py   the Bot API I/O: polling or webhook, sends, files
settings.py  PINWALL_TELEGRAM_*

MESSENGER is the package's descriptor (bot.messenger); the SDK is imported only when
the adapter is built.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from adapters.telegram.settings import TelegramSettings
from bot.messenger import Messenger, PlatformLimits, Problem, Rate

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from adapters.telegram.adapter import TelegramAdapter
    from bot.runtime import Hub

# python-telegram-bot 22 is moving time periods (retry_after, ...) from int to timedelta
# and warns on every use of the old form; Pinwall takes the new one.
os.environ.setdefault("PTB_TIMEDELTA", "true")


def _build(settings: TelegramSettings, hub: Hub) -> TelegramAdapter:
    from adapters.telegram.adapter import TelegramAdapter

    assert settings.telegram_token is not None
    secret = settings.telegram_webhook_secret
    return TelegramAdapter(
        hub,
        token=settings.telegram_token.get_secret_value(),
        secret_key=settings.secret_key_value(),
        base_url=settings.telegram_base_url,
        mode=settings.telegram_mode,
        webhook_secret=secret.get_secret_value() if secret else None,
        public_url=settings.public_url,
        company=settings.company_name,
    )


def _routes(adapter: TelegramAdapter) -> Sequence[BaseRoute]:
    return adapter.routes()  # /telegram/webhook, in webhook mode


async def _check(settings: TelegramSettings) -> Sequence[Problem]:
    from adapters.telegram.doctor import check

    return await check(settings)


MESSENGER = Messenger(
    name="telegram",
    display_name="Telegram",
    command_prefix="/",
    settings=TelegramSettings,
    configured=lambda settings: settings.telegram_configured,
    build=_build,
    check=_check,
    routes=_routes,
    # Telegram's documented limits: 30 messages a second overall, one a second per
    # chat, 20 a minute per group.
    rate_limits=PlatformLimits(overall=Rate(30, 30), per_dm=Rate(1, 1), per_room=Rate(20 / 60, 3)),
    shown_in_place=True,  # editMessageText
    decided_in_place=True,
    menus_by_role=True,  # BotCommandScopeChat
)

__all__ = ["MESSENGER"]
