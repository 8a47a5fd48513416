"""Mail in, pure (adapters/email/inbound.py): real-world samples from Outlook, Apple Mail
and Gmail, forged senders, mail bombs and injected headers."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.email.inbound import (
    MAX_PARTS,
    Refused,
    authenticated_by_mta,
    parse,
    reply_address,
    route,
)
from bot.signing import UrlSigner

SAMPLES = Path(__file__).parent / "mail_samples"
MB = 1024 * 1024


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def test_outlook_html_with_inline_image_and_german_rfc2047_subject() -> None:
    mail = parse(sample("outlook_html_inline_de.eml"), max_file=MB)
    assert mail.subject == "Neues Plakat für die Filiale München"
    assert mail.sender == "anna.schmidt@firma.test"  # kept in lower case
    assert mail.sender_name == "Anna Schmidt (Vertrieb)"
    # HTML to text, iso-8859-1 decoded; Outlook's style sheet and markup gone
    assert "das neue Plakat für München hängt ab Montag. Grüße an alle!" in mail.text
    assert "MsoNormal" not in mail.text
    assert "<p" not in mail.text
    [image] = mail.attachments
    assert (image.name, image.mime_type, image.inline) == ("image001.png", "image/png", True)
    assert image.data.startswith(b"\x89PNG")
    assert authenticated_by_mta(mail.message, mail.sender, "mx.firma.test")


def test_apple_mail_reply_loses_its_quoted_history_and_signature() -> None:
    mail = parse(sample("apple_mail_reply.eml"), max_file=MB)
    assert mail.subject == "Re: Neues Plakat für die Filiale"
    assert mail.sender_name == "Björn Müller"
    assert mail.text == ("Sieht super aus! Können wir davon 20 Stück für Augsburg bekommen?")


def test_gmail_reply_takes_the_plain_part_without_the_quote() -> None:
    mail = parse(sample("gmail_reply.eml"), max_file=MB)
    assert mail.text == "Great, we'll put one up in the Augsburg window too."
    assert mail.attachments == ()  # the HTML alternative is not a file
    assert authenticated_by_mta(mail.message, mail.sender, "mx.firma.test")


def test_a_forged_from_is_not_authenticated() -> None:
    mail = parse(sample("forged_from.eml"), max_file=MB)
    # our MTA says dmarc=fail; a second header claiming a pass has another authserv-id
    assert not authenticated_by_mta(mail.message, mail.sender, "mx.firma.test")
    assert not authenticated_by_mta(mail.message, mail.sender, None)
    # ... and the forger's own authserv-id is worth nothing unless it is configured
    assert authenticated_by_mta(mail.message, mail.sender, "pinwall.evil.test")


def test_an_aligned_dkim_pass_of_another_domain_does_not_count() -> None:
    raw = (
        b"Authentication-Results: mx.firma.test; dkim=pass header.d=evil.test\r\n"
        b"From: anna.schmidt@firma.test\r\nSubject: x\r\nMessage-ID: <a@b>\r\n\r\nhi\r\n"
    )
    mail = parse(raw, max_file=MB)
    assert not authenticated_by_mta(mail.message, mail.sender, "mx.firma.test")


def test_a_dsn_is_a_report() -> None:
    mail = parse(sample("dsn_bounce.eml"), max_file=MB)
    assert mail.report
    assert mail.automatic


def test_a_file_over_the_limit_is_refused_naming_the_limit() -> None:
    raw = (
        b"From: a@firma.test\r\nSubject: big\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: text/plain\r\n\r\nsee file\r\n--b\r\n"
        b"Content-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="big.bin"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + b"QUFB" * (MB // 3 + 10) + b"\r\n--b--\r\n"
    )
    with pytest.raises(Refused) as refused:
        parse(raw, max_file=MB)
    assert (refused.value.code, refused.value.key, refused.value.params) == (
        552,
        "mail.smtp.too_large",
        {"max": 1},
    )


def test_a_mail_bomb_of_parts_is_refused_unread() -> None:
    parts = b"".join(b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n" for _ in range(MAX_PARTS + 1))
    raw = (
        b'From: a@firma.test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"'
        b"\r\n\r\n" + parts + b"--b--\r\n"
    )
    with pytest.raises(Refused, match="too_complex"):
        parse(raw, max_file=MB)


def test_deep_nesting_is_refused() -> None:
    raw = b"From: a@firma.test\r\nMIME-Version: 1.0\r\n"
    for depth in range(12):
        raw += f'Content-Type: multipart/mixed; boundary="b{depth}"\r\n\r\n--b{depth}\r\n'.encode()
    raw += b"Content-Type: text/plain\r\n\r\nx\r\n"
    with pytest.raises(Refused, match="too_complex"):
        parse(raw, max_file=MB)


def test_an_encoded_line_break_in_a_header_is_refused() -> None:
    # "=0D=0ABcc: ..." decodes to a second header line in the subject
    raw = b"From: a@firma.test\r\nSubject: =?utf-8?Q?Hallo=0D=0ABcc:_all@firma.test?=\r\n\r\nhi\r\n"
    with pytest.raises(Refused, match="header_injection"):
        parse(raw, max_file=MB)


def test_two_senders_are_refused() -> None:
    raw = b"From: a@firma.test, b@firma.test\r\nSubject: x\r\n\r\nhi\r\n"
    with pytest.raises(Refused, match="unknown_sender"):
        parse(raw, max_file=MB)


def test_routes_group_addresses_and_only_signed_reply_addresses() -> None:
    signer = UrlSigner("k")
    domain = "pinwall.firma.test"
    assert route("Vertrieb@Pinwall.Firma.Test", domain, signer) == ("group", "vertrieb")
    assert route("vertrieb@elsewhere.test", domain, signer) is None
    reply = reply_address(signer, 41, 7, domain)
    assert route(reply, domain, signer) == ("item", 41, 7)
    assert route(reply.upper(), domain, signer) == ("item", 41, 7)  # case folded on the way
    assert route(reply.replace("41.", "42."), domain, signer) is None  # forged
    assert route("reply+41.7.0000@" + domain, domain, signer) is None
    assert route("a b@" + domain, domain, signer) is None
