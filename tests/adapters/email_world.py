"""A running Pinwall with the mail bridge on, for the mail tests: the whole program
(app.wiring.build and serve) with its SMTP listener on 127.0.0.1 port 0, an aiosmtpd
sink standing in for the company's relay, and Echo (tests/fakes/messenger_echo) as the
messenger colleagues use for commands."""

from __future__ import annotations

import asyncio
import email
import email.policy
import itertools
import os
import re
import smtplib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
from aiosmtpd.smtp import SMTP, Envelope, Session

from adapters.email.adapter import MailAdapter
from app.config import load_settings
from app.messengers import MESSENGERS
from app.wiring import Program, build, serve
from bot.markup import to_plain
from tests.fakes import messenger_echo
from tests.fakes.messenger_echo.adapter import EchoAdapter

DOMAIN = "pinwall.firma.test"
AUTHSERV = "mx.firma.test"
PUBLIC_URL = "https://pinwall.firma.test"
SAMPLES = Path(__file__).parent / "mail_samples"
WITH_ECHO = (*MESSENGERS, messenger_echo.MESSENGER)
_ids = itertools.count(1)


@dataclass
class Sink:
    """The company's relay: keeps every mail it accepts."""

    mails: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    refuse: str | None = None  # an SMTP reply to give instead of accepting

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refuse is not None:
            return self.refuse
        raw = envelope.original_content or b""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.mails.append(message)
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 2.0.0 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.mails if str(m["To"]).lower() == address.lower()]


def plain(mail: EmailMessage) -> str:
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


@dataclass
class MailWorld:
    program: Program
    http: httpx.AsyncClient
    sink: Sink
    listen: tuple[str, int]

    @property
    def echo(self) -> EchoAdapter:
        echo = self.program.hub.adapters["echo"]
        assert isinstance(echo, EchoAdapter)
        return echo

    @property
    def mail(self) -> MailAdapter:
        adapter = self.program.hub.adapters["email"]
        assert isinstance(adapter, MailAdapter)
        return adapter

    async def say(self, user: str, text: str) -> str:
        """What Echo delivered to `user` in answer to `text`, as plain text."""
        before = len(self.echo.sent)
        response = await self.http.post(
            "/echo/events", json={"user": user, "text": text, "id": f"ev{next(_ids)}"}
        )
        assert response.status_code == 200
        await self.program.worker.drain()
        return "\n".join(to_plain(m.text) for t, m in self.echo.sent[before:] if t.address == user)

    def told(self, user: str) -> list[str]:
        return [
            to_plain(f"{m.title}\n{m.text}" if m.title else m.text)
            for t, m in self.echo.sent
            if t.address == user
        ]

    async def told_eventually(self, user: str, needle: str, within: float = 5.0) -> str:
        """The newest message Echo delivered to `user` with `needle`, waiting for it (an
        answer may wait behind a card's coalesced edit, up to a second)."""
        deadline = asyncio.get_running_loop().time() + within
        while not (found := [m for m in self.told(user) if needle in m]):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no {needle!r} to {user}: {self.told(user)[-3:]}")
            await asyncio.sleep(0.02)
        return found[-1]

    async def verify(self, user: str, address: str) -> None:
        """`user` makes `address` theirs: the code comes by mail, goes back on Echo."""
        before = len(self.sink.mails)
        answer = await self.say(user, f"?email {address}")
        assert "I've sent a code" in answer
        [mail] = [m for m in self.sink.mails[before:] if str(m["To"]) == address.lower()]
        code = re.search(r"Your code: ([A-Z0-9]{8})", plain(mail))
        assert code is not None, plain(mail)
        assert "is yours on Pinwall now" in await self.say(user, f"?email confirm {code[1]}")

    async def send(
        self, raw: bytes, *, sender: str, to: list[str], **options: Any
    ) -> tuple[dict[str, Any], str]:
        """A mail to Pinwall's listener over SMTP; then the deliveries it caused."""
        host, port = self.listen
        result = await aiosmtplib.send(
            raw, sender=sender, recipients=to, hostname=host, port=port, **options
        )
        await self.program.worker.drain()
        return result

    async def send_null_sender(self, raw: bytes, *, to: str) -> None:
        """A mail with the null reverse-path (MAIL FROM:<>), as a DSN comes: smtplib."""
        host, port = self.listen

        def send() -> None:
            with smtplib.SMTP(host, port) as client:
                client.sendmail("<>", [to], raw)

        await asyncio.to_thread(send)
        await self.program.worker.drain()


def sample(name: str, **replace: str) -> bytes:
    raw = (SAMPLES / name).read_bytes()
    for old, new in replace.items():
        raw = raw.replace(old.encode(), new.encode())
    return raw


@asynccontextmanager
async def mail_world(tmp_path: Path, **overrides: Any) -> AsyncIterator[MailWorld]:
    for key in list(os.environ):
        if key.startswith("PINWALL_"):
            del os.environ[key]
    sink = Sink()
    loop = asyncio.get_running_loop()
    relay = await loop.create_server(lambda: SMTP(sink, hostname="relay.test"), "127.0.0.1", 0)
    relay_port = relay.sockets[0].getsockname()[1]
    settings = load_settings(
        WITH_ECHO,
        **{
            "database_url": f"sqlite:///{tmp_path / 'pinwall.db'}",
            "data_dir": tmp_path / "data",
            "http_port": 0,
            "cpu_affinity": "off",
            "link_previews": False,
            "echo_enabled": True,
            "admins": "echo:e1",
            "public_url": PUBLIC_URL,
            "mail_listen": "127.0.0.1:0",
            "mail_domain": DOMAIN,
            "mail_authserv_id": AUTHSERV,
            "smtp_host": "127.0.0.1",
            "smtp_port": relay_port,
            "smtp_security": "none",
            "rate_limits": {"echo": {"per_dm": 100}, "email": {"per_dm": 100, "overall": 100}},
            **overrides,
        },
    )
    program = build(settings)
    task = asyncio.create_task(serve(program))
    try:
        while program.address is None or not all(
            a.healthy() for a in program.hub.adapters.values()
        ):
            assert not task.done(), task.result()
            await asyncio.sleep(0.01)
        mail = program.hub.adapters["email"]
        assert isinstance(mail, MailAdapter)
        assert mail.address is not None
        host, port = program.address
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
            yield MailWorld(program, http, sink, mail.address)
    finally:
        program.stop.set()
        await task
        relay.close()
        await relay.wait_closed()
