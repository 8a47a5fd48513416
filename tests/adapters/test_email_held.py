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
        assert listing.count(" · ") == 3
        assert f"{ANNA} → vertrieb · Dringend: neue Bankverbindung" in listing
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
