"""The mail bridge's adapter: the SMTP listener's lifecycle (receive.py does the mail),
sending through the company's relay with aiosmtplib, and the one-click unsubscribe page."""

from __future__ import annotations

import asyncio
import html
import logging
from pathlib import Path
from typing import Any

import aiosmtplib
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from adapters.email import records
from adapters.email.inbound import BOUNCES, message_id, reply_address
from adapters.email.receive import (
    ENCODING_SLACK,
    HEADROOM,
    DkimCheck,
    MailReceiver,
    PinwallLMTP,
    PinwallSMTP,
)
from adapters.email.relay import Relay
from adapters.email.render import Envelope, compose
from adapters.email.settings import MailSettings
from bot.i18n import Translator
from bot.message import (
    Capabilities,
    Delivered,
    DeliveryFailed,
    FileRef,
    Message,
    SendResult,
    Target,
)
from bot.runtime import Hub
from bot.signing import UrlSigner
from store.models import MAIL_PLATFORM

log = logging.getLogger(__name__)

UNSUBSCRIBE_PATH = "/mail/unsubscribe/{token}"
UNSUBSCRIBE_PURPOSE = "mail-unsubscribe"


class MailAdapter:
    platform = MAIL_PLATFORM
    capabilities = Capabilities(buttons=False, html=True, max_text=100_000)
    command_prefix = ""  # mail carries no commands; they are said on a messenger

    def __init__(
        self,
        hub: Hub,
        settings: MailSettings,
        *,
        secret_key: str,
        dkim_check: DkimCheck | None = None,
    ) -> None:
        assert settings.mail_domain is not None
        self.hub = hub
        self.settings = settings
        self.domain = settings.mail_domain
        self.signer = UrlSigner(secret_key)
        self.public_url = (settings.public_url or "").rstrip("/")
        max_file = hub.blobs.max_bytes if hub.blobs else settings.file_max_mb * 1024 * 1024
        self.max_file = max_file
        self.receiver = MailReceiver(
            hub,
            domain=self.domain,
            signer=self.signer,
            authserv_id=settings.mail_authserv_id,
            per_minute=settings.mail_per_minute,
            max_file=max_file,
            language=settings.default_language,
            dkim_check=dkim_check,
        )
        self.relay = Relay(settings)
        self.server: asyncio.Server | None = None
        self.address: tuple[str, int] | None = None
        self._last_error: str | None = None

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        listen = self.settings.mail_listen_address()
        if listen is None:
            return
        limit = int(self.max_file * ENCODING_SLACK) + HEADROOM
        too_large = self.receiver.smtp_text("mail.smtp.too_large", max=self.max_file // 2**20)
        server = PinwallLMTP if listen.protocol == "lmtp" else PinwallSMTP

        def protocol() -> PinwallSMTP:
            return server(
                self.receiver,
                too_large=too_large,
                hostname=self.domain,
                ident="Pinwall",
                # aiosmtpd stops keeping a mail's lines beyond this and answers 552
                data_size_limit=limit,
                enable_SMTPUTF8=True,
            )

        loop = asyncio.get_running_loop()
        if listen.path is not None:
            # a socket left by a Pinwall that crashed (a moment's work: no thread)
            Path(listen.path).unlink(missing_ok=True)  # noqa: ASYNC240
            self.server = await loop.create_unix_server(protocol, listen.path)
            self.address = (listen.path, 0)
        else:
            self.server = await loop.create_server(protocol, listen.host, listen.port)
            sockname = self.server.sockets[0].getsockname()
            self.address = (sockname[0], sockname[1])
        where = listen.path or "{}:{}".format(*self.address)
        log.warning("Mail: receiving for @%s on %s (%s)", self.domain, where, listen.protocol)

    async def stop(self) -> None:
        await self.relay.close()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
            listen = self.settings.mail_listen_address()
            if listen is not None and listen.path is not None:
                Path(listen.path).unlink(missing_ok=True)  # noqa: ASYNC240 - a moment's work

    def healthy(self) -> bool:
        return self.problem() is None

    def problem(self) -> str | None:
        if self.settings.mail_listen and self.server is None:
            return "the mail listener is not running"
        return self._last_error

    # --- sending ------------------------------------------------------------------------

    async def send(self, target: Target, message: Message, *, key: str = "") -> SendResult:
        if not self.settings.smtp_host:
            return DeliveryFailed("PINWALL_SMTP_HOST is not set: no mail goes out", permanent=True)
        mail = await self.compose(target, message, key)
        try:
            # the envelope sender is where DSNs come back (receive.py)
            await self.relay.send(mail, f"{BOUNCES}@{self.domain}")
        except aiosmtplib.SMTPRecipientsRefused as exc:
            return DeliveryFailed(f"the relay refused {target.address}: {exc}", permanent=True)
        except aiosmtplib.SMTPResponseException as exc:
            permanent = 500 <= exc.code < 600
            self._last_error = None if permanent else f"the relay answered {exc.code}"
            return DeliveryFailed(
                f"the relay answered {exc.code} {exc.message}", permanent=permanent
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            self._last_error = f"cannot reach the relay: {exc}"
            return DeliveryFailed(self._last_error)
        self._last_error = None
        self.hub.metrics.mail_sent.inc()
        return Delivered(message_id=str(mail["Message-ID"]), conversation=target.address)

    async def compose(self, target: Target, message: Message, key: str) -> Any:
        """The mail for one outbox row (`key`: "pw<row id>", its Message-ID's left part,
        signed with the address: inbound.message_id)."""
        # a post, or a notice about one ("comment_on": a comment on their post): a reply
        # to its mail comments on that post
        item = message.meta.get("item", message.meta.get("comment_on"))
        item_id = item if isinstance(item, int) else None
        core = self.hub.core
        # one trip to the store for all a mail needs to know (a digest's unsubscribe
        # link is for the digests; a post's for its group)
        about = await self.hub.call(
            records.mail_context, core, target.address, item_id, "digest" in message.meta
        )
        t = Translator(about.language)
        reply_to = unsubscribe = None
        if item_id is not None and about.person_id is not None:
            reply_to = reply_address(self.signer, item_id, about.person_id, self.domain)
        if about.group_id is not None and about.person_id is not None and self.public_url:
            token = self.signer.token(UNSUBSCRIBE_PURPOSE, about.person_id, about.group_id)
            unsubscribe = self.public_url + UNSUBSCRIBE_PATH.format(token=token)
        group_label = about.group_label
        envelope = Envelope(
            sender=f"pinwall@{self.domain}",
            sender_name=str(t("mail.out.from_name")),
            recipient=target.address,
            message_id=message_id(self.signer, key or "pw0", target.address, self.domain),
            date=self.hub.clock.now(),
            reply_to=reply_to,
            unsubscribe_url=unsubscribe,
            reply_hint=str(t("mail.out.reply_hint")),
            unsubscribe_text=str(
                t("mail.out.unsubscribe", group=group_label, url=unsubscribe or "")
            ),
        )
        files = await self._files(message.files)
        return compose(message, envelope, files)

    async def _files(self, refs: tuple[FileRef, ...]) -> list[tuple[FileRef, bytes]]:
        blobs = self.hub.blobs
        if blobs is None:
            return []
        out = []
        for ref in refs:
            if blobs.exists(ref.blob_id):
                out.append((ref, await asyncio.to_thread(blobs.read, ref.blob_id)))
        return out

    # --- one-click unsubscribe (RFC 8058) ---------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [Route(UNSUBSCRIBE_PATH, self._unsubscribe, methods=["GET", "POST"])]

    async def _unsubscribe(self, request: Request) -> Response:
        """GET: a page with one button; POST (the button, or the mail client's one-click
        `List-Unsubscribe=One-Click`): done. The signed token is the whole authority."""
        opened = self.signer.open_token(UNSUBSCRIBE_PURPOSE, str(request.path_params["token"]), 2)
        found = None
        if opened is not None:
            found = await self.hub.call(records.subscription, self.hub.core, *opened)
        if opened is None or found is None:
            t = Translator(self.hub.core.settings.default_language)
            return _page(t, t("mail.unsubscribe.invalid"), status=404)
        group, language = found
        t = Translator(language)
        if request.method == "POST":
            person_id, group_id = opened
            now = self.hub.clock.now()
            await self.hub.call(records.unsubscribe, self.hub.core, person_id, group_id, now)
            return _page(t, t("mail.unsubscribe.done", group=group))
        form = (
            f'<form method="post"><button type="submit">'
            f"{html.escape(str(t('mail.unsubscribe.button')))}</button></form>"
        )
        return _page(t, t("mail.unsubscribe.question", group=group), extra=form)


def _page(t: Translator, text: str, *, extra: str = "", status: int = 200) -> HTMLResponse:
    title = html.escape(str(t("mail.unsubscribe.title")))
    body = (
        f'<!DOCTYPE html><html lang="{t.language}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width"><title>Pinwall: {title}</title>'
        f"</head><body><h1>Pinwall</h1><p>{html.escape(str(text))}</p>{extra}</body></html>"
    )
    return HTMLResponse(body, status_code=status)
