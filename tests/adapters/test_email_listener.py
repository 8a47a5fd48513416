"""The mail listener's dialogue over real sockets on loopback: LMTP (TCP and a unix
socket, a reply per recipient), a reply address used by someone it was not mailed to,
the 550 an unknown sender gets (both languages, no mail back), and a mail over the DATA
size limit (552 while it streams, nothing kept)."""

from __future__ import annotations

import asyncio
import smtplib
from pathlib import Path

import aiosmtplib
import pytest

from adapters.email.inbound import reply_address
from store.models import MAIL_PLATFORM
from tests.adapters.email_world import DOMAIN, MailWorld, mail_world

ANNA = "anna.schmidt@firma.test"
BOB = "bob.mueller@firma.test"
VERTRIEB = f"vertrieb@{DOMAIN}"
PASS = "Authentication-Results: mx.firma.test; dmarc=pass header.from=firma.test"


def _mail(sender: str, to: str, text: str, n: int, *, subject: str = "Re: Messe") -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <listener{n}@firma.test>\r\n{PASS}\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
    ).encode()


async def _vertrieb_with_anna_and_bob(world: MailWorld) -> tuple[int, str]:
    """Vertrieb with a post by e1, Anna (e2) and Bob (e3) members with verified
    addresses; (the post's id, the reply address Anna's copy of it carries)."""
    await world.say("e1", "?group create vertrieb Vertrieb")
    for user, address in (("e2", ANNA), ("e3", BOB)):
        await world.say(user, "?join vertrieb")
        await world.verify(user, address)
    await world.say("e1", "?share vertrieb Messe-Stand steht in Halle 4")
    with world.program.db.uow() as uow:
        group = uow.groups.by_slug("vertrieb")
        anna = uow.people.account(MAIL_PLATFORM, ANNA)
        assert group is not None
        assert anna is not None
        [line] = uow.items.lines(group.id, 10)
        return line.id, reply_address(world.mail.signer, line.id, anna.person_id, DOMAIN)


def _posts(world: MailWorld) -> list[tuple[str, list[str]]]:
    with world.program.db.uow() as uow:
        group = uow.groups.by_slug("vertrieb")
        assert group is not None
        items = [uow.items.get(line.id) for line in uow.items.lines(group.id, 50)]
        return [(i.text, [c.text for c in uow.items.comments(i.id)]) for i in items if i]


def _lmtp(world: MailWorld, raw: bytes, sender: str, to: list[str]) -> list[tuple[int, bytes]]:
    """One LMTP transaction with smtplib.LMTP; the reply to each recipient after DATA
    (smtplib reads only the first: the others are read here)."""
    host, port = world.listen
    with smtplib.LMTP(host, port) if port else smtplib.LMTP(host) as client:
        client.ehlo()  # LHLO for smtplib.LMTP
        assert client.mail(sender)[0] == 250
        for recipient in to:
            assert client.rcpt(recipient)[0] == 250
        replies = [client.data(raw)]
        replies += [client.getreply() for _ in to[1:]]
        return replies


async def test_lmtp_on_a_unix_socket_answers_each_recipient(tmp_path: Path) -> None:
    socket = tmp_path / "lmtp.sock"
    async with mail_world(tmp_path, mail_listen=f"lmtp:{socket}") as world:
        assert world.listen == (str(socket), 0)
        item_id, annas = await _vertrieb_with_anna_and_bob(world)
        # Bob writes to the group and, with Anna's forwarded notification, to her reply
        # address: the group takes his mail, Anna's address refuses him (RFC 2033: one
        # reply per recipient, in order)
        raw = _mail(BOB, f"{VERTRIEB}, {annas}", "Standplan im Anhang", 1)
        replies = await asyncio.to_thread(_lmtp, world, raw, BOB, [VERTRIEB, annas])
        await world.program.worker.drain()
        assert [code for code, _ in replies] == [250, 550]
        refusal = replies[1][1].decode()
        assert "This reply address is for another person's copy of the notification" in refusal
        assert "Diese Antwortadresse gehoert zur Benachrichtigung einer anderen Person" in refusal
        posts = dict(_posts(world))
        assert posts["Messe-Stand steht in Halle 4"] == []  # no comment, as anyone
        assert any("Standplan im Anhang" in text for text in posts)

        # Anna's own reply over LMTP: her comment
        raw = _mail(ANNA, annas, "Ich komme um 10", 2)
        [(code, _)] = await asyncio.to_thread(_lmtp, world, raw, ANNA, [annas])
        await world.program.worker.drain()
        assert code == 250
        assert dict(_posts(world))["Messe-Stand steht in Halle 4"] == ["Ich komme um 10"]
        assert item_id
    assert not socket.exists()  # taken away when Pinwall stops


async def test_lmtp_over_tcp_and_a_mail_too_large_for_each_recipient(tmp_path: Path) -> None:
    async with mail_world(tmp_path, mail_listen="lmtp://127.0.0.1:0", file_max_mb=1) as world:
        await _vertrieb_with_anna_and_bob(world)
        # LHLO only: HELO is not LMTP
        host, port = world.listen

        def helo() -> int:
            with smtplib.SMTP(host, port) as client:
                return client.helo()[0]

        assert await asyncio.to_thread(helo) == 500
        raw = _mail(ANNA, VERTRIEB, "Neuer Katalog ist da", 3)
        [(code, _)] = await asyncio.to_thread(_lmtp, world, raw, ANNA, [VERTRIEB])
        await world.program.worker.drain()
        assert code == 250
        assert any("Neuer Katalog ist da" in text for text, _ in _posts(world))
        # too large: a 552 for each of the two recipients
        big = _mail(ANNA, VERTRIEB, "x" * 70 + ("\r\n" + "y" * 76) * 40_000, 4)
        replies = await asyncio.to_thread(_lmtp, world, big, ANNA, [VERTRIEB, f"pinwall@{DOMAIN}"])
        assert [code for code, _ in replies] == [552, 552]
        assert b"Pinwall takes files up to 1 MB" in replies[1][1]


async def test_a_reply_address_counts_only_from_the_person_it_was_mailed_to(
    tmp_path: Path,
) -> None:
    async with mail_world(tmp_path) as world:
        _, annas = await _vertrieb_with_anna_and_bob(world)
        # Bob, verified and a member who may comment, with Anna's reply address: refused
        # at the end of DATA (550, both languages), nothing written, no mail back to him
        mails = len(world.sink.mails)
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await world.send(_mail(BOB, annas, "Ich auch!", 5), sender=BOB, to=[annas])
        assert refused.value.code == 550
        assert dict(_posts(world))["Messe-Stand steht in Halle 4"] == []
        assert len(world.sink.mails) == mails
        # nor is it held for a moderator to release as anyone
        with world.program.db.uow() as uow:
            assert uow.mail.held(10) == []
        # a stranger's forged From: Anna (no authentication) with her address: held, as
        # any unauthenticated mail of hers
        raw = _mail(ANNA, annas, "Gefaelscht", 6).replace(PASS.encode() + b"\r\n", b"")
        response = await world.send(raw, sender=ANNA, to=[annas])
        assert "waits for a moderator" in str(response)
        assert dict(_posts(world))["Messe-Stand steht in Halle 4"] == []


async def test_an_unknown_sender_gets_the_reason_in_both_languages_in_the_smtp_reply(
    tmp_path: Path,
) -> None:
    async with mail_world(tmp_path) as world:
        await world.say("e1", "?group create vertrieb Vertrieb")
        stranger = "fremd@example.org"
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await world.send(_mail(stranger, VERTRIEB, "Hallo", 7), sender=stranger, to=[VERTRIEB])
        assert refused.value.code == 550
        message = refused.value.message
        assert "\n" not in message  # one line
        english, _, german = message.removeprefix("5.1.1 ").partition(" / ")
        assert english.startswith("Pinwall does not know this sender. Confirm your address")
        assert german.startswith("Pinwall kennt diesen Absender nicht. Bestaetige zuerst")
        assert len(f"550 {message}") < 510  # RFC 5321: a reply line is 512 octets
        # the refusal is the sending server's to tell; Pinwall mails nobody (backscatter)
        assert world.sink.mails == []
        assert _posts(world) == []


async def test_a_mail_over_the_data_limit_is_refused_with_552_as_it_streams(
    tmp_path: Path,
) -> None:
    async with mail_world(tmp_path, file_max_mb=1) as world:
        await _vertrieb_with_anna_and_bob(world)
        receiver = world.mail.receiver
        limit = 1024 * 1024 * 14 // 10 + 1024 * 1024  # receive.ENCODING_SLACK, HEADROOM
        too_large = receiver.refused.labels("too_large")
        before = too_large._value.get()
        line = "y" * 76
        body = "\r\n".join([line] * (limit // (len(line) + 2) + 100))  # a little over
        raw = _mail(ANNA, VERTRIEB, body, 8)
        assert limit < len(raw) < limit + 20_000
        host, port = world.listen
        # no SIZE announced at MAIL FROM: aiosmtpd reads DATA to its end, keeping nothing
        # past the limit, and answers 552 without handing the mail to Pinwall
        async with aiosmtplib.SMTP(hostname=host, port=port) as client:
            await client.ehlo()
            await client.mail(ANNA)
            await client.rcpt(VERTRIEB)
            with pytest.raises(aiosmtplib.SMTPDataError) as refused:
                await client.data(raw)
        assert refused.value.code == 552
        assert "Pinwall takes files up to 1 MB" in refused.value.message
        assert "Pinwall nimmt Dateien bis 1 MB" in refused.value.message
        assert too_large._value.get() == before + 1
        assert [text for text, _ in _posts(world)] == ["Messe-Stand steht in Halle 4"]
        # the listener goes on: the next mail is taken
        small = _mail(ANNA, VERTRIEB, "Kleiner Nachtrag", 9)
        await world.send(small, sender=ANNA, to=[VERTRIEB])
        assert len(_posts(world)) == 2
