"""The mail bridge: group addresses, replies as comments, notifications and digests by
mail, for the people who still live in their mail client.

inbound.py    a mail (bytes) -> what Pinwall takes of it, or why not (pure)
render.py     neutral messages -> multipart text + HTML mails (pure)
receive.py    the SMTP listener (aiosmtpd) on Pinwall's loop: RCPT and DATA
adapter.py    lifecycle, sending through the relay (aiosmtplib), one-click unsubscribe
records.py    what it reads and writes in the store besides events
settings.py   PINWALL_MAIL_*, PINWALL_SMTP_*

MESSENGER is the package's descriptor (bot.messenger); aiosmtpd and aiosmtplib are
imported only when the adapter is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from adapters.email.settings import MailSettings
from bot.messenger import Messenger, PlatformLimits, Problem, Rate
from store.models import MAIL_PLATFORM

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from adapters.email.adapter import MailAdapter
    from bot.runtime import Hub


def _build(settings: MailSettings, hub: Hub) -> MailAdapter:
    from adapters.email.adapter import MailAdapter
    from adapters.email.dkim_check import dkim_checker

    return MailAdapter(
        hub, settings, secret_key=settings.secret_key_value(), dkim_check=dkim_checker()
    )


def _routes(adapter: MailAdapter) -> Sequence[BaseRoute]:
    return adapter.routes()  # /mail/unsubscribe/<token>


async def _check(settings: MailSettings) -> Sequence[Problem]:
    from adapters.email.doctor import check

    return await check(settings)


MESSENGER = Messenger(
    name=MAIL_PLATFORM,
    display_name="Mail",
    command_prefix="",
    settings=MailSettings,
    configured=lambda settings: settings.mail_configured,
    build=_build,
    routes=_routes,
    check=_check,
    # A company relay takes a few mails a second without counting them as a flood.
    rate_limits=PlatformLimits(overall=Rate(20, 20), per_dm=Rate(2, 5)),
)

__all__ = ["MESSENGER"]
