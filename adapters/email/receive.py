"""Receiving mail: an aiosmtpd SMTP (or LMTP) server on Pinwall's event loop.

RCPT TO is checked as it comes: a group's address or a signed reply address, else 550
and nothing is read. Over LMTP the end of DATA gets one reply per recipient (RFC 2033),
so that a reply address that is someone else's is refused alone. DATA is parsed
(inbound.py); a mail from a verified address whose sender is authenticated (the MTA's
Authentication-Results, or a DKIM signature Pinwall verifies itself) becomes a
MessageReceived of intent "mail" through the hub; the inbox keeps it once per
Message-ID and address. Anything else is refused with a short reason in the SMTP reply
(the sending server tells its sender), held, or dropped.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import replace
from email.parser import HeaderParser
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session

from adapters.email import records
from adapters.email.inbound import (
    Mail,
    Refused,
    addressed,
    authenticated_by_mta,
    parse,
    route,
    sent_row,
)
from adapters.email.newsletter import confirmation_links, entry_of, is_confirmation
from bot.events import (
    Actor,
    CommandInvoked,
    Conversation,
    InboundFile,
    MessageReceived,
    Meta,
    dump_event,
)
from bot.i18n import LANGUAGES, Translator
from bot.runtime import Hub
from bot.signing import UrlSigner
from store.models import MAIL_PLATFORM
from store.names import to_ascii

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 10
# Base64 makes a file a third larger; the rest of a mail is small beside it.
ENCODING_SLACK = 1.4
HEADROOM = 1024 * 1024

DkimCheck = Callable[[bytes, str], bool]


# What aiosmtpd answers at the end of a DATA it stopped keeping: over its
# data_size_limit, the lines beyond it are read and thrown away (never all in memory),
# then this one reply; over LMTP it must be one per recipient.
_AFTER_DATA = ("552 Error: Too much mail data", "500 Line too long")


# The rate limit's key for mail that only claims its sender (not authenticated), and how
# many of a sender's budgets all such mail together may use.
UNAUTHENTICATED = "unauthenticated:"
ALL_UNAUTHENTICATED = 5


class PinwallSMTP(SMTP):
    """aiosmtpd's server, saying why a mail is too large in Pinwall's words (the limit)."""

    def __init__(self, handler: Any, *, too_large: str, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._too_large = too_large
        self._handler = handler

    async def push(self, status: str) -> None:  # type: ignore[override]
        after_data = status.startswith(_AFTER_DATA)
        if status.startswith("552 Error"):  # over SIZE (MAIL FROM), or over it in DATA
            status = f"552 5.3.4 {self._too_large}"
            if isinstance(self._handler, MailReceiver):
                self._handler.refused.labels("too_large").inc()
        if after_data and isinstance(self, LMTP) and self.envelope is not None:
            status = "\r\n".join([status] * max(1, len(self.envelope.rcpt_tos)))
        await super().push(status)


class PinwallLMTP(PinwallSMTP, LMTP):
    """The same over LMTP (LHLO; a reply per recipient after DATA): for an MTA that
    delivers to Pinwall as to a mailbox (Postfix's lmtp transport, a unix socket)."""


class MailReceiver:
    """aiosmtpd's handler: handle_RCPT and handle_DATA."""

    def __init__(
        self,
        hub: Hub,
        *,
        domain: str,
        signer: UrlSigner,
        authserv_id: str | None,
        per_minute: int,
        max_file: int,
        language: str,
        dkim_check: DkimCheck | None = None,
    ) -> None:
        self.hub = hub
        self.domain = domain
        self.signer = signer
        self.authserv_id = authserv_id
        self.per_minute = per_minute
        self.max_file = max_file
        self.t = Translator(language)
        self.others = [Translator(other) for other in LANGUAGES if other != self.t.language]
        self.dkim_check = dkim_check
        counters = hub.metrics
        self.received = counters.mail_received
        self.refused = counters.mail_refused

    def smtp_text(self, key: str, **params: Any) -> str:
        """A catalog text as an SMTP reply may carry it: one line of ASCII, in Pinwall's
        language and then the other (the sender's own is not known; their mail server
        tells them this line)."""
        said = [self.t(key, **params), *(t(key, **params) for t in self.others)]
        texts = [to_ascii(" ".join(str(text).split())).replace("*", "") for text in said]
        return " / ".join(dict.fromkeys(texts))

    def _refuse(self, code: int, key: str, reason: str, **params: Any) -> str:
        self.refused.labels(reason).inc()
        enhanced = {450: "4.2.0", 451: "4.7.1", 550: "5.1.1", 552: "5.3.4", 554: "5.6.0"}
        return f"{code} {enhanced.get(code, '5.0.0')} {self.smtp_text(key, **params)}"

    # --- SMTP -------------------------------------------------------------------------

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        match route(address, self.domain, self.signer):
            case ("group" | "newsletter", slug):
                known = await self.hub.call(records.group_exists, self.hub.core, slug)
            case None:
                known = False
            case _:  # a signed reply address, or the bounces of Pinwall's own mails
                known = True
        if not known:
            return self._refuse(550, "mail.smtp.unknown_address", "unknown_address")
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        statuses = await self._receive(envelope)
        if isinstance(server, LMTP):  # one reply per recipient, in the order of RCPT
            return "\r\n".join(statuses)
        # SMTP has one reply: accepted when it was for any recipient
        return next((s for s in statuses if s.startswith("2")), statuses[0])

    async def _receive(self, envelope: Envelope) -> list[str]:
        """The reply for each recipient (envelope.rcpt_tos), mostly all the same."""
        recipients = list(envelope.rcpt_tos)
        every = max(1, len(recipients))

        def each(status: str) -> list[str]:
            return [status] * every

        raw = envelope.original_content or b""
        if isinstance(envelope.content, bytes) and not raw:
            raw = envelope.content
        try:
            mail = await asyncio.to_thread(parse, raw, max_file=self.max_file)
        except Refused as refused:
            reason = refused.key.rpartition(".")[2]
            return each(self._refuse(refused.code, refused.key, reason, **refused.params))
        if mail.report:  # counted too: a flood of (forged) reports is deferred
            if not await self._within_rate(mail.sender):
                return each(self._refuse(451, "mail.smtp.rate", "rate"))
            await self._bounce(mail)
            return each("250 2.0.0 OK")
        # Authenticated first, so that mail only claiming to be someone's counts against
        # a budget of its own, not theirs (a forger cannot hold Anna's real mail back),
        # and all such mail together against one more: the held list stays bounded.
        authentic = await self._authenticated(mail, raw)
        if not await self._within_rate(mail.sender if authentic else UNAUTHENTICATED + mail.sender):
            return each(self._refuse(451, "mail.smtp.rate", "rate"))
        if not authentic and not await self._within_rate(
            UNAUTHENTICATED + "*", ALL_UNAUTHENTICATED
        ):
            return each(self._refuse(451, "mail.smtp.rate", "rate"))
        letters = [r for r in recipients if _is_newsletter(r)]
        if letters:
            return each(await self._newsletters(mail, letters, authentic))
        who = await self.hub.call(records.sender, self.hub.core, mail.sender)
        if who is None:
            if mail.automatic:  # an autoresponder or a mailing list: dropped, not answered
                self.refused.labels("dropped").inc()
                return each("250 2.0.0 OK")
            # refused in the SMTP dialogue, never by a mail of ours: the From of a mail
            # nobody here knows is as likely forged, and a reply would be backscatter
            return each(self._refuse(550, "mail.smtp.unknown_sender", "unknown_sender"))
        # A reply address is the notification's reader's own: someone else replying with
        # it (a forwarded notification, a reply-all) is refused, for that recipient alone.
        statuses: dict[str, str] = {}
        for recipient in recipients:
            match route(recipient, self.domain, self.signer):
                case ("item", _, person_id) if person_id != who.person_id:
                    statuses[recipient] = self._refuse(
                        550, "mail.smtp.not_your_reply", "not_your_reply"
                    )
        # A mail is for the addresses its To and Cc name: one that does not name the
        # Pinwall address it was delivered to is someone else's mail re-sent here (a
        # signed mail stays signed) or came by Bcc; a command or a reply is refused, a
        # mail to a group held for its moderators.
        named = addressed(mail.message)
        unaddressed: list[str] = []
        for recipient in recipients:
            if recipient in statuses or (named is not None and _bare(recipient) in named):
                continue
            match route(recipient, self.domain, self.signer):
                case ("commands",) | ("item", _, _):
                    statuses[recipient] = self._refuse(
                        550, "mail.smtp.not_addressed", "not_addressed"
                    )
                case ("group", _):
                    unaddressed.append(recipient)
                case _:
                    continue
            log.warning("mail: %s names %s in neither To nor Cc", mail.sender, recipient)
        accepted = [r for r in recipients if r not in statuses]
        if not accepted:
            return [statuses[r] for r in recipients]
        files = await self._store_files(mail)
        if not authentic:
            await self._hold(mail, who, accepted, files, "not_authenticated")
            held = f"250 2.0.0 {self.smtp_text('mail.smtp.held')}"
            return [statuses.get(r, held) for r in recipients]
        if unaddressed:
            await self._hold(mail, who, unaddressed, files, "not_addressed")
            held = f"250 2.0.0 {self.smtp_text('mail.smtp.held_not_addressed')}"
            statuses.update((r, held) for r in unaddressed)
        for to, kind in self._targets([r for r in accepted if r not in unaddressed]):
            event = self._command(mail, files) if kind == "command" else None
            await self.hub.submit(event or self._event(mail, to, files))
            self.received.labels(kind).inc()
        return [statuses.get(r, "250 2.0.0 OK") for r in recipients]

    async def _hold(
        self,
        mail: Mail,
        who: records.Sender,
        recipients: list[str],
        files: tuple[InboundFile, ...],
        reason: str,
    ) -> None:
        """The mail kept for a moderator, for these recipients: `email release <id>`
        records its events in the inbox, as if it had come authenticated (a redelivery
        then is one); the audit log says why it was held."""
        targets = self._targets(recipients)
        details = {
            "from": mail.sender,
            "to": recipients,
            "subject": mail.subject[:200],
            "message_id": mail.message_id[:200],
            "reason": reason,
        }
        events = []
        for to, kind in targets:
            command = self._command(mail, files) if kind == "command" else None
            events.append(dump_event(command or self._event(mail, to, files)))
        content = {
            "to": [to for to, _ in targets],
            "text": mail.text,
            "subject": mail.subject,
            "message_id": mail.message_id,
            "files": [_file_dict(f) for f in files],
            "events": events,
            "reason": reason,
        }
        now = self.hub.clock.now()
        await self.hub.call(records.hold, self.hub.core, now, who, details, content)
        self.refused.labels("held").inc()
        log.warning("mail: held a mail claiming to be from %s (%s)", mail.sender, reason)

    def _targets(self, recipients: list[str]) -> list[tuple[str, str]]:
        """Where a person's mail goes: ("group:<slug>" | "item:<id>", the kind) for each
        recipient (Pinwall's own bounce address is for no one)."""
        out = []
        for recipient in recipients:
            match route(recipient, self.domain, self.signer):
                case ("group", slug):
                    out.append((f"group:{slug}", "group"))
                case ("item", item_id, _):
                    out.append((f"item:{item_id}", "item"))
                case ("commands",):
                    out.append(("commands", "command"))
        return out

    async def _newsletters(self, mail: Mail, recipients: list[str], authentic: bool) -> str:
        """A newsletter to groups' newsletter addresses: an entry in each group that
        allowed its sender, once per Message-ID and link; held when the sender is not
        authenticated, refused where it is not allowed."""
        if not authentic:
            details = {"from": mail.sender, "to": recipients, "subject": mail.subject[:200]}
            # what `email release` makes of it: the same entry, the same dedup keys
            held = entry_of(mail)
            content = {
                "newsletter": recipients,
                "subject": mail.subject,
                "files": [],
                "sender": mail.sender,
                "message_id": mail.message_id,
                "entry": {"title": held.title, "url": held.url, "text": held.text},
            }
            now = self.hub.clock.now()
            await self.hub.call(records.hold, self.hub.core, now, None, details, content)
            self.refused.labels("held").inc()
            return f"250 2.0.0 {self.smtp_text('mail.smtp.held')}"
        entry = entry_of(mail)
        taken = 0
        for recipient in recipients:
            outcome: str
            match route(recipient, self.domain, self.signer):
                case ("newsletter", slug):
                    outcome = await self.hub.call(
                        records.newsletter_entry,
                        self.hub.core,
                        slug,
                        mail.sender,
                        entry,
                        mail.message_id,
                        self.hub.clock.now(),
                    )
                case _:
                    continue
            if outcome == "not_allowed" and is_confirmation(mail):
                # a list's double opt-in: its moderators may confirm (and allow the sender)
                outcome = await self.hub.call(
                    records.confirmation_to_moderators,
                    self.hub.core,
                    slug,
                    mail.sender,
                    mail.subject,
                    mail.text,
                    confirmation_links(mail),
                    self.hub.clock.now(),
                )
                if outcome == "forwarded":
                    self.hub.wake()
            if outcome == "posted":
                self.received.labels("newsletter").inc()
            taken += outcome != "not_allowed"
        if not taken:
            return self._refuse(550, "mail.smtp.unknown_sender", "newsletter_sender")
        return "250 2.0.0 OK"

    # --- the parts -----------------------------------------------------------------------

    async def _within_rate(self, sender: str, times: int = 1) -> bool:
        """At most `per_minute` (times `times`) mails a minute from one sender, counted in
        the store: the count holds across a restart and across instances behind one MX."""
        now = self.hub.clock.now()
        count = await self.hub.call(records.count_sender, self.hub.core, sender, now)
        return count <= self.per_minute * times

    async def _authenticated(self, mail: Mail, raw: bytes) -> bool:
        if authenticated_by_mta(mail.message, mail.sender, self.authserv_id):
            return True
        if self.dkim_check is None or "dkim-signature" not in mail.message:
            return False
        return await asyncio.to_thread(self.dkim_check, raw, mail.sender)

    async def _store_files(self, mail: Mail) -> tuple[InboundFile, ...]:
        blobs = self.hub.blobs
        if blobs is None:
            return ()
        stored = []
        for a in mail.attachments:
            blob = await asyncio.to_thread(blobs.put, a.data)
            stored.append(
                InboundFile(name=a.name, blob_id=blob.id, mime_type=a.mime_type, size=blob.size)
            )
        return tuple(stored)

    def _command(self, mail: Mail, files: tuple[InboundFile, ...]) -> CommandInvoked | None:
        """A mail to Pinwall's own address: its first line (else its subject) is a command,
        as typed on a messenger (a leading / or ? is allowed); None: nothing to do."""
        lines = [line.strip() for line in mail.text.splitlines() if line.strip()]
        said = (lines[0] if lines else " ".join(mail.subject.split())).lstrip("/?!")
        name, _, arguments = said.partition(" ")
        if not name:
            return None
        key = mail.message_id or hashlib.sha256(f"{mail.sender}\n{said}".encode()).hexdigest()
        meta = self._event(mail, "commands", files).meta
        return CommandInvoked(
            meta=replace(meta, event_id=f"{key[:200]} commands"),
            name=name,
            arguments=arguments.strip(),
            raw=said,
            attachments=files,
        )

    def _event(self, mail: Mail, to: str, files: tuple[InboundFile, ...]) -> MessageReceived:
        # Without a Message-ID, the same mail is known by what it says (stable across
        # restarts, unlike hash()).
        key = mail.message_id or "<{}@unknown>".format(
            hashlib.sha256(f"{mail.sender}\n{mail.subject}\n{mail.text}".encode()).hexdigest()
        )
        return MessageReceived(
            meta=Meta(
                platform=MAIL_PLATFORM,
                event_id=f"{key[:200]} {to}",
                actor=Actor(
                    platform=MAIL_PLATFORM,
                    external_id=mail.sender,
                    username=mail.sender,
                    display_name=mail.sender_name or None,
                ),
                conversation=Conversation(external_id=mail.sender, direct=True),
                time=self.hub.clock.now(),
            ),
            text=mail.text,
            attachments=files,
            message_id=mail.message_id or None,
            intent="mail",
            subject=mail.subject or None,
            to=to,
        )

    async def _bounce(self, mail: Mail) -> None:
        """A DSN: the recipients it reports failed are marked failing, if the report is
        about a mail Pinwall sent them (its Message-ID names the outbox row, signed with
        the address it went to: inbound.message_id)."""
        for address, reason, original in failed_recipients(mail):
            sent = None
            row = sent_row(self.signer, original, address, self.domain)
            if row is not None:
                sent = await self.hub.call(records.sent_to, self.hub.core, row)
            if sent is None or sent.lower() != address:
                log.warning("mail: ignored a bounce for %s that names no mail of ours", address)
                continue
            now = self.hub.clock.now()
            if await self.hub.call(records.bounced, self.hub.core, address, reason, now):
                self.hub.metrics.mail_bounced.inc()
                self.hub.wake()


def _file_dict(f: InboundFile) -> dict[str, Any]:
    return {"blob_id": f.blob_id, "name": f.name, "mime_type": f.mime_type, "size": f.size}


def _bare(recipient: str) -> str:
    """An envelope recipient as To/Cc addresses are compared: without <>, lower case."""
    return recipient.strip().strip("<>").lower()


def _is_newsletter(recipient: str) -> bool:
    return recipient.strip("<>").lower().startswith("newsletter+")


def failed_recipients(mail: Mail) -> list[tuple[str, str, str]]:
    """(address, reason, the original's Message-ID) for each recipient a delivery status
    notification reports as failed (RFC 3464)."""
    original = ""
    failed: list[tuple[str, str, str]] = []
    for part in mail.message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            inner: Any = part.get_payload()
            if isinstance(inner, list) and inner:
                original = str(inner[0].get("message-id", ""))
        elif kind == "text/rfc822-headers":
            original = _header_in(str(part.get_content()), "message-id")
        if kind != "message/delivery-status":
            continue
        blocks: Any = part.get_payload()
        for block in blocks[1:] if isinstance(blocks, list) else []:
            if str(block.get("action", "")).strip().lower() != "failed":
                continue
            recipient = str(block.get("final-recipient", "")).partition(";")[2].strip()
            reason = str(block.get("diagnostic-code", "") or block.get("status", ""))
            reason = reason.partition(";")[2].strip() or reason.strip()
            if recipient:
                failed.append((recipient.lower(), " ".join(reason.split()), ""))
    return [(a, r, original.strip()) for a, r, _ in failed]


def _header_in(headers: str, name: str) -> str:
    return str(HeaderParser().parsestr(headers).get(name, ""))
