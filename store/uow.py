"""Unit of work and repositories: the narrow interface through which the core uses the store.

The core never writes a query; it asks a repository. Every repository of one unit of
work shares its session, so everything done in it commits (or not) together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar, cast, overload

from sqlalchemy import (
    ColumnElement,
    Connection,
    CursorResult,
    Executable,
    Integer,
    String,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal_column,
    null,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import InstrumentedAttribute, Mapper, Session, aliased
from sqlalchemy.orm.attributes import instance_state, set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql.expression import ClauseElement

from store import search
from store.blobs import StoredBlob
from store.codes import new_code
from store.digests import DigestRepository
from store.driver import Prebuilt, connection_of, insert_into, update_by_id
from store.feeds import FeedRepository
from store.instances import InstanceRepository
from store.join_requests import JoinRequestRepository
from store.links import LinkCodeRepository
from store.models import (
    Account,
    ApprovalCard,
    AuditEntry,
    Blob,
    ButtonPrompt,
    Comment,
    Cursor,
    DigestWatermark,
    DirectChat,
    Draft,
    Feed,
    Group,
    InboxEvent,
    InboxStatus,
    Invite,
    InviteGroup,
    Item,
    ItemFile,
    ItemKind,
    ItemRead,
    Membership,
    MessageRef,
    NotifyMode,
    OutboxMessage,
    OutboxStatus,
    Person,
    PreviewStatus,
    Prompt,
    Proposal,
    ProposalVote,
    Reaction,
    Role,
    Room,
    Upload,
    table_of,
    title_key,
)
from store.names import handle_base
from store.proposals import ProposalRepository
from store.reads import ReadRepository

# The hot path runs prebuilt Core statements on the session's connection: SQLAlchemy
# compiles each once and then only binds parameters, with no ORM bookkeeping on the way.
_people = table_of(Person)
_accounts = table_of(Account)
_groups = table_of(Group)
_memberships = table_of(Membership)
_rooms = table_of(Room)
_items = table_of(Item)
_comments = table_of(Comment)
_reactions = table_of(Reaction)
_outbox = table_of(OutboxMessage)
_refs = table_of(MessageRef)
_blobs = table_of(Blob)
_item_files = table_of(ItemFile)


@dataclass(frozen=True, slots=True)
class _InsertPlan:
    table: Any
    columns: tuple[tuple[str, Any], ...]  # (attribute, value when not set)
    # left out when not set and without a default here: the database fills them in
    server_defaults: frozenset[str]
    returns_id: bool


_INSERT_PLANS: dict[type[Any], _InsertPlan] = {}


def _insert_plan(model: type[Any]) -> _InsertPlan:
    plan = _INSERT_PLANS.get(model)
    if plan is None:
        table = table_of(model)
        columns: list[tuple[str, Any]] = []
        server_defaults: set[str] = set()
        returns_id = False
        for column in table.columns:
            if column.primary_key and column.autoincrement is not False and column.key == "id":
                returns_id = True
                continue
            if column.server_default is not None:
                server_defaults.add(column.key)
            default = column.default
            if default is not None and not default.is_scalar:
                raise TypeError(f"{model.__name__}.{column.key}: only scalar defaults")
            columns.append((column.key, getattr(default, "arg", None)))
        plan = _INSERT_PLANS[model] = _InsertPlan(
            table, tuple(columns), frozenset(server_defaults), returns_id
        )
    return plan


T = TypeVar("T")
_MAPPED: dict[type[Any], tuple[Mapper[Any], tuple[str, ...], tuple[int, ...]]] = {}


def _mapped_columns(model: type[Any]) -> tuple[Mapper[Any], tuple[str, ...], tuple[int, ...]]:
    """A model's mapper, the attribute names of its table's columns in table order, and
    where its primary key columns are among them."""
    found = _MAPPED.get(model)
    if found is None:
        mapper = sa_inspect(model)
        columns = list(table_of(model).columns)
        keys = tuple(mapper.get_property_by_column(c).key for c in columns)
        pk = tuple(columns.index(c) for c in mapper.primary_key)
        found = _MAPPED[model] = (mapper, keys, pk)
    return found


class _Repo:
    def __init__(self, session: Session) -> None:
        self.s = session

    def _run(
        self, stmt: Executable, params: dict[str, Any] | list[dict[str, Any]] | None = None
    ) -> CursorResult[*tuple[Any, ...]]:
        """A Core statement on this unit of work's connection, past the ORM. Pending ORM
        changes are flushed first (when autoflush is on), as an ORM query would."""
        session = self.s
        if session.autoflush:
            session.flush()
        return self._connection().execute(stmt, params)

    def _connection(self) -> Connection:
        """The session's connection in its current transaction (asked for once in it)."""
        return connection_of(self.s, flush=False)

    def _flushed_connection(self) -> Connection:
        """The connection, after pending ORM changes were flushed (as `_run` does)."""
        return connection_of(self.s)

    def _loaded(self, model: type[T], values: Sequence[Any], *, refresh: bool = False) -> T:
        """The object of `model` whose row has these values (all its table's columns, in
        order), as an ORM query would give it: the one this session holds already (with
        `refresh`, showing these values, as populate_existing does), else a new
        persistent one in the session, without any SQL."""
        mapper, keys, pk = _mapped_columns(model)
        key = mapper.identity_key_from_primary_key(tuple(values[i] for i in pk))
        held = self.s.identity_map.get(key)
        if held is not None:
            if refresh:
                for name, value in zip(keys, values, strict=True):
                    set_committed_value(held, name, value)
            return cast(T, held)
        # What SQLAlchemy's loading does for a row of a new identity (orm/loading.py,
        # _instance): public make_transient_to_detached() + add() cost five
        # times as much, mostly in cascades there is nothing to cascade to.
        # tests/store/test_driver.py holds this to the ORM's behaviour.
        obj = mapper.class_manager.new_instance()
        state = instance_state(obj)
        # Set past the attribute events: nothing is modified, nothing to commit.
        state.dict.update(zip(keys, values, strict=True))
        self._attach(state, key)
        self.s.identity_map._add_unpresent(state, key)
        return cast(T, obj)

    def _attach(self, state: Any, key: Any) -> None:
        """Gives a transient state its identity in this session (the caller puts it into
        the identity map)."""
        state.key = key
        state.identity_token = None
        state.session_id = self.s.hash_key

    def _loaded_or_none(self, model: type[T], values: Sequence[Any]) -> T | None:
        """As `_loaded`, for the columns of an outer join: None when they are all NULL."""
        _, _, pk = _mapped_columns(model)
        if all(values[i] is None for i in pk):
            return None
        return self._loaded(model, values)

    def _expire(self, model: type[Any], ids: Iterable[Any]) -> None:
        """Objects of these rows loaded in this session show what a Core statement wrote
        (they load again when next used)."""
        identity_map = self.s.identity_map
        if not identity_map:
            return
        for pk in ids:
            obj = identity_map.get(identity_key(model, pk))
            if obj is not None:
                self.s.expire(obj)

    def _add_now(self, obj: Any) -> None:
        """INSERTs a new object at once with one prebuilt statement, without a flush of
        the unit of work, and makes it persistent in the session as add() + flush() do.
        Columns left unset get their scalar default (or NULL), on the object too; ones
        with a server default get that."""
        if instance_state(obj).key is not None:
            raise InvalidRequestError(f"{obj!r} is stored already")
        plan = _insert_plan(type(obj))
        state = obj.__dict__
        values: dict[str, Any] = {}
        for key, default in plan.columns:
            if key not in state:
                if default is None and key in plan.server_defaults:
                    continue  # loaded when first used, as after an ORM flush
                setattr(obj, key, default)
            values[key] = state[key]
        stmt = insert_into(plan.table, tuple(values), returning_id=plan.returns_id)
        if plan.returns_id:
            obj.id = stmt.scalar(self._flushed_connection(), values)
        else:
            stmt.run(self._flushed_connection(), [values])
        mapper, _, _ = _mapped_columns(type(obj))
        state = instance_state(obj)
        # As a flush registers what it inserted (Session._register_persistent): a state
        # left over from a rollback under the same key gives way, and a rollback of
        # this transaction (or savepoint) takes the object out of the session again.
        self._attach(
            state, mapper.identity_key_from_primary_key(mapper.primary_key_from_instance(obj))
        )
        self.s.identity_map.replace(state)
        state._commit_all(state.dict, self.s.identity_map)
        transaction = self.s._transaction
        if transaction is not None:
            transaction._new[state] = True
        # What the database filled in (server defaults) loads when first used.
        state._expire_attributes(state.dict, state.unloaded)


_ACTOR = Prebuilt(
    select(_accounts, _people)
    .join(_people, _people.c.id == _accounts.c.person_id)
    .where(
        _accounts.c.platform == bindparam("platform"),
        _accounts.c.external_id == bindparam("external_id"),
    )
)
_PEOPLE_BY_IDS = select(Person).where(Person.id.in_(bindparam("ids", expanding=True)))


class PersonRepository(_Repo):
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
        return self._loaded(Account, row[:split]), self._loaded(Person, row[split:])

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


def _with_membership_of_person() -> Any:
    return select(_groups, _memberships).outerjoin(
        _memberships,
        and_(
            _memberships.c.group_id == _groups.c.id,
            _memberships.c.person_id == bindparam("person_id", type_=Integer()),
        ),
    )


_GROUP_FOR = Prebuilt(_with_membership_of_person().where(_groups.c.slug == bindparam("slug")))
_GROUPS_FOR = Prebuilt(_with_membership_of_person().order_by(_groups.c.slug))
_PEOPLE_IN = (
    select(Person, Membership)
    .outerjoin(
        Membership,
        and_(Membership.person_id == Person.id, Membership.group_id == bindparam("group_id")),
    )
    .where(Person.id.in_(bindparam("person_ids", expanding=True)))
)
# Of every group: one prebuilt statement whatever groups are asked for (a list shows
# most of them), the counting is the same work. Memberships of active people are all of
# them less those of the deactivated: the first count reads only the group index, the
# second scans the people (no index on `active`) and reads the memberships of the
# deactivated by the primary key. Joining every membership to its person to test
# `active` made /groups the slowest command (SQLite: 0.53 ms against 0.12 ms, for 200
# people and 850 memberships; with far more people than memberships the scan costs more).
_MEMBER_COUNTS = Prebuilt(
    union_all(
        select(_memberships.c.group_id, func.count()).group_by(_memberships.c.group_id),
        select(_memberships.c.group_id, -func.count())
        .where(_memberships.c.person_id.in_(select(_people.c.id).where(~_people.c.active)))
        .group_by(_memberships.c.group_id),
    )
)
_MEMBERSHIP_DELETE = Prebuilt(
    delete(_memberships).where(
        _memberships.c.person_id == bindparam("person_id"),
        _memberships.c.group_id == bindparam("group_id"),
    )
)
_MEMBERSHIP = Prebuilt(
    select(_memberships).where(
        _memberships.c.person_id == bindparam("person_id"),
        _memberships.c.group_id == bindparam("group_id"),
    )
)
_LOCK_GROUP = Prebuilt(
    select(_groups.c.id).where(_groups.c.id == bindparam("group_id")).with_for_update()
)
_INSTANT_ACCOUNTS = Prebuilt(
    select(_accounts.c.person_id, _accounts.c.platform, _accounts.c.external_id)
    .join(_memberships, _memberships.c.person_id == _accounts.c.person_id)
    .join(_people, _people.c.id == _memberships.c.person_id)
    .where(
        _memberships.c.group_id == bindparam("group_id"),
        _memberships.c.notify == NotifyMode.INSTANT.value,
        _people.c.active,
        _accounts.c.reachable.is_(True),
    )
    .order_by(_accounts.c.person_id, _accounts.c.last_seen_at.desc(), _accounts.c.id.desc())
)


class GroupRepository(_Repo):
    def get(self, group_id: int) -> Group | None:
        return self.s.get(Group, group_id)

    def lock_membership(self, person_id: int, group_id: int) -> Membership | None:
        """The membership, read again once its group is locked: membership changes of one
        group queue behind each other (PostgreSQL; SQLite has one writer anyway), so two
        moderators leaving at once see each other gone."""
        conn = self._flushed_connection()
        if conn.dialect.name == "postgresql":
            _LOCK_GROUP.run(conn, [{"group_id": group_id}])
        row = _MEMBERSHIP.first(conn, {"person_id": person_id, "group_id": group_id})
        return None if row is None else self._loaded(Membership, row, refresh=True)

    def by_slug_for(self, slug: str, person_id: int) -> tuple[Group, Membership | None] | None:
        """The group named `slug` and this person's membership of it, in one query."""
        row = _GROUP_FOR.first(
            self._flushed_connection(), {"slug": slug.lower(), "person_id": person_id}
        )
        return None if row is None else self._group_and_membership(row)

    def all_for(self, person_id: int) -> list[tuple[Group, Membership | None]]:
        """Every group, by slug, with this person's membership of it, in one query."""
        rows = _GROUPS_FOR.all(self._flushed_connection(), {"person_id": person_id})
        return [self._group_and_membership(row) for row in rows]

    def _group_and_membership(self, row: Sequence[Any]) -> tuple[Group, Membership | None]:
        split = len(_groups.columns)
        return self._loaded(Group, row[:split]), self._loaded_or_none(Membership, row[split:])

    def by_slug(self, slug: str) -> Group | None:
        return self.s.scalar(select(Group).where(Group.slug == slug.lower()))

    def by_title(self, title: str) -> Group | None:
        """The group of this title, whatever its case (titles are unique so)."""
        return self.s.scalar(select(Group).where(Group.title_key == title_key(title)))

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

    def people_in(
        self, group_id: int, person_ids: Iterable[int]
    ) -> list[tuple[Person, Membership | None]]:
        """These people (those that exist) with their membership of one group, in one query."""
        ids = list(person_ids)
        if not ids:
            return []
        rows = self.s.execute(_PEOPLE_IN, {"group_id": group_id, "person_ids": ids}).all()
        return [(p, m) for p, m in rows]

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
        wanted = set(ids)
        counts: dict[int, int] = {}
        for group_id, n in _MEMBER_COUNTS.all(self._flushed_connection()):
            if group_id in wanted:
                counts[group_id] = counts.get(group_id, 0) + int(n)
        return counts

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
        self._add_now(m)
        return m

    def remove_member(self, membership: Membership) -> None:
        _MEMBERSHIP_DELETE.run(
            self._flushed_connection(),
            [{"person_id": membership.person_id, "group_id": membership.group_id}],
        )
        if membership in self.s:
            self.s.expunge(membership)

    def instant_accounts(self, group_id: int) -> dict[int, tuple[str, str]]:
        """Each active member who gets the group's posts instantly, with their most
        recently used reachable account as (platform, external id): one query."""
        chosen: dict[int, tuple[str, str]] = {}
        for person_id, platform, external_id in _INSTANT_ACCOUNTS.all(
            self._flushed_connection(), {"group_id": group_id}
        ):
            chosen.setdefault(person_id, (platform, external_id))
        return chosen

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


_ROOM = select(Room).where(
    Room.platform == bindparam("platform"), Room.external_id == bindparam("external_id")
)
_BRIDGED = Prebuilt(
    select(_rooms.c.id, _rooms.c.platform, _rooms.c.external_id)
    .where(_rooms.c.group_id == bindparam("group_id"))
    .order_by(_rooms.c.id)
)


class RoomRepository(_Repo):
    def get(self, room_id: int) -> Room | None:
        return self.s.get(Room, room_id)

    def find(self, platform: str, external_id: str) -> Room | None:
        return self.s.scalar(_ROOM, {"platform": platform, "external_id": external_id})

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

    def bridged_addresses(self, group_id: int) -> list[tuple[int, str, str]]:
        """(room id, platform, external id) of the rooms bridged to the group, by id."""
        return [
            (i, p, e)
            for i, p, e in _BRIDGED.all(self._flushed_connection(), {"group_id": group_id})
        ]


@dataclass(frozen=True, slots=True)
class ItemStats:
    comments: int
    reactions: int


@dataclass(frozen=True, slots=True)
class ItemLine:
    """A post as a list shows it: with its author's handle and how many responses."""

    id: int
    text: str
    url: str | None
    title: str | None
    dated_at: datetime  # Item.dated_at: a feed entry's own date, else when it was stored
    author_handle: str | None
    comments: int
    reactions: int
    site_name: str | None = None  # a feed entry's feed
    kind: str | None = None  # ItemKind: without an author, a feed entry's or a forgotten one's


# Item.dated_at, on the Core table: the newest first means by this, then by number.
_DATED = func.coalesce(_items.c.published_at, _items.c.created_at)

_ITEM_LINES = Prebuilt(
    select(
        _items.c.id,
        _items.c.text,
        _items.c.url,
        _items.c.title,
        _DATED,
        _people.c.handle,
        select(func.count())
        .where(_comments.c.item_id == _items.c.id)
        .correlate(_items)
        .scalar_subquery(),
        select(func.count())
        .where(_reactions.c.item_id == _items.c.id)
        .correlate(_items)
        .scalar_subquery(),
        _items.c.site_name,
        _items.c.kind,
    )
    .select_from(_items)
    .outerjoin(_people, _people.c.id == _items.c.author_id)
    .where(_items.c.group_id == bindparam("group_id"))
    .order_by(_DATED.desc(), _items.c.id.desc())
    .limit(bindparam("limit", type_=Integer()))
)


def _claim_of(attempt: int) -> PreviewStatus:
    """The preview status that holds the claim of a link preview's first or second try."""
    return PreviewStatus.FETCHING if attempt == 1 else PreviewStatus.REFETCHING


# A post with its group, its author (outer: a feed's has none) and its files (blob id,
# name, MIME type), one row each (or one row of NULLs).
_ITEM_GROUP_AUTHOR_FILES = (
    select(Item, Group, Person, _blobs.c.id, _item_files.c.name, _blobs.c.mime_type)
    .join(Group, Group.id == Item.group_id)
    .outerjoin(Person, Person.id == Item.author_id)
    .outerjoin(_item_files, _item_files.c.item_id == Item.id)
    .outerjoin(_blobs, _blobs.c.id == _item_files.c.blob_id)
    .where(Item.id == bindparam("item_id"))
    .order_by(_item_files.c.position)
)


class ItemRepository(_Repo):
    def get(self, item_id: int) -> Item | None:
        return self.s.get(Item, item_id)

    def add(self, item: Item) -> Item:
        """A new post, findable by search from the same transaction on."""
        self._add_now(item)
        search.index_item(self.s, item)
        return item

    def to_render(
        self, item_id: int
    ) -> tuple[Item, Group, Person | None, list[tuple[str, str, str]]] | None:
        """A post with its group, its author (None for a feed's) and (blob id, name, MIME
        type) of its files in order: what sending it needs, in one query."""
        rows = self.s.execute(_ITEM_GROUP_AUTHOR_FILES, {"item_id": item_id}).all()
        if not rows:
            return None
        item, group, author = rows[0][0], rows[0][1], rows[0][2]
        return item, group, author, [(b, n, m) for *_, b, n, m in rows if b is not None]

    def lines(self, group_id: int, limit: int) -> list[ItemLine]:
        """The newest posts of a group with their authors and counts, in one query."""
        return [
            ItemLine(*row)
            for row in _ITEM_LINES.all(
                self._flushed_connection(), {"group_id": group_id, "limit": limit}
            )
        ]

    def newest(self, group_id: int, limit: int) -> Sequence[Item]:
        return self.s.scalars(
            select(Item)
            .where(Item.group_id == group_id)
            .order_by(Item.dated_at.desc(), Item.id.desc())
            .limit(limit)
        ).all()

    def newest_in(self, group_ids: Sequence[int], limit: int) -> Sequence[Item]:
        """The newest posts across several groups (a person's home)."""
        if not group_ids:
            return []
        return self.s.scalars(
            select(Item)
            .where(Item.group_id.in_(group_ids))
            .order_by(Item.dated_at.desc(), Item.id.desc())
            .limit(limit)
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
        item = self.s.get(Item, comment.item_id)
        if item is not None:
            search.index_comment(self.s, comment, item.group_id)
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

    def reaction_counts(self, item_ids: Iterable[int]) -> dict[int, list[tuple[str, int]]]:
        """Each post's reactions, counted per emoji: the most given first, then the
        first given (👍 3, 🎉 1)."""
        ids = list(item_ids)
        if not ids:
            return {}
        rows = self.s.execute(
            select(Reaction.item_id, Reaction.emoji, func.count(), func.min(Reaction.id))
            .where(Reaction.item_id.in_(ids))
            .group_by(Reaction.item_id, Reaction.emoji)
            .order_by(Reaction.item_id, func.count().desc(), func.min(Reaction.id))
        ).all()
        counts: dict[int, list[tuple[str, int]]] = {}
        for item_id, emoji, count, _first in rows:
            counts.setdefault(item_id, []).append((emoji, count))
        return counts

    # --- link previews (jobs.previews) ---------------------------------------------

    def claim_previews(
        self, now: datetime, limit: int, lease: timedelta
    ) -> list[tuple[int, str, int]]:
        """Links whose preview is due, claimed until `now + lease`: (id, url, try 1 or 2).

        Due: never tried; a retry whose time has come; a claim that ran out (its process
        died), which counts as a failed try. Claims are conditional updates, so two
        instances never fetch the same link.
        """
        status = Item.preview_status
        due = self.s.execute(
            select(Item.id, Item.url, status)
            .where(
                Item.kind == ItemKind.LINK,
                or_(
                    status.is_(None),
                    and_(
                        status.in_(
                            [
                                PreviewStatus.RETRY,
                                PreviewStatus.FETCHING,
                                PreviewStatus.REFETCHING,
                            ]
                        ),
                        Item.preview_at <= now,
                    ),
                ),
            )
            .order_by(Item.id)
            .limit(limit)
        ).all()
        claimed: list[tuple[int, str, int]] = []
        for item_id, url, was in due:
            attempt = 1 if was is None else 2
            if was == PreviewStatus.REFETCHING or not url:
                new, until = PreviewStatus.FAILED, now  # the second try never came back
            elif attempt == 1:
                new, until = PreviewStatus.FETCHING, now + lease
            else:
                new, until = PreviewStatus.REFETCHING, now + lease
            taken = self._set_preview(item_id, was, preview_status=new, preview_at=until)
            if taken and url and new != PreviewStatus.FAILED:
                claimed.append((item_id, url, attempt))
        return claimed

    def store_preview(
        self,
        item_id: int,
        attempt: int,
        now: datetime,
        *,
        title: str | None,
        description: str | None,
        image_url: str | None,
        site_name: str | None,
        canonical_url: str | None,
    ) -> bool:
        """Stores a fetched preview while the claim of `attempt` holds; a title of None
        leaves the URL as the title."""
        values: dict[str, Any] = {
            "description": description,
            "image_url": image_url,
            "site_name": site_name,
            "canonical_url": canonical_url,
            "preview_status": PreviewStatus.DONE,
            "preview_at": now,
        }
        if title:
            values["title"] = title
        stored = self._set_preview(item_id, _claim_of(attempt), **values)
        if stored and (item := self.s.get(Item, item_id)) is not None:
            search.index_item(self.s, item, update=True)  # the preview's words are findable
        return stored

    def preview_failed(
        self, item_id: int, attempt: int, now: datetime, retry_at: datetime | None
    ) -> bool:
        """A try failed: another at `retry_at`, or (None) the post keeps its URL as title."""
        if retry_at is None:
            return self._set_preview(
                item_id, _claim_of(attempt), preview_status=PreviewStatus.FAILED, preview_at=now
            )
        return self._set_preview(
            item_id, _claim_of(attempt), preview_status=PreviewStatus.RETRY, preview_at=retry_at
        )

    def release_preview(self, item_id: int, attempt: int, now: datetime) -> bool:
        """Gives a claim back untried (shutting down): due again at once."""
        back = None if attempt == 1 else PreviewStatus.RETRY
        return self._set_preview(item_id, _claim_of(attempt), preview_status=back, preview_at=now)

    def _set_preview(self, item_id: int, expected: str | None, **values: Any) -> bool:
        status = _items.c.preview_status
        result = self._run(
            update(_items)
            .where(
                _items.c.id == item_id,
                status.is_(None) if expected is None else status == expected,
            )
            .values(**values)
        )
        self._expire(Item, [item_id])
        return result.rowcount == 1


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


class ConversationStateRepository(_Repo):
    """Drafts waiting for a group, and prompts waiting for an answer."""

    def add_draft(
        self,
        person_id: int,
        text: str,
        source_platform: str,
        now: datetime,
        files: list[dict[str, Any]] | None = None,
        album: str | None = None,
    ) -> Draft:
        draft = Draft(
            person_id=person_id,
            text=text,
            files=files or [],
            source_platform=source_platform,
            created_at=now,
            album=album,
        )
        self.s.add(draft)
        self.s.flush()
        return draft

    def draft(self, draft_id: int) -> Draft | None:
        return self.s.get(Draft, draft_id)

    def album_draft(self, person_id: int, album: str) -> Draft | None:
        """The person's draft that the first file of this album started, while it waits."""
        return self.s.scalars(
            select(Draft).where(Draft.person_id == person_id, Draft.album == album).limit(1)
        ).first()

    def drop_draft(self, draft: Draft) -> None:
        self.s.delete(draft)
        self.s.flush()

    def set_prompt(
        self,
        person_id: int,
        kind: str,
        ref: int,
        now: datetime,
        data: dict[str, Any] | None = None,
    ) -> None:
        prompt = self.s.get(Prompt, person_id)
        if prompt is None:
            self.s.add(Prompt(person_id=person_id, kind=kind, ref=ref, created_at=now, data=data))
        else:
            prompt.kind, prompt.ref, prompt.created_at, prompt.data = kind, ref, now, data
        self.s.flush()

    def take_prompt(self, person_id: int) -> Prompt | None:
        prompt = self.s.get(Prompt, person_id)
        if prompt is not None:
            self.s.delete(prompt)
            self.s.flush()
        return prompt


_INBOX_RECORD: dict[str, Prebuilt] = {}  # by dialect: INSERT ... ON CONFLICT DO NOTHING


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
        if self.s.autoflush:
            self.s.flush()
        conn = self._connection()
        stmt = _INBOX_RECORD.get(conn.dialect.name)
        if stmt is None:
            dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            inbox = table_of(InboxEvent)
            stmt = _INBOX_RECORD[conn.dialect.name] = Prebuilt(
                dialect_insert(inbox)
                .values({c: bindparam(c) for c in values})
                .on_conflict_do_nothing(index_elements=["platform", "event_id"])
                .returning(inbox.c.id),
                {c: inbox.c[c].type for c in values},
            )
        result: int | None = stmt.scalar(conn, values)
        return result

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

    def unapplied(
        self, limit: int = 100, received_before: datetime | None = None
    ) -> Sequence[InboxEvent]:
        query = select(InboxEvent).where(InboxEvent.status == InboxStatus.RECEIVED)
        if received_before is not None:
            query = query.where(InboxEvent.received_at < received_before)
        return self.s.scalars(query.order_by(InboxEvent.id).limit(limit)).all()


# The statuses as SQL literals, not parameters: a plan PostgreSQL caches for a prepared
# statement then still knows which status it looks for (and can use an index on it).
_PENDING = literal_column(f"'{OutboxStatus.PENDING.value}'", String)
_SENDING = literal_column(f"'{OutboxStatus.SENDING.value}'", String)


def _due(m: type[OutboxMessage], now: datetime | ColumnElement[datetime]) -> ColumnElement[bool]:
    """Ready to be claimed: pending and due, or claimed and the lease ran out."""
    return or_(
        and_(m.status == _PENDING, m.next_attempt_at <= now),
        and_(m.status == _SENDING, m.claimed_until < now),
    )


# A message that has failed this often no longer holds back the later messages of its
# conversation: they go ahead while it keeps retrying (a file the room cannot take must
# not keep a text post waiting for minutes).
HOLDS_BACK_UNTIL_FAILED = 2


def _holds_back(
    status: ColumnElement[str] | InstrumentedAttribute[str],
    attempts: ColumnElement[int] | InstrumentedAttribute[int],
) -> ColumnElement[bool]:
    """An unfinished message with these columns still holds back the later ones of its
    conversation: it failed fewer than HOLDS_BACK_UNTIL_FAILED times. A claimed message's
    attempt is under way (counted, its outcome not known yet): it failed one time less."""
    return or_(
        attempts < HOLDS_BACK_UNTIL_FAILED,
        and_(status == _SENDING, attempts <= HOLDS_BACK_UNTIL_FAILED),
    )


def _earlier_unfinished(
    earlier: type[OutboxMessage], m: type[OutboxMessage]
) -> ColumnElement[bool]:
    """`earlier` is an unfinished message to the same conversation as `m`, written before it,
    that holds it back."""
    return and_(
        earlier.platform == m.platform,
        earlier.target_kind == m.target_kind,
        earlier.target == m.target,
        earlier.id < m.id,
        # The condition of the partial index ix_outbox_unfinished, as it says it (IN, of
        # literals): only then do SQLite and PostgreSQL use that index.
        earlier.status.in_([_PENDING, _SENDING]),
        # Read from the row the index found, as the due check below is: no other plan.
        _holds_back(earlier.status, earlier.attempts),
    )


_OUTBOX_UPDATE = update(_outbox).where(_outbox.c.id == bindparam("outbox_id"))
# by dialect, and whether for all platforms (None), one, or several ("in")
_CLAIM: dict[tuple[str, str | None], Executable] = {}


_CLAIMED_COLUMNS = (
    _outbox.c.id,
    _outbox.c.platform,
    _outbox.c.target_kind,
    _outbox.c.target,
    _outbox.c.person_id,
    _outbox.c.item_id,
    _outbox.c.payload,
    _outbox.c.attempts,
    _outbox.c.takebacks,
)
# A claim that finds a message still claimed (its lease ran out: the instance that held
# it died or hangs) takes it back: that is not another attempt, but counts as a take-back.
_RECLAIMED = _outbox.c.status == _SENDING
_CLAIM_VALUES: dict[str, Any] = {
    "status": OutboxStatus.SENDING.value,
    "claimed_until": bindparam("until"),
    "claimed_by": bindparam("by"),
    "attempts": _outbox.c.attempts + case((_RECLAIMED, 0), else_=1),
    "takebacks": _outbox.c.takebacks + case((_RECLAIMED, 1), else_=0),
}


def _claim_statement(dialect: str, by_platform: str | None) -> Executable:
    """PostgreSQL: the due rows, locked (claimed with _MARK_CLAIMED after _in_order).
    Elsewhere: one UPDATE ... RETURNING that claims them (the attempt counted)."""
    stmt = _CLAIM.get((dialect, by_platform))
    if stmt is None:
        now = bindparam("now", type_=OutboxMessage.next_attempt_at.type)
        m = OutboxMessage if dialect == "postgresql" else aliased(OutboxMessage)
        earlier = aliased(OutboxMessage)
        columns = (*_CLAIMED_COLUMNS, m.status) if m is OutboxMessage else (m.id,)
        q = select(*columns).where(
            # Literally ix_outbox_claim's condition: the platform's unfinished messages in
            # order, so a claim stops after its batch (not: every due message, each
            # checked and then sorted — seconds with a backlog of tens of thousands).
            m.status.in_([_PENDING, _SENDING]),
            _due(m, now),
            ~exists().where(_earlier_unfinished(earlier, m), ~_due(earlier, now)),
        )
        if by_platform == "one":
            q = q.where(m.platform == bindparam("one_platform"))
        elif by_platform == "in":
            q = q.where(m.platform.in_(bindparam("platforms", expanding=True)))
        q = q.order_by(m.id).limit(bindparam("limit", type_=Integer()))
        if dialect == "postgresql":
            # Several instances claim at once; a row another one holds is skipped.
            stmt = q.with_for_update(skip_locked=True)
        else:
            stmt = (
                update(_outbox)
                .where(_outbox.c.id.in_(q.scalar_subquery()))
                .values(**_CLAIM_VALUES)
                .returning(*_CLAIMED_COLUMNS)
            )
        _CLAIM[(dialect, by_platform)] = stmt
    return stmt


# SQLite, one platform (what the delivery worker's lanes claim): the claim's UPDATE ...
# RETURNING handed to the driver as it is; the rows come back as the driver gives them,
# only the payload is decoded.
_CLAIM_ONE_PLATFORM: dict[str, Prebuilt] = {}


def _claim_one_platform(conn: Connection, params: dict[str, Any]) -> list[Any]:
    dialect = conn.dialect
    found = _CLAIM_ONE_PLATFORM.get(dialect.name)
    if found is None:
        claim = _claim_statement(dialect.name, "one")
        assert isinstance(claim, ClauseElement)
        statement = Prebuilt(
            claim,
            {
                "now": _outbox.c.next_attempt_at.type,
                "until": _outbox.c.claimed_until.type,
                "by": _outbox.c.claimed_by.type,
                "limit": Integer(),
                "one_platform": _outbox.c.platform.type,
            },
        )
        found = _CLAIM_ONE_PLATFORM[dialect.name] = statement
    return [_RawClaimed(*r) for r in found.all(conn, params)]


@dataclass(slots=True)
class _RawClaimed:
    """A claimed row as the driver returned it (the columns of _CLAIMED_COLUMNS)."""

    id: int
    platform: str
    target_kind: str
    target: str
    person_id: int | None
    item_id: int | None
    payload: Any
    attempts: int
    takebacks: int


_UNFINISHED_BEFORE = select(
    _outbox.c.id, _outbox.c.platform, _outbox.c.target_kind, _outbox.c.target
).where(
    _outbox.c.status.in_([_PENDING, _SENDING]),  # literals: see _earlier_unfinished
    _outbox.c.id < bindparam("before"),
    _outbox.c.target.in_(bindparam("targets", expanding=True)),
    _outbox.c.id.not_in(bindparam("chosen", expanding=True)),
    _holds_back(_outbox.c.status, _outbox.c.attempts),
)
_MARK_CLAIMED = (
    update(_outbox)
    .where(_outbox.c.id.in_(bindparam("ids", expanding=True)))
    .values(**_CLAIM_VALUES)
)
# Claims given back unfinished (their instance is gone): pending again, the attempt they
# had counted not counted, the take-back counted.
_TAKE_BACK_VALUES: dict[str, Any] = {
    "status": OutboxStatus.PENDING.value,
    "claimed_until": None,
    "claimed_by": None,
    "attempts": case((_outbox.c.attempts > 0, _outbox.c.attempts - 1), else_=0),
    "takebacks": _outbox.c.takebacks + 1,
}
_OUTBOX_STATES = select(
    _outbox.c.id, _outbox.c.platform, _outbox.c.target, _outbox.c.person_id, _outbox.c.attempts
).where(_outbox.c.id.in_(bindparam("ids", expanding=True)))
_MARK_SENT = Prebuilt(
    update(_outbox)
    .where(_outbox.c.id == bindparam("outbox_id"))
    .values(
        status=literal_column(f"'{OutboxStatus.SENT.value}'", String),
        sent_at=bindparam("sent_at"),
        platform_message_id=bindparam("message_id"),
        claimed_until=null(),
        last_error=null(),
    ),
    {
        "outbox_id": _outbox.c.id.type,
        "sent_at": _outbox.c.sent_at.type,
        "message_id": _outbox.c.platform_message_id.type,
    },
)
# A ref of a delivered message, written only if the message is still there (purged
# meanwhile: nothing to point at).
_REF_COLUMNS = ("platform", "conversation", "message_id", "item_id", "created_at")
_REF_INSERT = Prebuilt(
    insert(_refs).from_select(
        [*_REF_COLUMNS, "outbox_id"],
        select(
            *(bindparam(c, type_=_refs.c[c].type) for c in _REF_COLUMNS),
            _outbox.c.id,
        ).where(_outbox.c.id == bindparam("outbox_id")),
    ),
    {**{c: _refs.c[c].type for c in _REF_COLUMNS}, "outbox_id": _outbox.c.id.type},
)


class OutboxLedger:
    """The delivery worker's bookkeeping on a plain connection, without an ORM session:
    claims, and the outcomes of sends that went through. `Database.ledger()` gives one in
    a transaction of its own; the outbox repository runs the same statements within a
    unit of work."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def claim_due(
        self,
        now: datetime,
        *,
        limit: int,
        lease: timedelta,
        platforms: Iterable[str] | None = None,
        by: str | None = None,
    ) -> list[ClaimedRow]:
        """Claims due messages for sending, for the instance `by`: pending ones, and ones
        whose lease ran out (taken back: not another attempt, but a take-back).

        Messages to one conversation go out in the order they were written: a message is
        claimed only when every earlier unfinished message to its conversation is claimed
        with it (one that waits for a retry or is being sent elsewhere holds the rest back),
        unless that one has failed HOLDS_BACK_UNTIL_FAILED times already.
        """
        conn = self.conn
        dialect = conn.dialect.name
        until = now + lease
        params: dict[str, Any] = {"now": now, "limit": limit, "until": until, "by": by}
        by_platform: str | None = None
        if platforms is not None:
            names = list(platforms)
            if len(names) == 1:
                by_platform, params["one_platform"] = "one", names[0]
            else:
                by_platform, params["platforms"] = "in", names
        rows: Sequence[Any]
        if dialect != "postgresql" and by_platform == "one":
            rows = _claim_one_platform(conn, params)
        else:
            rows = conn.execute(_claim_statement(dialect, by_platform), params).all()
        if dialect == "postgresql":
            rows = self._in_order(rows)
            if rows:
                conn.execute(_MARK_CLAIMED, {"ids": [r.id for r in rows], "until": until, "by": by})
            # Selected before the claim: what it counts is added here as it did in SQL.
            return [
                _claimed_row(
                    r,
                    until,
                    attempts=r.attempts + (r.status != OutboxStatus.SENDING),
                    takebacks=r.takebacks + (r.status == OutboxStatus.SENDING),
                )
                for r in rows
            ]
        # Claimed in one statement: claims are serialized (SQLite has one writer), so an
        # earlier unfinished message of a selected one was due and selected too.
        rows = sorted(rows, key=lambda r: int(r.id))
        return [_claimed_row(r, until, attempts=r.attempts, takebacks=r.takebacks) for r in rows]

    def _in_order(self, rows: Sequence[Any]) -> list[Any]:
        """Drops rows behind an earlier unfinished row of their conversation that was not
        selected with them: one locked by a concurrent claim (SKIP LOCKED skipped it)."""
        if not rows:
            return []
        chosen = {row.id for row in rows}
        targets = {row.target for row in rows}
        blocked_from: dict[tuple[str, str, str], int] = {}
        others = self.conn.execute(
            _UNFINISHED_BEFORE,
            {"before": max(chosen), "targets": list(targets), "chosen": list(chosen)},
        )
        for row_id, platform, kind, target in others:
            key = (platform, kind, target)
            blocked_from[key] = min(row_id, blocked_from.get(key, row_id))
        return [
            row
            for row in rows
            if row.id < blocked_from.get((row.platform, row.target_kind, row.target), row.id + 1)
        ]

    def update_row(self, outbox_id: int, **values: Any) -> None:
        """Sets these columns of one message (one UPDATE)."""
        self.conn.execute(_OUTBOX_UPDATE, {"outbox_id": outbox_id, **values})

    def mark_sent(self, sent: Sequence[tuple[int, str | None]], now: datetime) -> None:
        """(outbox id, platform message id) of messages delivered: sent, in one statement."""
        if sent:
            _MARK_SENT.run(
                self.conn, [{"outbox_id": i, "message_id": m, "sent_at": now} for i, m in sent]
            )

    def add_refs(self, refs: list[dict[str, Any]]) -> None:
        """Refs of delivered messages given as column values (all of them), at once; one
        of a message that is gone by now is left out."""
        if refs:
            _REF_INSERT.run(self.conn, refs)


@dataclass(frozen=True, slots=True)
class ClaimedRow:
    """An outbox message as claimed for sending (its state after the claim)."""

    id: int
    platform: str
    target_kind: str
    target: str
    person_id: int | None
    item_id: int | None
    payload: dict[str, Any]
    attempts: int
    claimed_until: datetime
    status: str = OutboxStatus.SENDING
    takebacks: int = 0


def _claimed_row(r: Any, until: datetime, *, attempts: int, takebacks: int) -> ClaimedRow:
    return ClaimedRow(
        id=r.id,
        platform=r.platform,
        target_kind=r.target_kind,
        target=r.target,
        person_id=r.person_id,
        item_id=r.item_id,
        payload=r.payload,
        attempts=attempts,
        claimed_until=until,
        takebacks=takebacks,
    )


@dataclass(frozen=True, slots=True)
class OutboxState:
    """What recording a send's outcome needs of its message."""

    id: int
    platform: str
    target: str
    person_id: int | None
    attempts: int


class OutboxRepository(_Repo):
    def add(self, message: OutboxMessage) -> None:
        self.s.add(message)

    def add_all(self, messages: Iterable[OutboxMessage]) -> None:
        self.s.add_all(messages)

    def insert_many(self, rows: list[dict[str, Any]]) -> None:
        """Inserts outbox rows given as column values (every row the same columns), in
        order, with one prebuilt statement (ids are not needed back)."""
        if rows:
            columns = tuple(rows[0])
            insert_into(_outbox, columns).run(self._flushed_connection(), rows)

    def get(self, outbox_id: int) -> OutboxMessage | None:
        return self.s.get(OutboxMessage, outbox_id)

    def claim_due(
        self,
        now: datetime,
        *,
        limit: int,
        lease: timedelta,
        platforms: Iterable[str] | None = None,
        by: str | None = None,
    ) -> list[ClaimedRow]:
        """Claims due messages for sending (see OutboxLedger.claim_due)."""
        rows = OutboxLedger(self._flushed_connection()).claim_due(
            now, limit=limit, lease=lease, platforms=platforms, by=by
        )
        if rows:
            self._expire(OutboxMessage, [r.id for r in rows])
        return rows

    def states(self, outbox_ids: Iterable[int]) -> dict[int, OutboxState]:
        """The messages among these that still exist, in one query."""
        ids = list(outbox_ids)
        if not ids:
            return {}
        return {
            row.id: OutboxState(row.id, row.platform, row.target, row.person_id, row.attempts)
            for row in self._run(_OUTBOX_STATES, {"ids": ids})
        }

    def mark_sent(self, sent: Sequence[tuple[int, str | None]], now: datetime) -> None:
        """(outbox id, platform message id) of messages delivered: sent, in one statement."""
        if sent:
            OutboxLedger(self._flushed_connection()).mark_sent(sent, now)
            self._expire(OutboxMessage, [i for i, _ in sent])

    def update_row(self, outbox_id: int, **values: Any) -> None:
        """Sets these columns of one message (one UPDATE)."""
        OutboxLedger(self._flushed_connection()).update_row(outbox_id, **values)
        self._expire(OutboxMessage, [outbox_id])

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

    def release_held(self, item_id: int, now: datetime, latest: datetime) -> int:
        """The copies of a post held back for its link preview (due after `now`, by
        `latest`) due now: the preview is in, or will not come."""
        result = self._run(
            update(_outbox)
            .where(
                # Through ix_outbox_status_next_attempt_at: only what falls due by `latest`.
                _outbox.c.status == _PENDING,
                _outbox.c.next_attempt_at > now,
                _outbox.c.next_attempt_at <= latest,
                _outbox.c.item_id == item_id,
                _outbox.c.attempts == 0,
            )
            .values(next_attempt_at=now)
        )
        return int(result.rowcount)

    def unclaim_all(self) -> int:
        """Takes back every claim: they are a process's that is gone (SQLite: this is the
        only instance). Not counted as attempts; counted as take-backs."""
        result = self._run(
            update(_outbox).where(_outbox.c.status == _SENDING).values(**_TAKE_BACK_VALUES)
        )
        self.s.expire_all()
        return int(result.rowcount)

    def take_back(self, instances: Sequence[str]) -> int:
        """Takes back the claims of these instances, which are gone (as unclaim_all)."""
        if not instances:
            return 0
        result = self._run(
            update(_outbox)
            .where(_outbox.c.status == _SENDING, _outbox.c.claimed_by.in_(list(instances)))
            .values(**_TAKE_BACK_VALUES)
        )
        self.s.expire_all()
        return int(result.rowcount)

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

    def add_refs(self, refs: list[dict[str, Any]]) -> None:
        """Refs of delivered messages given as column values (all of them), at once; one
        of a message that is gone by now is left out."""
        if refs:
            OutboxLedger(self._flushed_connection()).add_refs(refs)

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

    def sending_on(self, platform: str) -> bool:
        """Whether a message to this messenger is being sent right now (claimed, its
        outcome not yet recorded)."""
        found = self.s.scalar(
            select(OutboxMessage.id)
            .where(
                OutboxMessage.status == OutboxStatus.SENDING,
                OutboxMessage.platform == platform,
            )
            .limit(1)
        )
        return found is not None

    def find_ref(self, platform: str, conversation: str, message_id: str) -> MessageRef | None:
        return self.s.scalar(
            select(MessageRef).where(
                MessageRef.platform == platform,
                MessageRef.conversation == conversation,
                MessageRef.message_id == message_id,
            )
        )


_FILES_OF = (
    select(ItemFile, Blob)
    .join(Blob, Blob.id == ItemFile.blob_id)
    .where(ItemFile.item_id == bindparam("item_id"))
    .order_by(ItemFile.position)
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
        rows = self.s.execute(_FILES_OF, {"item_id": item_id}).all()
        return [(f, b) for f, b in rows]

    def unreferenced(self, blob_ids: Iterable[str]) -> set[str]:
        """Those of these files that no post and no unfinished share refers to any more."""
        candidates = set(blob_ids)
        if not candidates:
            return set()
        used = set(
            self.s.scalars(
                select(ItemFile.blob_id).where(ItemFile.blob_id.in_(candidates)).distinct()
            )
        )
        for files in self.s.scalars(select(Draft.files)):
            used.update(f.get("blob_id") for f in files or ())
        return candidates - used

    def forget(self, blob_ids: Iterable[str]) -> int:
        """Deletes the records of files (their uploads to messengers go with them)."""
        ids = list(blob_ids)
        if not ids:
            return 0
        result = self.s.execute(
            delete(Blob).where(Blob.id.in_(ids)), execution_options={"synchronize_session": False}
        )
        return int(getattr(result, "rowcount", 0))

    def of_items(self, item_ids: Iterable[int]) -> set[str]:
        ids = list(item_ids)
        if not ids:
            return set()
        return set(self.s.scalars(select(ItemFile.blob_id).where(ItemFile.item_id.in_(ids))))

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


class CursorRepository(_Repo):
    """Named positions and flags adapters keep across restarts (a sync token)."""

    def get(self, name: str) -> str | None:
        row = self.s.get(Cursor, name)
        return row.value if row is not None else None

    def set(self, name: str, value: str, now: datetime) -> None:
        row = self.s.get(Cursor, name)
        if row is None:
            self.s.add(Cursor(name=name, value=value, updated_at=now))
        else:
            row.value, row.updated_at = value, now
        self.s.flush()

    def delete(self, name: str) -> None:
        self.s.execute(delete(Cursor).where(Cursor.name == name))


class DirectChatRepository(_Repo):
    """Which platform conversations are direct chats with one person."""

    def add(self, platform: str, conversation: str, address: str, now: datetime) -> None:
        row = self.s.get(DirectChat, (platform, conversation))
        if row is None:
            self.s.add(
                DirectChat(
                    platform=platform, conversation=conversation, address=address, created_at=now
                )
            )
        else:
            row.address = address
        self.s.flush()

    def find(self, platform: str, conversation: str) -> DirectChat | None:
        return self.s.get(DirectChat, (platform, conversation))

    def newest_for(self, platform: str, address: str) -> str | None:
        """The conversation a direct message to this person goes to."""
        return self.s.scalar(
            select(DirectChat.conversation)
            .where(DirectChat.platform == platform, DirectChat.address == address)
            .order_by(DirectChat.created_at.desc())
            .limit(1)
        )

    def drop(self, platform: str, conversation: str) -> None:
        self.s.execute(
            delete(DirectChat).where(
                DirectChat.platform == platform, DirectChat.conversation == conversation
            )
        )


class ButtonPromptRepository(_Repo):
    """The buttons of sent messages on platforms that show them as reactions or numbers."""

    def add(
        self,
        *,
        platform: str,
        conversation: str,
        message_id: str,
        buttons: list[dict[str, Any]],
        post: bool,
        now: datetime,
    ) -> None:
        row = self.get(platform, conversation, message_id)
        if row is None:
            self.s.add(
                ButtonPrompt(
                    platform=platform,
                    conversation=conversation,
                    message_id=message_id,
                    buttons=buttons,
                    post=post,
                    created_at=now,
                )
            )
        else:
            row.buttons, row.post = buttons, post
        self.s.flush()

    def get(self, platform: str, conversation: str, message_id: str) -> ButtonPrompt | None:
        return self.s.scalar(
            select(ButtonPrompt).where(
                ButtonPrompt.platform == platform,
                ButtonPrompt.conversation == conversation,
                ButtonPrompt.message_id == message_id,
            )
        )

    def newest(self, platform: str, conversation: str) -> ButtonPrompt | None:
        return self.s.scalar(
            select(ButtonPrompt)
            .where(ButtonPrompt.platform == platform, ButtonPrompt.conversation == conversation)
            .order_by(ButtonPrompt.id.desc())
            .limit(1)
        )

    def drop(self, prompt: ButtonPrompt) -> None:
        self.s.delete(prompt)
        self.s.flush()

    def prune(self, platform: str, before: datetime) -> int:
        result = self.s.execute(
            delete(ButtonPrompt).where(
                ButtonPrompt.platform == platform, ButtonPrompt.created_at < before
            )
        )
        return int(getattr(result, "rowcount", 0))


class UploadRepository(_Repo):
    """Files already uploaded to a messenger's server, by blob: uploaded once, reused."""

    def uri(self, platform: str, server: str, blob_id: str) -> str | None:
        row = self.s.get(Upload, (platform, server, blob_id))
        return row.uri if row is not None else None

    def remember(self, platform: str, server: str, blob_id: str, uri: str, now: datetime) -> None:
        row = self.s.get(Upload, (platform, server, blob_id))
        if row is None:
            self.s.add(
                Upload(platform=platform, server=server, blob_id=blob_id, uri=uri, created_at=now)
            )
        else:
            row.uri = uri
        self.s.flush()


R = TypeVar("R")


class _Repository(Generic[R]):
    """A repository of the unit of work, made when first used: a unit of work uses a few
    of them, and making all twenty for each was a measurable part of a command."""

    def __init__(self, make: Callable[[Session], R]) -> None:
        self.make = make
        self.name = ""

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = name

    @overload
    def __get__(self, uow: None, owner: type[Any] | None = None) -> _Repository[R]: ...

    @overload
    def __get__(self, uow: UnitOfWork, owner: type[Any] | None = None) -> R: ...

    def __get__(self, uow: UnitOfWork | None, owner: type[Any] | None = None) -> R | _Repository[R]:
        if uow is None:
            return self
        repository = uow.__dict__[self.name] = self.make(uow.session)
        return repository


class UnitOfWork:
    """Repositories over one session; `commit()` makes their changes durable together."""

    people = _Repository(PersonRepository)
    groups = _Repository(GroupRepository)
    rooms = _Repository(RoomRepository)
    items = _Repository(ItemRepository)
    invites = _Repository(InviteRepository)
    links = _Repository(LinkCodeRepository)
    state = _Repository(ConversationStateRepository)
    inbox = _Repository(InboxRepository)
    outbox = _Repository(OutboxRepository)
    audit = _Repository(AuditRepository)
    blobs = _Repository(BlobRepository)
    cursors = _Repository(CursorRepository)
    direct_chats = _Repository(DirectChatRepository)
    prompts = _Repository(ButtonPromptRepository)
    uploads = _Repository(UploadRepository)
    proposals = _Repository(ProposalRepository)
    digests = _Repository(DigestRepository)
    feeds = _Repository(FeedRepository)
    search = _Repository(search.SearchRepository)
    reads = _Repository(ReadRepository)
    join_requests = _Repository(JoinRequestRepository)
    instances = _Repository(InstanceRepository)

    def __init__(self, session: Session, *, backend: str) -> None:
        self.session = session
        self.backend = backend

    def flush(self) -> None:
        self.session.flush()

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()
