"""Unit of work and repositories: the narrow interface through which the core uses the store.

The core never writes a query; it asks a repository. Every repository of one unit of
work shares its session, so everything done in it commits (or not) together.
"""

from __future__ import annotations

import re
import secrets
import string
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, aliased

from store.blobs import StoredBlob
from store.models import (
    Account,
    AuditEntry,
    Blob,
    Comment,
    Draft,
    Group,
    InboxEvent,
    InboxStatus,
    Invite,
    InviteGroup,
    Item,
    ItemFile,
    LinkCode,
    Membership,
    MessageRef,
    NotifyMode,
    OutboxMessage,
    OutboxStatus,
    Person,
    Prompt,
    Reaction,
    Role,
    Room,
)

CODE_ALPHABET = string.ascii_letters + string.digits


def new_code(length: int = 10) -> str:
    """A random code of [A-Za-z0-9] only, so it fits a Telegram deep link."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


_HANDLE_JUNK = re.compile(r"[^a-z0-9._-]+")


def handle_base(name: str) -> str:
    """Lowercase ASCII letters, digits and `._-` of a name: "Jürgen Weiß" → jurgen.weiss."""
    folded = unicodedata.normalize("NFKD", name.lower().replace("ß", "ss"))
    ascii_only = folded.encode("ascii", "ignore").decode("ascii")
    base = _HANDLE_JUNK.sub("", ".".join(ascii_only.split()))
    return base.strip("._-")[:32].strip("._-") or "user"


class _Repo:
    def __init__(self, session: Session) -> None:
        self.s = session


class PersonRepository(_Repo):
    def get(self, person_id: int) -> Person | None:
        return self.s.get(Person, person_id)

    def by_ids(self, ids: Iterable[int | None]) -> Sequence[Person]:
        wanted = {i for i in ids if i is not None}
        if not wanted:
            return []
        return self.s.scalars(select(Person).where(Person.id.in_(wanted))).all()

    def by_handle(self, handle: str) -> Person | None:
        return self.s.scalar(select(Person).where(Person.handle == handle.lower()))

    def account(self, platform: str, external_id: str) -> Account | None:
        return self.s.scalar(
            select(Account).where(Account.platform == platform, Account.external_id == external_id)
        )

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
        """Each person's most recently used reachable account, in one query."""
        ids = list(set(person_ids))
        if not ids:
            return {}
        rows = self.s.scalars(
            select(Account)
            .where(Account.person_id.in_(ids), Account.reachable.is_(True))
            .order_by(Account.person_id, Account.last_seen_at.desc(), Account.id.desc())
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
        invites and groups they created, and messages queued for them move; a pending
        prompt and a link code of the source go with it.
        """
        s = self.s
        s.execute(update(Account).where(Account.person_id == source.id).values(person_id=target.id))
        s.execute(update(Item).where(Item.author_id == source.id).values(author_id=target.id))
        s.execute(update(Comment).where(Comment.author_id == source.id).values(author_id=target.id))
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
        # Reactions move too, but one the target already made on the item stays single.
        theirs = aliased(Reaction)
        s.execute(
            delete(Reaction)
            .where(
                Reaction.person_id == source.id,
                exists().where(
                    theirs.person_id == target.id,
                    theirs.item_id == Reaction.item_id,
                    theirs.emoji == Reaction.emoji,
                ),
            )
            .execution_options(synchronize_session=False)
        )
        s.execute(
            update(Reaction)
            .where(Reaction.person_id == source.id)
            .values(person_id=target.id)
            .execution_options(synchronize_session=False)
        )
        s.execute(update(Draft).where(Draft.person_id == source.id).values(person_id=target.id))
        s.execute(update(Invite).where(Invite.created_by == source.id).values(created_by=target.id))
        s.execute(update(Group).where(Group.created_by == source.id).values(created_by=target.id))
        s.execute(
            update(OutboxMessage)
            .where(OutboxMessage.person_id == source.id)
            .values(person_id=target.id)
        )
        s.execute(delete(Person).where(Person.id == source.id))
        s.expire_all()


class GroupRepository(_Repo):
    def get(self, group_id: int) -> Group | None:
        return self.s.get(Group, group_id)

    def by_slug(self, slug: str) -> Group | None:
        return self.s.scalar(select(Group).where(Group.slug == slug.lower()))

    def by_ids(self, ids: Iterable[int]) -> Sequence[Group]:
        wanted = list(ids)
        if not wanted:
            return []
        return self.s.scalars(select(Group).where(Group.id.in_(wanted)).order_by(Group.slug)).all()

    def all(self) -> Sequence[Group]:
        return self.s.scalars(select(Group).order_by(Group.slug)).all()

    def create(
        self,
        *,
        slug: str,
        name: str,
        visibility: str,
        admits_externals: bool,
        created_by: int,
        now: datetime,
    ) -> Group:
        group = Group(
            slug=slug,
            name=name,
            visibility=visibility,
            admits_externals=admits_externals,
            created_by=created_by,
            created_at=now,
        )
        self.s.add(group)
        self.s.flush()
        return group

    def membership(self, person_id: int, group_id: int) -> Membership | None:
        return self.s.get(Membership, (person_id, group_id))

    def memberships_of(self, person_id: int) -> Sequence[Membership]:
        return self.s.scalars(select(Membership).where(Membership.person_id == person_id)).all()

    def members(self, group_id: int) -> Sequence[tuple[Person, Membership]]:
        rows = self.s.execute(
            select(Person, Membership)
            .join(Membership, Membership.person_id == Person.id)
            .where(Membership.group_id == group_id, Person.active)
            .order_by(Membership.moderator.desc(), Person.handle)
        ).all()
        return [(p, m) for p, m in rows]

    def member_counts(self, group_ids: Iterable[int]) -> dict[int, int]:
        ids = list(group_ids)
        if not ids:
            return {}
        rows = self.s.execute(
            select(Membership.group_id, func.count())
            .join(Person, Person.id == Membership.person_id)
            .where(Membership.group_id.in_(ids), Person.active)
            .group_by(Membership.group_id)
        ).all()
        return dict(rows)

    def add_member(
        self, person_id: int, group_id: int, *, now: datetime, moderator: bool = False
    ) -> Membership:
        m = Membership(
            person_id=person_id,
            group_id=group_id,
            notify=NotifyMode.DAILY,
            moderator=moderator,
            joined_at=now,
        )
        self.s.add(m)
        self.s.flush()
        return m

    def remove_member(self, membership: Membership) -> None:
        self.s.delete(membership)
        self.s.flush()

    def instant_recipients(self, group_id: int) -> Sequence[int]:
        return self.s.scalars(
            select(Membership.person_id)
            .join(Person, Person.id == Membership.person_id)
            .where(
                Membership.group_id == group_id,
                Membership.notify == NotifyMode.INSTANT,
                Person.active,
            )
        ).all()


class RoomRepository(_Repo):
    def get(self, room_id: int) -> Room | None:
        return self.s.get(Room, room_id)

    def find(self, platform: str, external_id: str) -> Room | None:
        return self.s.scalar(
            select(Room).where(Room.platform == platform, Room.external_id == external_id)
        )

    def get_or_create(
        self, platform: str, external_id: str, *, name: str | None, now: datetime
    ) -> Room:
        room = self.find(platform, external_id)
        if room is None:
            room = Room(platform=platform, external_id=external_id, name=name, created_at=now)
            self.s.add(room)
            self.s.flush()
        return room

    def bridged(self, group_id: int) -> Sequence[Room]:
        return self.s.scalars(select(Room).where(Room.group_id == group_id).order_by(Room.id)).all()


@dataclass(frozen=True, slots=True)
class ItemStats:
    comments: int
    reactions: int


class ItemRepository(_Repo):
    def get(self, item_id: int) -> Item | None:
        return self.s.get(Item, item_id)

    def add(self, item: Item) -> Item:
        self.s.add(item)
        self.s.flush()
        return item

    def newest(self, group_id: int, limit: int) -> Sequence[Item]:
        return self.s.scalars(
            select(Item).where(Item.group_id == group_id).order_by(Item.id.desc()).limit(limit)
        ).all()

    def newest_in(self, group_ids: Sequence[int], limit: int) -> Sequence[Item]:
        """The newest posts across several groups (a person's home)."""
        if not group_ids:
            return []
        return self.s.scalars(
            select(Item).where(Item.group_id.in_(group_ids)).order_by(Item.id.desc()).limit(limit)
        ).all()

    def stats(self, item_ids: Iterable[int]) -> dict[int, ItemStats]:
        ids = list(item_ids)
        if not ids:
            return {}
        comments = dict(
            self.s.execute(
                select(Comment.item_id, func.count())
                .where(Comment.item_id.in_(ids))
                .group_by(Comment.item_id)
            ).all()
        )
        reactions = dict(
            self.s.execute(
                select(Reaction.item_id, func.count())
                .where(Reaction.item_id.in_(ids))
                .group_by(Reaction.item_id)
            ).all()
        )
        return {i: ItemStats(comments.get(i, 0), reactions.get(i, 0)) for i in ids}

    def add_comment(self, comment: Comment) -> Comment:
        self.s.add(comment)
        self.s.flush()
        return comment

    def comments(self, item_id: int) -> Sequence[Comment]:
        return self.s.scalars(
            select(Comment).where(Comment.item_id == item_id).order_by(Comment.id)
        ).all()

    def reaction(self, item_id: int, person_id: int, emoji: str) -> Reaction | None:
        return self.s.scalar(
            select(Reaction).where(
                Reaction.item_id == item_id,
                Reaction.person_id == person_id,
                Reaction.emoji == emoji,
            )
        )

    def add_reaction(self, item_id: int, person_id: int, emoji: str, now: datetime) -> bool:
        """Adds the reaction; False when it was already there."""
        if self.reaction(item_id, person_id, emoji) is not None:
            return False
        self.s.add(Reaction(item_id=item_id, person_id=person_id, emoji=emoji, created_at=now))
        self.s.flush()
        return True

    def remove_reaction(self, reaction: Reaction) -> None:
        self.s.delete(reaction)
        self.s.flush()


class InviteRepository(_Repo):
    def create(
        self,
        *,
        role: Role,
        group_ids: Sequence[int],
        created_by: int,
        max_uses: int,
        expires_at: datetime,
        now: datetime,
    ) -> Invite:
        while True:
            code = new_code()
            if self.by_code(code) is None:
                break
        invite = Invite(
            code=code,
            role=role,
            created_by=created_by,
            max_uses=max_uses,
            uses=0,
            expires_at=expires_at,
            created_at=now,
        )
        self.s.add(invite)
        self.s.flush()
        self.s.add_all(InviteGroup(invite_id=invite.id, group_id=g) for g in group_ids)
        self.s.flush()
        return invite

    def by_code(self, code: str) -> Invite | None:
        return self.s.scalar(select(Invite).where(Invite.code == code))

    def group_ids(self, invite_id: int) -> list[int]:
        return list(
            self.s.scalars(select(InviteGroup.group_id).where(InviteGroup.invite_id == invite_id))
        )

    def active(self, now: datetime, created_by: int | None = None) -> Sequence[Invite]:
        q = select(Invite).where(
            Invite.revoked_at.is_(None), Invite.expires_at > now, Invite.uses < Invite.max_uses
        )
        if created_by is not None:
            q = q.where(Invite.created_by == created_by)
        return self.s.scalars(q.order_by(Invite.id)).all()

    def redeem(self, invite: Invite) -> bool:
        """Counts one use atomically; False when the last use was taken meanwhile."""
        result = self.s.execute(
            update(Invite)
            .where(Invite.id == invite.id, Invite.uses < Invite.max_uses)
            .values(uses=Invite.uses + 1)
            .execution_options(synchronize_session=False)
        )
        self.s.refresh(invite)
        return bool(getattr(result, "rowcount", 0))


class LinkCodeRepository(_Repo):
    def create(self, person_id: int, expires_at: datetime) -> LinkCode:
        self.s.execute(delete(LinkCode).where(LinkCode.person_id == person_id))
        link = LinkCode(code=new_code(), person_id=person_id, expires_at=expires_at)
        self.s.add(link)
        self.s.flush()
        return link

    def take(self, code: str, now: datetime) -> LinkCode | None:
        """Returns and consumes a valid code (an expired one is consumed too).

        The row is deleted with a statement whose row count decides: of two concurrent
        takes of one code, only the one that deleted it gets it.
        """
        link = self.s.get(LinkCode, code)
        if link is None:
            return None
        result = self.s.execute(
            delete(LinkCode)
            .where(LinkCode.code == code)
            .execution_options(synchronize_session=False)
        )
        self.s.expunge(link)
        if not getattr(result, "rowcount", 0):
            return None
        return link if link.expires_at > now else None


class ConversationStateRepository(_Repo):
    """Drafts waiting for a group, and prompts waiting for an answer."""

    def add_draft(
        self,
        person_id: int,
        text: str,
        source_platform: str,
        now: datetime,
        files: list[dict[str, Any]] | None = None,
    ) -> Draft:
        draft = Draft(
            person_id=person_id,
            text=text,
            files=files or [],
            source_platform=source_platform,
            created_at=now,
        )
        self.s.add(draft)
        self.s.flush()
        return draft

    def draft(self, draft_id: int) -> Draft | None:
        return self.s.get(Draft, draft_id)

    def drop_draft(self, draft: Draft) -> None:
        self.s.delete(draft)
        self.s.flush()

    def set_prompt(self, person_id: int, kind: str, ref: int, now: datetime) -> None:
        prompt = self.s.get(Prompt, person_id)
        if prompt is None:
            self.s.add(Prompt(person_id=person_id, kind=kind, ref=ref, created_at=now))
        else:
            prompt.kind, prompt.ref, prompt.created_at = kind, ref, now
        self.s.flush()

    def take_prompt(self, person_id: int) -> Prompt | None:
        prompt = self.s.get(Prompt, person_id)
        if prompt is not None:
            self.s.delete(prompt)
            self.s.flush()
        return prompt


class InboxRepository(_Repo):
    def record(
        self,
        platform: str,
        event_id: str,
        payload: dict[str, Any],
        now: datetime,
        *,
        status: InboxStatus = InboxStatus.RECEIVED,
    ) -> int | None:
        """Records an inbound event; its row id, or None when it was recorded before (a
        redelivery). One INSERT ... ON CONFLICT DO NOTHING: no savepoint, no second look."""
        values = {
            "platform": platform,
            "event_id": event_id,
            "payload": payload,
            "status": status,
            "received_at": now,
            "applied_at": now if status != InboxStatus.RECEIVED else None,
        }
        dialect_insert = (
            pg_insert if self.s.get_bind().dialect.name == "postgresql" else sqlite_insert
        )
        stmt = (
            dialect_insert(InboxEvent)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["platform", "event_id"])
            .returning(InboxEvent.id)
        )
        return self.s.execute(stmt).scalar()

    def mark(
        self, row_id: int, status: InboxStatus, now: datetime, error: str | None = None
    ) -> None:
        self.s.execute(
            update(InboxEvent)
            .where(InboxEvent.id == row_id)
            .values(status=status, applied_at=now, error=error)
        )

    def get(self, platform: str, event_id: str) -> InboxEvent | None:
        return self.s.scalar(
            select(InboxEvent).where(
                InboxEvent.platform == platform, InboxEvent.event_id == event_id
            )
        )

    def lock(self, row_id: int) -> InboxEvent | None:
        q = select(InboxEvent).where(InboxEvent.id == row_id)
        if self.s.bind is not None and self.s.bind.dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        return self.s.scalar(q)

    def unapplied(self, limit: int = 100) -> Sequence[InboxEvent]:
        return self.s.scalars(
            select(InboxEvent)
            .where(InboxEvent.status == InboxStatus.RECEIVED)
            .order_by(InboxEvent.id)
            .limit(limit)
        ).all()


_UNFINISHED = (OutboxStatus.PENDING, OutboxStatus.SENDING)


def _due(m: type[OutboxMessage], now: datetime) -> ColumnElement[bool]:
    """Ready to be claimed: pending and due, or claimed and the lease ran out."""
    return or_(
        and_(m.status == OutboxStatus.PENDING, m.next_attempt_at <= now),
        and_(m.status == OutboxStatus.SENDING, m.claimed_until < now),
    )


def _earlier_unfinished(
    earlier: type[OutboxMessage], m: type[OutboxMessage]
) -> ColumnElement[bool]:
    """`earlier` is an unfinished message to the same conversation as `m`, written before it."""
    return and_(
        earlier.platform == m.platform,
        earlier.target_kind == m.target_kind,
        earlier.target == m.target,
        earlier.id < m.id,
        earlier.status.in_(_UNFINISHED),
    )


class OutboxRepository(_Repo):
    def add(self, message: OutboxMessage) -> None:
        self.s.add(message)

    def add_all(self, messages: Iterable[OutboxMessage]) -> None:
        self.s.add_all(messages)

    def insert_many(self, rows: list[dict[str, Any]]) -> None:
        """Bulk insert of outbox rows given as column values (ids are not needed back)."""
        if rows:
            self.s.execute(insert(OutboxMessage), rows)

    def get(self, outbox_id: int) -> OutboxMessage | None:
        return self.s.get(OutboxMessage, outbox_id)

    def claim_due(
        self, now: datetime, *, limit: int, lease: timedelta, platforms: Iterable[str] | None = None
    ) -> Sequence[OutboxMessage]:
        """Claims due messages for sending: pending ones, and ones whose lease ran out.

        Messages to one conversation go out in the order they were written: a message is
        claimed only when every earlier unfinished message to its conversation is claimed
        with it (one that waits for a retry or is being sent elsewhere holds the rest back).
        """
        earlier = aliased(OutboxMessage)
        q = select(OutboxMessage).where(
            _due(OutboxMessage, now),
            ~exists().where(_earlier_unfinished(earlier, OutboxMessage), ~_due(earlier, now)),
        )
        if platforms is not None:
            q = q.where(OutboxMessage.platform.in_(list(platforms)))
        q = q.order_by(OutboxMessage.id).limit(limit)
        if self.s.bind is not None and self.s.bind.dialect.name == "postgresql":
            # Several instances claim at once; a row another one holds is skipped.
            q = q.with_for_update(skip_locked=True)
        rows = self._in_order(self.s.scalars(q).all())
        for row in rows:
            row.status = OutboxStatus.SENDING
            row.claimed_until = now + lease
            row.attempts += 1
        self.s.flush()
        return rows

    def _in_order(self, rows: Sequence[OutboxMessage]) -> list[OutboxMessage]:
        """Drops rows behind an earlier unfinished row of their conversation that was not
        selected with them: one locked by a concurrent claim (SKIP LOCKED skipped it)."""
        if not rows:
            return []
        chosen = {row.id for row in rows}
        targets = {row.target for row in rows}
        blocked_from: dict[tuple[str, str, str], int] = {}
        others = self.s.execute(
            select(
                OutboxMessage.id,
                OutboxMessage.platform,
                OutboxMessage.target_kind,
                OutboxMessage.target,
            ).where(
                OutboxMessage.status.in_(_UNFINISHED),
                OutboxMessage.id < max(chosen),
                OutboxMessage.target.in_(targets),
                OutboxMessage.id.not_in(chosen),
            )
        ).all()
        for row_id, platform, kind, target in others:
            key = (platform, kind, target)
            blocked_from[key] = min(row_id, blocked_from.get(key, row_id))
        return [
            row
            for row in rows
            if row.id < blocked_from.get((row.platform, row.target_kind, row.target), row.id + 1)
        ]

    def release(self, outbox_id: int, *, until: datetime | None = None) -> None:
        """Puts a claimed message back unsent, not counted as an attempt (an earlier one
        to its conversation waits, or its conversation may not be sent to before `until`)."""
        row = self.s.get(OutboxMessage, outbox_id)
        if row is not None and row.status == OutboxStatus.SENDING:
            row.status = OutboxStatus.PENDING
            row.claimed_until = None
            row.attempts = max(0, row.attempts - 1)
            if until is not None:
                row.next_attempt_at = until
            self.s.flush()

    def unclaim_all(self) -> int:
        """Claims of a process that is gone (SQLite: this is the only instance)."""
        result = self.s.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status == OutboxStatus.SENDING)
            .values(status=OutboxStatus.PENDING, claimed_until=None)
        )
        return int(getattr(result, "rowcount", 0))

    def next_due_at(self, platforms: Iterable[str]) -> datetime | None:
        """When the next message for one of these platforms falls due (or its lease ends).

        Only the first unfinished message of each conversation counts: the ones behind it
        cannot go before it.
        """
        names = list(platforms)
        earlier = aliased(OutboxMessage)
        first = ~exists().where(_earlier_unfinished(earlier, OutboxMessage))
        pending = self.s.scalar(
            select(func.min(OutboxMessage.next_attempt_at)).where(
                OutboxMessage.status == OutboxStatus.PENDING,
                OutboxMessage.platform.in_(names),
                first,
            )
        )
        leased = self.s.scalar(
            select(func.min(OutboxMessage.claimed_until)).where(
                OutboxMessage.status == OutboxStatus.SENDING,
                OutboxMessage.platform.in_(names),
                first,
            )
        )
        return min((t for t in (pending, leased) if t is not None), default=None)

    def oldest_pending(self) -> datetime | None:
        return self.s.scalar(
            select(func.min(OutboxMessage.created_at)).where(
                OutboxMessage.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING])
            )
        )

    def counts(self) -> dict[str, int]:
        rows = self.s.execute(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        ).all()
        return dict(rows)

    def listing(self, statuses: Sequence[str], limit: int) -> Sequence[OutboxMessage]:
        return self.s.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.status.in_(list(statuses)))
            .order_by(OutboxMessage.id)
            .limit(limit)
        ).all()

    def retry_dead(self, now: datetime, ids: Sequence[int] | None = None) -> int:
        q = update(OutboxMessage).where(OutboxMessage.status == OutboxStatus.DEAD)
        if ids:
            q = q.where(OutboxMessage.id.in_(list(ids)))
        result = self.s.execute(
            q.values(
                status=OutboxStatus.PENDING, next_attempt_at=now, attempts=0, claimed_until=None
            )
        )
        return int(getattr(result, "rowcount", 0))

    def purge(self, statuses: Sequence[str], before: datetime) -> int:
        result = self.s.execute(
            delete(OutboxMessage).where(
                OutboxMessage.status.in_(list(statuses)), OutboxMessage.created_at < before
            )
        )
        return int(getattr(result, "rowcount", 0))

    def add_ref(
        self,
        *,
        platform: str,
        conversation: str,
        message_id: str,
        item_id: int | None,
        outbox_id: int | None,
        now: datetime,
    ) -> None:
        self.s.add(
            MessageRef(
                platform=platform,
                conversation=conversation,
                message_id=message_id,
                item_id=item_id,
                outbox_id=outbox_id,
                created_at=now,
            )
        )

    def room_copies(self, item_id: int) -> Sequence[MessageRef]:
        """Where an item shows in rooms: the bridged copies and the message it came from."""
        direct = select(OutboxMessage.id).where(OutboxMessage.target_kind == "dm")
        return self.s.scalars(
            select(MessageRef)
            .where(
                MessageRef.item_id == item_id,
                or_(MessageRef.outbox_id.is_(None), MessageRef.outbox_id.not_in(direct)),
            )
            .order_by(MessageRef.id)
        ).all()

    def find_ref(self, platform: str, conversation: str, message_id: str) -> MessageRef | None:
        return self.s.scalar(
            select(MessageRef).where(
                MessageRef.platform == platform,
                MessageRef.conversation == conversation,
                MessageRef.message_id == message_id,
            )
        )


class BlobRepository(_Repo):
    """What the database knows of stored files; the bytes live in store.blobs.BlobStore."""

    def record(self, stored: StoredBlob, now: datetime) -> Blob:
        blob = self.s.get(Blob, stored.id)
        if blob is None:
            blob = Blob(id=stored.id, size=stored.size, mime_type=stored.mime_type, created_at=now)
            self.s.add(blob)
            self.s.flush()
        return blob

    def get(self, blob_id: str) -> Blob | None:
        return self.s.get(Blob, blob_id)

    def attach(self, item_id: int, files: Sequence[tuple[str, str]]) -> None:
        """Attaches (blob id, name) pairs to an item, in order."""
        self.s.add_all(
            ItemFile(item_id=item_id, position=i, blob_id=blob_id, name=name[:255])
            for i, (blob_id, name) in enumerate(files)
        )
        self.s.flush()

    def files_of(self, item_id: int) -> Sequence[tuple[ItemFile, Blob]]:
        rows = self.s.execute(
            select(ItemFile, Blob)
            .join(Blob, Blob.id == ItemFile.blob_id)
            .where(ItemFile.item_id == item_id)
            .order_by(ItemFile.position)
        ).all()
        return [(f, b) for f, b in rows]

    def shown_in_groups(self, blob_id: str) -> list[int]:
        """The groups whose posts carry this file (who may fetch it)."""
        return list(
            self.s.scalars(
                select(Item.group_id)
                .join(ItemFile, ItemFile.item_id == Item.id)
                .where(ItemFile.blob_id == blob_id)
                .distinct()
            )
        )


class AuditRepository(_Repo):
    def add(
        self,
        *,
        at: datetime,
        actor_id: int | None,
        action: str,
        subject: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.s.add(
            AuditEntry(
                at=at, actor_id=actor_id, action=action, subject=subject, details=details or {}
            )
        )

    def newest(self, limit: int) -> Sequence[AuditEntry]:
        return self.s.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)).all()


class UnitOfWork:
    """Repositories over one session; `commit()` makes their changes durable together."""

    def __init__(self, session: Session, *, backend: str) -> None:
        self.session = session
        self.backend = backend
        self.people = PersonRepository(session)
        self.groups = GroupRepository(session)
        self.rooms = RoomRepository(session)
        self.items = ItemRepository(session)
        self.invites = InviteRepository(session)
        self.links = LinkCodeRepository(session)
        self.state = ConversationStateRepository(session)
        self.inbox = InboxRepository(session)
        self.outbox = OutboxRepository(session)
        self.audit = AuditRepository(session)
        self.blobs = BlobRepository(session)

    def flush(self) -> None:
        self.session.flush()

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()
