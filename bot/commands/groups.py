"""Groups and memberships: groups, group create, join, leave, members, add, remove,
notify, bridge; requests to join closed groups and their moderators' decisions."""

from __future__ import annotations

from bot.commands.common import find_person, mail_account
from bot.core import Ctx
from bot.digest import notify_changed
from bot.errors import UserError
from bot.grammar import Command
from bot.handlers import Handlers
from bot.i18n import Translator
from bot.markup import Markup
from bot.message import Button, Message
from bot.policy import may_moderate
from bot.proposals import bridge_gatekeepers
from store.models import Group, JoinOutcome, JoinRequest, NotifyMode, Person, Visibility
from store.names import RESERVED_SLUGS, SLUG, slugify


def _visibility_label(ctx: Ctx, group: Group) -> Markup:
    label = ctx.t(f"group.visibility.{group.visibility}")
    if group.admits_externals:
        label = Markup(f"{label}, {ctx.t('group.with_externals')}")
    return label


def on_groups(ctx: Ctx, cmd: Command) -> None:
    visible = ctx.policy.visible_groups()
    if not visible:
        if ctx.policy.is_external:
            ctx.reply("groups.none_external")
        else:
            ctx.reply("groups.none", prefix=ctx.prefix)
        return
    counts = ctx.uow.groups.member_counts(g.id for g in visible)
    lines: list[str] = [ctx.t("groups.header", count=len(visible))]
    # The same few labels and marks on every line: translated once each.
    kinds: dict[tuple[str, bool], Markup] = {}
    marks = {
        None: "",
        False: " " + ctx.t("groups.member_mark"),
        True: " " + ctx.t("groups.moderator_mark"),
    }
    for g in visible:
        m = ctx.policy.membership(g)
        kind = kinds.get((g.visibility, g.admits_externals))
        if kind is None:
            kind = kinds[(g.visibility, g.admits_externals)] = _visibility_label(ctx, g)
        lines.append(
            ctx.t("groups.line", slug=g.slug, name=g.name, kind=kind, count=counts.get(g.id, 0))
            + marks[None if m is None else bool(m.moderator)]
        )
    ctx.reply_markup(Markup("\n".join(lines)))


def _looks_like_a_title(word: str) -> bool:
    """ "Sales", "Vertrieb Süd", a quoted "Sales Team": written as people write a title,
    not as a slug (lower case ASCII), so the words are the title and the slug comes
    from them."""
    return any(c.isupper() or not c.isascii() or c.isspace() for c in word)


def _free_slug(ctx: Ctx, slug: str) -> str:
    """The slug, or the first of slug-2, slug-3, ... that no group has (nor is reserved:
    a title "Pinwall" gets pinwall-2)."""
    n, free = 1, slug
    while free in RESERVED_SLUGS or ctx.uow.groups.by_slug(free) is not None:
        n += 1
        free = f"{slug[: 31 - len(str(n))]}-{n}"
    return free


def on_group_create(ctx: Ctx, cmd: Command) -> None:
    ctx.policy.require_internal()
    typed = str(cmd.arg("slug")).removeprefix("#")
    if _looks_like_a_title(typed):  # group create Sales Team -> sales-team, "Sales Team"
        name = " ".join(f"{typed} {cmd.arg('name') or ''}".split())[:200]
        slug = slugify(name)
        if not SLUG.match(slug):
            raise UserError("error.bad_slug", slug=typed, usage_of="group create")
        slug = _free_slug(ctx, slug)
    else:
        slug = typed.lower()
        if not SLUG.match(slug):
            raise UserError("error.bad_slug", slug=cmd.arg("slug"), usage_of="group create")
        if slug in RESERVED_SLUGS:  # the group could not be mailed: its address is taken
            raise UserError("error.slug_reserved", slug=slug, usage_of="group create")
        if ctx.uow.groups.by_slug(slug) is not None:
            raise UserError("error.slug_taken", slug=slug)
        name = (cmd.arg("name") or slug).strip()[:200]
    same_title = ctx.uow.groups.by_title(name)
    if same_title is not None:
        raise UserError("error.title_taken", name=same_title.name, slug=same_title.slug)
    visibility = (
        Visibility.SECRET
        if cmd.flags.get("secret")
        else Visibility.CLOSED
        if cmd.flags.get("closed")
        else Visibility.OPEN
    )
    group = ctx.uow.groups.create(
        slug=slug,
        name=name,
        visibility=visibility,
        admits_externals=bool(cmd.flags.get("externals")),
        created_by=ctx.person.id,
        now=ctx.now,
    )
    ctx.uow.groups.add_member(ctx.person.id, group.id, now=ctx.now, moderator=True)
    ctx.audit("group.created", slug, visibility=visibility.value, externals=group.admits_externals)
    ctx.reply("group.created", slug=slug, name=name, kind=_visibility_label(ctx, group))


def on_join(ctx: Ctx, cmd: Command) -> None:
    group = ctx.policy.group(cmd.arg("group"))
    if ctx.policy.membership(group) is not None:
        raise UserError("error.already_member", group=group.name)
    if ctx.policy.may_join(group):
        ctx.uow.groups.add_member(ctx.person.id, group.id, now=ctx.now)
        ctx.reply("join.done", group=group.name)
        return
    if not ctx.policy.may_ask_to_join(group):  # externals join through invites only
        raise UserError("error.group_not_found", group=cmd.arg("group"))
    _ask_to_join(ctx, group)


# --- requests to join a closed group --------------------------------------------------


def _handles(people: list[Person] | tuple[Person, ...]) -> str:
    return ", ".join("@" + p.handle for p in people) or "-"


def _ask_to_join(ctx: Ctx, group: Group) -> None:
    """A closed group's `join`: the request is kept, and each of its moderators (the
    admins where it has none) gets a card to let the person in or decline."""
    ctx.uow.people.lock(ctx.person.id)  # two `join`s at once make one request
    deciders = list(ctx.uow.join_requests.deciders(group.id))
    pending = ctx.uow.join_requests.pending(group.id, ctx.person.id)
    if pending is not None:  # asked before: no second card
        raise UserError(
            "error.join_pending",
            group=group.name,
            since=ctx.t.datetime(pending.created_at, ctx.core.timezone_of(ctx.person)),
            moderators=_handles(deciders),
        )
    request = ctx.uow.join_requests.add(group.id, ctx.person.id, ctx.now)
    ctx.audit("join.requested", group.slug, request=request.id)
    accounts = ctx.uow.people.preferred_accounts([p.id for p in deciders])
    for decider in deciders:
        account = accounts.get(decider.id)
        platform = account.platform if account is not None else ctx.platform
        t = ctx.core.translator(decider)
        card = _request_card(t, request, ctx.person, group, ctx.core.prefix(platform, t))
        ctx.core.send_to_person(ctx.uow, decider, card, ctx.now)
    ctx.reply("join.requested", group=group.name, moderators=_handles(deciders))


def _request_card(
    t: Translator, request: JoinRequest, person: Person, group: Group, prefix: str
) -> Message:
    text = "\n".join(
        (
            t(
                "join_request.card",
                name=person.display_name,
                handle=person.handle,
                group=group.name,
            ),
            t("join_request.hint", prefix=prefix, handle=person.handle, slug=group.slug),
        )
    )
    value = str(request.id)
    return Message(
        text=text,
        buttons=(
            Button(
                label=t("join_request.approve"), action="join.approve", value=value, style="primary"
            ),
            Button(
                label=t("join_request.decline"), action="join.decline", value=value, style="danger"
            ),
        ),
    )


def _decide(ctx: Ctx, value: str, outcome: JoinOutcome) -> None:
    """A moderator's decision on a request, by button. Anyone else's press (a forwarded
    or forged button) is refused and changes nothing; a request decided before says by
    whom."""
    request = ctx.uow.join_requests.lock(int(value)) if value.isdigit() else None
    group = ctx.uow.groups.get(request.group_id) if request is not None else None
    if request is None or group is None or not ctx.policy.can_see(group):
        raise UserError("error.button_expired")
    ctx.policy.require_moderator(group)
    requester = ctx.uow.people.get(request.person_id)
    if requester is None or not requester.active:
        raise UserError("error.button_expired")
    params = {"handle": requester.handle, "group": group.name}
    if request.decided_at is not None:
        by = ctx.uow.people.get(request.decided_by) if request.decided_by else None
        ctx.settle(
            "join_request.already_approved"
            if request.outcome == JoinOutcome.APPROVED
            else "join_request.already_declined",
            by=by.handle if by is not None else "?",
            **params,
        )
        return
    if ctx.uow.groups.lock_membership(requester.id, group.id) is not None:
        # Let in another way meanwhile (an invite): that settles the request.
        ctx.uow.join_requests.decide(request, JoinOutcome.APPROVED, ctx.person.id, ctx.now)
        ctx.settle("join_request.already_member", **params)
        return
    ctx.uow.join_requests.decide(request, outcome, ctx.person.id, ctx.now)
    if outcome is JoinOutcome.DECLINED:
        ctx.audit("join.declined", group.slug, person=requester.id, request=request.id)
        ctx.settle("join_request.declined_card", **params)
        deciders = list(ctx.uow.join_requests.deciders(group.id))
        ctx.tell(
            requester, "join_request.declined", group=group.name, moderators=_handles(deciders)
        )
        return
    ctx.uow.groups.add_member(requester.id, group.id, now=ctx.now)
    ctx.audit("member.added", group.slug, person=requester.id, request=request.id)
    ctx.settle("join_request.approved_card", **params)
    ctx.tell(
        requester,
        "join_request.approved",
        handle=ctx.person.handle,
        group=group.name,
        slug=group.slug,
    )


def on_join_approve(ctx: Ctx, value: str) -> None:
    _decide(ctx, value, JoinOutcome.APPROVED)


def on_join_decline(ctx: Ctx, value: str) -> None:
    _decide(ctx, value, JoinOutcome.DECLINED)


def on_leave(ctx: Ctx, cmd: Command) -> None:
    group = ctx.policy.group(cmd.arg("group"))
    membership = ctx.uow.groups.lock_membership(ctx.person.id, group.id)
    if membership is None:
        raise UserError("error.not_member", group=group.name)
    ctx.uow.groups.remove_member(membership)
    heir = _hand_over(ctx, group) if membership.moderator else None
    if heir is None:
        ctx.reply("leave.done", group=group.name)
    else:
        ctx.reply("leave.done_handed_over", group=group.name, heir=heir.handle)
        ctx.tell(heir, "leave.heir", group=group.name, handle=ctx.person.handle)


def _hand_over(ctx: Ctx, group: Group) -> Person | None:
    """A group whose last moderator left is moderated by its longest-standing internal
    member from then on (nobody could name a moderator otherwise); returns that member."""
    rest = ctx.uow.groups.members(group.id)
    if any(m.moderator for _, m in rest):
        return None
    heirs = [(p, m) for p, m in rest if may_moderate(p)]
    if not heirs:
        return None  # admins still moderate every group
    heir, membership = min(heirs, key=lambda pm: (pm[1].joined_at, pm[0].id))
    membership.moderator = True
    ctx.audit("moderator.handed_over", group.slug, person=heir.id)
    return heir


def on_members(ctx: Ctx, cmd: Command) -> None:
    group = ctx.policy.readable_group(cmd.arg("group"))
    members = ctx.uow.groups.members(group.id)
    names = []
    for person, m in members:
        entry = "@" + person.handle
        if m.moderator:
            entry += " " + ctx.t("members.moderator")
        if person.role_enum.is_external:
            entry += " " + ctx.t(f"role.tag.{person.role}")
        names.append(entry)
    text = ctx.t(
        "members.list", group=group.name, count=len(members), names=", ".join(names) or "-"
    )
    waiting = ctx.uow.join_requests.pending_in(group.id) if ctx.policy.can_moderate(group) else ()
    if waiting:  # what the moderators' cards ask, also without buttons
        text = Markup(
            text
            + "\n"
            + ctx.t(
                "join_request.waiting",
                count=len(waiting),
                names=_handles(tuple(p for _, p in waiting)),
                prefix=ctx.prefix,
                first=waiting[0][1].handle,
                slug=group.slug,
            )
        )
    ctx.reply_markup(text)


def on_add(ctx: Ctx, cmd: Command) -> None:
    group = ctx.policy.group(cmd.arg("group"))
    ctx.policy.require_moderator(group)
    person = find_person(ctx.uow, cmd.arg("person"))
    if person.role_enum.is_external and not group.admits_externals:
        raise UserError("error.group_no_externals", group=group.name, handle=person.handle)
    if ctx.uow.groups.membership(person.id, group.id) is not None:
        raise UserError("error.already_member_other", handle=person.handle, group=group.name)
    ctx.uow.groups.add_member(person.id, group.id, now=ctx.now)
    ctx.uow.join_requests.settle(group.id, person.id, ctx.person.id, ctx.now)  # asked before
    ctx.audit("member.added", group.slug, person=person.id)
    ctx.reply("add.done", handle=person.handle, group=group.name)
    if person.id != ctx.person.id:
        ctx.tell(person, "add.told", handle=ctx.person.handle, group=group.name, slug=group.slug)


def on_remove(ctx: Ctx, cmd: Command) -> None:
    group = ctx.policy.group(cmd.arg("group"))
    ctx.policy.require_moderator(group)
    person = find_person(ctx.uow, cmd.arg("person"))
    membership = ctx.uow.groups.lock_membership(person.id, group.id)
    if membership is None:
        raise UserError("error.not_member_other", handle=person.handle, group=group.name)
    ctx.uow.groups.remove_member(membership)
    ctx.audit("member.removed", group.slug, person=person.id)
    ctx.reply("remove.done", handle=person.handle, group=group.name)
    if person.id != ctx.person.id:
        ctx.tell(person, "remove.told", group=group.name)
    heir = _hand_over(ctx, group) if membership.moderator else None
    if heir is not None:
        ctx.tell(heir, "leave.heir", group=group.name, handle=person.handle)


def on_notify(ctx: Ctx, cmd: Command) -> None:
    group = ctx.policy.group(cmd.arg("group"))
    membership = ctx.policy.membership(group)
    if membership is None:
        raise UserError("error.not_member", group=group.name)
    by_mail = cmd.arg("mode") == "mail"  # instantly, to their verified mail address
    mode = NotifyMode.INSTANT if by_mail else NotifyMode(cmd.arg("mode"))
    feeds = bool(cmd.flags.get("feeds"))  # feed entries instantly too (else: digests)
    if feeds and mode is not NotifyMode.INSTANT:
        raise UserError("error.notify_feeds_instant_only", usage_of="notify")
    address = mail_account(ctx) if by_mail else None
    notify_changed(ctx.uow, membership, mode, ctx.now)  # digests: from the newest post on
    membership.notify = mode
    membership.instant_feeds = feeds
    membership.by_mail = by_mail
    if address is not None:
        ctx.reply("notify.mail", group=group.name, address=address)
        return
    ctx.reply("notify.instant_feeds" if feeds else f"notify.{mode.value}", group=group.name)


def on_notify_button(ctx: Ctx, value: str) -> None:
    """A notify mode chosen by button (Slack's App Home): the notify command."""
    slug, _, mode = value.partition(":")
    ctx.core.run_command(ctx, "notify", f"{slug} {mode}")


def on_bridge(ctx: Ctx, cmd: Command) -> None:
    if str(cmd.arg("group")).lower() == "gatekeepers":
        bridge_gatekeepers(ctx)  # approval cards come to this room
        return
    room = ctx.room()
    if room is None:
        raise UserError("error.bridge_in_room")
    group = ctx.policy.group(cmd.arg("group"))
    ctx.policy.require_moderator(group)
    if room.group_id == group.id:
        raise UserError("error.already_bridged", group=group.name)
    current = ctx.uow.groups.get(room.group_id) if room.group_id is not None else None
    if current is not None and not ctx.policy.can_moderate(current):
        # Moving a room away from its group is its moderators' decision: anyone who made a
        # group of their own could otherwise take a (secret) group's room for theirs. The
        # group is not named: the asker may not know it exists.
        raise UserError("error.bridged_elsewhere")
    room.group_id = group.id
    ctx.audit("room.bridged", group.slug, platform=room.platform, room=room.external_id)
    ctx.reply("bridge.done", group=group.name)


HANDLERS = Handlers(
    commands={
        "groups": on_groups,
        "group create": on_group_create,
        "join": on_join,
        "leave": on_leave,
        "members": on_members,
        "add": on_add,
        "remove": on_remove,
        "notify": on_notify,
        "bridge": on_bridge,
    },
    actions={
        "join.approve": on_join_approve,
        "join.decline": on_join_decline,
        "notify.set": on_notify_button,
    },
)
