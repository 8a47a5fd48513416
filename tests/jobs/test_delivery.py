"""The delivery worker: a World (real database, MemoryAdapter, fake clock) sends what the
outbox holds; `adapter.results` scripts what the platform answers."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from adapters.memory import MemoryAdapter
from bot.delivery import fan_out
from bot.events import MessageReceived, MessageRefIn
from bot.message import DeliveryFailed, Message, RateLimited, SendResult, Target
from jobs.delivery import DeliveryPolicy, DeliveryWorker
from jobs.ratelimit import PlatformLimits, Rate, RateLimiter
from store.models import (
    Comment,
    Group,
    Item,
    ItemKind,
    MessageRef,
    NotifyMode,
    OutboxMessage,
    OutboxStatus,
    Person,
    Reaction,
    Role,
    Visibility,
)
from store.uow import UnitOfWork
from tests.harness import World

# --- helpers -----------------------------------------------------------------------------


def add_person(uow: UnitOfWork, world: World, name: str, role: Role = Role.MEMBER) -> Person:
    """A person whose one account is the memory adapter's `name`."""
    person = uow.people.create(name=name, role=role, now=world.clock.now())
    uow.people.add_account(person, platform="memory", external_id=name, now=world.clock.now())
    return person


def people(world: World, *names: str) -> dict[str, int]:
    with world.db.uow() as uow:
        ids = {name: add_person(uow, world, name).id for name in names}
        uow.commit()
    return ids


def enqueue(
    world: World,
    address: str,
    text: str,
    *,
    person_id: int | None = None,
    platform: str = "memory",
    kind: str = "dm",
) -> int:
    with world.db.uow() as uow:
        world.core.enqueue(
            uow,
            Target(platform, "dm" if kind == "dm" else "room", address),
            Message(text=text),
            person_id,
            world.clock.now(),
        )
        uow.commit()
        row_id = uow.session.scalar(select(OutboxMessage.id).order_by(OutboxMessage.id.desc()))
    assert row_id is not None
    return row_id


def row(world: World, outbox_id: int) -> OutboxMessage:
    with world.db.uow() as uow:
        found = uow.outbox.get(outbox_id)
        assert found is not None
        uow.session.expunge(found)  # readable after the unit of work ends
        return found


def texts(adapter: MemoryAdapter, address: str) -> list[str]:
    return [s.message.text for s in adapter.to(address)]


async def drain(world: World, worker: DeliveryWorker | None = None) -> None:
    # A drain that waits for a message that can never go would hang: fail instead.
    await asyncio.wait_for((worker or world.worker).drain(), timeout=10)


def script(world: World, *results: SendResult) -> None:
    world.adapter.results.extend(results)


def create_group(
    uow: UnitOfWork, world: World, slug: str, creator: Person, visibility: Visibility
) -> Group:
    return uow.groups.create(
        slug=slug,
        name=slug.title(),
        visibility=visibility,
        admits_externals=False,
        created_by=creator.id,
        now=world.clock.now(),
    )


def share(uow: UnitOfWork, world: World, group: Group, author: Person, text: str) -> Item:
    """A post, queued for everyone it reaches, as the share command does."""
    item = uow.items.add(
        Item(
            group_id=group.id,
            author_id=author.id,
            kind=ItemKind.NOTE,
            text=text,
            source_platform="memory",
            created_at=world.clock.now(),
        )
    )
    fan_out(uow, item, now=world.clock.now())
    return item


# --- rate limits ---------------------------------------------------------------------------


async def test_rate_limited_waits_retry_after_without_counting_an_attempt(world: World) -> None:
    alice = people(world, "alice")["alice"]
    script(world, RateLimited(retry_after=30))
    start = world.clock.now()
    msg = enqueue(world, "alice", "hello", person_id=alice)

    await drain(world)

    assert world.adapter.sent == []
    waiting = row(world, msg)
    assert waiting.status == OutboxStatus.PENDING
    assert waiting.attempts == 0
    assert waiting.next_attempt_at == start + timedelta(seconds=30)
    assert waiting.claimed_until is None
    assert "rate limited" in (waiting.last_error or "")

    world.clock.advance(29)
    await drain(world)
    assert world.adapter.sent == []  # never before retry_after

    world.clock.advance(1)
    await drain(world)
    assert texts(world.adapter, "alice") == ["hello"]
    done = row(world, msg)
    assert (done.status, done.attempts) == (OutboxStatus.SENT, 1)
    assert done.sent_at == start + timedelta(seconds=30)


async def test_rate_limits_never_make_a_message_dead(world: World) -> None:
    worker = DeliveryWorker(world.hub, DeliveryPolicy(max_attempts=2))
    msg = enqueue(world, "alice", "patience")
    script(world, *[RateLimited(retry_after=1) for _ in range(5)])
    for _ in range(5):
        await drain(world, worker)
        assert row(world, msg).status == OutboxStatus.PENDING
        world.clock.advance(1)
    await drain(world, worker)
    assert texts(world.adapter, "alice") == ["patience"]
    assert row(world, msg).attempts == 1


# --- failures --------------------------------------------------------------------------------


async def test_transient_failures_retry_with_backoff_then_go_dead(world: World) -> None:
    policy = DeliveryPolicy(max_attempts=3, base_backoff=2.0)
    worker = DeliveryWorker(world.hub, policy)
    msg = enqueue(world, "alice", "flaky")
    script(world, *[DeliveryFailed("HTTP 502") for _ in range(3)])

    for attempt, step in [(1, 2.0), (2, 4.0)]:
        before = world.clock.now()
        await drain(world, worker)
        waiting = row(world, msg)
        assert (waiting.status, waiting.attempts) == (OutboxStatus.PENDING, attempt)
        assert waiting.last_error == "HTTP 502"
        # Exponential backoff with jitter between half and the whole step.
        delay = (waiting.next_attempt_at - before).total_seconds()
        assert step / 2 <= delay <= step
        world.clock.set(waiting.next_attempt_at - timedelta(milliseconds=1))
        await drain(world, worker)
        assert row(world, msg).attempts == attempt  # not before its time
        world.clock.set(waiting.next_attempt_at)

    await drain(world, worker)
    dead = row(world, msg)
    assert (dead.status, dead.attempts) == (OutboxStatus.DEAD, 3)
    assert world.adapter.sent == []

    # An admin retries the dead letter: it goes out.
    with world.db.uow() as uow:
        assert uow.outbox.retry_dead(world.clock.now(), [msg]) == 1
        uow.commit()
    await drain(world, worker)
    assert texts(world.adapter, "alice") == ["flaky"]


async def test_a_transient_failure_then_success_delivers_once(world: World) -> None:
    msg = enqueue(world, "alice", "second time lucky")
    script(world, DeliveryFailed("timeout"))
    await drain(world)
    assert world.adapter.sent == []
    world.clock.set(row(world, msg).next_attempt_at)
    await drain(world)
    assert texts(world.adapter, "alice") == ["second time lucky"]
    sent = row(world, msg)
    assert (sent.status, sent.attempts, sent.last_error) == (OutboxStatus.SENT, 2, None)


async def test_a_permanent_failure_is_dead_at_once(world: World) -> None:
    msg = enqueue(world, "alice", "never")
    script(world, DeliveryFailed("channel_not_found", permanent=True))
    await drain(world)
    dead = row(world, msg)
    assert (dead.status, dead.attempts, dead.last_error) == (
        OutboxStatus.DEAD,
        1,
        "channel_not_found",
    )
    world.clock.advance(hours=2)
    await drain(world)
    assert world.adapter.sent == []


async def test_an_unreachable_account_is_marked_and_not_chosen_again(world: World) -> None:
    with world.db.uow() as uow:
        alice = add_person(uow, world, "alice")
        # An older account elsewhere: it becomes the preferred one.
        uow.people.add_account(
            alice,
            platform="slack",
            external_id="U-ALICE",
            now=world.clock.now() - timedelta(days=1),
        )
        uow.commit()
    msg = enqueue(world, "alice", "are you there", person_id=alice.id)
    script(world, DeliveryFailed("bot was blocked by the user", unreachable=True))

    await drain(world)

    assert row(world, msg).status == OutboxStatus.DEAD
    with world.db.uow() as uow:
        memory = uow.people.account("memory", "alice")
        slack = uow.people.account("slack", "U-ALICE")
        assert memory is not None
        assert not memory.reachable
        assert slack is not None
        assert slack.reachable
        assert uow.people.preferred_accounts([alice.id])[alice.id].platform == "slack"


async def test_an_adapter_that_raises_is_a_failure_and_the_rest_go_out(world: World) -> None:
    class Broken(MemoryAdapter):
        async def send(self, target: Target, message: Message, *, key: str = "") -> SendResult:
            if target.address == "broken":
                raise RuntimeError("adapter bug")
            return await super().send(target, message)

    other = Broken(platform="other")
    world.hub.register(other)
    broken = enqueue(world, "broken", "one", platform="other")
    enqueue(world, "fine", "two", platform="other")
    enqueue(world, "alice", "three")

    await drain(world)

    failed = row(world, broken)
    assert failed.status == OutboxStatus.PENDING
    assert failed.attempts == 1
    assert failed.last_error == "RuntimeError: adapter bug"
    assert texts(other, "fine") == ["two"]
    assert texts(world.adapter, "alice") == ["three"]


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"t": "msg", "m": {"buttons": "not a list of buttons"}}, id="broken"),
        pytest.param({"t": "poll"}, id="unknown-kind"),
    ],
)
async def test_a_message_that_cannot_be_rendered_is_dead_and_the_rest_go_out(
    world: World, payload: dict[str, Any]
) -> None:
    with world.db.uow() as uow:
        uow.outbox.add(
            OutboxMessage(
                created_at=world.clock.now(),
                platform="memory",
                target_kind="dm",
                target="alice",
                payload=payload,
                status=OutboxStatus.PENDING,
                attempts=0,
                next_attempt_at=world.clock.now(),
            )
        )
        uow.commit()
    enqueue(world, "bob", "fine")

    await drain(world)

    assert texts(world.adapter, "bob") == ["fine"]
    with world.db.uow() as uow:
        (bad,) = uow.outbox.listing([OutboxStatus.DEAD], 10)
        assert bad.target == "alice"
        assert (bad.last_error or "").startswith("render: ")


# --- what an item delivery carries ------------------------------------------------------------


async def test_an_item_for_someone_who_may_no_longer_see_the_group_is_skipped(
    world: World,
) -> None:
    now = world.clock.now()
    with world.db.uow() as uow:
        bob, alice, carol = (add_person(uow, world, n) for n in ("bob", "alice", "carol"))
        secret = create_group(uow, world, "board", bob, Visibility.SECRET)
        for person in (bob, alice, carol):
            uow.groups.add_member(person.id, secret.id, now=now)
            membership = uow.groups.membership(person.id, secret.id)
            assert membership is not None
            membership.notify = NotifyMode.INSTANT
        item = share(uow, world, secret, bob, "the secret plan")
        uow.commit()
    # Alice is removed before the worker gets to her delivery.
    with world.db.uow() as uow:
        membership = uow.groups.membership(alice.id, secret.id)
        assert membership is not None
        uow.groups.remove_member(membership)
        uow.commit()

    await drain(world)

    assert world.adapter.to("alice") == []
    assert len(world.adapter.to("carol")) == 1
    assert world.adapter.to("bob") == []  # the author gets no copy of their own post
    with world.db.uow() as uow:
        rows = uow.session.scalars(
            select(OutboxMessage).where(OutboxMessage.item_id == item.id)
        ).all()
        assert {r.target: r.status for r in rows} == {
            "alice": OutboxStatus.SKIPPED,
            "carol": OutboxStatus.SENT,
        }
        assert uow.session.scalars(
            select(MessageRef.conversation).where(MessageRef.item_id == item.id)
        ).all() == ["carol"]


async def test_an_item_for_a_room_unbridged_meanwhile_is_skipped(world: World) -> None:
    now = world.clock.now()
    with world.db.uow() as uow:
        bob = add_person(uow, world, "bob")
        group = create_group(uow, world, "sales", bob, Visibility.OPEN)
        uow.groups.add_member(bob.id, group.id, now=now)
        room = uow.rooms.get_or_create("memory", "sales-room", name="sales", now=now)
        room.group_id = group.id
        share(uow, world, group, bob, "for the room")
        uow.commit()
    with world.db.uow() as uow:
        found = uow.rooms.find("memory", "sales-room")
        assert found is not None
        found.group_id = None
        uow.commit()

    await drain(world)

    assert world.adapter.sent == []
    with world.db.uow() as uow:
        assert uow.outbox.counts() == {OutboxStatus.SKIPPED: 1}


async def test_a_delivered_item_is_found_again_by_reactions_and_replies(world: World) -> None:
    now = world.clock.now()
    with world.db.uow() as uow:
        bob, alice = add_person(uow, world, "bob"), add_person(uow, world, "alice")
        group = create_group(uow, world, "sales", bob, Visibility.OPEN)
        uow.groups.add_member(bob.id, group.id, now=now)
        uow.groups.add_member(alice.id, group.id, now=now)
        membership = uow.groups.membership(alice.id, group.id)
        assert membership is not None
        membership.notify = NotifyMode.INSTANT
        room = uow.rooms.get_or_create("memory", "sales-room", name="sales", now=now)
        room.group_id = group.id
        item = share(uow, world, group, bob, "new poster at the station")
        uow.commit()

    await drain(world)

    (to_alice,) = world.adapter.to("alice")
    (to_room,) = world.adapter.to("sales-room")
    with world.db.uow() as uow:
        refs = uow.session.scalars(select(MessageRef).order_by(MessageRef.id)).all()
        assert {(r.conversation, r.message_id, r.item_id) for r in refs} == {
            ("alice", to_alice.message_id, item.id),
            ("sales-room", to_room.message_id, item.id),
        }
        found = uow.outbox.find_ref("memory", "alice", to_alice.message_id)
        assert found is not None
        assert found.item_id == item.id

    await world.react("alice", to_alice, "🎉")
    said = world.adapter.event("carol", "Saw it too!", world.clock.now(), room="sales-room")
    assert isinstance(said, MessageReceived)
    reply = dataclasses.replace(
        said, reply_to=MessageRefIn(conversation="sales-room", message_id=to_room.message_id)
    )
    await world.hub.submit(reply)
    await drain(world)

    with world.db.uow() as uow:
        reactions = uow.session.scalars(select(Reaction)).all()
        assert [(r.item_id, r.person_id, r.emoji) for r in reactions] == [(item.id, alice.id, "🎉")]
        comments = uow.session.scalars(select(Comment)).all()
        assert [(c.item_id, c.text) for c in comments] == [(item.id, "Saw it too!")]


# --- order -------------------------------------------------------------------------------------


async def test_messages_to_one_conversation_arrive_in_order(world: World) -> None:
    for n in range(1, 61):  # more than one batch
        enqueue(world, "alice" if n % 3 else "bob", f"m{n}")
    await drain(world)
    assert texts(world.adapter, "alice") == [f"m{n}" for n in range(1, 61) if n % 3]
    assert texts(world.adapter, "bob") == [f"m{n}" for n in range(1, 61) if not n % 3]


async def test_a_rate_limited_message_holds_back_its_conversation_only(world: World) -> None:
    enqueue(world, "alice", "a1")
    enqueue(world, "bob", "b1")
    enqueue(world, "alice", "a2")
    enqueue(world, "alice", "a3")
    script(world, RateLimited(retry_after=10))  # alice's first

    await drain(world)

    assert texts(world.adapter, "bob") == ["b1"]
    assert texts(world.adapter, "alice") == []  # a2 and a3 do not overtake a1

    # Something new for alice meanwhile waits behind them too (and drain does not spin).
    enqueue(world, "alice", "a4")
    await drain(world)
    assert texts(world.adapter, "alice") == []
    with world.db.uow() as uow:
        assert [r.attempts for r in uow.outbox.listing([OutboxStatus.PENDING], 10)] == [0] * 4

    world.clock.advance(10)
    await drain(world)
    assert texts(world.adapter, "alice") == ["a1", "a2", "a3", "a4"]


async def test_a_limit_on_the_whole_platform_holds_back_every_conversation(
    world: World,
) -> None:
    """Matrix limits the bot's account: its 429 stops sends to other rooms too, until then
    (a conversation's own 429, above, stops only that conversation)."""
    seconds = [0.0]
    limits = {"memory": PlatformLimits(overall=Rate(100, 100), per_dm=Rate(100, 100))}
    worker = DeliveryWorker(world.hub, limiter=RateLimiter(limits, clock=lambda: seconds[0]))
    world.adapter.max_in_flight = 1  # one send at a time: bob's comes after alice's 429
    enqueue(world, "alice", "a1")
    enqueue(world, "bob", "b1")
    script(world, RateLimited(retry_after=10, everywhere=True))

    await drain(world, worker)
    assert world.adapter.sent == []

    seconds[0] += 10
    world.clock.advance(10)
    await drain(world, worker)
    assert (texts(world.adapter, "alice"), texts(world.adapter, "bob")) == (["a1"], ["b1"])


async def test_a_failing_message_holds_back_its_conversation_until_it_is_dead(
    world: World,
) -> None:
    worker = DeliveryWorker(world.hub, DeliveryPolicy(max_attempts=2))
    enqueue(world, "alice", "a1")
    enqueue(world, "alice", "a2")
    script(world, DeliveryFailed("502"), DeliveryFailed("502"))

    await drain(world, worker)
    assert world.adapter.sent == []
    world.clock.advance(hours=1)
    await drain(world, worker)  # a1 fails again and is dead; a2 may go now

    assert texts(world.adapter, "alice") == ["a2"]
    with world.db.uow() as uow:
        assert uow.outbox.counts() == {OutboxStatus.DEAD: 1, OutboxStatus.SENT: 1}


# --- bookkeeping ---------------------------------------------------------------------------


async def test_a_fan_out_is_recorded_exactly_as_it_was_sent(world: World) -> None:
    """The outcomes of a big fan-out are written past the ORM: every message is sent once,
    with the time and message id of its send, and every copy is findable by its ref."""
    now = world.clock.now()
    members = [f"member{i:02d}" for i in range(20)]
    with world.db.uow() as uow:
        author = add_person(uow, world, "author")
        group = create_group(uow, world, "allhands", author, Visibility.OPEN)
        for name in members:
            person = add_person(uow, world, name)
            uow.groups.add_member(person.id, group.id, now=now).notify = NotifyMode.INSTANT
        item = share(uow, world, group, author, "Q3 figures are out")
        uow.commit()
    world.clock.advance(5)

    await drain(world)

    sent = {s.target.address: s.message_id for s in world.adapter.sent}
    assert sorted(sent) == members  # once each, not to the author
    with world.db.uow() as uow:
        rows = uow.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        assert {(r.target, r.status, r.attempts) for r in rows} == {
            (name, OutboxStatus.SENT, 1) for name in members
        }
        assert {r.sent_at for r in rows} == {world.clock.now()}  # aware UTC, as written
        assert {r.target: r.platform_message_id for r in rows} == sent
        assert all(r.claimed_until is None and r.last_error is None for r in rows)
        refs = uow.session.scalars(select(MessageRef)).all()
        assert {(r.conversation, r.message_id, r.item_id, r.created_at) for r in refs} == {
            (name, sent[name], item.id, world.clock.now()) for name in members
        }
        assert {r.outbox_id for r in refs} == {r.id for r in rows}


class Paced(MemoryAdapter):
    """Each send yields to the event loop a few times, so the lane starts others meanwhile;
    `most` is how many were in flight at once."""

    in_flight: int = 0
    most: int = 0

    async def send(self, target: Target, message: Message, *, key: str = "") -> SendResult:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        for _ in range(3):
            await asyncio.sleep(0)
        self.in_flight -= 1
        return await super().send(target, message)


async def test_sends_in_flight_are_as_many_as_the_adapter_declares(world: World) -> None:
    """An adapter may declare how many of its sends may be in flight; one that does not
    gets the policy's concurrency."""
    declared = Paced(platform="declared", max_in_flight=3)
    undeclared = Paced(platform="undeclared", max_in_flight=None)
    world.hub.register(declared)
    world.hub.register(undeclared)
    for n in range(10):
        enqueue(world, f"u{n}", "hello", platform="declared")
        enqueue(world, f"u{n}", "hello", platform="undeclared")
    worker = DeliveryWorker(world.hub, DeliveryPolicy(concurrency=2))

    await drain(world, worker)

    assert (len(declared.sent), declared.most) == (10, 3)
    assert (len(undeclared.sent), undeclared.most) == (10, 2)


async def test_a_fan_out_in_process_is_claimed_and_recorded_in_one_transaction_each(
    world: World,
) -> None:
    """The memory adapter has a whole batch in flight: the outcomes of a fan-out to 20
    members go in one transaction, after the one that claimed them."""
    now = world.clock.now()
    with world.db.uow() as uow:
        author = add_person(uow, world, "author")
        group = create_group(uow, world, "allhands", author, Visibility.OPEN)
        for n in range(20):
            person = add_person(uow, world, f"member{n:02d}")
            uow.groups.add_member(person.id, group.id, now=now).notify = NotifyMode.INSTANT
        share(uow, world, group, author, "Q3 figures are out")
        uow.commit()
    commits: list[object] = []

    def committed(conn: object) -> None:
        commits.append(conn)

    event.listen(world.db.engine, "commit", committed)
    try:
        await drain(world)
    finally:
        event.remove(world.db.engine, "commit", committed)
    assert len(world.adapter.sent) == 20
    assert len(commits) == 2
