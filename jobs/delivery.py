"""The delivery worker: sends what the core committed to the outbox, and records the outcome."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.message import Delivered, DeliveryFailed, Message, RateLimited, SendResult, Target
from bot.runtime import Hub
from store.models import OutboxStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryPolicy:
    batch: int = 50
    lease: timedelta = timedelta(minutes=2)  # a claimed message not reported by then is retried
    max_attempts: int = 8
    base_backoff: float = 2.0
    max_backoff: float = 3600.0
    idle_poll: float = 1.0

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


class DeliveryWorker:
    def __init__(self, hub: Hub, policy: DeliveryPolicy | None = None) -> None:
        self.hub = hub
        self.policy = policy or DeliveryPolicy()
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    # --- store side (runs on the hub's DB thread) ----------------------------------

    def _claim(self, platforms: list[str]) -> list[Claimed]:
        now = self.hub.clock.now()
        out: list[Claimed] = []
        with self.hub.db.uow() as uow:
            rows = uow.outbox.claim_due(
                now, limit=self.policy.batch, lease=self.policy.lease, platforms=platforms
            )
            for row in rows:
                try:
                    message = self.hub.renderer.render(uow, row)
                except Exception as exc:  # one bad row must not stop the whole outbox
                    log.exception("rendering outbox message %s failed", row.id)
                    row.status, row.claimed_until = OutboxStatus.DEAD, None
                    row.last_error = f"render: {type(exc).__name__}: {exc}"[:2000]
                    continue
                if message is None:
                    row.status, row.claimed_until = OutboxStatus.SKIPPED, None
                    continue
                target = Target(
                    row.platform, "dm" if row.target_kind == "dm" else "room", row.target
                )
                out.append(Claimed(row.id, target, message, row.item_id))
            uow.commit()
        return out

    def _record(self, claimed: Claimed, result: SendResult) -> str:
        now = self.hub.clock.now()
        with self.hub.db.uow() as uow:
            row = uow.outbox.get(claimed.id)
            if row is None:
                return "gone"
            row.claimed_until = None
            match result:
                case Delivered(message_id=message_id, conversation=conversation):
                    row.status, row.sent_at = OutboxStatus.SENT, now
                    row.platform_message_id = message_id
                    row.last_error = None
                    if message_id and claimed.item_id is not None:
                        uow.outbox.add_ref(
                            platform=row.platform,
                            conversation=conversation or row.target,
                            message_id=message_id,
                            item_id=claimed.item_id,
                            outbox_id=row.id,
                            now=now,
                        )
                    outcome = "delivered"
                case RateLimited(retry_after=retry_after):
                    # Not a failure: it does not count towards the dead letter.
                    row.attempts = max(0, row.attempts - 1)
                    row.status = OutboxStatus.PENDING
                    row.next_attempt_at = now + timedelta(seconds=max(0.0, retry_after))
                    row.last_error = f"rate limited for {retry_after:.1f}s"
                    outcome = "rate_limited"
                case DeliveryFailed(reason=reason, permanent=permanent, unreachable=unreachable):
                    row.last_error = reason[:2000]
                    if unreachable and row.person_id is not None:
                        account = uow.people.account(row.platform, row.target)
                        if account is not None:
                            account.reachable = False
                    if permanent or unreachable or row.attempts >= self.policy.max_attempts:
                        row.status = OutboxStatus.DEAD
                        outcome = "dead"
                    else:
                        row.status = OutboxStatus.PENDING
                        row.next_attempt_at = now + timedelta(
                            seconds=self.policy.backoff(row.attempts)
                        )
                        outcome = "retry"
            uow.commit()
        return outcome

    def _release(self, claimed: Claimed) -> None:
        with self.hub.db.uow() as uow:
            uow.outbox.release(claimed.id)
            uow.commit()

    def _next_due(self) -> datetime | None:
        with self.hub.db.uow() as uow:
            return uow.outbox.next_due_at(list(self.hub.adapters))

    # --- sending ------------------------------------------------------------------

    async def _send(self, claimed: Claimed) -> str:
        adapter = self.hub.adapters.get(claimed.target.platform)
        assert claimed.message is not None
        result: SendResult
        if adapter is None:
            result = DeliveryFailed(f"no adapter for {claimed.target.platform}")
        else:
            try:
                result = await adapter.send(claimed.target, claimed.message)
            except Exception as exc:  # an adapter bug must not stop delivery of the rest
                log.exception("send %s to %s failed", claimed.id, claimed.target)
                result = DeliveryFailed(f"{type(exc).__name__}: {exc}")
        outcome = await self.hub.call(self._record, claimed, result)
        self.hub.metrics.deliveries.labels(claimed.target.platform, outcome).inc()
        if outcome == "retry":
            self.hub.metrics.retries.labels(claimed.target.platform).inc()
        return outcome

    async def pass_once(self) -> int:
        """Claims what is due and sends it, in order; returns how many were claimed."""
        platforms = list(self.hub.adapters)
        if not platforms:
            return 0
        self._inflight += 1
        self._idle.clear()
        try:
            batch = await self.hub.call(self._claim, platforms)
            # A conversation whose message must wait (rate limited, to be retried) gets
            # nothing more in this pass: its later messages must not overtake it.
            held: set[Target] = set()
            for claimed in batch:
                if claimed.target in held:
                    await self.hub.call(self._release, claimed)
                    continue
                if await self._send(claimed) in ("rate_limited", "retry"):
                    held.add(claimed.target)
            return len(batch)
        finally:
            self._inflight -= 1
            if not self._inflight:
                self._idle.set()

    async def drain(self, wait_up_to: float = 0.0) -> None:
        """Sends everything that is due; with wait_up_to, also what falls due by then."""
        deadline = self.hub.clock.now() + timedelta(seconds=wait_up_to)
        while True:
            if await self.pass_once():
                continue
            await self._idle.wait()  # a pass of the background loop may still be sending
            due = await self.hub.call(self._next_due)
            now = self.hub.clock.now()
            if due is None or due > deadline:
                return
            await asyncio.sleep(max(0.0, min((due - now).total_seconds(), 1.0)))

    async def run(self, stop: asyncio.Event) -> None:
        wake = self.hub.wake_event
        while not stop.is_set():
            wake.clear()
            try:
                sent = await self.pass_once()
            except Exception:
                log.exception("delivery pass failed; trying again shortly")
                sent = 0
            if sent:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=self.policy.idle_poll)
