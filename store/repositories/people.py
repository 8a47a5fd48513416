"""People and their accounts on the messengers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    bindparam,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value

from store.driver import Prebuilt, update_by_id
from store.models import (
    Account,
    Announcement,
    AnnouncementRecipient,
    ApprovalCard,
    Comment,
    DigestWatermark,
    Draft,
    Feed,
    Group,
    Invite,
    Item,
    ItemRead,
    LiveCard,
    Membership,
    OutboxMessage,
    Person,
    Poll,
    PollVote,
    Proposal,
    ProposalVote,
    Reaction,
    Role,
    table_of,
)
from store.models.mail import MAIL_PLATFORM
from store.names import handle_base
from store.repositories import rows
from store.repositories.base import Repo
from store.repositories.join_requests import JoinRequestRepository

# The hot path runs prebuilt Core statements on the session's connection: SQLAlchemy
# compiles each once and then only binds parameters, with no ORM bookkeeping on the way.
_people = table_of(Person)
_accounts = table_of(Account)


_ACTOR = Prebuilt(
    select(_accounts, _people)
    .join(_people, _people.c.id == _accounts.c.person_id)
    .where(
        _accounts.c.platform == bindparam("platform"),
        _accounts.c.external_id == bindparam("external_id"),
    )
)
_PEOPLE_BY_IDS = select(Person).where(Person.id.in_(bindparam("ids", expanding=True)))


class PersonRepository(Repo):
    def get(self, person_id: int) -> Person | None:
        return self.s.get(Person, person_id)

    def lock(self, person_id: int) -> None:
        """What the person does next waits for this unit of work (PostgreSQL; SQLite has
        one writer anyway): an album's photos, applied at once, join one draft."""
        self.s.execute(select(Person.id).where(Person.id == person_id).with_for_update())

    def actor(self, platform: str, external_id: str) -> tuple[Account, Person] | None:
        """An account and its person, in one query."""
        row = _ACTOR.first(
            self._flushed_connection(), {"platform": platform, "external_id": external_id}
        )
        if row is None:
            return None
        split = len(_accounts.columns)
        return rows.loaded(self.s, Account, row[:split]), rows.loaded(self.s, Person, row[split:])

    def update_account(self, account: Account, **values: Any) -> None:
        """Writes these columns of an account at once (one UPDATE, no flush of the unit
        of work); the object shows them as its stored state."""
        update_by_id(_accounts, tuple(values)).run(
            self._flushed_connection(), [{"row_id": account.id, **values}]
        )
        for key, value in values.items():
            set_committed_value(account, key, value)

    def by_ids(self, ids: Iterable[int | None]) -> Sequence[Person]:
        wanted = {i for i in ids if i is not None}
        if not wanted:
            return []
        return self.s.scalars(_PEOPLE_BY_IDS, {"ids": list(wanted)}).all()

    def by_handle(self, handle: str) -> Person | None:
        return self.s.scalar(select(Person).where(Person.handle == handle.lower()))

    def account(self, platform: str, external_id: str) -> Account | None:
        return self.s.scalar(
            select(Account).where(Account.platform == platform, Account.external_id == external_id)
        )

    def accounts_with_role(self, platform: str, roles: Iterable[Role]) -> list[tuple[str, Role]]:
        """(external id, role) of the platform's accounts of active people in these roles."""
        rows = self.s.execute(
            select(Account.external_id, Person.role).where(
                Account.person_id == Person.id,
                Account.platform == platform,
                Person.active.is_(True),
                Person.role.in_([r.value for r in roles]),
            )
        ).all()
        return [(external_id, Role(role)) for external_id, role in rows]

    def mentions(self, handles: Iterable[str]) -> dict[str, dict[str, Any]]:
        """What a message's meta "mentions" says of these people, in one query: each
        handle's display name and reachable accounts by platform (bot.authors)."""
        wanted = sorted({h for h in handles if h})
        if not wanted:
            return {}
        rows = self.s.execute(
            select(Person.handle, Person.display_name, Account.platform, Account.external_id)
            .outerjoin(Account, (Account.person_id == Person.id) & Account.reachable.is_(True))
            .where(Person.handle.in_(wanted))
        ).all()
        found: dict[str, dict[str, Any]] = {}
        for handle, name, platform, external_id in rows:
            entry = found.setdefault(handle, {"name": name, "accounts": {}})
            if platform is not None:
                entry["accounts"][platform] = external_id
        return found

    def accounts_of(self, person_id: int) -> Sequence[Account]:
        return self.s.scalars(
            select(Account).where(Account.person_id == person_id).order_by(Account.id)
        ).all()

    def _free_handle(self, wanted: str) -> str:
        base = handle_base(wanted)
        taken = set(
            self.s.scalars(
                select(Person.handle).where(
                    or_(Person.handle == base, Person.handle.like(f"{base}%"))
                )
            )
        )
        if base not in taken:
            return base
        n = 2
        while f"{base}{n}" in taken:
            n += 1
        return f"{base}{n}"

    def create(
        self,
        *,
        name: str,
        role: Role,
        now: datetime,
        language_hint: str | None = None,
        display_name: str | None = None,
    ) -> Person:
        person = Person(
            handle=self._free_handle(name),
            display_name=display_name or name,
            role=role,
            language_hint=language_hint,
            created_at=now,
            active=True,
        )
        self.s.add(person)
        self.s.flush()
        return person

    def add_account(
        self,
        person: Person,
        *,
        platform: str,
        external_id: str,
        now: datetime,
        username: str | None = None,
        display_name: str | None = None,
    ) -> Account:
        account = Account(
            person_id=person.id,
            platform=platform,
            external_id=external_id,
            username=username,
            display_name=display_name,
            reachable=True,
            last_seen_at=now,
            created_at=now,
        )
        self.s.add(account)
        self.s.flush()
        return account

    def preferred_accounts(self, person_ids: Iterable[int]) -> dict[int, Account]:
        """Each person's most recently used reachable account, in one query; a mail
        address only for those without a reachable messenger account."""
        return self._first_reachable(person_ids, Account.platform == MAIL_PLATFORM)

    def digest_accounts(self, person_ids: Iterable[int]) -> dict[int, Account]:
        """Where each person's digest goes: their verified mail address when they chose
        digests by mail (`settings digest mail`) and it is reachable, else as
        preferred_accounts."""
        return self._first_reachable(
            person_ids, (Account.platform == MAIL_PLATFORM) != Person.digest_by_mail
        )

    def _first_reachable(self, person_ids: Iterable[int], last: Any) -> dict[int, Account]:
        """Each person's first reachable account: those for which `last` is true after the
        others, then the one seen last."""
        ids = list(set(person_ids))
        if not ids:
            return {}
        rows = self.s.scalars(
            select(Account)
            .join(Person, Person.id == Account.person_id)
            .where(Account.person_id.in_(ids), Account.reachable.is_(True))
            .order_by(Account.person_id, last, Account.last_seen_at.desc(), Account.id.desc())
        ).all()
        chosen: dict[int, Account] = {}
        for account in rows:
            chosen.setdefault(account.person_id, account)
        return chosen

    def count_role(self, role: Role) -> int:
        return (
            self.s.scalar(
                select(func.count()).select_from(Person).where(Person.role == role, Person.active)
            )
            or 0
        )

    def all(self) -> Sequence[Person]:
        return self.s.scalars(select(Person).order_by(Person.handle)).all()

    def merge(self, source: Person, target: Person) -> None:
        """Move everything of `source` to `target` (account linking), then delete source.

        Accounts, posts, comments, reactions, drafts, memberships (a moderator stays one),
        invites and groups they created, messages queued for them, their proposals, votes,
        approval cards, the feeds they added, what their digests covered, the posts they
        were shown (read tracking) and their requests to join closed groups move (four
        eyes: the linked person still may not approve their own proposal); a pending prompt
        and a link code of the source go with it.
        """
        s = self.s
        for m in s.scalars(select(Membership).where(Membership.person_id == source.id)).all():
            existing = s.get(Membership, (target.id, m.group_id))
            if existing is None:
                s.add(
                    Membership(
                        person_id=target.id,
                        group_id=m.group_id,
                        notify=m.notify,
                        moderator=m.moderator,
                        joined_at=m.joined_at,
                    )
                )
            else:
                existing.moderator = existing.moderator or m.moderator
            s.delete(m)
        s.flush()
        for column in (
            Account.person_id,
            Item.author_id,
            Comment.author_id,
            Draft.person_id,
            Invite.created_by,
            Group.created_by,
            OutboxMessage.person_id,
            Proposal.author_id,
            ApprovalCard.person_id,
            Feed.added_by,
            Announcement.author_id,
            Poll.author_id,
            LiveCard.person_id,
        ):
            s.execute(update(column.class_).where(column == source.id).values({column: target.id}))
        # Where the target already has the same row (a reaction to the same post, a vote on
        # the same revision, a digest watermark of the same group, a read of the same post),
        # the target's stays.
        self._move_unless_taken(Reaction, "person_id", ("item_id", "emoji"), source, target)
        self._move_unless_taken(
            ProposalVote, "gatekeeper_id", ("proposal_id", "revision"), source, target
        )
        self._move_unless_taken(DigestWatermark, "person_id", ("group_id",), source, target)
        self._move_unless_taken(ItemRead, "person_id", ("item_id",), source, target)
        JoinRequestRepository(s).move(source.id, target.id)
        self._move_unless_taken(
            AnnouncementRecipient, "person_id", ("announcement_id",), source, target
        )
        # A named vote moves with its voter key; where the target voted on the same poll,
        # the target's stays. (An anonymous vote is keyed by an HMAC of the source's id: it
        # cannot be found, and stays as it is.)
        theirs = aliased(PollVote)
        taken = exists().where(theirs.person_id == target.id, theirs.poll_id == PollVote.poll_id)
        options = {"synchronize_session": False}
        s.execute(
            delete(PollVote).where(PollVote.person_id == source.id, taken),
            execution_options=options,
        )
        s.execute(
            update(PollVote)
            .where(PollVote.person_id == source.id)
            .values(person_id=target.id, voter=f"p{target.id}"),
            execution_options=options,
        )
        s.execute(delete(Person).where(Person.id == source.id))
        s.expire_all()

    def _move_unless_taken(
        self, model: Any, person: str, keys: tuple[str, ...], source: Person, target: Person
    ) -> None:
        theirs = aliased(model)
        owner = getattr(model, person)
        taken = exists().where(
            getattr(theirs, person) == target.id,
            *(getattr(theirs, k) == getattr(model, k) for k in keys),
        )
        options = {"synchronize_session": False}
        self.s.execute(delete(model).where(owner == source.id, taken), execution_options=options)
        self.s.execute(
            update(model).where(owner == source.id).values({person: target.id}),
            execution_options=options,
        )
