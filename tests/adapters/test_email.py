"""The mail bridge over real SMTP on loopback: Pinwall's listener driven by aiosmtplib,
an aiosmtpd sink as the company's relay, the rest of Pinwall real (tests/adapters/
email_world.py). Mails in: group addresses, verified and authenticated senders, refusals
at RCPT and DATA, held forgeries, duplicates."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import aiosmtplib
import pytest
from sqlalchemy import text

from store.db import Database
from store.models import Base
from tests.adapters.email_world import DOMAIN, MailWorld, mail_world, sample

ANNA = "anna.schmidt@firma.test"
VERTRIEB = f"vertrieb@{DOMAIN}"


async def _group_with_anna(world: MailWorld) -> None:
    await world.say("e1", "?group create vertrieb Vertrieb")
    await world.say("e1", "?notify vertrieb instant")
    await world.say("e2", "?join vertrieb")
    await world.verify("e2", "Anna.Schmidt@firma.test")


@dataclass(frozen=True)
class Post:
    id: int
    title: str | None
    text: str
    source_platform: str | None
    comments: list[str]


def _items(world: MailWorld) -> list[Post]:
    with world.program.db.uow() as uow:
        group = uow.groups.by_slug("vertrieb")
        assert group is not None
        found = [uow.items.get(line.id) for line in uow.items.lines(group.id, 50)]
        return [
            Post(
                i.id,
                i.title,
                i.text,
                i.source_platform,
                [c.text for c in uow.items.comments(i.id)],
            )
            for i in found
            if i is not None
        ]


def _audit(world: MailWorld, action: str) -> list[dict[str, object]]:
    with world.program.db.uow() as uow:
        return [e.details for e in uow.audit.newest(100) if e.action == action]


async def test_a_mail_to_a_group_from_a_verified_colleague_becomes_a_post(tmp_path: Path) -> None:
    async with mail_world(tmp_path) as world:
        await _group_with_anna(world)
        await world.send(sample("outlook_html_inline_de.eml"), sender=ANNA, to=[VERTRIEB])

        [item] = _items(world)
        assert item.title == "Neues Plakat für die Filiale München"  # RFC 2047, iso-8859-1
        assert "hängt ab Montag" in item.text
        assert item.source_platform == "email"
        with world.program.db.uow() as uow:
            files = uow.items.to_render(item.id)
            assert files is not None
            assert [name for _, name, _ in files[3]] == ["image001.png"]
        # the group's instant member got it on their messenger, "via Mail"
        [told] = [t for t in world.told("e1") if "Neues Plakat" in t]
        assert told.startswith("e2 via Mail in Vertrieb")
        # the sender is told by mail that it is posted
        assert any("Shared as #" in str(m.get_body()) for m in world.sink.to(ANNA))
        metrics = world.program.core.metrics.render().decode()
        assert 'pinwall_mail_received_total{kind="group"} 1.0' in metrics

        # the same mail again (a retry of the sending server): no second post
        await world.send(sample("outlook_html_inline_de.eml"), sender=ANNA, to=[VERTRIEB])
        assert len(_items(world)) == 1


async def test_unknown_addresses_are_refused_at_rcpt_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    async with mail_world(tmp_path) as world:
        await _group_with_anna(world)
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
            await world.send(
                sample("outlook_html_inline_de.eml"), sender=ANNA, to=[f"einkauf@{DOMAIN}"]
            )
        [error] = refused.value.recipients
        assert error.code == 550
        assert "No group or post has this address" in error.message
        for forged in (f"reply+1.2.0123456789abcdef0123@{DOMAIN}", "vertrieb@elsewhere.test"):
            with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
                await world.send(sample("outlook_html_inline_de.eml"), sender=ANNA, to=[forged])
        assert _items(world) == []


async def test_a_secret_group_has_no_address_that_tells_it_exists(tmp_path: Path) -> None:
    """The mail server answers for a secret group's slug as for a slug nobody uses: 550,
    the same words (a 250 would tell anyone who asks that the group exists)."""
    async with mail_world(tmp_path) as world:
        await _group_with_anna(world)
        await world.say("e1", "?group create vorstand Vorstand --secret")
        answers = []
        for slug in ("vorstand", "niemand"):
            with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
                await world.send(
                    sample("outlook_html_inline_de.eml"), sender=ANNA, to=[f"{slug}@{DOMAIN}"]
                )
            [error] = refused.value.recipients
            answers.append((error.code, error.message))
        assert answers[0] == answers[1]
        assert answers[0][0] == 550


async def test_an_unknown_sender_is_refused_with_a_reason(tmp_path: Path) -> None:
    async with mail_world(tmp_path) as world:
        await world.say("e1", "?group create vertrieb Vertrieb")
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await world.send(sample("outlook_html_inline_de.eml"), sender=ANNA, to=[VERTRIEB])
        assert refused.value.code == 550
        assert "Pinwall does not know this sender" in refused.value.message
        assert _items(world) == []
        with world.program.db.uow() as uow:
            assert uow.inbox.unapplied(10, None) == []


async def test_a_forged_from_without_dkim_is_held_not_posted(tmp_path: Path) -> None:
    async with mail_world(tmp_path) as world:
        await _group_with_anna(world)
        response = await world.send(sample("forged_from.eml"), sender=ANNA, to=[VERTRIEB])
        assert "waits for a moderator" in str(response)
        assert _items(world) == []
        [held] = _audit(world, "mail.held")
        assert held["from"] == ANNA
        assert held["subject"] == "Dringend: neue Bankverbindung"
        metrics = world.program.core.metrics.render().decode()
        assert 'pinwall_mail_refused_total{reason="held"} 1.0' in metrics


async def test_a_sender_without_the_right_to_post_is_answered_by_mail(tmp_path: Path) -> None:
    async with mail_world(tmp_path) as world:
        await world.say("e1", "?group create vertrieb Vertrieb")
        await world.verify("e2", ANNA)  # anna is no member of Vertrieb
        await world.send(sample("outlook_html_inline_de.eml"), sender=ANNA, to=[VERTRIEB])
        assert _items(world) == []
        [answer] = [m for m in world.sink.to(ANNA) if "code" not in str(m["Subject"]).lower()]
        assert "join" in str(answer.get_body()).lower()


async def test_a_flood_from_one_sender_is_deferred(tmp_path: Path) -> None:
    async with mail_world(tmp_path, mail_per_minute=2) as world:
        await _group_with_anna(world)
        for n in range(2):
            raw = sample("outlook_html_inline_de.eml", **{"AM0PR07MB1234ABCD": f"flood{n}"})
            await world.send(raw, sender=ANNA, to=[VERTRIEB])
        with pytest.raises(aiosmtplib.SMTPDataError) as deferred:
            await world.send(sample("outlook_html_inline_de.eml"), sender=ANNA, to=[VERTRIEB])
        assert deferred.value.code == 451
        assert len(_items(world)) == 2
    # the count is in the store: the same Pinwall started again within the minute holds it
    async with mail_world(tmp_path, mail_per_minute=2) as world:
        raw = sample("outlook_html_inline_de.eml", **{"AM0PR07MB1234ABCD": "after"})
        with pytest.raises(aiosmtplib.SMTPDataError) as after_restart:
            await world.send(raw, sender=ANNA, to=[VERTRIEB])
        assert after_restart.value.code == 451
        assert len(_items(world)) == 2


async def test_forged_mail_in_annas_name_does_not_use_up_her_budget(tmp_path: Path) -> None:
    """Mail that only claims to be Anna's counts against a budget of its own: a forger
    sending as many as she may in a minute (each held) holds back none of her real mail;
    the next forged one is deferred."""
    async with mail_world(tmp_path, mail_per_minute=2) as world:
        await _group_with_anna(world)
        for n in range(2):
            forged = sample("forged_from.eml").replace(
                b"Message-ID: <", f"Message-ID: <f{n}".encode()
            )
            await world.send(forged, sender=ANNA, to=[VERTRIEB])
        with pytest.raises(aiosmtplib.SMTPDataError) as deferred:
            await world.send(sample("forged_from.eml"), sender=ANNA, to=[VERTRIEB])
        assert deferred.value.code == 451
        assert len(_audit(world, "mail.held")) == 2
        # Anna's own, authenticated mail still goes in at once.
        await world.send(sample("outlook_html_inline_de.eml"), sender=ANNA, to=[VERTRIEB])
        assert len(_items(world)) == 1


@pytest.fixture
def pg_store(_pg_migrated: Database) -> Database:
    """The session's migrated PostgreSQL database, emptied."""
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with _pg_migrated.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return _pg_migrated


@pytest.mark.postgres
async def test_two_instances_behind_one_mx_share_the_per_sender_count(
    tmp_path: Path, pg_store: Database
) -> None:
    """Two Pinwalls on one PostgreSQL store (each with its own listener, as two MX
    targets): mails of one sender to either count together."""
    shared = {"database_url": pg_store.url, "mail_per_minute": 2}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with mail_world(tmp_path / "a", **shared) as one:
        await _group_with_anna(one)  # before the second starts: the code mail is one's
        async with mail_world(tmp_path / "b", **shared) as two:
            await _two_instances_count_together(one, two)


async def _two_instances_count_together(one: MailWorld, two: MailWorld) -> None:
    await one.send(sample("outlook_html_inline_de.eml"), sender=ANNA, to=[VERTRIEB])
    raw = sample("outlook_html_inline_de.eml", **{"AM0PR07MB1234ABCD": "second"})
    await two.send(raw, sender=ANNA, to=[VERTRIEB])
    raw = sample("outlook_html_inline_de.eml", **{"AM0PR07MB1234ABCD": "third"})
    with pytest.raises(aiosmtplib.SMTPDataError) as deferred:
        await one.send(raw, sender=ANNA, to=[VERTRIEB])
    assert deferred.value.code == 451
    assert len(_items(one)) == 2


async def test_a_file_over_the_limit_is_refused_naming_the_limit(tmp_path: Path) -> None:
    async with mail_world(tmp_path, file_max_mb=1) as world:
        await _group_with_anna(world)
        # the SIZE extension: a client that announces the size is refused at MAIL FROM
        assert world.mail.server is not None
        big = _with_attachment(1024 * 1024 + 10)
        with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
            await world.send(big, sender=ANNA, to=[VERTRIEB])
        assert refused.value.code == 552
        assert "Pinwall takes files up to 1 MB" in refused.value.message
        # within SIZE (base64's third more is allowed for), but the file itself is larger
        with pytest.raises(aiosmtplib.SMTPDataError) as refused_data:
            await world.send(_with_attachment(1024 * 1024 + 100), sender=ANNA, to=[VERTRIEB])
        assert refused_data.value.code == 552
        assert "up to 1 MB" in refused_data.value.message
        assert _items(world) == []


def _with_attachment(size: int) -> bytes:
    import base64

    data = base64.encodebytes(b"\0" * size).replace(b"\n", b"\r\n")
    return (
        (
            f"From: {ANNA}\r\nTo: {VERTRIEB}\r\nSubject: Katalog\r\nMessage-ID: <big{size}@x>\r\n"
            f"Authentication-Results: mx.firma.test; dmarc=pass header.from=firma.test\r\n"
            'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
            "--b\r\nContent-Type: text/plain\r\n\r\nDer Katalog.\r\n--b\r\n"
            "Content-Type: application/pdf\r\n"
            'Content-Disposition: attachment; filename="katalog.pdf"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n"
        ).encode()
        + data
        + b"--b--\r\n"
    )
