"""Requests to join closed groups in the store (store.join_requests), on SQLite and
PostgreSQL: one open request per person and group, deciders, and account linking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from store.db import Database
from store.models import Group, JoinOutcome, JoinRequest, Person, Role, Visibility
from store.uow import UnitOfWork

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def person(uow: UnitOfWork, name: str, role: Role = Role.MEMBER) -> Person:
    return uow.people.create(name=name, role=role, now=NOW)


def closed_group(uow: UnitOfWork, slug: str, creator: Person) -> Group:
    return uow.groups.create(
        slug=slug,
        name=slug.title(),
        visibility=Visibility.CLOSED,
        admits_externals=False,
        created_by=creator.id,
        now=NOW,
    )


def test_one_open_request_per_person_and_group(db: Database) -> None:
    with db.uow() as uow:
        mona, alice = person(uow, "mona"), person(uow, "alice")
        sales = closed_group(uow, "sales", mona)
        first = uow.join_requests.add(sales.id, alice.id, NOW)
        uow.commit()
        ids = (sales.id, alice.id, mona.id, first.id)
    sales_id, alice_id, mona_id, first_id = ids
    with db.uow() as uow, pytest.raises(IntegrityError):  # two `join`s racing
        uow.join_requests.add(sales_id, alice_id, NOW)
    with db.uow() as uow:
        request = uow.join_requests.lock(first_id)
        assert request is not None
        uow.join_requests.decide(request, JoinOutcome.DECLINED, mona_id, NOW)
        again = uow.join_requests.add(sales_id, alice_id, NOW + timedelta(hours=1))
        assert uow.join_requests.pending(sales_id, alice_id) is again
        uow.commit()
    with db.uow() as uow:
        rows = uow.session.scalars(select(JoinRequest).order_by(JoinRequest.id)).all()
        assert [(r.outcome, r.decided_by) for r in rows] == [("declined", mona_id), (None, None)]


def test_deciders_are_the_moderators_else_the_admins(db: Database) -> None:
    with db.uow() as uow:
        mona, ada = person(uow, "mona"), person(uow, "ada", Role.ADMIN)
        paul = person(uow, "paul", Role.PARTNER)
        sales = closed_group(uow, "sales", mona)
        uow.groups.add_member(mona.id, sales.id, now=NOW, moderator=True)
        uow.groups.add_member(paul.id, sales.id, now=NOW, moderator=True)  # cannot moderate
        assert [p.handle for p in uow.join_requests.deciders(sales.id)] == ["mona"]
        mona.active = False
        uow.flush()
        assert [p.handle for p in uow.join_requests.deciders(sales.id)] == [ada.handle]


def test_pending_in_leaves_out_people_who_are_members_meanwhile(db: Database) -> None:
    with db.uow() as uow:
        mona, alice, bob = person(uow, "mona"), person(uow, "alice"), person(uow, "bob")
        sales = closed_group(uow, "sales", mona)
        uow.join_requests.add(sales.id, alice.id, NOW)
        uow.join_requests.add(sales.id, bob.id, NOW + timedelta(minutes=1))
        uow.groups.add_member(alice.id, sales.id, now=NOW)  # an invite let her in
        uow.flush()
        assert [p.handle for _, p in uow.join_requests.pending_in(sales.id)] == ["bob"]


def test_linking_accounts_moves_requests_and_keeps_one_open_per_group(db: Database) -> None:
    with db.uow() as uow:
        mona, alice = person(uow, "mona"), person(uow, "alice")
        other = person(uow, "alice2")  # alice's other messenger account's person
        sales, ops = closed_group(uow, "sales", mona), closed_group(uow, "ops", mona)
        uow.join_requests.add(sales.id, alice.id, NOW)
        uow.join_requests.add(sales.id, other.id, NOW)  # asked twice, once per account
        uow.join_requests.add(ops.id, other.id, NOW)
        decided = uow.join_requests.add(ops.id, mona.id, NOW)
        uow.join_requests.decide(decided, JoinOutcome.APPROVED, other.id, NOW)
        uow.people.merge(other, alice)
        uow.commit()
        alice_id, mona_id = alice.id, mona.id
    with db.uow() as uow:
        rows = uow.session.scalars(select(JoinRequest).order_by(JoinRequest.id)).all()
        assert [(r.person_id, r.decided_by) for r in rows] == [
            (alice_id, None),
            (alice_id, None),
            (mona_id, alice_id),
        ]
