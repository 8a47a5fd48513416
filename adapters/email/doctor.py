"""What `pinwall doctor` checks of the mail settings: the relay answers (and takes the
login), the listening address is free, and the pieces that belong together are set."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence

import aiosmtplib

from adapters.email.settings import MailSettings
from bot.messenger import Problem


async def check(settings: MailSettings) -> Sequence[Problem]:
    problems: list[Problem] = []
    if settings.mail_listen and not settings.mail_authserv_id:
        problems.append(
            Problem(
                "PINWALL_MAIL_AUTHSERV_ID is not set: only mails with a DKIM signature that "
                "Pinwall verifies itself count as from their sender",
                "set it to the authserv-id in your MTA's Authentication-Results header",
            )
        )
    if settings.mail_listen and not settings.smtp_host:
        problems.append(
            Problem(
                "PINWALL_SMTP_HOST is not set: Pinwall takes mail but cannot answer it (codes, "
                "refusals) nor mail anyone",
                "set PINWALL_SMTP_HOST (and _PORT, _USER, _PASSWORD) to the company's relay",
            )
        )
    if settings.smtp_host and not settings.public_url:
        problems.append(
            Problem(
                "PINWALL_PUBLIC_URL is not set: mails go out without an unsubscribe link",
                "set it to the address at which people reach Pinwall's HTTP endpoints",
            )
        )
    listen = settings.mail_listen_address()
    if listen is not None and listen.path is None and listen.port != 0:
        try:
            await asyncio.to_thread(_bindable, listen.host, listen.port)
        except OSError as exc:
            problems.append(
                Problem(
                    f"PINWALL_MAIL_LISTEN: cannot listen on {settings.mail_listen} ({exc})",
                    "stop what uses the port, or choose another",
                )
            )
    if settings.smtp_host:
        problems.extend(await _relay(settings))
    return problems


def _bindable(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))


async def _relay(settings: MailSettings) -> list[Problem]:
    assert settings.smtp_host is not None
    client = aiosmtplib.SMTP(
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        use_tls=settings.smtp_security == "tls",
        start_tls=settings.smtp_security == "starttls",
        timeout=min(settings.smtp_timeout, 10),
    )
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    try:
        await client.connect()
        if settings.smtp_user and settings.smtp_password is not None:
            await client.login(settings.smtp_user, settings.smtp_password.get_secret_value())
        await client.quit()
    except aiosmtplib.SMTPAuthenticationError:
        return [
            Problem(
                f"the relay {where} refuses PINWALL_SMTP_USER's login",
                "check PINWALL_SMTP_USER and PINWALL_SMTP_PASSWORD",
            )
        ]
    except (aiosmtplib.SMTPException, OSError) as exc:
        return [
            Problem(
                f"cannot reach the relay {where} ({exc})",
                "check PINWALL_SMTP_HOST, _PORT and _SECURITY (starttls, tls or none)",
            )
        ]
    return []
