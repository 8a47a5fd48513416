"""Announcements: a message from a moderator or an admin that reaches every member of its
groups once (deduplicated across groups and messengers), pinned until it expires, with
an optional read confirmation — an explicit press of "Read ✓" by the reader, never
inferred from reading (read tracking stays off).

The announce command writes the announcement, one post of kind "announcement" in each
target group (searchable, shown with the group's posts), one recipient row per person
and the outbox rows in one unit of work. Deliveries reference the announcement
({"t": "announce"}) and are rendered when sent; the author's card ({"t": "acard"}) shows
the confirmations so far and is edited in place, at most once a second (bot.live).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot import live, when
from bot.delivery import OutboxRow
from bot.errors import UserError
from bot.i18n import Translator
from bot.ids import parse_id, show_id
from bot.markup import Markup, link
from bot.message import Button, Message, Target
from bot.words import fold
from store.models import MAIL_PLATFORM, Announcement, Group, Item, ItemKind, NotifyMode, Person
from store.uow import UnitOfWork

if TYPE_CHECKING:
    from bot.core import Core, Ctx

MAX_TEXT = 3000
EVERYONE_WORDS = frozenset({"all", "alle", "everyone", "jeder", "everybody"})
# When those who have not confirmed are reminded: a day after, or halfway to --until
# when that comes sooner.
REMIND_AFTER = timedelta(hours=24)
CONFIRM_ACTION = "announce.confirm"
# How long an announcement without --until stays pinned (on top of items and digests).
PIN_DEFAULT = timedelta(days=7)


@dataclass(frozen=True)
class Announced:
    announcement: Announcement
    groups: list[Group]
    reached: int  # people
    rooms: int  # bridged rooms


def target_groups(ctx: Ctx, targets: str) -> tuple[list[Group], bool]:
    """The groups named (comma-separated), each one the announcer moderates; and whether
    `all` was among them (admins only): everyone in the company, that is the staff —
    partners and guests only where a group of theirs is named besides (`all,filialen`),
    as an external sees no announcement to groups not theirs."""
    names = [n.strip() for n in targets.split(",") if n.strip()]
    everyone = any(fold(n) in EVERYONE_WORDS for n in names)
    if everyone and not ctx.policy.is_admin:
        raise UserError("error.announce_all_admins_only")
    groups: list[Group] = []
    for name in names:
        if fold(name) in EVERYONE_WORDS:
            continue
        group = ctx.policy.group(name)
        if not ctx.policy.can_moderate(group):
            raise UserError("error.announce_moderators_only", group=group.name)
        if group not in groups:
            groups.append(group)
    if not groups and not everyone:
        raise UserError("error.missing_argument", param="groups", usage_of="announce")
    return groups, everyone


def parse_until(ctx: Ctx, value: str | None) -> datetime | None:
    if not value:
        return None
    zone = ctx.core.timezone_of(ctx.person)
    found = when.moment(value, zone, ctx.now)
    if not isinstance(found, datetime):
        raise UserError("error.bad_until", value=value, usage_of="announce")
    if found <= ctx.now:
        raise UserError("error.until_past", when=ctx.t.datetime(found, zone))
    return found


def remind_at(created: datetime, until: datetime | None) -> datetime:
    due = created + REMIND_AFTER
    if until is not None and until <= due:
        due = created + (until - created) / 2
    return due


def announce(
    ctx: Ctx,
    targets: str,
    text: str,
    *,
    confirm: bool,
    until: str | None,
    item_ref: str | None,
) -> Announced:
    """Writes the announcement and everything it sends, in the handler's unit of work."""
    uow, now = ctx.uow, ctx.now
    text = text.strip()
    if not text:
        raise UserError("error.missing_argument", param="text", usage_of="announce")
    if len(text) > MAX_TEXT:
        raise UserError("error.text_too_long", max=MAX_TEXT)
    groups, everyone = target_groups(ctx, targets)
    until_at = parse_until(ctx, until)
    item_id = None
    if item_ref:
        item_id = parse_id(item_ref, "item")
        ctx.policy.item(item_id)  # one the announcer may read
    posts: list[tuple[int, int | None]] = []
    for group in groups:
        post = uow.items.add(
            Item(
                group_id=group.id,
                author_id=ctx.person.id,
                kind=ItemKind.ANNOUNCEMENT,
                text=text,
                source_platform=ctx.platform,
                created_at=now,
            )
        )
        posts.append((group.id, post.id))
    announcement = Announcement(
        author_id=ctx.person.id,
        text=text,
        everyone=everyone,
        confirm=confirm,
        until=until_at,
        item_id=item_id,
        created_at=now,
        remind_at=remind_at(now, until_at) if confirm else None,
        reminded_at=None,
    )
    uow.announcements.add(announcement, posts)
    # Each person once, whatever number of the groups they are in; by their digest only
    # where they muted every one of them (mute delays an announcement, it does not drop it).
    # `all` is one card to each of the staff (no post in every group: an external there
    # would see it, and a search would find it once per group).
    modes = uow.announcements.members_of([g.id for g in groups]) if groups else {}
    via = {
        p: "digest" if all(m == NotifyMode.MUTE for m in ms) else "dm" for p, ms in modes.items()
    }
    if everyone:
        via.update(dict.fromkeys(uow.announcements.staff(), "dm"))
    via.pop(ctx.person.id, None)  # the author gets the card with the count instead
    uow.announcements.add_recipients(announcement.id, via)
    payload = {"t": "announce", "a": announcement.id}
    rows: list[dict[str, Any]] = []

    def add(platform: str, kind: str, address: str, person_id: int | None) -> None:
        rows.append(
            {
                "created_at": now,
                "platform": platform,
                "target_kind": kind,
                "target": address,
                "person_id": person_id,
                "item_id": None,
                "payload": payload,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
            }
        )

    addresses = uow.announcements.addresses(None if everyone else [g.id for g in groups])
    for person_id, way in via.items():
        if way == "dm" and person_id in addresses:
            add(addresses[person_id][0], "dm", addresses[person_id][1], person_id)
    rooms: set[tuple[str, str]] = set()
    # Bridged rooms: the named groups', and for `all` those of every group that admits
    # no externals (no partner reads the room of an announcement to the staff).
    roomed = list(groups)
    if everyone:
        roomed += [g for g in uow.groups.all() if not g.admits_externals and g not in groups]
    for group in roomed:
        for _, platform, address in uow.rooms.bridged_addresses(group.id):
            rooms.add((platform, address))
    for platform, address in sorted(rooms):
        add(platform, "room", address, None)
    uow.outbox.insert_many(rows)
    # The author's card: where they said it, privately.
    uow.announcements.add_card(
        "announce",
        announcement.id,
        platform=ctx.platform,
        target_kind="dm",
        target=ctx.event.meta.actor.external_id,
        person_id=ctx.person.id,
        payload={"t": "acard", "a": announcement.id},
        now=now,
    )
    ctx.audit(
        "announcement.created",
        show_id(announcement.id, "announcement"),
        groups=(["*"] if everyone else []) + [g.slug for g in groups],
        recipients=len(via),
        confirm=confirm,
    )
    return Announced(announcement, groups, len(via), len(rooms))


def _active(announcement: Announcement, now: datetime) -> bool:
    """Whether it is still pinned (and may be confirmed): until --until, or for a week."""
    if announcement.until is not None:
        return announcement.until > now
    return announcement.created_at + PIN_DEFAULT > now


def announcement_message(
    core: Core,
    uow: UnitOfWork,
    t: Translator,
    announcement: Announcement,
    *,
    timezone: str,
    now: datetime,
    confirmable: bool,
    confirmed_at: datetime | None = None,
    platform: str = "",
) -> Message:
    """The announcement as a reader sees it: with the Read ✓ button while it waits for
    their confirmation, or saying when they confirmed. By mail (`platform`), which shows
    no buttons, it says the reply that confirms it (`announcement A1 read`)."""
    author = uow.people.get(announcement.author_id) if announcement.author_id else None
    ref = show_id(announcement.id, "announcement")
    lines = [t("announce.text", text=announcement.text)]
    if announcement.item_id is not None:
        item = uow.items.get(announcement.item_id)
        if item is not None:
            lines.append(
                t("announce.item", item=f"#{item.id}", link=link(item.url) if item.url else "")
            )
    if announcement.until is not None:
        lines.append(t("announce.until", when=t.datetime(announcement.until, timezone)))
    buttons: tuple[Button, ...] = ()
    if confirmed_at is not None:
        lines.append(t("announce.confirmed_at", when=t.datetime(confirmed_at, timezone)))
    elif confirmable and announcement.confirm and _active(announcement, now):
        if platform == MAIL_PLATFORM:
            lines.append(t("announce.please_confirm_by_reply", ref=ref))
        else:
            lines.append(t("announce.please_confirm"))
        buttons = (
            Button(
                label=t("announce.read_button"),
                action=CONFIRM_ACTION,
                value=str(announcement.id),
                style="primary",
            ),
        )
    return Message(
        title=t(
            "announce.title",
            ref=ref,
            author="@" + author.handle if author else t("author.former_member"),
        ),
        text="\n".join(lines),
        buttons=buttons,
        meta={"announcement": announcement.id},
    )


def render_announcement(core: Core, uow: UnitOfWork, row: OutboxRow) -> Message | None:
    """A reader's copy as it is when it goes: nothing once they are no longer among its
    recipients (erased, deactivated); a bridged room's copy has no button."""
    announcement = uow.announcements.get(int(row.payload["a"]))
    if announcement is None:
        return None
    if row.person_id is None:
        return announcement_message(
            core,
            uow,
            core.translator(None),
            announcement,
            timezone=core.settings.default_timezone,
            now=core.clock.now(),
            confirmable=False,
        )
    person = uow.people.get(row.person_id)
    recipient = uow.announcements.recipient(announcement.id, row.person_id)
    if person is None or not person.active or recipient is None:
        return None
    return announcement_message(
        core,
        uow,
        core.translator(person),
        announcement,
        timezone=core.timezone_of(person),
        now=core.clock.now(),
        confirmable=True,
        confirmed_at=recipient.confirmed_at,
        platform=row.platform,
    )


def card_message(
    uow: UnitOfWork, t: Translator, announcement: Announcement, prefix: str
) -> Message:
    """The author's card: how many were reached, and how many confirmed so far."""
    confirmed, total = uow.announcements.counts(announcement.id)
    ref = show_id(announcement.id, "announcement")
    lines = [t("announce.text", text=announcement.text)]
    if announcement.confirm:
        lines.append(t("announce.card_counts", confirmed=confirmed, total=total))
        lines.append(t("announce.card_hint", prefix=prefix, ref=ref))
    else:
        lines.append(t("announce.card_reached", count=total))
    return Message(
        title=t("announce.card_title", ref=ref),
        text="\n".join(lines),
        meta={"announcement": announcement.id, "card": True},
    )


def render_card(core: Core, uow: UnitOfWork, row: OutboxRow) -> Message | None:
    announcement = uow.announcements.get(int(row.payload["a"]))
    if announcement is None:
        return None
    person = uow.people.get(row.person_id) if row.person_id else None
    t = core.translator(person)
    prefix = core.prefix(row.platform, t, room=row.target_kind == "room")
    message = card_message(uow, t, announcement, prefix)
    return live.as_edit(uow, row, message)


def confirm(ctx: Ctx, value: str) -> None:
    """The reader's Read ✓: recorded once, their copy shows it in place, the author's
    card counts it (coalesced)."""
    try:
        announcement_id = int(value)
    except ValueError:
        raise UserError("error.button_expired") from None
    uow = ctx.uow
    announcement = uow.announcements.get(announcement_id)
    recipient = uow.announcements.recipient(announcement_id, ctx.person.id)
    if announcement is None or recipient is None or not announcement.confirm:
        raise UserError("error.button_expired")
    # Recorded once, also when two presses (two messengers) come at the same instant.
    if recipient.confirmed_at is not None or not uow.announcements.confirm(
        announcement_id, ctx.person.id, ctx.platform, ctx.now
    ):
        ctx.reply("announce.already_confirmed", ref=show_id(announcement_id, "announcement"))
        return
    ctx.audit("announcement.confirmed", show_id(announcement_id, "announcement"))
    zone = ctx.core.timezone_of(ctx.person)
    shown = announcement_message(
        ctx.core,
        uow,
        ctx.t,
        announcement,
        timezone=zone,
        now=ctx.now,
        confirmable=True,
        confirmed_at=ctx.now,
    )
    pressed = getattr(ctx.event, "message", None)
    replaces = getattr(pressed, "message_id", None)
    ctx.reply_message(replace(shown, replaces=replaces))
    live.refresh(
        ctx.core, uow, "announce", announcement_id, {"t": "acard", "a": announcement_id}, ctx.now
    )


def to_confirm(ctx: Ctx, raw: str) -> Announcement:
    """An announcement that waits for the asker's confirmation (`announcement A1 read`)."""
    announcement_id = parse_id(raw, "announcement")
    announcement = ctx.uow.announcements.get(announcement_id)
    recipient = ctx.uow.announcements.recipient(announcement_id, ctx.person.id)
    if announcement is None or recipient is None or not announcement.confirm:
        ref = show_id(announcement_id, "announcement")
        raise UserError("error.announcement_not_to_confirm", ref=ref)
    return announcement


def readable(ctx: Ctx, raw: str) -> Announcement:
    """An announcement its author or an admin asks about."""
    announcement_id = parse_id(raw, "announcement")
    announcement = ctx.uow.announcements.get(announcement_id)
    if announcement is None or not (ctx.policy.is_admin or announcement.author_id == ctx.person.id):
        raise UserError("error.announcement_not_found", ref=raw)
    return announcement


def status_text(ctx: Ctx, announcement: Announcement) -> Markup:
    confirmed, total = ctx.uow.announcements.counts(announcement.id)
    ref = show_id(announcement.id, "announcement")
    lines = [ctx.t("announce.status_title", ref=ref, text=announcement.text[:80])]
    if not announcement.confirm:
        lines.append(ctx.t("announce.card_reached", count=total))
        return Markup("\n".join(lines))
    lines.append(ctx.t("announce.card_counts", confirmed=confirmed, total=total))
    missing = ctx.uow.announcements.missing(announcement.id)
    if missing:
        lines.append(ctx.t("announce.missing", people=", ".join("@" + p.handle for p in missing)))
    else:
        lines.append(ctx.t("announce.none_missing"))
    if announcement.reminded_at is not None:
        zone = ctx.core.timezone_of(ctx.person)
        lines.append(
            ctx.t("announce.reminded", when=ctx.t.datetime(announcement.reminded_at, zone))
        )
    return Markup("\n".join(lines))


def csv_text(uow: UnitOfWork, announcement: Announcement) -> str:
    """handle, confirmed (yes/no), when (UTC, ISO), on which messenger."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["handle", "confirmed", "confirmed_at", "messenger"])
    people = {
        p.id: p
        for p in uow.people.by_ids(
            r.person_id for r in uow.announcements.recipients(announcement.id)
        )
    }
    rows = []
    for r in uow.announcements.recipients(announcement.id):
        person = people.get(r.person_id)
        if person is None:
            continue
        rows.append(
            (
                person.handle,
                "yes" if r.confirmed_at else "no",
                r.confirmed_at.isoformat() if r.confirmed_at else "",
                r.confirmed_on or "",
            )
        )
    writer.writerows(sorted(rows))
    return out.getvalue()


# --- the reminder (jobs/announcements.py runs it under the scheduler's lock) -------------


def send_reminder(core: Core, uow: UnitOfWork, announcement_id: int, now: datetime) -> int:
    """Reminds those who have not confirmed, once: the announcement is marked reminded in
    the same transaction as the reminders are queued, so a restart (or a second
    instance) finds it done. By a second way where the person has one that runs here —
    their verified mail address first (the way staff apps escalate an unopened
    announcement), else another messenger they linked — else where they got it. Returns
    how many were reminded."""
    if not uow.announcements.take_reminder(announcement_id, now):
        return 0
    announcement = uow.announcements.get(announcement_id)
    if announcement is None or not announcement.confirm or not _active(announcement, now):
        return 0
    missing = uow.announcements.missing(announcement_id)
    accounts = uow.people.preferred_accounts([p.id for p in missing])
    count = 0
    for person in missing:
        first = accounts.get(person.id)
        others = [
            a
            for a in uow.people.accounts_of(person.id)
            if a.reachable
            and a.platform in core.settings.running
            and (first is None or a.id != first.id)
        ]
        others.sort(key=lambda a: a.platform != MAIL_PLATFORM)  # stable: else by age
        chosen = others[0] if others else first
        if chosen is None:
            continue
        t = core.translator(person)
        message = announcement_message(
            core,
            uow,
            t,
            announcement,
            timezone=core.timezone_of(person),
            now=now,
            confirmable=True,
            platform=chosen.platform,
        )
        message = Message(
            title=t("announce.reminder_title", ref=show_id(announcement_id, "announcement")),
            text=message.text,
            buttons=message.buttons,
            meta=message.meta,
        )
        core.enqueue(
            uow, Target(chosen.platform, "dm", chosen.external_id), message, person.id, now
        )
        count += 1
    uow.audit.add(
        at=now,
        actor_id=None,
        action="announcement.reminded",
        subject=show_id(announcement_id, "announcement"),
        details={"people": count},
    )
    return count


def remind_due(core: Core, now: datetime) -> int:
    """Every reminder that is due, each in its own unit of work; how many people."""
    with core.db.uow() as uow:
        due = uow.announcements.due_reminders(now)
    total = 0
    for announcement_id in due:
        with core.db.uow() as uow:
            total += send_reminder(core, uow, announcement_id, now)
            uow.commit()
    return total


def digest_lines(
    uow: UnitOfWork, t: Translator, person: Person, now: datetime
) -> tuple[list[str], bool]:
    """What a digest shows first, and whether it must go even with no post in it: the
    announcements waiting for this person's digest (they muted all of its groups; these
    are marked delivered now), then the ones still pinned that they have not confirmed."""
    waiting = uow.announcements.in_digest(person.id)
    uow.announcements.mark_digested(person.id, [a.id for a in waiting], now)
    shown = {a.id for a in waiting}
    pinned = [
        a
        for a in uow.announcements.pinned_for(person.id, now - PIN_DEFAULT, now)
        if a.id not in shown
    ]
    lines = [
        str(t("announce.digest_line", ref=show_id(a.id, "announcement"), text=a.text[:200]))
        for a in [*waiting, *pinned]
        if _active(a, now)
    ]
    return lines, bool(waiting)


def card_for(ctx: Ctx, announcement: Announcement) -> Message:
    """The announcement as `show` opens it: with Read ✓ where the asker is to confirm."""
    recipient = ctx.uow.announcements.recipient(announcement.id, ctx.person.id)
    return announcement_message(
        ctx.core,
        ctx.uow,
        ctx.t,
        announcement,
        timezone=ctx.core.timezone_of(ctx.person),
        now=ctx.now,
        confirmable=recipient is not None,
        confirmed_at=recipient.confirmed_at if recipient else None,
    )
