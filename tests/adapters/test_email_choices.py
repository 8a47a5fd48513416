"""Mail as a chosen way to hear from Pinwall, for people who have a messenger too:
`notify <group> mail` (a group's posts by mail, with a reply address and a one-click
unsubscribe that turns exactly this off) and `settings digest mail` (digests by mail),
over real SMTP through an aiosmtpd sink as the company's relay."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from bot.announcements import remind_due
from jobs.digests import DigestJob
from store.models import NotifyMode
from tests.adapters.email_world import DOMAIN, PUBLIC_URL, MailWorld, mail_world, plain, sample
from tests.adapters.test_email_sending import mail_only

BOB = "bob.mueller@firma.test"


def _membership(world: MailWorld, handle_account: str) -> tuple[str, bool]:
    with world.program.db.uow() as uow:
        account = uow.people.account("echo", handle_account)
        group = uow.groups.by_slug("vertrieb")
        assert account is not None
        assert group is not None
        membership = uow.groups.membership(account.person_id, group.id)
        assert membership is not None
        return membership.notify, membership.by_mail


async def test_notify_group_mail_sends_its_posts_by_mail_until_one_click_turns_it_off(
    tmp_path: Path,
) -> None:
    async with mail_world(tmp_path) as world:
        await world.say("e1", "?group create vertrieb Vertrieb")
        await world.say("e2", "?join vertrieb")
        # without a verified address: told how to get one, nothing changes
        answer = await world.say("e2", "?notify vertrieb mail")
        assert "First make a mail address yours: send email with your address" in answer
        assert "Usage" not in answer
        assert _membership(world, "e2") == (NotifyMode.DAILY, False)

        await world.verify("e2", BOB)
        answer = await world.say("e2", "?notify vertrieb mail")
        assert f"Vertrieb: you now get every post instantly by mail, at {BOB}" in answer
        assert _membership(world, "e2") == (NotifyMode.INSTANT, True)
        assert "vertrieb (by mail)" in await world.say("e2", "?whoami")

        before = len(world.echo.sent)
        await world.say("e1", "?share vertrieb Messe-Stand steht in Halle 4")
        [mail] = [m for m in world.sink.to(BOB) if "Halle 4" in plain(m)]
        # by mail, not (also) on the messenger
        assert not any(
            t.address == "e2" and "Halle 4" in str(m.text) for t, m in world.echo.sent[before:]
        )
        reply_to = str(mail["Reply-To"])
        assert re.fullmatch(rf"reply\+\d+\.\d+\.[0-9a-f]{{20}}@{re.escape(DOMAIN)}", reply_to)
        assert str(mail["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
        url = str(mail["List-Unsubscribe"]).strip().strip("<>")
        assert url.startswith(f"{PUBLIC_URL}/mail/unsubscribe/")

        # Bob answers by mail: a comment, as him
        answer_mail = sample(
            "apple_mail_reply.eml",
            **{"bjoern.mueller@firma.test": BOB, "reply@pinwall.firma.test": reply_to},
        )
        await world.send(answer_mail, sender=BOB, to=[reply_to])
        with world.program.db.uow() as uow:
            group = uow.groups.by_slug("vertrieb")
            assert group is not None
            [line] = uow.items.lines(group.id, 10)
            [comment] = uow.items.comments(line.id)
            assert comment.text.startswith("Sieht super aus!")
            account = uow.people.account("echo", "e2")
            assert account is not None
            assert comment.author_id == account.person_id

        # one click turns exactly this off: no more mail of Vertrieb
        done = await world.http.post(urlsplit(url).path, content=b"List-Unsubscribe=One-Click")
        assert done.status_code == 200
        assert "Vertrieb" in done.text
        notify, by_mail = _membership(world, "e2")
        assert by_mail is False
        assert notify == NotifyMode.MUTE
        mails = len(world.sink.to(BOB))
        await world.say("e1", "?share vertrieb Zweiter Beitrag")
        assert len(world.sink.to(BOB)) == mails

        # another mode takes mail off again; German words choose it too
        await world.say("e2", "?benachrichtigung vertrieb e-mail")
        assert _membership(world, "e2") == (NotifyMode.INSTANT, True)
        await world.say("e2", "?notify vertrieb daily")
        assert _membership(world, "e2") == (NotifyMode.DAILY, False)


async def test_digests_by_mail_for_a_messenger_user_and_the_unsubscribe_brings_them_back(
    tmp_path: Path,
) -> None:
    async with mail_world(tmp_path) as world:
        await world.say("e1", "?group create vertrieb Vertrieb")
        await world.say("e2", "?join vertrieb")
        answer = await world.say("e2", "?settings digest mail")
        assert "First make a mail address yours" in answer
        await world.verify("e2", BOB)
        assert f"Your digests now go to {BOB} by mail." in await world.say(
            "e2", "?settings digest mail"
        )
        await world.say("e1", "?share vertrieb Wochenangebot Kaffee")

        job = DigestJob(world.program.hub)
        now = world.program.core.clock.now()
        await job.tick(now)
        with world.program.db.uow() as uow:
            account = uow.people.account("echo", "e2")
            assert account is not None
            schedule = uow.digests.schedule(account.person_id)
            assert schedule is not None
            schedule.daily_due = now - timedelta(minutes=1)
            uow.commit()
        before = len(world.echo.sent)
        assert await job.tick(now) >= 1
        await world.program.worker.drain()
        [digest] = [m for m in world.sink.to(BOB) if "Wochenangebot Kaffee" in plain(m)]
        assert "digest" in str(digest["Subject"]).lower()
        assert not any(t.address == "e2" for t, _ in world.echo.sent[before:])

        url = str(digest["List-Unsubscribe"]).strip().strip("<>")
        done = await world.http.post(urlsplit(url).path, content=b"List-Unsubscribe=One-Click")
        assert done.status_code == 200
        with world.program.db.uow() as uow:
            person = uow.people.get(account.person_id)
            assert person is not None
            assert person.digest_by_mail is False
            schedule = uow.digests.schedule(account.person_id)
            assert schedule is not None
            assert not schedule.paused

        # German: einstellungen zusammenfassung mail
        await world.say("e2", "?settings language de")
        answer = await world.say("e2", "?einstellungen zusammenfassung mail")
        assert f"Deine Zusammenfassungen gehen jetzt per Mail an {BOB}." in answer


def _mail(sender: str, to: str, body: str, n: int) -> bytes:
    return (
        f"Authentication-Results: mx.firma.test; dmarc=pass header.from=firma.test\r\n"
        f"From: {sender}\r\nTo: {to}\r\nSubject: Re: Pinwall\r\n"
        f"Message-ID: <cmd{n}@firma.test>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{body}\r\n"
    ).encode()


async def test_a_mail_only_colleague_answers_with_a_command_and_reads_how_by_mail(
    tmp_path: Path,
) -> None:
    """Pinwall's own address takes commands (the first line of a mail to it, as a reply to
    any of its mails is), and texts to mail readers say "a reply with the word help"
    where a messenger's say "/help"."""
    carla = "carla.weber@firma.test"
    pinwall = f"pinwall@{DOMAIN}"
    async with mail_world(tmp_path) as world:
        await world.say("e1", "?group create vertrieb Vertrieb")
        mail_only(world, carla, NotifyMode.INSTANT)  # German, her only account a mail address
        await world.send(
            _mail(carla, pinwall, "gruppen\n\n-- \nCarla", 1), sender=carla, to=[pinwall]
        )
        [answer] = world.sink.to(carla)
        assert str(answer["From"]) == f"Pinwall <{pinwall}>"  # a reply comes back here
        assert "vertrieb" in plain(answer)

        await world.send(_mail(carla, pinwall, "frobnizieren", 2), sender=carla, to=[pinwall])
        [_, refusal] = world.sink.to(carla)
        assert "Den Befehl frobnizieren kenne ich nicht." in plain(refusal)
        assert "Schick eine Antwort mit dem Wort hilfe, um alle Befehle zu sehen." in plain(refusal)
        # on a messenger the same text names the prefix
        await world.say("e1", "?settings language de")
        assert "Schick ?hilfe, um alle Befehle zu sehen." in await world.say("e1", "?frobnizieren")


async def test_the_reminder_of_an_unconfirmed_announcement_goes_by_mail_as_the_second_way(
    tmp_path: Path,
) -> None:
    """Issue 24's "second way": people with a verified mail address who read Pinwall on a
    messenger get the announcement there, and the reminder after 24 hours by mail — once,
    in their language, saying the reply that confirms it; one who confirmed gets none."""
    anna, eva = "anna.schmidt@firma.test", "eva.berg@firma.test"
    pinwall = f"pinwall@{DOMAIN}"
    async with mail_world(tmp_path) as world:
        await world.say("e1", "?group create filialen Filialen")
        for user, address in (("e2", BOB), ("e3", anna), ("e4", eva)):
            await world.say(user, "?join filialen")
            await world.verify(user, address)
        await world.say("e3", "?settings language de")
        mailed = len(world.sink.mails)
        await world.say("e1", "?announce filialen New hygiene rules from Monday --confirm")
        # On their messenger, not by mail (mail is for those without one).
        for user in ("e2", "e3", "e4"):
            assert any("New hygiene rules" in m for m in world.told(user))
        assert len(world.sink.mails) == mailed
        # Eva confirms on her messenger (typed: Echo shows no buttons).
        assert "You confirmed it" in await world.say("e4", "?announcement A1 read")

        # A day later (its reminder made due now: the program's clock is the real one).
        now = world.program.core.clock.now()
        with world.program.db.uow() as uow:
            announcement = uow.announcements.get(1)
            assert announcement is not None
            assert announcement.remind_at == announcement.created_at + timedelta(hours=24)
            announcement.remind_at = now - timedelta(minutes=1)
            uow.commit()
        told = len(world.echo.sent)
        assert await world.program.hub.call(remind_due, world.program.core, now) == 2
        await world.program.worker.drain()
        [english] = world.sink.to(BOB)[-1:]
        assert str(english["Subject"]) == "⏰ Reminder: please confirm announcement A1"
        assert "New hygiene rules from Monday" in plain(english)
        assert "reply with announcement A1 read" in plain(english)
        [german] = world.sink.to(anna)[-1:]
        assert str(german["Subject"]) == "⏰ Erinnerung: Bitte bestätige die Ankündigung A1"
        assert "Antworte mit ankündigung A1 gelesen" in plain(german)
        assert len(world.sink.mails) == mailed + 2  # none to Eva
        assert not any(t.address in ("e2", "e3") for t, _ in world.echo.sent[told:])
        # Once: a second run (a restart, another instance) finds it done.
        assert await world.program.hub.call(remind_due, world.program.core, now) == 0

        # Anna answers the mail as it says: confirmed, and the author's count shows it.
        await world.send(
            _mail(anna, pinwall, "ankündigung A1 gelesen\n\n-- \nAnna", 3),
            sender=anna,
            to=[pinwall],
        )
        [thanks] = world.sink.to(anna)[-1:]
        assert "Bestätigt ✓" in plain(thanks)
        await world.say("e1", "?announcement A1")
        status = await world.told_eventually("e1", "📌 A1:")
        assert "Read ✓: 2/3" in status
        assert "@e2" in status
