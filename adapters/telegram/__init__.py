"""The Telegram adapter (python-telegram-bot v22): franchisees and branches on their phones.

inbound.py   updates -> Pinwall events (pure)
render.py    neutral messages -> Telegram HTML and inline keyboards (pure)
adapter.py   the Bot API I/O: polling or webhook, sends, files
"""

import os

# python-telegram-bot 22 is moving time periods (retry_after, ...) from int to timedelta
# and warns on every use of the old form; Pinwall takes the new one.
os.environ.setdefault("PTB_TIMEDELTA", "true")

from adapters.telegram.adapter import TelegramAdapter

__all__ = ["TelegramAdapter"]
