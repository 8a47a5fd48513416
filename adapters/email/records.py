"""What the mail bridge reads and writes in the store, outside the core's events: who an
address belongs to, held mails, bounces, unsubscribes. Synchronous: run with Hub.call."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from adapters.email.newsletter import Entry
from bot.core import Core
from bot.digest import reschedule, schedule_of
from bot.message import Message
from bot.newsletters import add_entry
from store.models import MAIL_PLATFORM, NotifyMode, Visibility

# The "group" of an unsubscribe link in a digest: all digests (as `digest off` does).
DIGESTS = 0


@dataclass(frozen=True)
class Sender:
    person_id: int
    language: str


def sender(core: Core, address: str) -> Sender | None:
    """The active person whose verified address this is."""
    with core.db.uow() as uow:
        account = uow.people.account(MAIL_PLATFORM, address)
        if account is None:
            return None
        person = uow.people.get(account.person_id)
        if person is None or not person.active:
            return None
        return Sender(person.id, core.language_of(person))


RATE_WINDOW = timedelta(minutes=1)


def count_sender(core: Core, sender: str, now: datetime) -> int:
    """Records a mail from `sender`; how many it sent within the last minute (this one
    included): the per-sender rate limit, in the store."""
    with core.db.uow() as uow:
        count = uow.mail.count_sender(sender.lower(), now, RATE_WINDOW)
        uow.commit()
        return count


def group_exists(core: Core, slug: str) -> bool:
    """Whether `<slug>@` is a group's address. A secret group has none: a 250 for it and a
    550 for a slug nobody uses would tell anyone who asks the mail server that it exists."""
    with core.db.uow() as uow:
        group = uow.groups.by_slug(slug)
        return group is not None and group.visibility != Visibility.SECRET


def hold(
    core: Core,
    now: datetime,
    who: Sender | None,
    details: dict[str, Any],
    content: dict[str, Any],
) -> int:
    """A mail whose sender could not be verified: not posted but held (`mail held`) for a
    moderator to release as the person or drop, and in the audit log with who it claimed
    to be and where it went. Returns the held mail's id."""
    with core.db.uow() as uow:
        sender = str(details.get("from", ""))
        held = uow.mail.hold(
            who.person_id if who else None, sender, str(content.get("subject") or ""), content, now
        )
        uow.audit.add(
            at=now,
            actor_id=who.person_id if who else None,
            action="mail.held",
            subject=sender,
            details={**details, "held": held.id},
        )
        uow.commit()
        return held.id


@dataclass(frozen=True)
class MailContext:
    """What a mail to one address needs besides its message: whose address it is (for the
    signed reply and unsubscribe links), their language, and what the unsubscribe link
    is for (the post's group, or DIGESTS) with its name as they read it."""

    person_id: int | None
    language: str
    group_id: int | None
    group_label: str


def mail_context(core: Core, address: str, item_id: int | None, digest: bool) -> MailContext:
    with core.db.uow() as uow:
        account = uow.people.account(MAIL_PLATFORM, address)
        person = uow.people.get(account.person_id) if account else None
        t = core.translator(person)
        if person is None:
            return MailContext(None, t.language, None, "")
        group_id: int | None = DIGESTS if digest else None
        label = str(t("mail.unsubscribe.digests")) if digest else ""
        item = uow.items.get(item_id) if item_id is not None and not digest else None
        if item is not None:
            group = uow.groups.get(item.group_id)
            membership = uow.groups.membership(person.id, item.group_id)
            if group is not None and membership is not None:
                group_id, label = group.id, group.name
        return MailContext(person.id, t.language, group_id, label)


def sent_to(core: Core, outbox_id: int) -> str | None:
    """The address a mail Pinwall sent (outbox row `outbox_id`) went to."""
    with core.db.uow() as uow:
        row = uow.outbox.get(outbox_id)
        return row.target if row is not None and row.platform == MAIL_PLATFORM else None


def bounced(core: Core, address: str, reason: str, now: datetime) -> bool:
    """A delivery status notification: the address is failing; its account gets no more
    mail, and its person hears of it on a messenger if they have one. True when known."""
    with core.db.uow() as uow:
        row = uow.mail.mark_failing(address, reason, now)
        account = uow.people.account(MAIL_PLATFORM, address)
        if row is None or account is None:
            return False
        first = account.reachable
        uow.people.update_account(account, reachable=False)
        person = uow.people.get(account.person_id)
        uow.audit.add(
            at=now,
            actor_id=None,
            action="mail.bounced",
            subject=address,
            details={"person": account.person_id, "reason": reason[:200]},
        )
        if first and person is not None:
            t = core.translator(person)
            text = t("mail.bounce.told", address=address, reason=reason[:200])
            core.send_to_person(uow, person, Message(text=text), now)  # a messenger, if any
        uow.commit()
        return True


def unsubscribe(core: Core, person_id: int, group_id: int, now: datetime) -> bool:
    """One-click unsubscribe: the person gets nothing more of the group (notify mute), or
    no more digests (group DIGESTS: paused, as `digest off`). False when there is nothing
    to unsubscribe from (not in the group any more)."""
    with core.db.uow() as uow:
        person = uow.people.get(person_id)
        if person is None:
            return False
        if group_id == DIGESTS and person.digest_by_mail:
            person.digest_by_mail = False  # exactly this: digests go to the messenger again
            subject = "digests by mail"
        elif group_id == DIGESTS:
            zone = core.timezone_of(person)
            schedule = schedule_of(uow, person, zone, now)
            schedule.paused = True
            reschedule(schedule, zone, now)
            subject = "digests"
        else:
            membership = uow.groups.membership(person_id, group_id)
            group = uow.groups.get(group_id)
            if membership is None or group is None:
                return False
            # `notify <group> mail` (or mail as the only way): no more of the group by mail
            membership.notify = NotifyMode.MUTE
            membership.by_mail = False
            subject = group.slug
        uow.audit.add(
            at=now,
            actor_id=person_id,
            action="mail.unsubscribed",
            subject=subject,
            details={"group": group_id},
        )
        uow.commit()
        return True


def subscription(core: Core, person_id: int, group_id: int) -> tuple[str, str] | None:
    """(what the link unsubscribes from, as the person reads it; their language) for the
    unsubscribe page and the mail's footer; None: nothing (not a member any more)."""
    with core.db.uow() as uow:
        person = uow.people.get(person_id)
        if person is None:
            return None
        t = core.translator(person)
        if group_id == DIGESTS:
            return str(t("mail.unsubscribe.digests")), t.language
        membership = uow.groups.membership(person_id, group_id)
        group = uow.groups.get(group_id)
        if membership is None or group is None:
            return None
        return group.name, t.language


def confirmation_to_moderators(
    core: Core,
    slug: str,
    sender: str,
    subject: str,
    text: str,
    links: list[str],
    now: datetime,
) -> Literal["forwarded", "not_allowed"]:
    """A mailing list asks to confirm a subscription of the group's newsletter address
    (double opt-in): its moderators get the mail's subject, text and links on their
    messenger, to open the confirmation link and allow the sender (`newsletter <group>
    <sender>`). Pinwall opens no link itself."""
    with core.db.uow() as uow:
        group = uow.groups.by_slug(slug)
        if group is None:
            return "not_allowed"
        moderators = [p for p, m in uow.groups.members(group.id) if m.moderator]
        if not moderators:
            return "not_allowed"
        for person in moderators:
            t = core.translator(person)
            body = t(
                "mail.newsletter.confirm",
                sender=sender,
                slug=group.slug,
                group=group.name,
                subject=" ".join(subject.split())[:300],
                text=" ".join(text.split())[:1000],
                links="\n".join(links[:10]) or "-",
            )
            title = t("mail.newsletter.confirm_title", group=group.name)
            core.send_to_person(uow, person, Message(title=title, text=body), now)
        uow.audit.add(
            at=now,
            actor_id=None,
            action="newsletter.confirmation",
            subject=sender,
            details={"group": group.slug, "moderators": len(moderators)},
        )
        uow.commit()
        return "forwarded"


def newsletter_entry(
    core: Core, slug: str, sender: str, entry: Entry, message_id: str, now: datetime
) -> Literal["posted", "duplicate", "not_allowed"]:
    """A newsletter's entry in the group (bot.newsletters.add_entry), in its own
    transaction."""
    with core.db.uow() as uow:
        outcome = add_entry(
            uow,
            slug,
            sender,
            title=entry.title,
            url=entry.url,
            text=entry.text,
            message_id=message_id,
            now=now,
        )
        uow.commit()
        return outcome
