"""Issue 23's acceptance in one run of the whole program (app.wiring): a mail to
vertrieb@ from a verified colleague appears in the group on a messenger (Echo) and on
Telegram (the fake Bot API over HTTP); a Telegram member's comment reaches the mail-only
colleague, whose reply by mail becomes a comment; a digest by mail reaches the relay with
a one-click unsubscribe that works — over real SMTP both ways (aiosmtpd)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from jobs.digests import DigestJob
from store.models import Comment, NotifyMode
from tests.adapters.conftest import FRANZ
from tests.adapters.email_world import DOMAIN, mail_world, plain, sample
from tests.adapters.test_email_sending import mail_only
from tests.fakes.telegram import FakeTelegram, TgChat

CARLA = "carla.weber@firma.test"
VERTRIEB = f"vertrieb@{DOMAIN}"


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    with FakeTelegram() as fake:
        yield fake


async def test_mail_telegram_and_a_digest_by_mail_in_one_pinwall(
    tmp_path: Path, telegram: FakeTelegram
) -> None:
    franz = TgChat.private(FRANZ)
    telegram.add_chat(franz)
    async with mail_world(
        tmp_path, telegram_token=telegram.token, telegram_base_url=telegram.base_url
    ) as world:
        await world.say("e1", "?group create vertrieb Vertrieb --externals")
        await world.say("e1", "?notify vertrieb instant")
        carla = mail_only(world, CARLA, NotifyMode.INSTANT)
        # Franz, a franchisee, comes in on Telegram by the invite's deep link.
        invite = await world.say("e1", "?invite partner vertrieb")
        code = re.search(r"\b([A-Z0-9]{10})\b", invite)
        assert code is not None, invite
        telegram.user_starts(FRANZ, code[1])
        await telegram.wait_for_async(
            lambda: any("Vertrieb" in (m.text or "") for m in telegram.sent_to(franz.id)),
            what="Franz's welcome",
        )
        telegram.user_sends_command(FRANZ, franz, "benachrichtigung", "vertrieb sofort")
        await telegram.wait_for_async(
            lambda: any("sofort" in (m.text or "") for m in telegram.sent_to(franz.id)),
            what="Franz on instant",
        )

        # Carla, who has only mail, mails the group from Outlook: a post, on Echo and on
        # Telegram.
        outlook = sample("outlook_html_inline_de.eml", **{"Anna.Schmidt@firma.test": CARLA})
        await world.send(outlook, sender=CARLA, to=[VERTRIEB])
        await world.told_eventually("e1", "Neues Plakat")
        await telegram.wait_for_async(
            lambda: any(
                "Neues Plakat" in (m.text or m.caption or "") for m in telegram.sent_to(franz.id)
            ),
            what="the mailed post on Telegram",
        )

        # Franz comments on Telegram; it reaches Carla by mail ...
        telegram.user_sends_command(FRANZ, franz, "kommentieren", "#1 Bei uns hängt es schon!")
        await telegram.wait_for_async(
            lambda: any("Bei uns hängt es schon" in plain(m) for m in world.sink.to(CARLA)),
            what="Franz's comment by mail",
        )
        [told] = [m for m in world.sink.to(CARLA) if "Bei uns hängt es schon" in plain(m)]
        # ... and her reply to that mail is a comment, as her.
        reply_to = str(told["Reply-To"])
        answer = sample(
            "apple_mail_reply.eml",
            **{"bjoern.mueller@firma.test": CARLA, "reply@pinwall.firma.test": reply_to},
        )
        await world.send(answer, sender=CARLA, to=[reply_to])
        with world.program.db.uow() as uow:
            comments = [
                (c.text, c.author_id)
                for c in uow.session.scalars(select(Comment).order_by(Comment.id))
            ]
        assert comments[0][0] == "Bei uns hängt es schon!"
        assert comments[-1][0].startswith("Sieht super aus!")
        assert comments[-1][1] == carla

        # Carla switches to a daily digest by mail; it comes, and one click stops it.
        with world.program.db.uow() as uow:
            group = uow.groups.by_slug("vertrieb")
            assert group is not None
            membership = uow.groups.membership(carla, group.id)
            assert membership is not None
            membership.notify = NotifyMode.DAILY
            uow.commit()
        await world.say("e1", "?share vertrieb Wochenangebot Kaffee")
        job = DigestJob(world.program.hub)
        now = world.program.core.clock.now()
        await job.tick(now)
        with world.program.db.uow() as uow:
            schedule = uow.digests.schedule(carla)
            assert schedule is not None
            schedule.daily_due = now - timedelta(minutes=1)
            uow.commit()
        assert await job.tick(now) >= 1
        await world.program.worker.drain()
        [digest] = [m for m in world.sink.to(CARLA) if "Zusammenfassung" in str(m["Subject"])]
        assert "Wochenangebot Kaffee" in plain(digest)
        url = str(digest["List-Unsubscribe"]).strip().strip("<>")
        done = await world.http.post(urlsplit(url).path, content=b"List-Unsubscribe=One-Click")
        assert done.status_code == 200
        with world.program.db.uow() as uow:
            schedule = uow.digests.schedule(carla)
            assert schedule is not None
            assert schedule.paused
