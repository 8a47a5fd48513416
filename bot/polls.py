"""Polls: one question to a group, one tally across every messenger and the console.

A poll is a post of its group (kind "poll": searchable, shown with the group's posts,
seen by whoever may read the group — bot.policy decides). Its card goes to the group's
bridged rooms, its author and every member not on mute, each copy a live card: edited
in place at most once a second as votes come in (a member's copy of an anonymous poll
only once its results show), and to the final result when the poll closes. A messenger
with native polls (Matrix's m.poll.start) answers with the whole selection
(CHOOSE_ACTION). A vote is one upsert keyed by poll, voter and slot,
so that two votes at the same instant both count and a changed vote replaces the old
one. An anonymous poll keeps no voter identity: the key is an HMAC of poll and person
under the server's secret (enough to refuse a second vote), and its results show only
once enough people voted (poll_anonymous_minimum).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot import live, poll_steps, when
from bot.delivery import OutboxRow
from bot.errors import UserError
from bot.i18n import Translator
from bot.ids import parse_id, show_id
from bot.markup import Markup, bold
from bot.message import Button, Message, Target
from bot.policy import may_read
from store.models import Group, Item, ItemKind, NotifyMode, Person, Poll
from store.uow import UnitOfWork

if TYPE_CHECKING:
    from bot.core import Core, Ctx

MAX_OPTIONS = 10  # Matrix votes by keycap reactions: 1️⃣ … 🔟
MAX_TEXT = 300
VOTE_ACTION = "poll.vote"
# A messenger's native poll answers with the whole selection at once ("<poll>:0,2";
# nothing after the colon takes the vote back): Matrix's m.poll.response.
CHOOSE_ACTION = "poll.choose"
# The live cards of a poll: its bridged rooms' and its author's copy ("poll"), and each
# member's own copy ("pollm", edited only once an anonymous poll shows its results).
CARD = "poll"
MEMBER_CARD = "pollm"
CLOSE_WORDS = frozenset({"close", "schliessen", "schließen", "beenden", "end"})


def voter_key(core: Core, poll: Poll, person: Person) -> tuple[str, int | None]:
    """(the voter column, the person column) of this person's vote on this poll."""
    if not poll.anonymous:
        return f"p{person.id}", person.id
    digest = hmac.new(
        core.settings.voter_key.encode(), f"{poll.id}:{person.id}".encode(), hashlib.sha256
    ).hexdigest()
    return digest[:64], None


def split(text: str) -> tuple[str, list[str]]:
    parts = [p.strip() for p in text.split("|")]
    question, options = parts[0], [p for p in parts[1:] if p]
    if not question or len(options) < 2 or len(options) > MAX_OPTIONS:
        raise UserError("error.poll_options", most=MAX_OPTIONS, usage_of="poll")
    if len(question) > MAX_TEXT or any(len(o) > MAX_TEXT for o in options):
        raise UserError("error.text_too_long", max=MAX_TEXT)
    if len({o.lower() for o in options}) != len(options):
        raise UserError("error.poll_options_twice", usage_of="poll")
    return question, options


def create(
    ctx: Ctx, group: Group, text: str, *, multi: bool, anonymous: bool, closes: str | None
) -> Poll:
    ctx.policy.require_post(group)
    question, options = split(text)
    closes_at = None
    if closes:
        zone = ctx.core.timezone_of(ctx.person)
        found = when.moment(closes, zone, ctx.now)
        if not isinstance(found, datetime):
            raise UserError("error.bad_closes", value=closes, usage_of="poll")
        if found <= ctx.now:
            raise UserError("error.until_past", when=ctx.t.datetime(found, zone))
        closes_at = found
    uow, now = ctx.uow, ctx.now
    item = uow.items.add(
        Item(
            group_id=group.id,
            author_id=ctx.person.id,
            kind=ItemKind.POLL,
            text="\n".join([question, *options]),
            source_platform=ctx.platform,
            created_at=now,
        )
    )
    poll = uow.announcements.add_poll(
        Poll(
            group_id=group.id,
            author_id=ctx.person.id,
            item_id=item.id,
            question=question,
            options=options,
            multi=multi,
            anonymous=anonymous,
            created_at=now,
            closes_at=closes_at,
            closed_at=None,
        )
    )
    payload = {"t": "poll", "p": poll.id}
    for _, platform, address in uow.rooms.bridged_addresses(group.id):
        uow.announcements.add_card(
            CARD,
            poll.id,
            platform=platform,
            target_kind="room",
            target=address,
            person_id=None,
            payload=payload,
            now=now,
        )
    uow.announcements.add_card(
        CARD,
        poll.id,
        platform=ctx.platform,
        target_kind="dm",
        target=ctx.event.meta.actor.external_id,
        person_id=ctx.person.id,
        payload=payload,
        now=now,
    )
    members = [
        p
        for p, modes in uow.announcements.members_of([group.id]).items()
        if p != ctx.person.id and all(m != NotifyMode.MUTE for m in modes)
    ]
    copies = [
        (account.platform, "dm", account.external_id, person_id)
        for person_id, account in uow.people.preferred_accounts(members).items()
    ]
    uow.announcements.add_cards(MEMBER_CARD, poll.id, copies, payload, now)
    ctx.audit(
        "poll.created",
        show_id(poll.id, "poll"),
        group=group.slug,
        anonymous=anonymous,
        multi=multi,
        options=len(options),
    )
    return poll


def poll_message(
    core: Core,
    uow: UnitOfWork,
    t: Translator,
    poll: Poll,
    *,
    timezone: str,
    mine: set[int] | None = None,
    room_sees_votes: bool = False,
) -> Message:
    """The card: the question, each option with its votes (an anonymous poll's only once
    enough voted), and a button per option while it is open. `room_sees_votes`: a copy
    in a room where a vote is seen by all (seen_votes), which says where to vote."""
    per, voters, shown = poll_steps.shown_tally(uow, poll)
    if poll.anonymous:
        mine = None  # every card is a stored message: none says what anyone chose
    ref = show_id(poll.id, "poll")
    closed = poll.closed_at is not None
    best = max(per.values(), default=0) if closed and shown else 0
    lines = [bold(poll.question)]
    for i, option in enumerate(poll.options):
        mark = "🏆 " if best and per.get(i, 0) == best else ""
        mark += "✓ " if mine and i in mine else ""
        if shown:
            lines.append(
                t("poll.option_count", n=i + 1, option=option, count=per.get(i, 0), mark=mark)
            )
        else:
            lines.append(t("poll.option", n=i + 1, option=option, mark=mark))
    lines.append(t("poll.voters", count=voters))
    if not shown:
        lines.append(t("poll.hidden_until", need=core.settings.poll_anonymous_minimum))
    if poll.anonymous:
        lines.append(t("poll.anonymous"))
        if room_sees_votes and not closed:
            lines.append(t("poll.vote_in_private"))
    if poll.multi and poll.closed_at is None:
        lines.append(t("poll.multi"))
    buttons: tuple[Button, ...] = ()
    if poll.closed_at is not None:
        lines.append(t("poll.closed"))
    else:
        if poll.closes_at is not None:
            lines.append(t("poll.closes", when=t.datetime(poll.closes_at, timezone)))
        buttons = tuple(
            Button(label=f"{i + 1}. {option}"[:60], action=VOTE_ACTION, value=f"{poll.id}:{i}")
            for i, option in enumerate(poll.options)
        )
    group = uow.groups.get(poll.group_id)
    native = {
        "question": poll.question,
        "options": list(poll.options),
        "max": len(poll.options) if poll.multi else 1,
        "anonymous": poll.anonymous,
        "open": not closed,
        "value": str(poll.id),
        "action": CHOOSE_ACTION,
    }
    return Message(
        title=t("poll.title", ref=ref, group=group.name if group else "?"),
        text="\n".join(lines),
        buttons=buttons,
        meta={"poll": poll.id, "native_poll": native},
    )


def _reader_may_read(uow: UnitOfWork, person: Person, poll: Poll) -> bool:
    group = uow.groups.get(poll.group_id)
    return group is not None and may_read(person, group, uow.groups.membership(person.id, group.id))


def render_poll(core: Core, uow: UnitOfWork, row: OutboxRow) -> Message | None:
    """A copy of the card as it is when it goes; an edit in place of a live card."""
    poll = uow.announcements.poll(int(row.payload["p"]))
    if poll is None:
        return None
    person = uow.people.get(row.person_id) if row.person_id else None
    if row.person_id is not None and (person is None or not _reader_may_read(uow, person, poll)):
        return None
    zone = core.timezone_of(person) if person else core.settings.default_timezone
    # A named poll's copy shows the reader's own choices; an anonymous one's never does
    # (no message says what anyone chose).
    mine = (
        uow.announcements.choices_of(poll.id, f"p{person.id}")
        if person is not None and not poll.anonymous
        else None
    )
    seen = row.target_kind == "room" and seen_votes(core, row.platform)
    message = poll_message(
        core, uow, core.translator(person), poll, timezone=zone, mine=mine, room_sees_votes=seen
    )
    if row.payload.get("r"):  # an anonymous voter's own card, again in its place
        if poll.anonymous and poll.closed_at is None:
            # Its tally may not change with this vote (bot.poll_steps): it says that the
            # vote was taken, and nothing else.
            noted = Markup(f"{message.text}\n{core.translator(person)('poll.noted')}")
            message = replace(message, text=noted)
        return replace(message, replaces=str(row.payload["r"]))
    return live.as_edit(uow, row, message)


def parse_vote(value: str) -> tuple[int, int]:
    poll_id, _, option = value.partition(":")
    if not poll_id.isdigit() or not option.isdigit():
        raise UserError("error.button_expired")
    return int(poll_id), int(option)


def parse_choice(value: str) -> tuple[int, list[int]]:
    """ "7:0,2" -> (7, [0, 2]); "7:" -> (7, []) (the vote taken back)."""
    poll_id, _, options = value.partition(":")
    chosen = [o for o in options.split(",") if o]
    if not poll_id.isdigit() or not all(o.isdigit() for o in chosen):
        raise UserError("error.button_expired")
    return int(poll_id), list(dict.fromkeys(int(o) for o in chosen))


def _open_poll(ctx: Ctx, poll_id: int, options: list[int]) -> Poll:
    poll = ctx.uow.announcements.poll(poll_id)
    if poll is None or not _reader_may_read(ctx.uow, ctx.person, poll):
        raise UserError("error.button_expired")
    if poll.closed_at is not None:
        raise UserError("error.poll_closed", ref=show_id(poll.id, "poll"))
    if not all(0 <= o < len(poll.options) for o in options):
        raise UserError("error.button_expired")
    return poll


def seen_votes(core: Core, platform: str) -> bool:
    """Whether a vote in a room of this messenger is seen by everyone in it (Matrix: a
    reaction or a typed number is an event of the room, with the voter's name)."""
    return platform in core.settings.presses_seen


def _refused_in_room(ctx: Ctx, poll_id: int) -> bool:
    """An anonymous poll takes no vote where the room would see it: not counted, the
    event forgotten (who pressed what), and the voter told, privately, to vote in the
    private chat, where the card goes to them. True when refused."""
    if ctx.in_direct_chat or not seen_votes(ctx.core, ctx.platform):
        return False
    uow = ctx.uow
    poll = uow.announcements.poll(poll_id)
    if poll is None or not poll.anonymous:
        return False
    meta = ctx.event.meta
    uow.announcements.forget_event(meta.platform, meta.event_id)
    direct = Target(meta.platform, "dm", meta.actor.external_id)
    ref = show_id(poll.id, "poll")
    if poll.closed_at is not None or not _reader_may_read(uow, ctx.person, poll):
        text = ctx.t("poll.voted_in_room", ref=ref)
        ctx.core.enqueue(uow, direct, Message(text=text), ctx.person.id, ctx.now)
        return True
    text = Markup(f"{ctx.t('poll.voted_in_room', ref=ref)}\n{ctx.t('poll.vote_here')}")
    ctx.core.enqueue(uow, direct, Message(text=text), ctx.person.id, ctx.now)
    live.enqueue_ref(uow, direct, {"t": "poll", "p": poll.id}, ctx.person.id, ctx.now)
    return True


def vote(ctx: Ctx, poll_id: int, option: int) -> None:
    """A press of one option: the vote (a changed one replaces it; on a --multi poll
    the option is toggled)."""
    if _refused_in_room(ctx, poll_id):
        return
    poll = _open_poll(ctx, poll_id, [option])
    uow = ctx.uow
    voter, person_id = voter_key(ctx.core, poll, ctx.person)
    # An anonymous vote is stored with the poll's own time, not the moment it was cast
    # (which the messenger's event would tie to a person), and its event is forgotten.
    at = poll.created_at if poll.anonymous else ctx.now
    if poll.multi:
        if uow.announcements.has_slot(poll.id, voter, option, option):
            uow.announcements.unvote(poll.id, voter, option)
        else:
            uow.announcements.vote(poll.id, voter, option, option, at, person_id)
    else:
        uow.announcements.vote(poll.id, voter, 0, option, at, person_id)
    _voted(ctx, poll, voter)


def choose(ctx: Ctx, poll_id: int, options: list[int]) -> None:
    """A whole selection at once (a native poll's answer): the voter's choices become
    exactly these (a single-choice poll takes the first); none takes the vote back."""
    if _refused_in_room(ctx, poll_id):
        return
    poll = _open_poll(ctx, poll_id, options)
    if not poll.multi:
        options = options[:1]
    uow = ctx.uow
    voter, person_id = voter_key(ctx.core, poll, ctx.person)
    at = poll.created_at if poll.anonymous else ctx.now
    uow.announcements.clear_votes(poll.id, voter)
    for option in options:
        uow.announcements.vote(poll.id, voter, option if poll.multi else 0, option, at, person_id)
    _voted(ctx, poll, voter)


def _voted(ctx: Ctx, poll: Poll, voter: str) -> None:
    """The voter's card shown again in place, and every live card refreshed (an
    anonymous poll's only when what they show changed: bot.poll_steps)."""
    uow = ctx.uow
    pressed = getattr(ctx.event, "message", None)
    replaces = getattr(pressed, "message_id", None)
    if poll.anonymous:
        # Who pressed what is forgotten: the inbox keeps only that an event came.
        meta = ctx.event.meta
        uow.announcements.forget_event(meta.platform, meta.event_id)
    # The voter's card again in its place, as a reference rendered when it goes: it shows
    # the poll as it is then (never an open card after it closed, however the sends
    # interleave), a named poll with the voter's own choices marked, an anonymous one
    # without (no stored message says what anyone chose).
    # In a shared room the card shows the tally, nobody's choice.
    target = ctx.core.reply_target(ctx.event)
    reader = ctx.person.id if target.kind == "dm" else None
    payload: dict[str, Any] = {"t": "poll", "p": poll.id, "r": replaces}
    live.enqueue_ref(uow, target, payload, reader, ctx.now)
    skip = (ctx.platform, ctx.person.id) if reader else None
    if not poll.anonymous:
        refresh(ctx.core, uow, poll, ctx.now, skip=skip)
        return
    changed = poll_steps.count_vote(ctx.core, uow, poll, voter, ctx.now)
    if changed == "step":
        refresh(ctx.core, uow, poll, ctx.now, skip=skip)
    elif changed == "voters":  # only how many voted shows: the rooms' and author's copies
        live.refresh(ctx.core, uow, CARD, poll.id, {"t": "poll", "p": poll.id}, ctx.now, skip=skip)


def refresh(
    core: Core,
    uow: UnitOfWork,
    poll: Poll,
    now: datetime,
    *,
    skip: tuple[str, int] | None = None,
) -> None:
    """Edits every delivered copy of the card (coalesced, bot.live): the rooms' and the
    author's, and the members' own copies (an anonymous poll's edited only when its
    shown tally takes a step: before, an edit there would tell nothing but that someone
    voted). `skip`: (platform, person) of the voter in a direct chat, whose copy there
    the vote itself shows again."""
    payload: dict[str, Any] = {"t": "poll", "p": poll.id}
    live.refresh(core, uow, CARD, poll.id, payload, now, skip=skip)
    live.refresh(core, uow, MEMBER_CARD, poll.id, payload, now, skip=skip)


def merge_anonymous_votes(core: Core, uow: UnitOfWork, source: Person, target: Person) -> int:
    """When two people become one (account linking), the source's anonymous votes become
    the target's: where both voted on a poll the target's stays (one vote, not two),
    else the source's is re-keyed to the target (not lost, and no second vote). The keys
    are recomputed from the secret; nothing stored names either of them."""
    keys = {voter_key(core, poll, source)[0]: poll for poll in uow.announcements.anonymous_polls()}
    moved = 0
    for old in uow.announcements.voters_among(list(keys)):  # the polls the source voted on
        poll = keys[old]
        moved += uow.announcements.rekey_votes(poll.id, old, voter_key(core, poll, target)[0])
    return moved


def find(ctx: Ctx, raw: str) -> Poll:
    poll = ctx.uow.announcements.poll(parse_id(raw, "poll"))
    if poll is None or not _reader_may_read(ctx.uow, ctx.person, poll):
        raise UserError("error.poll_not_found", ref=raw)
    return poll


def close(core: Core, uow: UnitOfWork, poll: Poll, now: datetime, by: int | None) -> bool:
    """Closes the poll (once) and posts its result to the group: its bridged rooms and
    its author get the result, and every copy of the card (the members' too) is edited
    to it, without buttons. False when it was closed already."""
    if not uow.announcements.close_poll(poll.id, now):
        return False
    poll_steps.forget(uow, poll.id)
    refresh(core, uow, poll, now)  # every copy, the members' too, shows the result
    result = {"t": "presult", "p": poll.id}
    for _, platform, address in uow.rooms.bridged_addresses(poll.group_id):
        live.enqueue_ref(uow, Target(platform, "room", address), result, None, now)
    author = uow.people.get(poll.author_id) if poll.author_id else None
    if author is not None:
        account = uow.people.preferred_accounts([author.id]).get(author.id)
        if account is not None:
            live.enqueue_ref(
                uow, Target(account.platform, "dm", account.external_id), result, author.id, now
            )
    uow.audit.add(
        at=now, actor_id=by, action="poll.closed", subject=show_id(poll.id, "poll"), details={}
    )
    return True


def render_result(core: Core, uow: UnitOfWork, row: OutboxRow) -> Message | None:
    poll = uow.announcements.poll(int(row.payload["p"]))
    if poll is None:
        return None
    person = uow.people.get(row.person_id) if row.person_id else None
    t = core.translator(person)
    per, voters = uow.announcements.tally(poll.id)
    ref = show_id(poll.id, "poll")
    if poll.anonymous and voters < core.settings.poll_anonymous_minimum:
        text = t("poll.result_hidden", need=core.settings.poll_anonymous_minimum, count=voters)
        return Message(title=t("poll.result_title", ref=ref), text=text)
    best = max(per.values(), default=0)
    lines = [bold(poll.question)]
    for i, option in enumerate(poll.options):
        count = per.get(i, 0)
        mark = "🏆 " if best and count == best else ""
        lines.append(t("poll.option_count", n=i + 1, option=option, count=count, mark=mark))
    lines.append(t("poll.voters", count=voters))
    return Message(title=t("poll.result_title", ref=ref), text=Markup("\n".join(lines)))


def close_due(core: Core, now: datetime) -> int:
    """Closes the polls whose --closes time came (each in its own unit of work)."""
    with core.db.uow() as uow:
        due = uow.announcements.due_polls(now)
    done = 0
    for poll_id in due:
        with core.db.uow() as uow:
            poll = uow.announcements.poll(poll_id)
            if poll is not None and close(core, uow, poll, now, None):
                done += 1
            uow.commit()
    return done


def card_for(ctx: Ctx, poll: Poll) -> Message:
    """The card as `show` opens it for the asker (a named poll's with their own choices
    marked; an anonymous one's without: the answer is a stored message, and no stored
    message says what anyone chose): a look at the poll, not a copy of it, so no
    messenger starts a native poll of its own for it (Matrix: answers go to the one
    started with the poll's copies, or by number here)."""
    mine = (
        None
        if poll.anonymous
        else ctx.uow.announcements.choices_of(poll.id, voter_key(ctx.core, poll, ctx.person)[0])
    )
    zone = ctx.core.timezone_of(ctx.person)
    seen = ctx.in_room and seen_votes(ctx.core, ctx.platform)
    card = poll_message(
        ctx.core, ctx.uow, ctx.t, poll, timezone=zone, mine=mine, room_sees_votes=seen
    )
    native = {**card.meta["native_poll"], "view": True}
    return replace(card, meta={**card.meta, "native_poll": native})
