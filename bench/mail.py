"""The mail bridge under load, in one process: mails in through Pinwall's SMTP listener,
digests out through an aiosmtpd sink standing in for the company's relay.

    .venv/bin/python bench/mail.py [--mails 2000] [--digests 1000] [--concurrency 8]

In: `--mails` mails of realistic size (a text and an HTML part, about 6 KB, a German
subject in RFC 2047) from 50 verified, authenticated colleagues to a group's address,
over `--concurrency` SMTP connections at a time (aiosmtplib, one session per mail, as a
company's mail server delivers). Reported: posts per second (first connection to last
post committed) and the p50/p99 from DATA accepted (the end of data received, aiosmtpd's
handle_DATA called) to the post committed (the core's transaction done; Pinwall answers
250 only after it).

Out: `--digests` mail-only people with a daily digest of that group, all due at once:
the digest job queues them, the delivery worker sends them through the sink. Reported:
mails per second (from the tick to the sink's last accepted mail) against the sink's
own accept rate (the same number of composed mails sent to it straight, one session
each, as fast as `--concurrency` connections go); the ratio is the figure.

The client and Pinwall share this process's event loop and the machine's cores: the
figures are a floor. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
from aiosmtpd.smtp import SMTP, Envelope, Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapters.email.adapter import MailAdapter  # noqa: E402
from app.config import load_settings  # noqa: E402
from app.messengers import MESSENGERS  # noqa: E402
from app.wiring import build, serve  # noqa: E402
from jobs.digests import DigestJob  # noqa: E402
from store.models import MAIL_PLATFORM, NotifyMode, Role  # noqa: E402

DOMAIN = "pinwall.firma.test"
SENDERS = 50
PARAGRAPH = (
    "Das neue Plakat für die Filiale München hängt ab Montag im Schaufenster. "
    "Bitte prüft bis Freitag, ob Preise und Öffnungszeiten stimmen, und gebt "
    "Rückmeldung an den Vertrieb. "
)


class Sink:
    def __init__(self) -> None:
        self.count = 0
        self.last = 0.0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.count += 1
        self.last = time.perf_counter()
        return "250 2.0.0 OK"


def realistic_mail(n: int, sender: str) -> bytes:
    text = "\n\n".join(f"{PARAGRAPH} (Absatz {p})" for p in range(12))
    mail = EmailMessage()
    mail["From"] = f"Kollegin {n % SENDERS} <{sender}>"
    mail["To"] = f"vertrieb@{DOMAIN}"
    mail["Subject"] = f"Neues Plakat für die Filiale München, Nr. {n}"
    mail["Message-ID"] = f"<bench-{n}@firma.test>"
    mail["Authentication-Results"] = "mx.firma.test; dmarc=pass header.from=firma.test"
    mail.set_content(text)
    mail.add_alternative("".join(f"<p>{p}</p>" for p in text.split("\n\n")), subtype="html")
    return mail.as_bytes()


def populate(program: Any, digests: int) -> None:
    core = program.core
    now = core.clock.now()
    with core.db.uow() as uow:
        admin = uow.people.create(name="admin", role=Role.ADMIN, now=now)
        group = uow.groups.create(
            slug="vertrieb",
            name="Vertrieb",
            visibility="open",
            admits_externals=False,
            created_by=admin.id,
            now=now,
        )
        uow.flush()
        people = [(f"sender{i}@firma.test", NotifyMode.MUTE) for i in range(SENDERS)]
        people += [(f"leser{i}@firma.test", NotifyMode.DAILY) for i in range(digests)]
        for address, notify in people:
            person = uow.people.create(name=address.split("@")[0], role=Role.MEMBER, now=now)
            uow.people.add_account(person, platform=MAIL_PLATFORM, external_id=address, now=now)
            row = uow.mail.request(person.id, address, "X", now, now)
            row.verified_at, row.code = now, None
            uow.groups.add_member(person.id, group.id, now=now).notify = notify
        uow.commit()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    sink = Sink()
    relay = await loop.create_server(lambda: SMTP(sink, hostname="relay.test"), "127.0.0.1", 0)
    relay_port = relay.sockets[0].getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        for key in [k for k in os.environ if k.startswith("PINWALL_")]:
            del os.environ[key]
        settings = load_settings(
            MESSENGERS,
            database_url=f"sqlite:///{tmp}/pinwall.db",
            data_dir=Path(tmp) / "data",
            http_port=0,
            link_previews=False,
            public_url="https://pinwall.firma.test",
            mail_listen="127.0.0.1:0",
            mail_domain=DOMAIN,
            mail_authserv_id="mx.firma.test",
            mail_per_minute=10_000,
            smtp_host="127.0.0.1",
            smtp_port=relay_port,
            smtp_security="none",
            rate_limits={"email": {"overall": 10_000, "per_dm": 10_000}},
        )
        program = build(settings)
        task = asyncio.create_task(serve(program))
        adapter = program.hub.adapters["email"]
        assert isinstance(adapter, MailAdapter)
        while adapter.address is None:
            assert not task.done(), task.result()
            await asyncio.sleep(0.01)
        await program.hub.call(populate, program, args.digests)

        # --- in ---------------------------------------------------------------------
        latencies: list[float] = []
        receiver = adapter.receiver
        handle = receiver.handle_DATA

        async def timed(server: SMTP, session: Session, envelope: Envelope) -> str:
            start = time.perf_counter()
            reply = await handle(server, session, envelope)
            latencies.append(time.perf_counter() - start)
            return reply

        receiver.handle_DATA = timed  # type: ignore[method-assign]
        host, port = adapter.address
        mails = [
            (
                f"sender{n % SENDERS}@firma.test",
                realistic_mail(n, f"sender{n % SENDERS}@firma.test"),
            )
            for n in range(args.mails)
        ]
        size = statistics.mean(len(raw) for _, raw in mails)
        queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        for item in mails:
            queue.put_nowait(item)

        async def client() -> None:
            while not queue.empty():
                sender, raw = queue.get_nowait()
                await aiosmtplib.send(
                    raw, sender=sender, recipients=[f"vertrieb@{DOMAIN}"], hostname=host, port=port
                )

        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(args.concurrency)))
        in_seconds = time.perf_counter() - start
        with program.db.uow() as uow:
            group = uow.groups.by_slug("vertrieb")
            assert group is not None
            posts = len(uow.items.lines(group.id, args.mails + 10))
        latencies.sort()
        inbound = {
            "mails": args.mails,
            "posts": posts,
            "mean_size_bytes": round(size),
            "posts_per_s": round(posts / in_seconds, 1),
            "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
            "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1),
        }
        await program.worker.drain(wait_up_to=60)  # the "Shared as #n" answers by mail

        # --- out --------------------------------------------------------------------
        before = sink.count
        job = DigestJob(program.hub)
        now = program.core.clock.now()
        await job.tick(now)  # schedules everyone ...
        with program.db.uow() as uow:  # ... and makes every daily digest due now
            for i in range(args.digests):
                account = uow.people.account(MAIL_PLATFORM, f"leser{i}@firma.test")
                assert account is not None
                schedule = uow.digests.schedule(account.person_id)
                assert schedule is not None
                schedule.daily_due = now - timedelta(minutes=1)
            uow.commit()
        start = time.perf_counter()
        queued = await job.tick(now)
        await program.worker.drain(wait_up_to=300)
        out_seconds = (sink.last - start) if sink.count > before else float("nan")
        sent = sink.count - before

        composed = [adapter_mail(i) for i in range(args.digests)]
        queue2: asyncio.Queue[EmailMessage] = asyncio.Queue()
        for m in composed:
            queue2.put_nowait(m)

        async def straight() -> None:
            while not queue2.empty():
                m = queue2.get_nowait()
                await aiosmtplib.send(m, hostname="127.0.0.1", port=relay_port)

        start = time.perf_counter()
        await asyncio.gather(*(straight() for _ in range(args.concurrency)))
        sink_seconds = time.perf_counter() - start
        outbound = {
            "digests_queued": queued,
            "digest_mails_sent": sent,
            "mails_per_s": round(sent / out_seconds, 1),
            "sink_accept_per_s": round(args.digests / sink_seconds, 1),
        }
        outbound["ratio"] = round(outbound["mails_per_s"] / outbound["sink_accept_per_s"], 2)
        program.stop.set()
        await task
    relay.close()
    return {"in": inbound, "out": outbound}


def adapter_mail(i: int) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = f"pinwall@{DOMAIN}"
    mail["To"] = f"leser{i}@firma.test"
    mail["Subject"] = "Deine tägliche Zusammenfassung"
    mail.set_content(PARAGRAPH * 4)
    mail.add_alternative(f"<p>{PARAGRAPH * 4}</p>", subtype="html")
    return mail


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--digests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    figures = asyncio.run(main(parser.parse_args()))
    print(f"in:  {figures['in']}")
    print(f"out: {figures['out']}")
    print(json.dumps(figures))
