"""Held mails: a mail whose sender could not be verified waits for a moderator or an
admin, who lists (`mail held`), releases (`mail release <id>`: posted as the person it
is from) or drops it (`mail drop <id>`), over real SMTP on loopback."""

from __future__ import annotations

from pathlib import Path

from store.models import MAIL_PLATFORM
from tests.adapters.email_world import DOMAIN, MailWorld, mail_world, plain, sample

ANNA = "anna.schmidt@firma.test"
VERTRIEB = f"vertrieb@{DOMAIN}"


def _posts(world: MailWorld) -> list[tuple[str, int | None, str | None]]:
    with world.program.db.uow() as uow:
        group = uow.groups.by_slug("vertrieb")
        assert group is not None
        found = [uow.items.get(line.id) for line in uow.items.lines(group.id, 50)]
        return [(i.text, i.author_id, i.source_platform) for i in found if i is not None]


def _actions(world: MailWorld) -> list[str]:
    with world.program.db.uow() as uow:
        return [e.action for e in uow.audit.newest(100)]


async def test_a_held_mail_is_listed_released_as_its_sender_or_dropped(tmp_path: Path) -> None:
    async with mail_world(tmp_path) as world:
        await world.say("e1", "?group create vertrieb Vertrieb")
        await world.say("e1", "?notify vertrieb instant")
        await world.say("e2", "?join vertrieb")
        await world.verify("e2", ANNA)
        response = await world.send(sample("forged_from.eml"), sender=ANNA, to=[VERTRIEB])
        assert "waits for a moderator" in str(response)
        assert _posts(world) == []

        # a member who moderates nothing sees nothing and can release nothing
        assert "No held mails wait for you." in await world.say("e2", "?email held")
        answer = await world.say("e2", "?email release 1")
        assert "There is no held mail 1 that you can decide on." in answer
        assert _posts(world) == []

        # the admin (and Vertrieb's moderator) sees it ...
        listing = await world.say("e1", "?email held")
        assert "Held mails (1)" in listing
        assert listing.count(" · ") == 4
        assert f"{ANNA} → vertrieb · Dringend: neue Bankverbindung · sender not verified" in listing
        # ... and releases it, in German: posted as Anna
        await world.say("e1", "?settings language de")
        answer = await world.say("e1", "?mail freigeben 1")
        assert f"Freigegeben: Die zurückgehaltene Mail 1 von {ANNA}" in answer
        with world.program.db.uow() as uow:
            account = uow.people.account(MAIL_PLATFORM, ANNA)
            assert account is not None
            anna_id = account.person_id
        [(text, author, platform)] = _posts(world)
        assert "Bitte ab sofort alle Zahlungen" in text
        assert author == anna_id
        assert platform == MAIL_PLATFORM
        assert "mail.released" in _actions(world)
        # Anna hears by mail that it is posted (as for any mail of hers)
        assert any("in Vertrieb." in plain(m) and "#" in plain(m) for m in world.sink.to(ANNA))
        # once only
        assert "ist schon freigegeben" in await world.say("e1", "?mail freigeben 1")
        assert len(_posts(world)) == 1

        # another held mail is dropped: nothing posted, its words gone, the log keeps it
        raw = sample("forged_from.eml", **{"forged-0001": "forged-0002"})
        await world.send(raw, sender=ANNA, to=[VERTRIEB])
        answer = await world.say("e1", "?mail verwerfen 2")
        assert f"Verworfen: die zurückgehaltene Mail 2 von {ANNA}." in answer
        assert len(_posts(world)) == 1
        assert "mail.dropped" in _actions(world)
        with world.program.db.uow() as uow:
            held = uow.mail.held_mail(2)
            assert held is not None
            assert held.status == "dropped"
            assert "text" not in held.content
        assert "Keine zurückgehaltenen Mails" in await world.say("e1", "?mail gehalten")


def _authentic(raw: bytes) -> bytes:
    """The same mail as it comes when the MTA could verify Anna's domain: its own
    Authentication-Results, on top, say pass."""
    return raw.replace(
        b"dkim=none; dmarc=fail (p=none) header.from=firma.test",
        b"dkim=pass header.d=firma.test; dmarc=pass header.from=firma.test",
        1,
    )


async def test_a_released_mail_is_in_the_inbox_so_the_same_mail_again_is_taken_once(
    tmp_path: Path,
) -> None:
    async with mail_world(tmp_path) as world:
        await world.say("e1", "?group create vertrieb Vertrieb")
        await world.say("e2", "?join vertrieb")
        await world.verify("e2", ANNA)
        first = sample("forged_from.eml")
        await world.send(first, sender=ANNA, to=[VERTRIEB])
        assert "Released" in await world.say("e1", "?email release 1")
        with world.program.db.uow() as uow:
            row = uow.inbox.get(MAIL_PLATFORM, "<forged-0001@mail.example.net> group:vertrieb")
            assert row is not None  # recorded as the mail itself would have been
        # the same mail redelivered, now verified: the inbox knows it, no second post
        await world.send(_authentic(first), sender=ANNA, to=[VERTRIEB])
        assert len(_posts(world)) == 1

        # the other way round: held, then the same mail comes verified (posted), then a
        # moderator releases the held copy: nothing twice, and they are told why
        second = sample("forged_from.eml", **{"forged-0001": "forged-0002"})
        await world.send(second, sender=ANNA, to=[VERTRIEB])
        await world.send(_authentic(second), sender=ANNA, to=[VERTRIEB])
        assert len(_posts(world)) == 2
        answer = await world.say("e1", "?email release 2")
        assert f"Held mail 2 from {ANNA} is on Pinwall already" in answer
        assert "email drop 2" in answer
        assert len(_posts(world)) == 2
        with world.program.db.uow() as uow:
            held = uow.mail.held_mail(2)
            assert held is not None
            assert held.status == "held"  # nothing changed: it can still be dropped


async def test_a_held_command_is_released_as_its_sender(tmp_path: Path) -> None:
    """A command mailed to pinwall@ whose sender could not be verified: only an admin
    decides (it is for no group, not even the one it names); released, it runs as Anna
    and she gets the answer."""
    pinwall = f"pinwall@{DOMAIN}"
    async with mail_world(tmp_path) as world:
        await world.say("e1", "?group create vertrieb Vertrieb")
        await world.say("e3", "?group create einkauf Einkauf")  # e3 moderates Einkauf
        await world.say("e2", "?join vertrieb")
        await world.verify("e2", ANNA)
        raw = (
            f"From: Anna Schmidt <{ANNA}>\r\nTo: {pinwall}\r\nSubject: Re: Pinwall\r\n"
            "Message-ID: <held-command-1@mail.example.net>\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\njoin einkauf\r\n"
        ).encode()
        response = await world.send(raw, sender=ANNA, to=[pinwall])
        assert "waits for a moderator" in str(response)
        assert "No held mails wait for you." in await world.say("e3", "?email held")
        listing = await world.say("e1", "?email held")
        assert f"{ANNA} → commands · Re: Pinwall" in listing
        mails = len(world.sink.to(ANNA))
        assert "Released: held mail 1" in await world.say("e1", "?email release 1")
        with world.program.db.uow() as uow:
            group = uow.groups.by_slug("einkauf")
            account = uow.people.account(MAIL_PLATFORM, ANNA)
            assert group is not None
            assert account is not None
            assert uow.groups.membership(account.person_id, group.id) is not None
        [answer] = world.sink.to(ANNA)[mails:]
        assert "Einkauf" in plain(answer)
        # the same mail again, verified: the inbox has it, it is not run twice
        await world.send(_authentic(raw), sender=ANNA, to=[pinwall])
        assert len(world.sink.to(ANNA)) == mails + 1


async def test_a_held_newsletter_is_released_as_an_entry_once_its_sender_is_allowed(
    tmp_path: Path,
) -> None:
    news = "newsletter@news.example.com"
    letters = f"newsletter+vertrieb@{DOMAIN}"
    async with mail_world(tmp_path) as world:
        await world.say("e1", "?group create vertrieb Vertrieb")
        await world.say("e1", "?settings language de")
        held = sample("newsletter_tracking.eml", **{"dmarc=pass": "dmarc=fail"}).replace(
            b"dkim=pass", b"dkim=fail"
        )
        await world.send(held, sender=news, to=[letters])
        # not allowed yet: the release says what to do first, and changes nothing
        answer = await world.say("e1", "?mail freigeben 1")
        assert (
            f"noch nicht an vertrieb schicken darf. Erlaube ihn zuerst: newsletter vertrieb {news}"
            in answer
        )
        await world.say("e1", f"?newsletter vertrieb {news}")
        assert "Freigegeben: Die zurückgehaltene Mail 1" in await world.say(
            "e1", "?mail freigeben 1"
        )
        with world.program.db.uow() as uow:
            group = uow.groups.by_slug("vertrieb")
            assert group is not None
            entries = [uow.items.get(line.id) for line in uow.items.lines(group.id, 10)]
            assert [(e.title, e.url) for e in entries if e] == [
                (
                    "Branchen-News: Die Woche im Handel",
                    "https://handel.example.org/artikel/preise-2027",
                )
            ]
        # the same newsletter arriving verified: its Message-ID and link are known
        await world.send(sample("newsletter_tracking.eml"), sender=news, to=[letters])
        with world.program.db.uow() as uow:
            again = uow.groups.by_slug("vertrieb")
            assert again is not None
            assert len(uow.items.lines(again.id, 10)) == 1


async def test_a_moderator_releases_a_held_mail_only_into_the_groups_they_moderate(
    tmp_path: Path,
) -> None:
    """e3 moderates only Lager. A (forged) mail 'from Anna' to lager@ AND vertrieb@ is
    held: e3 releases it into Lager alone and is told that Vertrieb was left out; it
    stays held for Vertrieb's moderators (here the admin), and the audit log says who
    released what."""
    async with mail_world(tmp_path) as world:
        await world.say("e1", "?group create vertrieb Vertrieb")
        await world.say("e1", "?group create lager Lager")
        await world.say("e1", "?add e3 lager")
        await world.say("e2", "?join vertrieb")
        await world.say("e2", "?join lager")
        await world.say("e3", "?join lager")
        with world.program.db.uow() as uow:
            lager = uow.groups.by_slug("lager")
            assert lager is not None
            e3 = uow.people.account("echo", "e3")
            assert e3 is not None
            e3_id = e3.person_id
            membership = uow.groups.membership(e3_id, lager.id)
            assert membership is not None
            membership.moderator = True
            uow.commit()
        await world.verify("e2", ANNA)
        raw = sample("forged_from.eml", **{"To: vertrieb@": f"To: lager@{DOMAIN}, vertrieb@"})
        await world.send(raw, sender=ANNA, to=[f"lager@{DOMAIN}", VERTRIEB])
        assert _posts(world) == []
        await world.say("e3", "?settings language de")
        answer = await world.say("e3", "?mail freigeben 1")
        assert "Freigegeben: Die zurückgehaltene Mail 1" in answer, answer
        assert "Nicht freigegeben (das darfst du nicht): Vertrieb." in answer
        assert _posts(world) == []  # nothing in Vertrieb
        with world.program.db.uow() as uow:
            lager_posts = uow.items.lines(lager.id, 10)
            assert len(lager_posts) == 1
            held = uow.mail.held_mail(1)
            assert held is not None
            assert held.status == "held"  # still waiting for Vertrieb's moderators
            [audit] = [e for e in uow.audit.newest(100) if e.action == "mail.released"]
            assert audit.actor_id == e3_id
            assert audit.details == {"held": 1, "left_out": ["Vertrieb"]}
        # e3 again: nothing more is theirs to release
        again = await world.say("e3", "?mail freigeben 1")
        assert "ist schon auf Pinwall" in again
        # the admin releases the rest, in English: Vertrieb gets it, once; Lager not twice
        answer = await world.say("e1", "?email release 1")
        assert f"Released: held mail 1 from {ANNA} is on Pinwall now" in answer, answer
        assert len(_posts(world)) == 1
        with world.program.db.uow() as uow:
            assert len(uow.items.lines(lager.id, 10)) == 1
            held = uow.mail.held_mail(1)
            assert held is not None
            assert held.status == "released"
        assert _actions(world).count("mail.released") == 2
