"""The mail bridge sending, over real SMTP: posts to a mail-only colleague through an
aiosmtpd sink as the company's relay, their reply by mail as a comment, one-click
unsubscribe, digests by mail, bounces, and a crash between claim and send."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from adapters.email.inbound import message_id
from bot.message import DeliveryFailed
from jobs.digests import DigestJob
from store.models import MAIL_PLATFORM, NotifyMode, OutboxStatus, Role
from tests.adapters.email_world import DOMAIN, PUBLIC_URL, MailWorld, mail_world, plain, sample

CARLA = "carla.weber@firma.test"


def mail_only(world: MailWorld, address: str, notify: NotifyMode, role: Role = Role.MEMBER) -> int:
    """A colleague whose only account is a verified mail address, in Vertrieb."""
    core = world.program.core
    now = core.clock.now()
    with core.db.uow() as uow:
        person = uow.people.create(name="carla", role=role, now=now, language_hint="de")
        uow.people.add_account(person, platform=MAIL_PLATFORM, external_id=address, now=now)
        row = uow.mail.request(person.id, address, "ABCDEFGH", now, now)
        row.verified_at, row.code = now, None
        group = uow.groups.by_slug("vertrieb")
        assert group is not None
        uow.groups.add_member(person.id, group.id, now=now).notify = notify
        uow.commit()
        return person.id


async def _vertrieb(world: MailWorld, notify: NotifyMode = NotifyMode.INSTANT) -> int:
    await world.say("e1", "?group create vertrieb Vertrieb")
    return mail_only(world, CARLA, notify)


def _comments(world: MailWorld) -> list[str]:
    with world.program.db.uow() as uow:
        group = uow.groups.by_slug("vertrieb")
        assert group is not None
        return [
            c.text for line in uow.items.lines(group.id, 10) for c in uow.items.comments(line.id)
        ]


async def test_a_post_reaches_the_mail_only_colleague_whose_reply_becomes_a_comment(
    tmp_path: Path,
) -> None:
    async with mail_world(tmp_path) as world:
        await _vertrieb(world)
        await world.say("e1", "?share vertrieb Das neue Plakat hängt ab Montag")

        [mail] = world.sink.to(CARLA)
        # multipart text + HTML, in Carla's language, from Pinwall's address
        assert mail.get_content_type() == "multipart/alternative"
        assert "Das neue Plakat hängt ab Montag" in plain(mail)
        html = mail.get_body(preferencelist=("html",))
        assert html is not None
        assert "Das neue Plakat hängt ab Montag" in str(html.get_content())
        assert "Antworte auf diese Mail" in plain(mail)  # German: Carla's language hint
        assert str(mail["From"]) == f"Pinwall <pinwall@{DOMAIN}>"
        # a stable Message-ID per delivery: the outbox row's
        with world.program.db.uow() as uow:
            [row_id] = [r.id for r in uow.outbox.listing(["sent"], 50) if r.target == CARLA]
        # signed with the address, so that only a real bounce can name it
        assert str(mail["Message-ID"]) == message_id(
            world.mail.signer, f"pw{row_id}", CARLA, DOMAIN
        )
        assert str(mail["Message-ID"]).startswith(f"<pw{row_id}.")
        assert world.sink.envelopes[-1][0] == f"bounces@{DOMAIN}"  # DSNs come back to us
        # one-click unsubscribe (RFC 8058) and a reply address that is a comment
        assert str(mail["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
        assert str(mail["List-Unsubscribe"]).strip().startswith(f"<{PUBLIC_URL}/mail/unsubscribe/")
        reply_to = str(mail["Reply-To"])
        assert re.fullmatch(rf"reply\+\d+\.\d+\.[0-9a-f]{{20}}@{re.escape(DOMAIN)}", reply_to)

        # Carla answers from Apple Mail, with the quoted post under her words
        answer = sample(
            "apple_mail_reply.eml",
            **{"bjoern.mueller@firma.test": CARLA, "reply@pinwall.firma.test": reply_to},
        )
        await world.send(answer, sender=CARLA, to=[reply_to])
        assert _comments(world) == [
            "Sieht super aus! Können wir davon 20 Stück für Augsburg bekommen?"
        ]
        # the post's author hears of it on their messenger
        assert any("Sieht super aus!" in told for told in world.told("e1"))


async def test_one_click_unsubscribe_works_without_a_login(tmp_path: Path) -> None:
    async with mail_world(tmp_path) as world:
        person_id = await _vertrieb(world)
        await world.say("e1", "?share vertrieb Erster Beitrag")
        [mail] = world.sink.to(CARLA)
        url = str(mail["List-Unsubscribe"]).strip().strip("<>")
        path = urlsplit(url).path

        page = await world.http.get(path)  # a link scanner's or a person's GET changes nothing
        assert page.status_code == 200
        assert '<form method="post"><button type="submit">Abmelden</button></form>' in page.text
        assert _notify(world, person_id) == NotifyMode.INSTANT
        done = await world.http.post(path, content=b"List-Unsubscribe=One-Click")  # the client
        assert done.status_code == 200
        assert "Fertig: keine Mails mehr für: Vertrieb." in done.text
        assert _notify(world, person_id) == NotifyMode.MUTE

        await world.say("e1", "?share vertrieb Zweiter Beitrag")
        assert len(world.sink.to(CARLA)) == 1  # no more mail

        forged = path.replace(path.rsplit(".", 1)[1], "0" * 20)
        assert (await world.http.post(forged)).status_code == 404


def _notify(world: MailWorld, person_id: int) -> str:
    with world.program.db.uow() as uow:
        group = uow.groups.by_slug("vertrieb")
        assert group is not None
        membership = uow.groups.membership(person_id, group.id)
        assert membership is not None
        return membership.notify


async def test_a_digest_by_mail_and_its_one_click_unsubscribe(tmp_path: Path) -> None:
    async with mail_world(tmp_path) as world:
        carla = await _vertrieb(world, NotifyMode.DAILY)
        await world.say("e1", "?share vertrieb Wochenangebot Kaffee")
        assert world.sink.to(CARLA) == []  # daily: nothing at once

        job = DigestJob(world.program.hub)
        now = world.program.core.clock.now()
        await job.tick(now)  # schedules Carla's digests (08:00 in her time zone) ...
        with world.program.db.uow() as uow:
            schedule = uow.digests.schedule(carla)
            assert schedule is not None
            schedule.daily_due = now - timedelta(minutes=1)  # ... and 08:00 has come
            uow.commit()
        assert await job.tick(now) >= 1
        await world.program.worker.drain()
        [digest] = world.sink.to(CARLA)
        assert "Wochenangebot Kaffee" in plain(digest)
        assert "Zusammenfassung" in str(digest["Subject"])
        assert "Reply-To" not in digest  # a digest is no post to comment on
        url = str(digest["List-Unsubscribe"]).strip().strip("<>")
        done = await world.http.post(urlsplit(url).path, content=b"List-Unsubscribe=One-Click")
        assert "deine Zusammenfassungen" in done.text
        with world.program.db.uow() as uow:
            person = uow.people.account(MAIL_PLATFORM, CARLA)
            assert person is not None
            schedule = uow.digests.schedule(person.person_id)
            assert schedule is not None
            assert schedule.paused  # as `digest off`


async def test_a_bounce_marks_the_address_failing_and_tells_the_person_on_a_messenger(
    tmp_path: Path,
) -> None:
    anna = "anna.schmidt@firma.test"
    async with mail_world(tmp_path) as world:
        await world.verify("e2", anna)
        [code_mail] = world.sink.to(anna)
        outbox_id = str(code_mail["Message-ID"])[3:].partition("@")[0]
        dsn = sample("dsn_bounce.eml", **{"{OUTBOX_ID}": outbox_id})
        await world.send_null_sender(dsn, to=f"bounces@{DOMAIN}")

        with world.program.db.uow() as uow:
            account = uow.people.account(MAIL_PLATFORM, anna)
            assert account is not None
            assert not account.reachable
            [row] = uow.mail.of_person(account.person_id)
            assert row.failing_since is not None
            assert row.failure == "552 5.2.2 Mailbox full"
        assert any("come back (552 5.2.2 Mailbox full)" in t for t in world.told("e2"))
        assert "pinwall_mail_bounced_total 1.0" in world.program.core.metrics.render().decode()

        # a bounce that names no mail Pinwall sent to that address is ignored
        forged = sample("dsn_bounce.eml", **{"{OUTBOX_ID}": "999", "anna.schmidt": "bob"})
        await world.send_null_sender(forged, to=f"bounces@{DOMAIN}")
        with world.program.db.uow() as uow:
            assert uow.mail.verified("bob@firma.test") is None


async def test_a_crash_between_claim_and_send_loses_no_mail(tmp_path: Path) -> None:
    """The store as a process left it that died while its mail was claimed and at the
    relay (a copy of the database taken at that moment), started again: the claim is
    taken back and the mail goes out, with the same Message-ID."""
    claimed_now, crashed = asyncio.Event(), asyncio.Event()

    async def hang(*args: object, **kwargs: object) -> DeliveryFailed:
        claimed_now.set()
        await crashed.wait()  # the relay has not answered when the process dies
        return DeliveryFailed("the process that sent this is gone")

    after = tmp_path / "after"
    after.mkdir()
    async with mail_world(tmp_path) as world:
        await _vertrieb(world)
        world.mail.send = hang  # type: ignore[method-assign,assignment]
        await world.http.post(
            "/echo/events", json={"user": "e1", "text": "?share vertrieb Eilt!", "id": "crash1"}
        )
        await asyncio.wait_for(claimed_now.wait(), 5)
        with world.program.db.uow() as uow:
            claimed = [r for r in uow.outbox.listing(["sending"], 50) if r.target == CARLA]
            assert [r.status for r in claimed] == [OutboxStatus.SENDING]  # claimed, not sent
            row_id = claimed[0].id
        with (
            sqlite3.connect(tmp_path / "pinwall.db") as alive,
            sqlite3.connect(after / "pinwall.db") as copy,
        ):
            alive.backup(copy)  # the disk as the crash leaves it
        crashed.set()
    assert world.sink.to(CARLA) == []

    async with mail_world(after) as world:  # started again on the crashed store
        await world.program.worker.drain(wait_up_to=5)
        [mail] = world.sink.to(CARLA)
        assert "Eilt!" in plain(mail)
        # the same delivery, the same Message-ID
        assert str(mail["Message-ID"]) == message_id(
            world.mail.signer, f"pw{row_id}", CARLA, DOMAIN
        )


async def test_an_external_partner_mails_only_into_their_groups(tmp_path: Path) -> None:
    partner = "carla.weber.partner@gmail.com"
    async with mail_world(tmp_path) as world:
        await world.say("e1", "?group create vertrieb Vertrieb --externals")
        await world.say("e1", "?group create intern Intern")
        mail_only(world, partner, NotifyMode.INSTANT, Role.PARTNER)
        await world.say("e1", "?share vertrieb Neues Plakat für die Filiale München")
        [mail] = world.sink.to(partner)
        reply_to = str(mail["Reply-To"])

        # her Gmail reply (DMARC pass for gmail.com at our MTA) is a comment ...
        reply = sample("gmail_reply.eml", **{"reply@pinwall.firma.test": reply_to})
        await world.send(reply, sender=partner, to=[reply_to])
        assert _comments(world) == ["Great, we'll put one up in the Augsburg window too."]
        # ... but a mail to a group she is not in posts nothing and says why, by mail
        before = len(world.sink.to(partner))
        intern = {"CAK7xY": "CAK8zZ", "reply@pinwall.firma.test": f"intern@{DOMAIN}"}
        raw = sample("gmail_reply.eml", **intern)
        await world.send(raw, sender=partner, to=[f"intern@{DOMAIN}"])
        with world.program.db.uow() as uow:
            intern = uow.groups.by_slug("intern")
            assert intern is not None
            assert uow.items.lines(intern.id, 10) == []
        [answer] = world.sink.to(partner)[before:]
        # an external does not even see the group: it is "not there" for her (German: her hint)
        assert "Die Gruppe intern gibt es nicht." in plain(answer)
