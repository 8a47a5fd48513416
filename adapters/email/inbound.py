"""Mail in, pure: an RFC 5322 message (bytes) -> what Pinwall takes of it, or why not.

The stdlib's `email` (policy=default) parses MIME and decodes RFC 2047 headers and
charsets; inscriptis turns HTML into text; mail-parser-reply strips quoted history and
signatures (English and German). Nothing here touches the network or the store.
"""

from __future__ import annotations

import email
import email.policy
import hmac
from dataclasses import dataclass, field
from email.message import EmailMessage, MIMEPart
from email.utils import getaddresses
from typing import Any, Literal

import authres
from inscriptis import get_text
from mailparser_reply import EmailReplyParser

from bot.signing import UrlSigner

# A mail with more parts, or parts nested deeper, is refused unread (a "mail bomb").
MAX_PARTS = 100
MAX_DEPTH = 8
# Headers whose decoded value must be one line (an encoded CR/LF smuggles headers in).
ONE_LINE = ("subject", "from", "to", "cc", "reply-to", "message-id", "in-reply-to", "references")
REPLY_LANGUAGES = ["en", "de"]
REPLY_PURPOSE = "mail-reply"
DSN_PURPOSE = "mail-dsn"


class Refused(Exception):
    """The mail is refused with this SMTP reply code and the catalog key that says why."""

    def __init__(self, code: int, key: str, **params: Any) -> None:
        super().__init__(key)
        self.code = code
        self.key = key
        self.params = params


@dataclass(frozen=True)
class Attachment:
    name: str
    mime_type: str
    data: bytes
    inline: bool = False


@dataclass(frozen=True)
class Mail:
    sender: str  # the From address, lower case
    sender_name: str
    subject: str
    text: str  # the new text of the mail: quoted history and signature taken off
    html: str | None  # the HTML body as sent (newsletters keep their links from it)
    message_id: str
    attachments: tuple[Attachment, ...] = ()
    # A delivery status notification (multipart/report; report-type=delivery-status).
    report: bool = False
    # Sent by a machine (Auto-Submitted, Precedence bulk/junk/list): never answered.
    automatic: bool = False
    message: EmailMessage = field(repr=False, compare=False, default_factory=EmailMessage)


def _check_shape(message: Any, depth: int = 0, count: list[int] | None = None) -> None:
    count = count if count is not None else [0]
    count[0] += 1
    if count[0] > MAX_PARTS or depth > MAX_DEPTH:
        raise Refused(554, "mail.smtp.too_complex")
    payload = message.get_payload()
    if message.is_multipart() and isinstance(payload, list):
        for part in payload:
            _check_shape(part, depth + 1, count)


def _one_line_headers(message: EmailMessage) -> None:
    for name in ONE_LINE:
        for value in message.get_all(name, []):
            text = str(value)
            if "\r" in text or "\n" in text or "\x00" in text:
                raise Refused(554, "mail.smtp.header_injection")
    for defect in message.defects:
        if "header" in type(defect).__name__.lower():
            raise Refused(554, "mail.smtp.header_injection")


def _content(part: MIMEPart) -> str:
    """A text part's text in any charset (an unknown one read as UTF-8, replacing)."""
    try:
        value = part.get_content()
    except (LookupError, UnicodeDecodeError, AssertionError):
        raw = part.get_payload(decode=True)
        return raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else ""
    return value if isinstance(value, str) else value.decode("utf-8", errors="replace")


def new_text(text: str) -> str:
    """The text a person wrote: the quoted mail below it and their signature taken off."""
    mail = EmailReplyParser(languages=REPLY_LANGUAGES).read(text=text)
    if not mail.replies:
        return text.strip()
    return str(mail.replies[0].body).strip() or text.strip()


def parse(raw: bytes, *, max_file: int) -> Mail:
    """The mail, or Refused: malformed or injected headers, a mail bomb, a file over
    `max_file` bytes, no single From address."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    _check_shape(message)
    _one_line_headers(message)
    senders = getaddresses([str(v) for v in message.get_all("from", [])])
    if len(senders) != 1 or "@" not in senders[0][1]:
        raise Refused(550, "mail.smtp.unknown_sender")
    name, address = senders[0]
    body = message.get_body(preferencelist=("plain", "html"))
    html_part = message.get_body(preferencelist=("html",))
    html = _content(html_part) if html_part is not None else None
    text = ""
    if body is not None:
        text = _content(body)
        if body.get_content_subtype() == "html":
            text = get_text(text)
    bodies = {id(body), id(html_part)}
    attachments: list[Attachment] = []
    for part in message.walk():
        if part.is_multipart() or id(part) in bodies:
            continue
        disposition = part.get_content_disposition()
        maintype = part.get_content_maintype()
        if disposition is None and maintype == "text":
            continue  # another alternative of the body
        if part.get_content_type() in ("message/delivery-status", "text/rfc822-headers"):
            continue
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            continue
        if len(data) > max_file:
            raise Refused(552, "mail.smtp.too_large", max=max_file // (1024 * 1024))
        attachments.append(
            Attachment(
                name=part.get_filename() or f"file-{len(attachments) + 1}",
                mime_type=part.get_content_type(),
                data=data,
                inline=disposition != "attachment",
            )
        )
    report = (
        message.get_content_type() == "multipart/report"
        and message.get_param("report-type", "") == "delivery-status"
    )
    auto = str(message.get("auto-submitted", "no")).lower() != "no" or str(
        message.get("precedence", "")
    ).lower() in ("bulk", "junk", "list")
    return Mail(
        sender=address.lower(),
        sender_name=name,
        subject=" ".join(str(message.get("subject", "")).split()),
        text=new_text(text) if not report else text,
        html=html,
        message_id=str(message.get("message-id", "")).strip(),
        attachments=tuple(attachments),
        report=report,
        automatic=auto,
        message=message,
    )


# --- who sent it ----------------------------------------------------------------------


def _aligned(domain: str, sender_domain: str) -> bool:
    """DMARC's relaxed alignment: the same domain, or one of its own subdomains."""
    domain, sender_domain = domain.lower().rstrip("."), sender_domain.lower().rstrip(".")
    return domain == sender_domain or sender_domain.endswith("." + domain)


def _authserv_id_of(value: str) -> str:
    """The authserv-id an Authentication-Results value starts with (its first word
    before any `;`), lower case: read without the parser, so that a header of ours that
    does not parse is still known as ours."""
    head = value.partition(";")[0].split()
    return head[0].lower() if head else ""


def authenticated_by_mta(message: EmailMessage, sender: str, authserv_id: str | None) -> bool:
    """Whether the receiving MTA (its Authentication-Results, with our authserv-id) says
    DMARC or an aligned DKIM signature passed for the From domain.

    Only the topmost header with our authserv-id counts: the MTA prepends its own above
    every header it received (RFC 8601 section 5), so one with our authserv-id lower
    down came with the mail, written by whoever sent it."""
    if not authserv_id:
        return False
    sender_domain = sender.rpartition("@")[2]
    ours = next(
        (
            str(value)
            for value in message.get_all("authentication-results", [])
            if _authserv_id_of(str(value)) == authserv_id.lower()
        ),
        None,
    )
    if ours is None:
        return False
    try:
        header = authres.AuthenticationResultsHeader.parse(f"Authentication-Results: {ours}")
    except Exception:  # a malformed header vouches for nothing
        return False
    if str(header.authserv_id).lower() != authserv_id.lower():
        return False
    for result in header.results:
        if str(result.result).lower() != "pass":
            continue
        props = {(p.type, p.name): str(p.value) for p in result.properties}
        method = str(result.method).lower()
        if method == "dmarc" and _aligned(props.get(("header", "from"), ""), sender_domain):
            return True
        if method == "dkim" and _aligned(props.get(("header", "d"), ""), sender_domain):
            return True
    return False


def addressed(message: EmailMessage) -> frozenset[str] | None:
    """The addresses the mail's To and Cc name (lower case, parsed by the stdlib), or
    None when it has more than one To or Cc header (RFC 5322 allows one of each; a
    second one is how a header is added to a signed mail without breaking its
    signature, which covers the last one only)."""
    found: set[str] = set()
    for name in ("to", "cc"):
        values = message.get_all(name, [])
        if len(values) > 1:
            return None
        found.update(a.lower() for _, a in getaddresses([str(v) for v in values]) if "@" in a)
    return frozenset(found)


# --- where it goes ----------------------------------------------------------------------

Route = (
    tuple[Literal["group", "newsletter"], str]
    | tuple[Literal["item"], int, int]
    | tuple[Literal["bounce"]]
    | tuple[Literal["commands"]]
)
# The envelope sender of Pinwall's mails: where delivery status notifications come back.
BOUNCES = "bounces"
# Pinwall's own address (the From of its mails): a mail to it is a command, its first
# line (`groups`, `join vertrieb`), so that "reply with the word groups" works.
COMMANDS = "pinwall"


def reply_address(signer: UrlSigner, item_id: int, person_id: int, domain: str) -> str:
    """The Reply-To of a post mailed to a person: a reply to it comments on the post."""
    return f"reply+{signer.token(REPLY_PURPOSE, item_id, person_id)}@{domain}"


def message_id(signer: UrlSigner, key: str, address: str, domain: str) -> str:
    """The Message-ID of Pinwall's mail for outbox row `key` ("pw<row id>") to `address`:
    <pw<row id>.<mac>@domain>, the MAC over both, so that a delivery status notification
    can name it only if it really came back with that mail (ids are sequential)."""
    return f"<{key}.{signer.tag(DSN_PURPOSE, f'{key}:{address.lower()}')}@{domain}>"


def sent_row(signer: UrlSigner, original: str, address: str, domain: str) -> int | None:
    """The outbox row a DSN's original Message-ID names, when it is one Pinwall made for
    mail to `address`; None for anything else (a guessed or another address's id)."""
    local, _, at = original.strip().strip("<>").rpartition("@")
    key, _, mac = local.lower().partition(".")
    row = key.removeprefix("pw")
    if at.lower() != domain.lower() or not key.startswith("pw") or not row.isdigit():
        return None
    expected = signer.tag(DSN_PURPOSE, f"{key}:{address.lower()}")
    return int(row) if hmac.compare_digest(expected, mac) else None


def route(recipient: str, domain: str, signer: UrlSigner) -> Route | None:
    """What a recipient address names: ("group", slug), ("newsletter", slug) for a
    group's newsletter address, ("item", item id, person id) for a signed reply address,
    ("bounce",) for Pinwall's envelope sender; None: nothing here (refused at RCPT)."""
    local, _, rcpt_domain = recipient.strip().strip("<>").rpartition("@")
    if rcpt_domain.lower() != domain.lower() or not local:
        return None
    local = local.lower()
    if local == BOUNCES:
        return ("bounce",)
    if local == COMMANDS:
        return ("commands",)
    if local.startswith("newsletter+"):
        slug = local.removeprefix("newsletter+")
        return ("newsletter", slug) if slug.isascii() and slug.replace("-", "").isalnum() else None
    if local.startswith("reply+"):
        opened = signer.open_token(REPLY_PURPOSE, local.removeprefix("reply+"), 2)
        return None if opened is None else ("item", opened[0], opened[1])
    if local.isascii() and all(c.isalnum() or c in "-_" for c in local):
        return ("group", local)
    return None
