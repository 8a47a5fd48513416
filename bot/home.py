"""A person's home: their groups with notify modes and the newest posts they may see;
for gatekeepers and admins also the proposals waiting for their decision.

The core decides what is in it (through the policy, like every read path); adapters
with a home screen (Slack's App Home) render it natively.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.authors import forgotten
from bot.core import Core
from bot.digest import Times, clock_time, next_digest
from bot.ids import show_id
from bot.linklabel import link_label
from bot.policy import Policy, is_gatekeeper
from store.models import MAIL_PLATFORM, ProposalStatus

POSTS = 10
HOME_LABEL_MAX = 200  # a link's label in the App Home
PROPOSALS = 10  # the oldest ones waiting are shown, with how many more there are
WAITING_MAX = 50
JOINABLE = 20  # groups offered to join on the home, by name


@dataclass(frozen=True, slots=True)
class HomeGroup:
    slug: str
    name: str
    mode: str  # instant | daily | weekly | mute | mail (instant, by mail)
    moderator: bool


@dataclass(frozen=True, slots=True)
class HomePost:
    item: str  # "#12"
    group: str
    author: str  # a handle, or "" for a feed entry or a forgotten author's post
    text: str
    url: str | None
    title: str | None
    dated_at: datetime  # Item.dated_at
    label: str | None = None  # what the link shows: bot.linklabel.link_label
    former_member: bool = False  # its author was forgotten (privacy forget)


@dataclass(frozen=True, slots=True)
class HomeProposal:
    """A pending proposal the person may decide: its card's values, for the same buttons."""

    id: int
    proposal: str  # "P3"
    revision: int
    outlet: str
    author: str  # a handle, or "" when its author was forgotten
    text: str


@dataclass(frozen=True, slots=True)
class Home:
    handle: str
    language: str
    timezone: str
    role: str
    groups: tuple[HomeGroup, ...]
    posts: tuple[HomePost, ...]
    # Digest times in the person's zone ("08:00"; weekly_day 0 = Monday), whether they
    # are paused, and when the next digest comes (None while paused).
    daily_at: str = "08:00"
    weekly_day: int = 0
    weekly_at: str = "08:00"
    digests_paused: bool = False
    next_digest: datetime | None = None
    # Proposals waiting for this person's decision (gatekeepers and admins; never their
    # own); `decides` says whether they are one, so that "none waiting" can show.
    decides: bool = False
    proposals: tuple[HomeProposal, ...] = ()
    proposals_more: int = 0
    # Groups the person sees but is not in, that they may join or ask to join (closed).
    joinable: tuple[HomeGroup, ...] = ()
    has_mail: bool = False  # a reachable verified address: `notify <group> mail` is offered
    digest_by_mail: bool = False  # `settings digest mail`: digests go to that address
    # The authors of the posts and proposals shown, as a message's meta "mentions" says
    # them (bot.authors): real mentions where the messenger has them.
    mentions: dict[str, Any] = field(default_factory=dict)


def home_of(core: Core, platform: str, external_id: str) -> Home | None:
    """The home of the person behind an account; None for an unknown or inactive one."""
    with core.db.uow() as uow:
        account = uow.people.account(platform, external_id)
        person = uow.people.get(account.person_id) if account else None
        if person is None or not person.active:
            return None
        policy = Policy(uow, person)
        memberships = {m.group_id: m for m in uow.groups.memberships_of(person.id)}
        groups = [g for g in uow.groups.by_ids(memberships) if policy.can_read(g)]
        groups.sort(key=lambda g: g.name.lower())
        by_id = {g.id: g for g in groups}
        items = uow.items.newest_in(list(by_id), POSTS)
        authors = {p.id: p for p in uow.people.by_ids(i.author_id for i in items)}
        schedule = uow.digests.schedule(person.id)
        times = Times.of(schedule)
        decides = not policy.is_external and is_gatekeeper(person)
        waiting = []
        if decides:  # pending, not their own, not expired, not voted on by them yet
            now = core.clock.now()
            waiting = [
                p
                for p in uow.proposals.listing([ProposalStatus.PENDING], WAITING_MAX)
                if p.author_id != person.id
                and p.expires_at > now
                and all(v.gatekeeper_id != person.id for v in uow.proposals.votes(p.id, p.revision))
            ]
        handles = uow.proposals.handles(p.author_id for p in waiting[:PROPOSALS])
        joinable = [
            g
            for g in policy.visible_groups()
            if g.id not in memberships and (policy.may_join(g) or policy.may_ask_to_join(g))
        ]
        joinable.sort(key=lambda g: g.name.lower())
        mentions = uow.people.mentions([*handles.values(), *(a.handle for a in authors.values())])
        return Home(
            mentions=mentions,
            decides=decides,
            proposals=tuple(
                HomeProposal(
                    id=p.id,
                    proposal=show_id(p.id, "proposal"),
                    revision=p.revision,
                    outlet=p.outlet,
                    author=handles.get(p.author_id or 0, ""),
                    text=p.text,
                )
                for p in waiting[:PROPOSALS]
            ),
            proposals_more=max(0, len(waiting) - PROPOSALS),
            joinable=tuple(
                HomeGroup(slug=g.slug, name=g.name, mode="", moderator=False)
                for g in joinable[:JOINABLE]
            ),
            daily_at=clock_time(times.daily_minute),
            weekly_day=times.weekly_day,
            weekly_at=clock_time(times.weekly_minute),
            digests_paused=times.paused,
            next_digest=next_digest(schedule, core.timezone_of(person), core.clock.now()),
            has_mail=MAIL_PLATFORM in core.settings.running
            and any(a.platform == MAIL_PLATFORM and a.reachable for a in person.accounts),
            digest_by_mail=bool(person.digest_by_mail),
            handle=person.handle,
            language=core.language_of(person),
            timezone=core.timezone_of(person),
            role=str(person.role),
            groups=tuple(
                HomeGroup(
                    slug=g.slug,
                    name=g.name,
                    mode="mail" if memberships[g.id].by_mail else str(memberships[g.id].notify),
                    moderator=memberships[g.id].moderator,
                )
                for g in groups
            ),
            posts=tuple(
                HomePost(
                    item=show_id(i.id, "item"),
                    group=by_id[i.group_id].name,
                    author=authors[i.author_id].handle if i.author_id in authors else "",
                    text=i.text,
                    url=i.url,
                    title=i.title,
                    dated_at=i.dated_at,
                    label=link_label(i.url, i.title, limit=HOME_LABEL_MAX) if i.url else None,
                    former_member=forgotten(i.kind, i.author_id),
                )
                for i in items
            ),
        )
