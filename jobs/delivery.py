"""The delivery worker: sends what the core committed to the outbox, and records the outcome.

One lane per platform sends in parallel across conversations, each conversation in
the order its messages were written, within the platform's limits (jobs.ratelimit). A
message that has failed twice stops holding back the later ones of its conversation
(store.repositories.ledger.HOLDS_BACK_UNTIL_FAILED); it keeps retrying with backoff and
ends as a dead letter that the admins are told about (bot.dead_letters). An idle lane
sleeps until the next message falls due, or until the hub wakes it because new ones
were written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter, deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.dead_letters import NOTICE, DeadLetter, is_notice, tell_admins
from bot.message import Delivered, DeliveryFailed, Message, RateLimited, SendResult, Target
from bot.runtime import Hub
from jobs.ratelimit import RateLimiter
from store.models import OutboxStatus
from store.repositories.ledger import (
    HOLDS_BACK_UNTIL_FAILED,
    ClaimedRow,
    OutboxLedger,
    OutboxState,
)
from store.uow import UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryPolicy:
    batch: int = 50
    lease: timedelta = timedelta(minutes=2)  # a claimed message not reported by then is retried
    max_attempts: int = 8
    # A message whose claim was taken back this often (its sending process died each
    # time: kill -9, a crash it may cause itself) is dead, not sent again and again.
    max_takebacks: int = 3
    base_backoff: float = 2.0
    max_backoff: float = 3600.0
    # The longest an idle lane sleeps: it wakes when the next message falls due, or when
    # the hub says new ones were written; this catches writes it is not told about
    # (another process: `pinwall outbox retry`, another instance's take-back).
    idle_poll: float = 30.0
    # Sends in flight per platform (unless its adapter declares `max_in_flight`). A send
    # holds its place until its outcome is recorded, so after a crash at most these are
    # sent again (outcomes that come in while one transaction records others go in the
    # next one together).
    concurrency: int = 8
    # How far ahead a pass plans: a conversation that must wait longer is put back.
    horizon: float = 2.0

    def backoff(self, attempts: int) -> float:
        """Exponential, with full jitter between half and the whole step."""
        step = min(self.max_backoff, self.base_backoff * 2.0 ** max(0, attempts - 1))
        jitter: float = random.uniform(0.5, 1.0)  # noqa: S311  (jitter, not a secret)
        return step * jitter


@dataclass(frozen=True)
class Claimed:
    id: int
    target: Target
    message: Message | None
    item_id: int | None
    attempts: int = 1  # including this one
    # No send of it starts after this: half its lease. When the lease runs out another
    # instance may claim it again, and it must not find it still being sent here.
    send_by: datetime | None = None

    @property
    def notice(self) -> bool:
        """An admins' notice of dead letters (one that dies is not told about)."""
        return self.message is not None and self.message.meta.get("notice") == NOTICE


class DeliveryWorker:
    def __init__(
        self,
        hub: Hub,
        policy: DeliveryPolicy | None = None,
        limiter: RateLimiter | None = None,
        *,
        instance: str | None = None,
    ) -> None:
        self.hub = hub
        self.policy = policy or DeliveryPolicy()
        self.limiter = limiter or RateLimiter()
        # The running instance (jobs.instances.Heartbeat.id) its claims are marked with.
        self.instance = instance
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def _in_flight(self, platform: str) -> int:
        """Sends of the platform that may be in flight at once: what its adapter declares
        (an in-process one, that loses nothing in a crash, takes a whole batch: its
        outcomes are then recorded in one transaction), else the policy's."""
        declared = getattr(self.hub.adapters.get(platform), "max_in_flight", None)
        return declared if isinstance(declared, int) and declared > 0 else self.policy.concurrency

    def _batch_size(self, platforms: list[str]) -> int:
        """About `horizon` seconds of sending at the platform's pace, at least `batch`."""
        rates = [
            limits.overall.per_second
            for p in platforms
            if (limits := self.limiter.limits.get(p)) is not None and limits.overall is not None
        ]
        if len(rates) != len(platforms) or not rates:
            return self.policy.batch * 4  # an unlimited platform (console, memory)
        return max(self.policy.batch, int(min(rates) * self.policy.horizon))

    # --- store side (runs on the hub's DB thread) ----------------------------------

    def _claim(self, platforms: list[str]) -> list[Claimed]:
        now = self.hub.clock.now()
        with self.hub.db.ledger() as ledger:
            rows = ledger.claim_due(
                now,
                limit=self._batch_size(platforms),
                lease=self.policy.lease,
                platforms=platforms,
                by=self.instance,
            )
            if not any(
                self.hub.renderer.needs_store(row) or row.takebacks >= self.policy.max_takebacks
                for row in rows
            ):
                return self._render(None, ledger, rows, now)  # answers: no ORM session
            with self.hub.db.joined_uow(ledger) as uow:
                return self._render(uow, ledger, rows, now)

    def _render(
        self,
        uow: UnitOfWork | None,
        ledger: OutboxLedger,
        rows: list[ClaimedRow],
        now: datetime,
    ) -> list[Claimed]:
        """The claimed rows as messages; a row that must not go is finished here."""
        send_by = now + self.policy.lease / 2
        out: list[Claimed] = []
        cache: dict[Any, Any] = {}
        dead: list[DeadLetter] = []
        if uow is not None:
            try:
                self.hub.renderer.prepare(uow, rows, cache)
            except Exception:  # rendered one by one then, where a bad row shows as such
                log.exception("preparing %d outbox messages for rendering failed", len(rows))
                cache.clear()
        for row in rows:
            if row.takebacks >= self.policy.max_takebacks:
                error = f"taken back {row.takebacks} times: its sends never finished"
                log.error("outbox message %s is dead: %s", row.id, error)
                self._dead(ledger, row, error, dead)
                continue
            try:
                message = self.hub.renderer.render(uow, row, cache)
            except Exception as exc:  # one bad row must not stop the whole outbox
                log.exception("rendering outbox message %s failed", row.id)
                self._dead(ledger, row, f"render: {type(exc).__name__}: {exc}", dead)
                continue
            if message is None:
                ledger.update_row(row.id, status=OutboxStatus.SKIPPED, claimed_until=None)
                continue
            target = Target(row.platform, "dm" if row.target_kind == "dm" else "room", row.target)
            out.append(Claimed(row.id, target, message, row.item_id, row.attempts, send_by))
        if dead:
            if uow is not None:
                tell_admins(self.hub.core, uow, dead, now)
                uow.flush()
            else:
                with self.hub.db.joined_uow(ledger) as joined:
                    tell_admins(self.hub.core, joined, dead, now)
                    joined.flush()
        return out

    @staticmethod
    def _dead(ledger: OutboxLedger, row: ClaimedRow, error: str, dead: list[DeadLetter]) -> None:
        ledger.update_row(
            row.id, status=OutboxStatus.DEAD, claimed_until=None, last_error=error[:2000]
        )
        if not is_notice(row.payload):
            dead.append(DeadLetter(row.id, row.platform, row.target, row.attempts, error))

    def outcome(self, claimed: Claimed, result: SendResult) -> str:
        """What a send's result means for its message (decided without the store)."""
        match result:
            case Delivered():
                return "delivered"
            case RateLimited():
                return "rate_limited"
            case DeliveryFailed(permanent=permanent, unreachable=unreachable):
                if permanent or unreachable or claimed.attempts >= self.policy.max_attempts:
                    return "dead"
        return "retry"

    def _record(self, results: list[tuple[Claimed, SendResult]]) -> None:
        """Records the outcomes of several sends in one transaction."""
        now = self.hub.clock.now()
        # Deliveries, the common case, are written in two statements for all of them.
        sent: list[tuple[int, str | None]] = []
        refs: list[dict[str, Any]] = []
        failed: list[tuple[Claimed, RateLimited | DeliveryFailed]] = []
        for claimed, result in results:
            if not isinstance(result, Delivered):
                failed.append((claimed, result))
                continue
            sent.append((claimed.id, result.message_id))
            shown_again = claimed.message is not None and claimed.message.replaces is not None
            if result.message_id and claimed.item_id is not None and not shown_again:
                refs.append(
                    {
                        "platform": claimed.target.platform,
                        "conversation": result.conversation or claimed.target.address,
                        "message_id": result.message_id,
                        "item_id": claimed.item_id,
                        "outbox_id": claimed.id,
                        "created_at": now,
                    }
                )
        if not failed:
            # Nothing but deliveries: no ORM session needed for two statements.
            with self.hub.db.ledger() as ledger:
                ledger.mark_sent(sent, now)
                ledger.add_refs(refs)
            return
        with self.hub.db.uow() as uow:
            states = uow.outbox.states(claimed.id for claimed, _ in failed)
            dead: list[DeadLetter] = []
            for claimed, result in failed:
                row = states.get(claimed.id)
                if row is not None:  # else: gone meanwhile (purged)
                    letter = self._record_one(uow, claimed, row, result, now)
                    if letter is not None:
                        dead.append(letter)
            uow.outbox.mark_sent(sent, now)
            uow.outbox.add_refs(refs)
            tell_admins(self.hub.core, uow, dead, now)  # with the dead letters, at once
            uow.commit()
        if dead:
            self.hub.wake()  # the admins' notices wait in the outbox

    def _record_one(
        self,
        uow: UnitOfWork,
        claimed: Claimed,
        row: OutboxState,
        result: RateLimited | DeliveryFailed,
        now: datetime,
    ) -> DeadLetter | None:
        """A send that did not go through: when to try again, if at all. Returns the dead
        letter it made, if the admins are to be told."""
        outcome = self.outcome(claimed, result)
        match result:
            case RateLimited(retry_after=retry_after):
                # Not a failure: it does not count towards the dead letter.
                uow.outbox.update_row(
                    row.id,
                    claimed_until=None,
                    attempts=max(0, row.attempts - 1),
                    status=OutboxStatus.PENDING,
                    next_attempt_at=now + timedelta(seconds=max(0.0, retry_after)),
                    last_error=f"rate limited for {retry_after:.1f}s",
                )
            case DeliveryFailed(reason=reason, unreachable=unreachable):
                if unreachable and row.person_id is not None:
                    account = uow.people.account(row.platform, row.target)
                    if account is not None:
                        uow.people.update_account(account, reachable=False)
                if outcome == "dead":
                    uow.outbox.update_row(
                        row.id,
                        claimed_until=None,
                        last_error=reason[:2000],
                        status=OutboxStatus.DEAD,
                    )
                    # Someone who blocked the bot is marked unreachable: no fault to fix.
                    if not unreachable and not claimed.notice:
                        return DeadLetter(row.id, row.platform, row.target, row.attempts, reason)
                else:
                    uow.outbox.update_row(
                        row.id,
                        claimed_until=None,
                        last_error=reason[:2000],
                        status=OutboxStatus.PENDING,
                        next_attempt_at=now + timedelta(seconds=self.policy.backoff(row.attempts)),
                    )
        return None

    def _release(self, ids: list[int], delay: float = 0.0) -> None:
        """Puts claimed messages back unsent (not an attempt), due again after `delay`."""
        until = self.hub.clock.now() + timedelta(seconds=delay) if delay else None
        with self.hub.db.uow() as uow:
            for outbox_id in ids:
                uow.outbox.release(outbox_id, until=until)
            uow.commit()

    def _next_due(self, platform: str) -> datetime | None:
        with self.hub.db.uow() as uow:
            return uow.outbox.next_due_at([platform])

    # --- sending ------------------------------------------------------------------

    async def _send(self, claimed: Claimed) -> SendResult:
        """Sends one message; any failure of the adapter becomes a DeliveryFailed."""
        adapter = self.hub.adapters.get(claimed.target.platform)
        assert claimed.message is not None
        if adapter is None:
            return DeliveryFailed(f"no adapter for {claimed.target.platform}")
        try:
            return await adapter.send(claimed.target, claimed.message, key=f"pw{claimed.id}")
        except Exception as exc:  # an adapter bug must not stop delivery of the rest
            log.exception("send %s to %s failed", claimed.id, claimed.target)
            return DeliveryFailed(f"{type(exc).__name__}: {exc}")

    async def _flush(self, results: list[tuple[Claimed, SendResult]]) -> None:
        """Records buffered outcomes: one transaction for many sends."""
        if not results:
            return
        batch = results[:]
        results.clear()
        await self.hub.call(self._record, batch)
        counts: Counter[tuple[str, str]] = Counter(
            (claimed.target.platform, self.outcome(claimed, result)) for claimed, result in batch
        )
        metrics = self.hub.metrics
        for (platform, outcome), n in counts.items():
            metrics.deliveries.labels(platform, outcome).inc(n)
            if outcome == "retry":
                metrics.retries.labels(platform).inc(n)

    async def _lane_pass(self, platform: str, stop: asyncio.Event | None = None) -> int:
        """Claims a batch for one platform and sends it within the platform's limits.

        Conversations go in parallel, each in its own order; a conversation whose next
        message must wait longer than the horizon is put back, due when it may go. What
        has not started when half the lease is gone is put back too, to be claimed afresh.
        """
        batch = await self.hub.call(self._claim, [platform])
        if not batch:
            return 0
        send_by = min((c.send_by for c in batch if c.send_by is not None), default=None)
        queues: dict[Target, deque[Claimed]] = {}
        for claimed in batch:
            queues.setdefault(claimed.target, deque()).append(claimed)
        busy: set[Target] = set()
        running: set[asyncio.Task[None]] = set()
        in_flight = self._in_flight(platform)
        finished = asyncio.Event()

        # Outcomes waiting to be recorded, and the sends waiting for that (group commit).
        results: list[tuple[Claimed, SendResult]] = []
        waiters: list[asyncio.Future[None]] = []
        writer: asyncio.Task[None] | None = None

        async def write_outcomes() -> None:
            while results:
                written, error = waiters[:], None
                waiters.clear()
                try:
                    await self._flush(results)
                except Exception as exc:
                    error = exc
                for waiter in written:
                    if waiter.done():
                        continue
                    if error is None:
                        waiter.set_result(None)
                    else:
                        waiter.set_exception(error)

        async def record(claimed: Claimed, result: SendResult) -> None:
            """Until the outcome is recorded, with those of sends that ended meanwhile."""
            nonlocal writer
            waiter = asyncio.get_running_loop().create_future()
            results.append((claimed, result))
            waiters.append(waiter)
            if writer is None or writer.done():
                writer = asyncio.create_task(write_outcomes())
            await waiter

        async def deliver(target: Target, claimed: Claimed) -> None:
            try:
                result = await self._send(claimed)
                if isinstance(result, RateLimited):
                    self.limiter.penalize(
                        platform,
                        target.kind,
                        target.address,
                        result.retry_after,
                        overall=result.everywhere,
                    )
                await record(claimed, result)
                outcome = self.outcome(claimed, result)
                if outcome == "rate_limited" or (
                    outcome == "retry" and claimed.attempts < HOLDS_BACK_UNTIL_FAILED
                ):
                    # Its later messages must not overtake it: back they go. (One that
                    # has failed often enough lets them go ahead, see claim_due.)
                    rest = queues.pop(target, deque())
                    if rest:
                        await self.hub.call(self._release, [c.id for c in rest])
            finally:
                busy.discard(target)
                # Before the task's done-callbacks run, so the loop sees it gone at once.
                task = asyncio.current_task()
                if task is not None:
                    running.discard(task)
                finished.set()

        while queues or running:
            stopping = stop is not None and stop.is_set()
            stale = send_by is not None and self.hub.clock.now() >= send_by
            if queues and (stopping or stale):
                left = [c.id for q in queues.values() for c in q]
                queues.clear()
                await self.hub.call(self._release, left)
                continue
            finished.clear()
            soonest: float | None = None
            deferred: list[tuple[list[int], float]] = []
            for target in list(queues):
                if target in busy or len(running) >= in_flight:
                    continue
                wait = self.limiter.acquire(platform, target.kind, target.address)
                if wait == 0.0:
                    queue = queues[target]
                    claimed = queue.popleft()
                    if not queue:
                        del queues[target]
                    busy.add(target)
                    task = asyncio.create_task(deliver(target, claimed))
                    running.add(task)
                    task.add_done_callback(running.discard)
                elif wait > self.policy.horizon:
                    deferred.append(([c.id for c in queues.pop(target)], wait))
                else:
                    soonest = wait if soonest is None else min(soonest, wait)
            for ids, wait in deferred:
                await self.hub.call(self._release, ids, wait)
            if not queues and not running:
                break
            if soonest is None and not running:
                continue
            if soonest is None:
                await finished.wait()
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finished.wait(), timeout=soonest)
        if writer is not None:
            await writer
        return len(batch)

    async def pass_once(self) -> int:
        """One pass over every platform at once; returns how many messages were claimed."""
        platforms = list(self.hub.adapters)
        if not platforms:
            return 0
        self._inflight += 1
        self._idle.clear()
        try:
            counts = await asyncio.gather(*(self._lane_pass(p) for p in platforms))
            return sum(counts)
        finally:
            self._inflight -= 1
            if not self._inflight:
                self._idle.set()

    async def drain(self, wait_up_to: float = 0.0) -> None:
        """Sends everything that is due; with wait_up_to, also what falls due by then."""
        deadline = self.hub.clock.now() + timedelta(seconds=wait_up_to)
        platforms = list(self.hub.adapters)
        if len(platforms) == 1:  # the common case in tests and benchmarks: no task needed
            await self._drain_lane(platforms[0], deadline)
            return
        await asyncio.gather(*(self._drain_lane(p, deadline) for p in platforms))

    async def _drain_lane(self, platform: str, deadline: datetime) -> None:
        full = self._batch_size([platform])
        while True:
            self._inflight += 1
            self._idle.clear()
            try:
                sent = await self._lane_pass(platform)
            finally:
                self._inflight -= 1
                if not self._inflight:
                    self._idle.set()
            if sent and (sent >= full or self._inflight or deadline > self.hub.clock.now()):
                continue
            if sent:
                # A part batch with nobody else sending: all that was due now went (what
                # was put back waits for a later time), so no more look-ups are needed.
                return
            await self._idle.wait()  # a pass of the background loop may still be sending
            due = await self.hub.call(self._next_due, platform)
            now = self.hub.clock.now()
            if due is None or due > deadline:
                return
            await asyncio.sleep(max(0.0, min((due - now).total_seconds(), 1.0)))

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`: one lane per platform, each sending at its platform's pace."""
        await asyncio.gather(*(self._run_lane(p, stop) for p in list(self.hub.adapters)))

    async def _run_lane(self, platform: str, stop: asyncio.Event) -> None:
        wake = asyncio.Event()
        self.hub.add_waker(wake)
        try:
            while not stop.is_set():
                wake.clear()
                self._inflight += 1
                self._idle.clear()
                try:
                    sent = await self._lane_pass(platform, stop)
                except Exception:
                    log.exception("delivery pass for %s failed; trying again shortly", platform)
                    sent = 0
                finally:
                    self._inflight -= 1
                    if not self._inflight:
                        self._idle.set()
                if sent:
                    continue
                if wake.is_set():
                    continue
                # Something due that this pass did not get (another instance holds the
                # way to it for a moment): look again shortly, not in a tight loop.
                idle = await self._idle_for(platform) or 0.05
                waiters = {asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())}
                _, pending = await asyncio.wait(
                    waiters, timeout=idle, return_when=asyncio.FIRST_COMPLETED
                )
                for waiter in pending:
                    waiter.cancel()
        finally:
            self.hub.remove_waker(wake)

    async def _idle_for(self, platform: str) -> float:
        """Seconds an idle lane may sleep: until its next message falls due (or a claim's
        lease runs out), at most idle_poll."""
        try:
            due = await self.hub.call(self._next_due, platform)
        except Exception:
            log.exception("looking up the next delivery for %s failed", platform)
            return min(1.0, self.policy.idle_poll)
        if due is None:
            return self.policy.idle_poll
        wait = (due - self.hub.clock.now()).total_seconds()
        if wait <= 0.0:
            return 0.0
        # A timer may fire a little early: a claim then would find nothing due yet.
        return min(wait + 0.002, self.policy.idle_poll)
