"""Mails made to pass as a colleague's (findings of a security review, issue 23), over
real SMTP on loopback: an Authentication-Results header the sender wrote below the
MTA's own, a signed mail re-sent to a Pinwall address it was not written to, a command
or a reply not addressed to the address it was delivered to."""

from __future__ import annotations

import email
import email.policy
import smtplib
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest

from adapters.email.inbound import authenticated_by_mta, reply_address
from store.models import MAIL_PLATFORM
from tests.adapters.email_world import AUTHSERV, DOMAIN, MailWorld, mail_world, sample

ANNA = "anna.schmidt@firma.test"
VERTRIEB = f"vertrieb@{DOMAIN}"
LAGER = f"lager@{DOMAIN}"
FAIL = "dkim=none; dmarc=fail (p=none) header.from=firma.test"
PASS = "dkim=pass header.d=firma.test; dmarc=pass header.from=firma.test"


def _texts(world: MailWorld, slug: str) -> list[tuple[str, int | None]]:
    with world.program.db.uow() as uow:
        group = uow.groups.by_slug(slug)
        assert group is not None
        found = [uow.items.get(line.id) for line in uow.items.lines(group.id, 50)]
        return [(i.text, i.author_id) for i in found if i is not None]


def _anna_id(world: MailWorld) -> int:
    with world.program.db.uow() as uow:
        account = uow.people.account(MAIL_PLATFORM, ANNA)
        assert account is not None
        return account.person_id


def _held(world: MailWorld) -> list[dict[str, object]]:
    with world.program.db.uow() as uow:
        return [e.details for e in uow.audit.newest(100) if e.action == "mail.held"]


def _message(*headers: str) -> EmailMessage:
    raw = "\r\n".join([*headers, f"From: Anna <{ANNA}>", "Subject: x", "", "x", ""])
    message = email.message_from_bytes(raw.encode(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_only_the_topmost_authentication_results_of_our_authserv_id_count() -> None:
    """RFC 8601 section 5: the MTA puts its header above all it received; one of ours
    further down came with the mail."""
    ours_fail = f"Authentication-Results: {AUTHSERV}; {FAIL}"
    ours_pass = f"Authentication-Results: {AUTHSERV}; {PASS}"
    assert authenticated_by_mta(_message(ours_pass), ANNA, AUTHSERV)
    assert not authenticated_by_mta(_message(ours_fail, ours_pass), ANNA, AUTHSERV)
    # ours on top passes; a lower one saying anything changes nothing
    assert authenticated_by_mta(_message(ours_pass, ours_fail), ANNA, AUTHSERV)
    # another host's header above ours (a later hop) is not ours: ours still decides
    other = "Authentication-Results: mx.evil.test; dmarc=pass header.from=firma.test"
    assert not authenticated_by_mta(_message(other, ours_fail, ours_pass), ANNA, AUTHSERV)
    assert authenticated_by_mta(_message(other, ours_pass), ANNA, AUTHSERV.upper())
    # ours on top but malformed vouches for nothing, and does not let a lower one count
    broken = f"Authentication-Results: {AUTHSERV}; =pass header.from=firma.test"
    assert not authenticated_by_mta(_message(broken, ours_pass), ANNA, AUTHSERV)


async def test_a_forged_authentication_results_below_the_mtas_own_is_held(
    tmp_path: Path,
) -> None:
    """The MTA's own (topmost) header says dmarc=fail; a second one with the same
    authserv-id, put into the mail by its sender, says pass: held, not posted."""
    async with mail_world(tmp_path) as world:
        await world.say("e1", "?group create vertrieb Vertrieb")
        await world.say("e2", "?join vertrieb")
        await world.verify("e2", ANNA)
        raw = sample(
            "forged_from.eml",
            **{"pinwall.evil.test; dmarc=pass": "mx.firma.test; dmarc=pass"},
        )
        assert raw.count(b"Authentication-Results: mx.firma.test;") == 2
        response = await world.send(raw, sender=ANNA, to=[VERTRIEB])
        assert "waits for a moderator because its sender could not be verified" in str(response)
        assert _texts(world, "vertrieb") == []
        [held] = _held(world)
        assert held["reason"] == "not_authenticated"


async def test_a_replayed_signed_mail_is_held_and_a_bcc_to_a_group_too(tmp_path: Path) -> None:
    """A mail Anna sent to an outsider (To: bob@partner.example, DMARC pass) re-sent by
    Bob with RCPT TO vertrieb@ passes DMARC again, but names no Pinwall address: held
    for a moderator. So is a group's copy that came by Bcc; a second To header (added
    above a signed one) is not believed; the comparison ignores case and names."""
    async with mail_world(tmp_path) as world:
        await world.say("e1", "?group create vertrieb Vertrieb")
        await world.say("e1", "?group create lager Lager")
        await world.say("e2", "?join vertrieb")
        await world.say("e2", "?join lager")
        await world.verify("e2", ANNA)
        replayed = sample(
            "forged_from.eml",
            **{
                FAIL: PASS,
                "To: vertrieb@pinwall.firma.test": "To: bob@partner.example",
                "Dringend: neue Bankverbindung": "Privat: meine Kuendigung",
            },
        )
        response = await world.send(replayed, sender="bob@partner.example", to=[VERTRIEB])
        assert "because it names this address in neither To nor Cc" in str(response)
        assert "weil sie diese Adresse weder in An noch in Cc nennt" in str(response)
        assert _texts(world, "vertrieb") == []
        [held] = _held(world)
        assert held["reason"] == "not_addressed"
        assert held["to"] == [VERTRIEB]
        assert "· did not name our address" in await world.say("e1", "?email held")

        # To: Vertrieb, Bcc: Lager (authenticated): Vertrieb gets it, Lager's copy waits
        bcc = sample("forged_from.eml", **{FAIL: PASS, "forged-0001": "bcc-1"})
        await world.send(bcc, sender=ANNA, to=[VERTRIEB, LAGER])
        assert [author for _, author in _texts(world, "vertrieb")] == [_anna_id(world)]
        assert _texts(world, "lager") == []
        assert [h["to"] for h in _held(world)] == [[LAGER], [VERTRIEB]]  # newest first

        # a To of Pinwall's added above the one the sender wrote: not believed
        added = sample(
            "forged_from.eml",
            **{FAIL: PASS, "forged-0001": "added-1", "To: ": f"To: {LAGER}\r\nTo: "},
        )
        await world.send(added, sender=ANNA, to=[LAGER])
        assert _texts(world, "lager") == []
        assert len(_held(world)) == 3

        # the address in another case, with a name, among others in Cc: posted
        named = sample(
            "forged_from.eml",
            **{
                FAIL: PASS,
                "forged-0001": "named-1",
                "To: vertrieb@pinwall.firma.test": (
                    "To: kollegen@firma.test\r\n"
                    "Cc: Bob <bob@firma.test>, Lager <LAGER@Pinwall.Firma.TEST>"
                ),
            },
        )
        await world.send(named, sender=ANNA, to=[LAGER])
        assert len(_texts(world, "lager")) == 1
        assert len(_held(world)) == 3


async def test_a_command_or_a_reply_not_addressed_to_its_address_is_refused(
    tmp_path: Path,
) -> None:
    """Anna's signed mail to someone else, re-sent to pinwall@ (read as a command) or to
    her reply address (a comment): refused, nothing done, logged."""
    async with mail_world(tmp_path) as world:
        await world.say("e1", "?group create vertrieb Vertrieb")
        await world.say("e2", "?join vertrieb")
        await world.verify("e2", ANNA)
        await world.say("e1", "?share vertrieb Messe-Stand steht in Halle 4")
        with world.program.db.uow() as uow:
            group = uow.groups.by_slug("vertrieb")
            assert group is not None
            [line] = uow.items.lines(group.id, 10)
            group_id, item_id = group.id, line.id
        anna = _anna_id(world)
        annas = reply_address(world.mail.signer, item_id, anna, DOMAIN)
        pinwall = f"pinwall@{DOMAIN}"
        for n, to in enumerate((pinwall, annas)):
            raw = (
                f"Authentication-Results: {AUTHSERV}; {PASS}\r\n"
                f"From: Anna Schmidt <{ANNA}>\r\nTo: bob@partner.example\r\n"
                f"Subject: leave vertrieb\r\nMessage-ID: <replayed-{n}@firma.test>\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n\r\nleave vertrieb\r\n"
            ).encode()
            with pytest.raises(aiosmtplib.SMTPDataError) as refused:
                await world.send(raw, sender="bob@partner.example", to=[to])
            assert refused.value.code == 550
            assert "names this address in neither To nor Cc" in refused.value.message
            assert "weder in An noch in Cc" in refused.value.message
        with world.program.db.uow() as uow:
            assert uow.groups.membership(anna, group_id) is not None  # not left
            assert uow.items.comments(item_id) == []
            assert uow.inbox.unapplied(10, None) == []
        metrics = world.program.core.metrics.render().decode()
        assert 'pinwall_mail_refused_total{reason="not_addressed"} 2.0' in metrics
        # addressed to it, the same command is taken
        raw = raw.replace(b"To: bob@partner.example", f"To: {pinwall}".encode())
        await world.send(raw.replace(b"replayed-1", b"direct-1"), sender=ANNA, to=[pinwall])
        with world.program.db.uow() as uow:
            assert uow.groups.membership(anna, group_id) is None


async def test_forged_dsns_with_guessed_outbox_ids_cut_off_no_one(tmp_path: Path) -> None:
    """Anyone who can reach the listener sends DSNs to bounces@ naming <pwN@domain> for
    sequential N, or the real Message-ID of a mail to someone else: none counts (the id
    must carry the MAC over row and address), and a flood of them is deferred."""
    async with mail_world(tmp_path, mail_per_minute=6) as world:
        await world.verify("e2", ANNA)
        await world.verify("e3", "bob@firma.test")
        bobs = [m for m in world.sink.mails if str(m["To"]) == "bob@firma.test"]
        bobs_id = str(bobs[0]["Message-ID"])[3:].partition("@")[0]  # "<row>.<mac>"
        guesses = [str(n) for n in range(1, 5)] + [bobs_id, bobs_id.partition(".")[0]]
        for guess in guesses:
            dsn = sample("dsn_bounce.eml", **{"{OUTBOX_ID}": guess})
            await world.send_null_sender(dsn, to=f"bounces@{DOMAIN}")
        with world.program.db.uow() as uow:
            account = uow.people.account(MAIL_PLATFORM, ANNA)
            assert account is not None
            assert account.reachable  # Anna still gets Pinwall's mail
        # the seventh report within the minute from the same reporter waits (451)
        dsn = sample("dsn_bounce.eml", **{"{OUTBOX_ID}": "5"})
        with pytest.raises(smtplib.SMTPDataError) as deferred:
            await world.send_null_sender(dsn, to=f"bounces@{DOMAIN}")
        assert deferred.value.smtp_code == 451
