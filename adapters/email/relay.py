"""The company's relay, with its connections kept: a few open SMTP sessions (aiosmtplib)
that the delivery worker's concurrent sends take turns on, instead of a connection, TLS
handshake and login per mail. A session that broke meanwhile (the relay closed an idle
one) is replaced once; any other failure closes the session it happened on."""

from __future__ import annotations

import asyncio
import contextlib
from email.message import EmailMessage

import aiosmtplib

from adapters.email.settings import MailSettings


class Relay:
    def __init__(self, settings: MailSettings, *, sessions: int = 4) -> None:
        self.settings = settings
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(sessions)

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        assert s.smtp_host is not None
        client = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            use_tls=s.smtp_security == "tls",
            start_tls=s.smtp_security == "starttls",
            timeout=s.smtp_timeout,
        )
        await client.connect()
        if s.smtp_user and s.smtp_password is not None:
            await client.login(s.smtp_user, s.smtp_password.get_secret_value())
        return client

    async def send(self, mail: EmailMessage, sender: str) -> None:
        async with self._slots:
            client = self._idle.pop() if self._idle else None
            fresh = client is None
            try:
                if client is None:
                    client = await self._connect()
                try:
                    await client.send_message(mail, sender=sender)
                except aiosmtplib.SMTPServerDisconnected:
                    if fresh:
                        raise
                    # an idle session the relay closed meanwhile: once on a new one
                    await _close(client)
                    client = await self._connect()
                    await client.send_message(mail, sender=sender)
            except BaseException:
                if client is not None:
                    await _close(client)
                raise
            self._idle.append(client)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client in idle:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await client.quit()
            await _close(client)


async def _close(client: aiosmtplib.SMTP) -> None:
    with contextlib.suppress(Exception):  # closing a broken session: nothing to report
        client.close()
