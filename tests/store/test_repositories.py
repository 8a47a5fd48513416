"""The repositories of the unit of work, on SQLite and PostgreSQL.

The concurrency cases run two units of work at once in two threads; on PostgreSQL the
second really waits on (or skips) the first one's row locks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import event, select, text

from store.codes import CODE_ALPHABET
from store.db import Database
from store.models import (
    Comment,
    DigestWatermark,
    Draft,
    Group,
    InboxEvent,
    Item,
    ItemKind,
    LinkCode,
    Membership,
    MessageRef,
    NotifyMode,
    OutboxMessage,
    OutboxStatus,
    Person,
    Reaction,
    Role,
    Visibility,
)
from store.repositories.people import handle_base
from store.uow import UnitOfWork

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
LEASE = timedelta(minutes=2)
T = TypeVar("T")


# --- helpers ---------------------------------------------------------------------------


def add_person(uow: UnitOfWork, name: str, *, role: Role = Role.MEMBER) -> Person:
    person = uow.people.create(name=name, role=role, now=NOW)
    uow.people.add_account(person, platform="memory", external_id=f"ext-{person.id}", now=NOW)
    return person


def add_group(uow: UnitOfWork, slug: str, creator: Person) -> Group:
    return uow.groups.create(
        slug=slug,
        name=slug.title(),
        visibility=Visibility.OPEN,
        admits_externals=False,
        created_by=creator.id,
        now=NOW,
    )


def add_item(uow: UnitOfWork, group: Group, author: Person, text_: str = "a post") -> Item:
    return uow.items.add(
        Item(
            group_id=group.id,
            author_id=author.id,
            kind=ItemKind.NOTE,
            text=text_,
            created_at=NOW,
        )
    )


def queue(
    uow: UnitOfWork,
    target: str,
    *,
    platform: str = "memory",
    status: OutboxStatus = OutboxStatus.PENDING,
    due: datetime = NOW,
    claimed_until: datetime | None = None,
    attempts: int = 0,
) -> int:
    row = OutboxMessage(
        created_at=NOW,
        platform=platform,
        target_kind="dm",
        target=target,
        payload={"t": "msg", "m": {"text": target}},
        status=status,
        attempts=attempts,
        next_attempt_at=due,
        claimed_until=claimed_until,
    )
    uow.outbox.add(row)
    uow.flush()
    return row.id


def status_of(db: Database, outbox_id: int) -> str:
    with db.uow() as uow:
        row = uow.outbox.get(outbox_id)
        assert row is not None
        return row.status


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """The SQL statements the engine runs meanwhile (SQLAlchemy's own event API)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


# Row locks between sessions are PostgreSQL's; SQLite has one writer at a time.
postgres_only = pytest.mark.parametrize(
    "db", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


def wait_until_blocked(db: Database, timeout: float = 10.0) -> None:
    """Returns once some session of this database waits for a lock."""
    deadline = time.monotonic() + timeout
    with db.engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar()
            conn.rollback()
            if waiting:
                return
            time.sleep(0.01)
    raise AssertionError("the second session never waited for the first one's lock")


def race(
    db: Database, first: Callable[[UnitOfWork], T], second: Callable[[UnitOfWork], T]
) -> tuple[T, T]:
    """`first` runs and holds its transaction open; `second` runs in another thread and
    must wait for its row lock; then `first` commits, and `second` finishes and commits."""
    first_done, commit_first = threading.Event(), threading.Event()

    def run_first() -> T:
        with db.uow() as uow:
            result = first(uow)
            first_done.set()
            assert commit_first.wait(timeout=10)
            uow.commit()
            return result

    def run_second() -> T:
        with db.uow() as uow:
            result = second(uow)
            uow.commit()
            return result

    with ThreadPoolExecutor(2) as pool:
        a = pool.submit(run_first)
        try:
            assert first_done.wait(timeout=10)
            b = pool.submit(run_second)
            wait_until_blocked(db)
        finally:
            commit_first.set()
        return a.result(timeout=10), b.result(timeout=10)


# --- people: handles and accounts -------------------------------------------------------


def test_handles_are_derived_and_unique(db: Database) -> None:
    with db.uow() as uow:
        handles = [
            uow.people.create(name=name, role=Role.MEMBER, now=NOW).handle
            for name in ("Alice", "alice", "ALICE", "Bob Smith", "@carol!", "Jürgen Weiß", "???")
        ]
        uow.commit()
    assert handles == ["alice", "alice2", "alice3", "bob.smith", "carol", "juergen.weiss", "user"]
    with db.uow() as uow:
        assert uow.people.by_handle("Alice2") is not None
        # A name that already looks numbered is kept; the next plain one skips it.
        assert uow.people.create(name="bob.smith2", role=Role.MEMBER, now=NOW).handle == (
            "bob.smith2"
        )
        assert uow.people.create(name="Bob Smith", role=Role.MEMBER, now=NOW).handle == (
            "bob.smith3"
        )


def test_handle_base_strips_odd_characters() -> None:
    assert handle_base("  Renée  O'Brien (Sales) ") == "renee.obrien.sales"
    assert handle_base("..x_y-z..") == "x_y-z"
    assert handle_base("a" * 40) == "a" * 32
    assert handle_base("") == "user"


def test_preferred_accounts_picks_the_latest_reachable_one_in_one_query(db: Database) -> None:
    with db.uow() as uow:
        ann = uow.people.create(name="ann", role=Role.MEMBER, now=NOW)
        ben = uow.people.create(name="ben", role=Role.MEMBER, now=NOW)
        cid = uow.people.create(name="cid", role=Role.MEMBER, now=NOW)
        accounts = uow.people
        accounts.add_account(ann, platform="slack", external_id="U1", now=NOW)
        latest = accounts.add_account(
            ann, platform="telegram", external_id="1", now=NOW + timedelta(hours=1)
        )
        blocked = accounts.add_account(
            ann, platform="matrix", external_id="@ann:x", now=NOW + timedelta(hours=2)
        )
        blocked.reachable = False
        gone = accounts.add_account(ben, platform="slack", external_id="U2", now=NOW)
        gone.reachable = False
        uow.commit()
        ids = (ann.id, ben.id, cid.id, latest.id)

    with db.uow() as uow:
        with statements(db) as seen:
            chosen = uow.people.preferred_accounts([ids[0], ids[1], ids[2], ids[0]])
        assert {p: a.id for p, a in chosen.items()} == {ids[0]: ids[3]}
    assert len([s for s in seen if s.lstrip().upper().startswith("SELECT")]) == 1
    with db.uow() as uow:
        assert uow.people.preferred_accounts([]) == {}


# --- inbox -------------------------------------------------------------------------------


def test_inbox_record_returns_none_for_a_duplicate_and_keeps_the_transaction(
    db: Database,
) -> None:
    with db.uow() as uow:
        first = uow.inbox.record("slack", "Ev1", {"n": 1}, NOW)
        assert first is not None
        uow.audit.add(at=NOW, actor_id=None, action="before", subject="x")
        assert uow.inbox.record("slack", "Ev1", {"n": 2}, NOW) is None
        # The same event id on another platform is another event.
        assert uow.inbox.record("telegram", "Ev1", {"n": 3}, NOW) is not None
        uow.audit.add(at=NOW, actor_id=None, action="after", subject="x")
        uow.commit()

    with db.uow() as uow:
        # A redelivery in a later transaction, too, leaves that transaction usable.
        assert uow.inbox.record("slack", "Ev1", {"n": 4}, NOW) is None
        uow.audit.add(at=NOW, actor_id=None, action="later", subject="x")
        uow.commit()

    with db.uow() as uow:
        rows = uow.session.scalars(select(InboxEvent).order_by(InboxEvent.id)).all()
        assert [(r.platform, r.event_id, r.payload) for r in rows] == [
            ("slack", "Ev1", {"n": 1}),
            ("telegram", "Ev1", {"n": 3}),
        ]
        assert [a.action for a in reversed(uow.audit.newest(10))] == ["before", "after", "later"]


# --- invites -----------------------------------------------------------------------------


def make_invite(db: Database, max_uses: int) -> str:
    with db.uow() as uow:
        admin = add_person(uow, "admin", role=Role.ADMIN)
        group = add_group(uow, "sales", admin)
        invite = uow.invites.create(
            role=Role.PARTNER,
            group_ids=[group.id],
            created_by=admin.id,
            max_uses=max_uses,
            expires_at=NOW + timedelta(days=7),
            now=NOW,
        )
        uow.commit()
        assert len(invite.code) == 10
        assert set(invite.code) <= set(CODE_ALPHABET)
        assert uow.invites.group_ids(invite.id) == [group.id]
        return invite.code


def redeem(code: str) -> Callable[[UnitOfWork], bool]:
    def run(uow: UnitOfWork) -> bool:
        invite = uow.invites.by_code(code)
        assert invite is not None
        return uow.invites.redeem(invite)

    return run


def test_redeem_counts_uses_up_to_the_maximum(db: Database) -> None:
    code = make_invite(db, max_uses=1)
    with db.uow() as uow:
        invite = uow.invites.by_code(code)
        assert invite is not None
        assert uow.invites.active(NOW) == [invite]
        assert uow.invites.redeem(invite) is True
        assert invite.uses == 1
        assert uow.invites.redeem(invite) is False
        assert invite.uses == 1
        uow.commit()
    with db.uow() as uow:
        assert redeem(code)(uow) is False
        assert uow.invites.active(NOW) == []


def test_redeem_of_a_two_use_invite_works_twice(db: Database) -> None:
    code = make_invite(db, max_uses=2)
    results = []
    for _ in range(3):
        with db.uow() as uow:
            results.append(redeem(code)(uow))
            uow.commit()
    assert results == [True, True, False]


@postgres_only
def test_concurrent_redeems_of_the_last_use_let_one_through(db: Database) -> None:
    code = make_invite(db, max_uses=1)
    assert race(db, redeem(code), redeem(code)) == (True, False)
    with db.uow() as uow:
        invite = uow.invites.by_code(code)
        assert invite is not None
        assert invite.uses == 1


# --- link codes ---------------------------------------------------------------------------


def make_link_code(db: Database, expires_in: timedelta = timedelta(minutes=10)) -> tuple[str, int]:
    with db.uow() as uow:
        person = add_person(uow, "linker")
        link = uow.links.create(person.id, NOW + expires_in)
        uow.commit()
        return link.code, person.id


def take(code: str, now: datetime = NOW) -> Callable[[UnitOfWork], int | None]:
    def run(uow: UnitOfWork) -> int | None:
        link = uow.links.take(code, now)
        return None if link is None else link.person_id

    return run


def test_link_take_consumes_the_code(db: Database) -> None:
    code, person_id = make_link_code(db)
    with db.uow() as uow:
        assert take(code)(uow) == person_id
        assert take(code)(uow) is None  # once only, even in the same transaction
        uow.commit()
    with db.uow() as uow:
        assert take(code)(uow) is None
        assert uow.session.get(LinkCode, code) is None
        assert take("NoSuchCode")(uow) is None


def test_link_take_respects_expiry_and_consumes_an_expired_code(db: Database) -> None:
    code, _ = make_link_code(db, expires_in=timedelta(minutes=10))
    with db.uow() as uow:
        assert take(code, NOW + timedelta(minutes=10))(uow) is None
        uow.commit()
    with db.uow() as uow:
        assert uow.session.get(LinkCode, code) is None


def test_a_new_link_code_replaces_the_previous_one(db: Database) -> None:
    code, person_id = make_link_code(db)
    with db.uow() as uow:
        newer = uow.links.create(person_id, NOW + timedelta(minutes=10)).code
        uow.commit()
    with db.uow() as uow:
        assert take(code)(uow) is None
        assert take(newer)(uow) == person_id


@postgres_only
def test_concurrent_takes_of_one_code_let_one_through(db: Database) -> None:
    code, person_id = make_link_code(db)
    assert race(db, take(code), take(code)) == (person_id, None)


# --- merging two people (account linking) --------------------------------------------------


def test_merge_moves_everything_to_the_target_and_deletes_the_source(db: Database) -> None:
    with db.uow() as uow:
        target = add_person(uow, "tina")
        source = add_person(uow, "sam")
        only_source = add_group(uow, "only-source", source)
        both = add_group(uow, "both", target)
        uow.groups.add_member(source.id, only_source.id, now=NOW, moderator=True)
        uow.groups.add_member(source.id, both.id, now=NOW, moderator=True)
        uow.groups.add_member(target.id, both.id, now=NOW)
        targets_membership = uow.groups.membership(target.id, both.id)
        assert targets_membership is not None
        targets_membership.notify = NotifyMode.INSTANT
        item = add_item(uow, both, source)
        other = add_item(uow, both, target)
        uow.items.add_comment(
            Comment(item_id=other.id, author_id=source.id, text="c", created_at=NOW)
        )
        uow.items.add_reaction(other.id, source.id, "👍", NOW)
        uow.items.add_reaction(other.id, target.id, "👍", NOW)
        uow.items.add_reaction(item.id, source.id, "🎉", NOW)
        uow.state.add_draft(source.id, "draft", "memory", NOW)
        uow.state.set_prompt(source.id, "comment", item.id, NOW)
        uow.links.create(source.id, NOW + timedelta(minutes=5))
        # What digests covered: the target's own watermark of a group stays.
        uow.session.add_all(
            [
                DigestWatermark(
                    person_id=source.id, group_id=only_source.id, last_item_id=7, updated_at=NOW
                ),
                DigestWatermark(
                    person_id=source.id, group_id=both.id, last_item_id=9, updated_at=NOW
                ),
                DigestWatermark(
                    person_id=target.id, group_id=both.id, last_item_id=5, updated_at=NOW
                ),
            ]
        )
        queued = uow.outbox.get(queue(uow, f"ext-{source.id}"))
        assert queued is not None
        queued.person_id = source.id
        uow.commit()
        ids = {
            "target": target.id,
            "source": source.id,
            "only_source": only_source.id,
            "both": both.id,
            "item": item.id,
            "other": other.id,
        }

    with db.uow() as uow:
        source, target = uow.people.get(ids["source"]), uow.people.get(ids["target"])
        assert source is not None
        assert target is not None
        uow.people.merge(source, target)
        uow.commit()

    with db.uow() as uow:
        s, t = ids["source"], ids["target"]
        assert uow.people.get(s) is None
        assert uow.people.by_handle("sam") is None
        assert [a.external_id for a in uow.people.accounts_of(t)] == [f"ext-{t}", f"ext-{s}"]
        session = uow.session
        assert set(session.scalars(select(Item.author_id))) == {t}
        assert set(session.scalars(select(Comment.author_id))) == {t}
        memberships = {
            m.group_id: m
            for m in session.scalars(select(Membership).where(Membership.person_id == t))
        }
        assert set(memberships) == {ids["only_source"], ids["both"]}
        assert memberships[ids["only_source"]].moderator
        assert memberships[ids["both"]].moderator
        assert memberships[ids["both"]].notify == NotifyMode.INSTANT  # the target's choice
        assert session.scalars(select(Membership).where(Membership.person_id == s)).all() == []
        reactions = {(r.item_id, r.person_id, r.emoji) for r in session.scalars(select(Reaction))}
        assert reactions == {(ids["other"], t, "👍"), (ids["item"], t, "🎉")}
        assert set(session.scalars(select(Draft.person_id))) == {t}
        assert set(session.scalars(select(OutboxMessage.person_id))) == {t}
        assert set(session.scalars(select(Group.created_by))) == {t}
        assert uow.state.take_prompt(s) is None
        assert session.scalars(select(LinkCode)).all() == []
        marks = {
            (w.person_id, w.group_id, w.last_item_id)
            for w in session.scalars(select(DigestWatermark))
        }
        assert marks == {(t, ids["only_source"], 7), (t, ids["both"], 5)}


# --- the outbox -----------------------------------------------------------------------------


def test_claim_due_claims_due_rows_and_expired_leases_only(db: Database) -> None:
    later = NOW + timedelta(seconds=30)
    with db.uow() as uow:
        due = queue(uow, "due", due=NOW - timedelta(seconds=1))
        due_now = queue(uow, "due-now", due=NOW)
        not_yet = queue(uow, "not-yet", due=later)
        lapsed = queue(
            uow,
            "lapsed",
            status=OutboxStatus.SENDING,
            claimed_until=NOW - timedelta(seconds=1),
            attempts=1,
        )
        leased = queue(uow, "leased", status=OutboxStatus.SENDING, claimed_until=later, attempts=1)
        sent = queue(uow, "sent", status=OutboxStatus.SENT)
        dead = queue(uow, "dead", status=OutboxStatus.DEAD)
        skipped = queue(uow, "skipped", status=OutboxStatus.SKIPPED)
        other_platform = queue(uow, "elsewhere", platform="slack")
        uow.commit()

    with db.uow() as uow:
        claimed = uow.outbox.claim_due(NOW, limit=50, lease=LEASE, platforms=["memory"])
        assert [r.id for r in claimed] == [due, due_now, lapsed]
        for row in claimed:
            assert row.status == OutboxStatus.SENDING
            assert row.claimed_until == NOW + LEASE
        # The lapsed claim is taken back, not attempted once more: its attempt stays the
        # one under way when its instance stopped answering (issue 19).
        assert [r.attempts for r in claimed] == [1, 1, 1]
        assert [r.takebacks for r in claimed] == [0, 0, 1]
        uow.commit()

    for row_id, status in [
        (not_yet, "pending"),
        (leased, "sending"),
        (sent, "sent"),
        (dead, "dead"),
        (skipped, "skipped"),
        (other_platform, "pending"),
    ]:
        assert status_of(db, row_id) == status

    with db.uow() as uow:  # claimed rows are not claimed again while their lease runs
        assert uow.outbox.claim_due(NOW, limit=50, lease=LEASE, platforms=["memory"]) == []
        assert [r.id for r in uow.outbox.claim_due(NOW, limit=50, lease=LEASE)] == [other_platform]
        uow.rollback()
        assert uow.outbox.next_due_at(["memory"]) == later  # not-yet falls due, leased lapses

    with db.uow() as uow:  # once the lease ran out, they are due again
        after = NOW + LEASE + timedelta(seconds=1)
        again = uow.outbox.claim_due(after, limit=50, lease=LEASE, platforms=["memory"])
        assert [r.id for r in again] == [due, due_now, not_yet, lapsed, leased]


def test_claim_due_respects_the_limit_in_id_order(db: Database) -> None:
    with db.uow() as uow:
        ids = [queue(uow, f"t{n}") for n in range(5)]
        uow.commit()
    with db.uow() as uow:
        assert [r.id for r in uow.outbox.claim_due(NOW, limit=2, lease=LEASE)] == ids[:2]
        uow.commit()
    with db.uow() as uow:
        assert [r.id for r in uow.outbox.claim_due(NOW, limit=10, lease=LEASE)] == ids[2:]


def test_claim_due_keeps_a_conversation_in_order(db: Database) -> None:
    """A message to a conversation waits while an earlier one to it waits (a retry)."""
    later = NOW + timedelta(seconds=30)
    with db.uow() as uow:
        first = queue(uow, "alice", due=later)  # rate limited: waits 30 s
        second = queue(uow, "alice")  # due now, but behind the first
        bob = queue(uow, "bob")
        uow.commit()
    with db.uow() as uow:
        assert [r.id for r in uow.outbox.claim_due(NOW, limit=10, lease=LEASE)] == [bob]
        assert uow.outbox.next_due_at(["memory"]) == later
        uow.commit()
    with db.uow() as uow:
        claimed = uow.outbox.claim_due(later, limit=10, lease=LEASE)
        assert [r.id for r in claimed] == [first, second]


def test_a_released_message_goes_back_unattempted(db: Database) -> None:
    with db.uow() as uow:
        row_id = queue(uow, "alice")
        uow.commit()
    with db.uow() as uow:
        uow.outbox.claim_due(NOW, limit=10, lease=LEASE)
        uow.outbox.release(row_id)
        uow.commit()
    with db.uow() as uow:
        row = uow.outbox.get(row_id)
        assert row is not None
        assert (row.status, row.attempts, row.claimed_until) == ("pending", 0, None)


def claim_in_two_sessions(db: Database, limit: int) -> tuple[list[int], list[int]]:
    """Two units of work claim at the same time, each holding its transaction open until
    both have claimed."""
    both_claimed = threading.Barrier(2, timeout=10)

    def claim(_: int) -> list[int]:
        with db.uow() as uow:
            rows = uow.outbox.claim_due(NOW, limit=limit, lease=LEASE)
            both_claimed.wait()
            uow.commit()
            return [r.id for r in rows]

    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(claim, range(2))
    return a, b


@postgres_only
def test_concurrent_claims_never_take_the_same_row(db: Database) -> None:
    with db.uow() as uow:
        ids = [queue(uow, f"person{n}") for n in range(10)]
        uow.commit()
    a, b = claim_in_two_sessions(db, limit=4)
    assert len(a) == len(b) == 4
    assert not set(a) & set(b)
    assert sorted(a + b) == ids[:8]
    with db.uow() as uow:
        rows = uow.outbox.listing([OutboxStatus.SENDING], 20)
        assert [(r.id, r.attempts) for r in rows] == [(i, 1) for i in ids[:8]]


@postgres_only
def test_concurrent_claims_keep_a_conversation_with_one_session(db: Database) -> None:
    """The second session skips the rows the first one holds, and with them the rest of
    that conversation: its later messages must not overtake them."""
    with db.uow() as uow:
        alice = [queue(uow, "alice") for _ in range(4)]
        bob = queue(uow, "bob")
        uow.commit()
    a, b = claim_in_two_sessions(db, limit=2)
    assert not set(a) & set(b)
    # Alice's messages claimed are her first ones, all in one session; the other session
    # has none of hers (only bob, if anything). How many depends on the race: a session
    # that locked her second message while the other held the first gives it back.
    mine = [[i for i in claimed if i in alice] for claimed in (a, b)]
    taken = max(mine, key=len)
    assert taken
    assert taken == alice[: len(taken)]
    assert min(mine, key=len) == []
    assert set(a + b) - set(taken) <= {bob}
    assert {status_of(db, i) for i in alice[len(taken) :]} == {"pending"}


# --- the Core paths of the hot repositories ----------------------------------------------


def test_an_added_item_is_persistent_with_its_defaults(db: Database) -> None:
    with db.uow() as uow:
        ann = add_person(uow, "ann")
        group = add_group(uow, "news", ann)
        item = uow.items.add(
            Item(group_id=group.id, author_id=ann.id, kind=ItemKind.NOTE, created_at=NOW)
        )
        assert item.id is not None
        assert item in uow.session
        assert uow.items.get(item.id) is item  # the session's own object, no second one
        assert (item.text, item.url) == ("", None)
        item.title = "changed later"  # tracked as for any loaded object
        uow.commit()
        item_id = item.id
    with db.uow() as uow:
        stored = uow.items.get(item_id)
        assert stored is not None
        assert (stored.text, stored.title) == ("", "changed later")


def test_leaving_and_joining_again_in_one_unit_of_work(db: Database) -> None:
    with db.uow() as uow:
        ann = add_person(uow, "ann")
        group = add_group(uow, "news", ann)
        membership = uow.groups.add_member(ann.id, group.id, now=NOW)
        assert uow.groups.membership(ann.id, group.id) is membership
        uow.groups.remove_member(membership)
        assert uow.groups.membership(ann.id, group.id) is None
        again = uow.groups.add_member(ann.id, group.id, now=NOW, moderator=True)
        assert uow.groups.membership(ann.id, group.id) is again
        uow.commit()
        ids = (ann.id, group.id)
    with db.uow() as uow:
        stored = uow.groups.membership(*ids)
        assert stored is not None
        assert stored.moderator


def test_item_lines_carry_authors_and_counts(db: Database) -> None:
    with db.uow() as uow:
        ann, ben = add_person(uow, "ann"), add_person(uow, "ben")
        group = add_group(uow, "news", ann)
        first = add_item(uow, group, ann, "first")
        second = add_item(uow, group, ben, "second")
        feed = uow.items.add(
            Item(group_id=group.id, author_id=None, kind=ItemKind.NOTE, text="fed", created_at=NOW)
        )
        uow.items.add_comment(
            Comment(item_id=first.id, author_id=ben.id, text="nice", created_at=NOW)
        )
        uow.items.add_reaction(first.id, ben.id, "👍", NOW)
        uow.items.add_reaction(first.id, ann.id, "👍", NOW)
        uow.commit()
        lines = uow.items.lines(group.id, 2)
        assert [(line.id, line.author_handle) for line in lines] == [
            (feed.id, None),
            (second.id, "ben"),
        ]
        (oldest,) = [line for line in uow.items.lines(group.id, 10) if line.id == first.id]
        assert (oldest.text, oldest.comments, oldest.reactions) == ("first", 1, 2)
        assert oldest.dated_at == NOW


def test_item_lines_are_the_newest_by_date_a_feed_entry_by_its_own(db: Database) -> None:
    """Stored last, but published the day before: listed after the posts of today."""
    with db.uow() as uow:
        ann = add_person(uow, "ann")
        group = add_group(uow, "news", ann)
        first = add_item(uow, group, ann, "first")
        entry = uow.items.add(
            Item(
                group_id=group.id,
                kind=ItemKind.FEED_ENTRY,
                text="yesterday's",
                created_at=NOW + timedelta(minutes=5),
                published_at=NOW - timedelta(days=1),
            )
        )
        uow.commit()
        lines = uow.items.lines(group.id, 10)
        assert [(line.id, line.dated_at) for line in lines] == [
            (first.id, NOW),
            (entry.id, NOW - timedelta(days=1)),
        ]
        assert [i.id for i in uow.items.newest(group.id, 10)] == [first.id, entry.id]
        assert [i.id for i in uow.items.newest_in([group.id], 1)] == [first.id]


def test_refs_of_messages_purged_meanwhile_are_left_out(db: Database) -> None:
    with db.uow() as uow:
        ann = add_person(uow, "ann")
        item = add_item(uow, add_group(uow, "news", ann), ann)
        kept, purged = queue(uow, "kept"), queue(uow, "purged")
        uow.commit()
    with db.uow() as uow:
        uow.session.execute(text("DELETE FROM outbox WHERE id = :id"), {"id": purged})
        uow.outbox.mark_sent([(kept, "m1"), (purged, "m2")], NOW)
        uow.outbox.add_refs(
            [
                {
                    "platform": "memory",
                    "conversation": target,
                    "message_id": message_id,
                    "item_id": item.id,
                    "outbox_id": outbox_id,
                    "created_at": NOW,
                }
                for outbox_id, target, message_id in [
                    (kept, "kept", "m1"),
                    (purged, "purged", "m2"),
                ]
            ]
        )
        uow.commit()
    with db.uow() as uow:
        refs = uow.session.scalars(select(MessageRef).where(MessageRef.item_id == item.id))
        assert [(r.outbox_id, r.message_id) for r in refs] == [(kept, "m1")]
        row = uow.outbox.get(kept)
        assert row is not None
        assert (row.status, row.platform_message_id, row.sent_at) == ("sent", "m1", NOW)


def test_an_account_update_is_written_and_shown(db: Database) -> None:
    later = NOW + timedelta(hours=1)
    with db.uow() as uow:
        ann = add_person(uow, "ann")
        uow.commit()
    with db.uow() as uow:
        found = uow.people.actor("memory", f"ext-{ann.id}")
        assert found is not None
        account, person = found
        assert person.id == ann.id
        uow.people.update_account(account, last_seen_at=later, reachable=False)
        assert (account.last_seen_at, account.reachable) == (later, False)
        assert not uow.session.dirty  # written already, nothing left to flush
        uow.commit()
    with db.uow() as uow:
        (stored,) = uow.people.accounts_of(ann.id)
        assert (stored.last_seen_at, stored.reachable) == (later, False)
        assert uow.people.actor("memory", "nobody") is None
