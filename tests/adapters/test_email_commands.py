"""`email <address>` and `email confirm <code>` on a messenger, in English and German;
Pinwall verifying DKIM itself; what `pinwall doctor` says of the mail settings."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from adapters.email.dkim_check import dkim_checker
from adapters.email.doctor import check
from adapters.email.settings import MailSettings
from bot.errors import ConfigError
from store.models import MAIL_PLATFORM
from tests.adapters.email_world import DOMAIN, mail_world, plain, sample


async def test_email_in_german_with_its_refusals(tmp_path: Path) -> None:
    async with mail_world(tmp_path) as world:
        await world.say("e2", "?settings language de")
        bad = await world.say("e2", "?mail anna.schmidt")
        assert "ist keine Mail-Adresse, die ich nutzen kann" in bad
        assert "?mail anna.schmidt@example.com" in bad  # the usage's example, German name
        assert world.sink.mails == []  # nothing sent, nothing written

        assert "Keine Adresse wartet auf einen Code" in await world.say("e2", "?mail bestätigen X")
        sent = await world.say("e2", "?mail Anna.Schmidt@Firma.test")
        assert "Ich habe einen Code an anna.schmidt@firma.test geschickt" in sent
        assert "schick hier: ?mail bestätigen CODE" in sent  # German words in a German text
        [mail] = world.sink.to("anna.schmidt@firma.test")
        assert str(mail["Subject"]) == "Dein Pinwall-Code"
        code = re.search(r"Dein Code: ([A-Z0-9]{8})", plain(mail))
        assert code is not None
        wrong = await world.say("e2", "?mail bestätigen ZZZZZZZZ")
        assert "Der Code stimmt nicht" in wrong
        done = await world.say("e2", f"?mail bestätigen {code[1].lower()}")  # any case
        assert "gehört jetzt zu dir auf Pinwall" in done
        with world.program.db.uow() as uow:
            account = uow.people.account(MAIL_PLATFORM, "anna.schmidt@firma.test")
            assert account is not None
        # someone else cannot take the address
        taken = await world.say("e3", "?email anna.schmidt@firma.test")
        assert "already belongs to someone on Pinwall" in taken


async def test_the_code_is_answered_privately_and_expires(tmp_path: Path) -> None:
    async with mail_world(tmp_path) as world:
        await world.say("e2", "?email anna.schmidt@firma.test")
        with world.program.db.uow() as uow:
            account = uow.people.account("echo", "e2")
            assert account is not None
            pending = uow.mail.pending(account.person_id)
            assert pending is not None
            pending.code_expires_at = world.program.core.clock.now()
            code = pending.code
            uow.commit()
        expired = await world.say("e2", f"?email confirm {code}")
        assert "has expired" in expired
        with world.program.db.uow() as uow:
            assert uow.people.account(MAIL_PLATFORM, "anna.schmidt@firma.test") is None


def _signed(raw: bytes, key: rsa.RSAPrivateKey, domain: str) -> bytes:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    signature: bytes = dkim.sign(
        raw, b"sel", domain.encode(), pem, include_headers=[b"from", b"subject", b"message-id"]
    )
    return signature + raw


def test_pinwall_verifies_a_dkim_signature_itself() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == b"sel._domainkey.firma.test." else None

    check_dkim = dkim_checker(dns)
    raw = sample("forged_from.eml").split(b"\r\n", 3)[3]  # without the Received/AR lines
    signed = _signed(raw, key, "firma.test")
    assert check_dkim(signed, "anna.schmidt@firma.test")
    # changed on the way: fails; signed by another domain: not the From's
    assert not check_dkim(signed.replace(b"IBAN DE00", b"IBAN DE99"), "anna.schmidt@firma.test")
    other = _signed(raw, key, "evil.test")
    assert not check_dkim(other, "anna.schmidt@firma.test")
    assert not check_dkim(raw, "anna.schmidt@firma.test")  # no signature at all


async def test_doctor_names_what_is_missing_and_an_unreachable_relay(tmp_path: Path) -> None:
    settings = MailSettings(
        mail_domain=DOMAIN,
        mail_listen="127.0.0.1:0",
        smtp_host="127.0.0.1",
        smtp_port=9,  # discard: nothing listens
        smtp_security="none",
        data_dir=tmp_path,
    )
    problems = await check(settings)
    whats = " | ".join(p.what for p in problems)
    assert "PINWALL_MAIL_AUTHSERV_ID is not set" in whats
    assert "PINWALL_PUBLIC_URL is not set" in whats
    assert "cannot reach the relay 127.0.0.1:9" in whats
    async with mail_world(tmp_path / "w") as world:
        relay = world.mail.settings
        ok = MailSettings(
            mail_domain=DOMAIN,
            mail_authserv_id="mx.firma.test",
            smtp_host="127.0.0.1",
            smtp_port=relay.smtp_port,
            smtp_security="none",
            public_url="https://pinwall.firma.test",
            data_dir=tmp_path,
        )
        assert list(await check(ok)) == []


def test_settings_that_belong_together() -> None:
    with pytest.raises(ConfigError, match=r"^PINWALL_MAIL_DOMAIN: missing"):
        MailSettings(mail_listen="0.0.0.0:2525")
    with pytest.raises(ValueError, match="must be host:port"):
        MailSettings(mail_listen="2525", mail_domain=DOMAIN)
    assert MailSettings(mail_listen="[::1]:25", mail_domain=DOMAIN).mail_listen_address() == (
        "smtp",
        "::1",
        25,
        None,
    )
    lmtp = MailSettings(mail_listen="lmtp://127.0.0.1:2424", mail_domain=DOMAIN)
    assert lmtp.mail_listen_address() == ("lmtp", "127.0.0.1", 2424, None)
    socket = MailSettings(mail_listen="lmtp:/run/pinwall/lmtp.sock", mail_domain=DOMAIN)
    assert socket.mail_listen_address() == ("lmtp", "", 0, "/run/pinwall/lmtp.sock")
    with pytest.raises(ValueError, match="lmtp:/path/to/socket"):
        MailSettings(mail_listen="smtp:/run/pinwall.sock", mail_domain=DOMAIN)
    assert not MailSettings().mail_configured  # off by default
