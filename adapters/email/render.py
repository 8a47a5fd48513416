"""Mail out, pure: a neutral message -> a multipart text + HTML mail with the headers a
mail client needs to thread it, reply to it and unsubscribe from it in one click."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from bot.markup import to_html, to_plain
from bot.message import FileRef, Message


@dataclass(frozen=True)
class Envelope:
    """Who and what around the message: addresses, its id, the links it carries."""

    sender: str  # pinwall@<domain>
    sender_name: str
    recipient: str
    message_id: str  # "<pw12@pinwall.firma.de>": stable per delivery (the outbox row's)
    date: datetime
    reply_to: str | None = None  # reply+<token>@<domain>: a reply becomes a comment
    unsubscribe_url: str | None = None  # one-click (RFC 8058), signed per person and group
    reply_hint: str = ""
    unsubscribe_text: str = ""
    subject_fallback: str = "Pinwall"


def subject_of(message: Message, fallback: str) -> str:
    """A mail's subject: the message's title, else its first line, as plain text."""
    title = to_plain(message.title or "").strip()
    if not title:
        title = next((line for line in to_plain(message.text).splitlines() if line.strip()), "")
    title = " ".join(title.split())
    return title[:150] or fallback


def compose(
    message: Message,
    envelope: Envelope,
    files: list[tuple[FileRef, bytes]] | None = None,
) -> EmailMessage:
    """The mail: text/plain and text/html alternatives, the files attached."""
    mail = EmailMessage()
    mail["From"] = Address(envelope.sender_name, addr_spec=envelope.sender)
    mail["To"] = envelope.recipient
    mail["Subject"] = subject_of(message, envelope.subject_fallback)
    mail["Message-ID"] = envelope.message_id
    mail["Date"] = format_datetime(envelope.date)
    mail["Auto-Submitted"] = "auto-generated"  # no out-of-office answers back to Pinwall
    if envelope.reply_to:
        mail["Reply-To"] = envelope.reply_to
    if envelope.unsubscribe_url:
        mail["List-Unsubscribe"] = f"<{envelope.unsubscribe_url}>"
        mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    plain = [to_plain(message.title)] if message.title else []
    plain.append(to_plain(message.text))
    plain.extend(f"{f.label}: {to_plain(f.value)}" for f in message.fields)
    rich = [f"<p><strong>{to_html(message.title)}</strong></p>"] if message.title else []
    rich.append(f"<div>{to_html(message.text).replace(chr(10), '<br>')}</div>")
    rich.extend(
        f"<p><strong>{html.escape(f.label)}</strong>: {to_html(f.value)}</p>"
        for f in message.fields
    )
    footer_plain: list[str] = []
    footer_html: list[str] = []
    if envelope.reply_to and envelope.reply_hint:
        footer_plain.append(envelope.reply_hint)
        footer_html.append(html.escape(envelope.reply_hint))
    if envelope.unsubscribe_url and envelope.unsubscribe_text:
        footer_plain.append(envelope.unsubscribe_text)
        footer_html.append(
            f'<a href="{html.escape(envelope.unsubscribe_url, quote=True)}">'
            f"{html.escape(envelope.unsubscribe_text)}</a>"
        )
    if footer_plain:
        plain.append("-- \n" + "\n".join(footer_plain))
        rich.append('<hr><p style="color:#666">' + "<br>".join(footer_html) + "</p>")
    mail.set_content("\n\n".join(p for p in plain if p.strip()) + "\n")
    body = "\n".join(rich)
    mail.add_alternative(f"<!DOCTYPE html><html><body>{body}</body></html>", subtype="html")
    for ref, data in files or []:
        maintype, _, subtype = (ref.mime_type or "application/octet-stream").partition("/")
        mail.add_attachment(
            data, maintype=maintype, subtype=subtype or "octet-stream", filename=ref.name
        )
    return mail
