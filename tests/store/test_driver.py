"""Prebuilt statements on the driver, and the objects the repositories build from their
rows: they must behave exactly as SQLAlchemy's own statements and ORM loading do."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Integer, bindparam, event, exc, insert, inspect, select
from sqlalchemy.orm.attributes import instance_state

from store.db import Database
from store.driver import Prebuilt
from store.models import (
    Group,
    InboxEvent,
    Item,
    ItemKind,
    Membership,
    Person,
    Role,
    Visibility,
    table_of,
)

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
_people = table_of(Person)
_inbox = table_of(InboxEvent)


def seed(db: Database) -> tuple[int, int]:
    """alice with a memory account, a group she moderates; (person id, group id)."""
    with db.uow() as uow:
        alice = uow.people.create(name="Alice", role=Role.MEMBER, now=NOW)
        uow.people.add_account(alice, platform="memory", external_id="alice", now=NOW)
        group = uow.groups.create(
            slug="marketing",
            name="Marketing",
            visibility=Visibility.OPEN,
            admits_externals=False,
            created_by=alice.id,
            now=NOW,
        )
        uow.groups.add_member(alice.id, group.id, now=NOW, moderator=True)
        uow.commit()
        return alice.id, group.id


def test_an_actor_is_loaded_as_the_orm_loads_it(db: Database) -> None:
    alice_id, _ = seed(db)
    with db.uow() as uow:
        found = uow.people.actor("memory", "alice")
        assert found is not None
        account, person = found
        for obj in (account, person):
            assert instance_state(obj).persistent
            assert obj in uow.session
        # Every column is loaded, with the types the ORM gives them.
        assert person.handle == "alice"
        assert person.active is True
        assert person.created_at == NOW
        assert person.created_at.tzinfo is not None
        assert account.reachable is True
        assert account.person_id == alice_id
        # The identity map holds them: asking again gives the very same objects.
        assert uow.session.get(Person, alice_id) is person
        assert uow.people.actor("memory", "alice") == (account, person)
        # Nothing is pending; a change is flushed and committed like any other.
        assert not uow.session.dirty
        assert not uow.session.new
        person.language = "de"
        assert person in uow.session.dirty
        # A relationship not loaded loads when used.
        assert [a.external_id for a in person.accounts] == ["alice"]
        uow.commit()
    with db.uow() as uow:
        again = uow.people.get(alice_id)
        assert again is not None
        assert again.language == "de"
        assert uow.people.actor("memory", "nobody") is None


def test_an_object_the_session_holds_already_is_kept_with_its_changes(db: Database) -> None:
    alice_id, group_id = seed(db)
    with db.uow() as uow:
        person = uow.session.get(Person, alice_id)
        assert person is not None
        person.display_name = "Alice Changed"  # not flushed yet
        found = uow.people.actor("memory", "alice")
        assert found is not None
        assert found[1] is person
        # The query flushed the change first, as an ORM query would.
        assert person.display_name == "Alice Changed"
        assert not uow.session.dirty
        group = uow.session.get(Group, group_id)
        row = uow.groups.by_slug_for("Marketing", alice_id)
        assert row is not None
        assert row[0] is group
        membership = row[1]
        assert membership is not None
        assert membership.moderator is True
        assert uow.session.get(Membership, (alice_id, group_id)) is membership


def test_a_group_without_a_membership_has_none(db: Database) -> None:
    _alice_id, group_id = seed(db)
    with db.uow() as uow:
        bob = uow.people.create(name="Bob", role=Role.MEMBER, now=NOW)
        uow.commit()
        row = uow.groups.by_slug_for("marketing", bob.id)
        assert row is not None
        assert row[0].id == group_id
        assert row[1] is None
        assert [(g.slug, m) for g, m in uow.groups.all_for(bob.id)] == [("marketing", None)]
        assert uow.groups.by_slug_for("nothing", bob.id) is None


def test_driver_errors_are_sqlalchemy_errors_and_change_nothing(db: Database) -> None:
    seed(db)
    stmt = Prebuilt(
        insert(_people).values(
            handle=bindparam("handle", type_=_people.c.handle.type),
            display_name="x",
            role="member",
            active=True,
            digest_by_mail=False,
            created_at=bindparam("at", type_=_people.c.created_at.type),
        )
    )
    with db.uow() as uow, pytest.raises(exc.IntegrityError):
        stmt.run(uow.people._flushed_connection(), [{"handle": "alice", "at": NOW}])
    with db.uow() as uow:
        assert [p.handle for p in uow.people.all()] == ["alice"]


def test_values_and_rows_go_through_their_types(db: Database) -> None:
    with db.uow() as uow:
        conn = uow.people._flushed_connection()
        record = Prebuilt(
            insert(_inbox)
            .values({c: bindparam(c) for c in ("platform", "event_id", "payload", "status")})
            .values(received_at=bindparam("at"))
            .returning(_inbox.c.id),
            {
                **{c: _inbox.c[c].type for c in ("platform", "event_id", "payload", "status")},
                "at": _inbox.c.received_at.type,
            },
        )
        row_id = record.scalar(
            conn,
            {
                "platform": "memory",
                "event_id": "e1",
                "payload": {"a": [1, "ü"]},
                "status": "received",
                "at": NOW,
            },
        )
        assert isinstance(row_id, int)
        read = Prebuilt(
            select(_inbox.c.payload, _inbox.c.received_at).where(
                _inbox.c.id == bindparam("id", type_=Integer())
            )
        )
        assert read.first(conn, {"id": row_id}) == ({"a": [1, "ü"]}, NOW)
        assert read.first(conn, {"id": row_id + 1}) is None
        assert read.all(conn, {"id": row_id + 1}) == []


def test_statement_listeners_still_see_every_statement(db: Database) -> None:
    seed(db)
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        with db.uow() as uow:
            assert uow.people.actor("memory", "alice") is not None
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert any("accounts" in s and "people" in s for s in seen)


def test_expanding_parameters_are_refused_when_compiled(db: Database) -> None:
    stmt = Prebuilt(select(_people.c.id).where(_people.c.id.in_(bindparam("ids", expanding=True))))
    with db.uow() as uow, pytest.raises(TypeError, match="expanding"):
        stmt.all(uow.people._flushed_connection(), {"ids": [1]})


def test_a_rollback_takes_new_rows_out_of_the_session(db: Database) -> None:
    """As after an ORM flush: a row inserted and rolled back leaves no object behind, and
    a later row under the same id (SQLite reuses it) is an object of its own."""
    alice_id, group_id = seed(db)
    with db.uow() as uow:

        def note(text: str) -> Item:
            return Item(
                group_id=group_id, author_id=alice_id, kind=ItemKind.NOTE, text=text, created_at=NOW
            )

        first = uow.items.add(note("first"))
        uow.rollback()
        assert first not in uow.session
        assert inspect(first).transient
        assert first.text == "first"  # keeps its values, as after a flush
        second = uow.items.add(note("second"))
        assert second is not first
        assert uow.session.get(Item, second.id) is second
        assert second.text == "second"
        with pytest.raises(exc.InvalidRequestError, match="stored already"):
            uow.items.add(second)


def test_a_savepoint_rollback_takes_its_new_rows_out_of_the_session(db: Database) -> None:
    alice_id, group_id = seed(db)
    with db.uow() as uow:
        bob = uow.people.create(name="Bob", role=Role.MEMBER, now=NOW)
        savepoint = uow.session.begin_nested()
        membership = uow.groups.add_member(bob.id, group_id, now=NOW)
        savepoint.rollback()
        assert membership not in uow.session
        assert membership.group_id == group_id
        assert uow.session.get(Membership, (bob.id, group_id)) is None
        assert uow.groups.membership(alice_id, group_id) is not None


def test_json_the_json_module_wrote_or_orjson_refuses_is_kept(db: Database) -> None:
    """orjson writes JSON columns; what it refuses (a lone surrogate a messenger sent,
    an integer beyond 64 bits) and what the json module wrote before (NaN) still work."""
    odd: dict[str, Any] = {"big": 2**70}
    if db.is_sqlite:  # PostgreSQL's json refuses a lone surrogate itself
        odd["text"] = "broken emoji \ud83d"
    with db.uow() as uow:
        row_id = uow.inbox.record("memory", "odd", odd, NOW)
        uow.commit()
    with db.uow() as uow:
        stored = uow.inbox.get("memory", "odd")
        assert stored is not None
        assert stored.id == row_id
        assert stored.payload == odd
    if db.is_sqlite:
        with db.engine.begin() as conn:
            conn.exec_driver_sql(
                "UPDATE inbox_events SET payload = ? WHERE id = ?", ('{"n": NaN}', row_id)
            )
        with db.uow() as uow:
            stored = uow.inbox.get("memory", "odd")
            assert stored is not None
            assert str(stored.payload["n"]) == "nan"
