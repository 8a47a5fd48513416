"""Newsletters in: a group's newsletter address takes mails from the senders a moderator
allowed, as entries like a feed's, once per Message-ID and link, without tracking."""

from __future__ import annotations

from pathlib import Path

import aiosmtplib
import pytest

from adapters.email.inbound import parse
from adapters.email.newsletter import entry_of, unwrap
from store.models import ItemKind
from tests.adapters.email_world import DOMAIN, MailWorld, mail_world, sample

NEWS = "newsletter@news.example.com"
LETTERS = f"newsletter+vertrieb@{DOMAIN}"


def test_tracking_redirects_are_unwrapped_and_pixels_left_out() -> None:
    entry = entry_of(parse(sample("newsletter_tracking.eml"), max_file=2**20))
    assert entry.title == "Branchen-News: Die Woche im Handel"  # RFC 2047, base64
    assert entry.url == "https://handel.example.org/artikel/preise-2027"
    assert entry.text == (
        "Preise 2027: was kommt: https://handel.example.org/artikel/preise-2027\n"
        "Filialen im Wandel: https://handel.example.org/artikel/filialen"
    )
    assert "track.news.example.com" not in entry.text  # the 1x1 open pixel
    assert "click.news.example.com" not in entry.text
    assert unwrap("https://x.test/a?utm_source=nl&id=3#top") == "https://x.test/a?id=3"


def _entries(world: MailWorld) -> list[tuple[str, str | None, str]]:
    with world.program.db.uow() as uow:
        group = uow.groups.by_slug("vertrieb")
        assert group is not None
        found = [uow.items.get(line.id) for line in uow.items.lines(group.id, 10)]
        return [(i.kind, i.url, i.title or "") for i in found if i is not None]


async def test_a_newsletter_from_an_allowed_sender_becomes_an_entry_once(tmp_path: Path) -> None:
    async with mail_world(tmp_path) as world:
        await world.say("e1", "?group create vertrieb Vertrieb")
        await world.say("e2", "?join vertrieb")
        refused = await world.say("e2", f"?newsletter vertrieb {NEWS}")
        assert "moderator" in refused.lower()  # only moderators and admins allow senders
        # not allowed yet: refused, nothing written
        with pytest.raises(aiosmtplib.SMTPDataError) as not_yet:
            await world.send(sample("newsletter_tracking.eml"), sender=NEWS, to=[LETTERS])
        assert not_yet.value.code == 550
        assert _entries(world) == []

        allowed = await world.say("e1", f"?newsletter vertrieb {NEWS}")
        assert f"Mails from {NEWS} to newsletter+vertrieb@" in allowed
        assert NEWS in await world.say("e1", "?newsletter vertrieb")
        await world.send(sample("newsletter_tracking.eml"), sender=NEWS, to=[LETTERS])
        assert _entries(world) == [
            (
                ItemKind.FEED_ENTRY,
                "https://handel.example.org/artikel/preise-2027",
                "Branchen-News: Die Woche im Handel",
            )
        ]
        # the same mail again, and another issue linking the same article: no new entry
        await world.send(sample("newsletter_tracking.eml"), sender=NEWS, to=[LETTERS])
        again = sample("newsletter_tracking.eml", **{"nl-2026-49": "nl-2026-50"})
        await world.send(again, sender=NEWS, to=[LETTERS])
        assert len(_entries(world)) == 1
        # searchable like any entry
        assert "Die Woche im Handel" in await world.say("e2", "?search Handel")


async def test_a_newsletter_whose_sender_is_not_authenticated_is_held(tmp_path: Path) -> None:
    async with mail_world(tmp_path) as world:
        await world.say("e1", "?group create vertrieb Vertrieb")
        await world.say("e1", f"?newsletter vertrieb {NEWS}")
        forged = sample("newsletter_tracking.eml", **{"dmarc=pass": "dmarc=fail"}).replace(
            b"dkim=pass", b"dkim=fail"
        )
        response = await world.send(forged, sender=NEWS, to=[LETTERS])
        assert "waits for a moderator" in str(response)
        assert _entries(world) == []


async def test_a_double_opt_in_confirmation_reaches_the_moderators(tmp_path: Path) -> None:
    """A list's confirmation mail to the newsletter address of a group that has not
    allowed its sender yet: forwarded to the group's moderators with the link to open,
    not posted; once they allow the sender, its newsletters come in."""
    confirm = "confirm@news.example.com"
    async with mail_world(tmp_path) as world:
        await world.say("e1", "?group create vertrieb Vertrieb")
        await world.say("e2", "?join vertrieb")
        before = len(world.told("e2"))
        await world.send(sample("newsletter_confirm.eml"), sender=confirm, to=[LETTERS])
        assert _entries(world) == []
        [told] = [t for t in world.told("e1") if "confirm a newsletter subscription" in t]
        assert "https://news.example.com/optin/confirm?token=7f3a9c" in told
        assert "unsubscribe" not in told  # the list's own unsubscribe link is left out
        assert f"newsletter vertrieb {confirm}" in told
        assert "Bitte bestätigen Sie Ihre Anmeldung" in told  # RFC 2047 subject
        assert len(world.told("e2")) == before  # members who moderate nothing: nothing

        # a mail of that sender that asks nothing is still refused
        other = sample("newsletter_tracking.eml", **{"newsletter@news": "confirm@news"})
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await world.send(other, sender=confirm, to=[LETTERS])
        assert refused.value.code == 550

        await world.say("e1", f"?newsletter vertrieb {confirm}")
        await world.send(other, sender=confirm, to=[LETTERS])
        assert [title for _, _, title in _entries(world)] == ["Branchen-News: Die Woche im Handel"]
