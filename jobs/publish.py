"""Publishing approved proposals, once: a scheduler tick (`Tick("publish", every=5)`).

Each tick first does the housekeeping (pending proposals past their expiry expire;
an attempt found started but without an outcome was cut short by a crash), then
claims the approved proposals whose time has come. A claim RECORDS THE ATTEMPT and
commits it before the outlet is called; the outcome is recorded after the call:

    published        -> the link to the author and on every card
    transient error  -> approved again, next attempt after a backoff (failed after many)
    uncertain        -> flagged for admins (they are told, `pending` lists it), never
                        repeated by itself; an admin's `approve` publishes it again
    permanent error  -> failed, the author and the cards are told

An attempt interrupted by a crash is made again only where the outlet takes an
idempotency key (the same key, so it cannot post twice: Mastodon, the newsroom);
anywhere else it becomes uncertain.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.approval_cards import approvers, handle_list, show_outcome
from bot.config import outlet_token_variable
from bot.errors import ConfigError
from bot.outlets import IDEMPOTENT_KINDS, OutletSettings, OutletSpec
from bot.proposals import audit, expire_due, tell_admins, tell_author
from bot.runtime import Hub
from jobs.outlets import create_publisher
from jobs.outlets.base import (
    MediaFile,
    OutletContext,
    PermanentPublishError,
    Publication,
    Published,
    Publisher,
    PublishError,
    TokenRefusedError,
    TransientPublishError,
    UncertainPublishError,
)
from jobs.outlets.tokens import warn_expiring_tokens
from jobs.scheduler import Tick
from store.models import Proposal, ProposalStatus
from store.uow import UnitOfWork

log = logging.getLogger(__name__)

EVERY = 5.0  # seconds between ticks
MAX_ATTEMPTS = 8  # transient failures before a proposal counts as failed
BACKOFF = (30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)  # seconds, by attempt
BATCH = 10


def backoff(attempt: int, retry_after: float | None = None) -> timedelta:
    seconds = BACKOFF[min(max(attempt, 1), len(BACKOFF)) - 1]
    return timedelta(seconds=max(seconds, retry_after or 0.0))


def idempotency_key(proposal: Proposal) -> str:
    """One key per approved revision: a repeat of the same attempt, never of a new text."""
    return f"pinwall-p{proposal.id}-r{proposal.revision}"


@dataclass(frozen=True)
class Claimed:
    proposal_id: int
    attempt: int
    spec: OutletSpec
    publication: Publication


Outcome = Published | PublishError


class PublishJob:
    def __init__(
        self,
        hub: Hub,
        outlets: OutletSettings,
        context: OutletContext,
        *,
        publishers: dict[str, Publisher] | None = None,
    ) -> None:
        self.hub = hub
        self.core = hub.core
        self.outlets = outlets
        self.context = context
        self.publishers: dict[str, Publisher] = dict(publishers or {})
        # An attempt still "started" this long after it began was cut short by a crash.
        self.interrupted_after = timedelta(seconds=context.timeout + 60)
        # Decisions up to this instant were measured (a tick's worth back at the start).
        self._measured_until = hub.clock.now() - timedelta(seconds=EVERY)

    def tick(self) -> Tick:
        return Tick("publish", every=EVERY, run=self.run)

    def publisher(self, spec: OutletSpec) -> Publisher:
        found = self.publishers.get(spec.name)
        if found is None:
            found = self.publishers[spec.name] = create_publisher(spec, self.context)
        return found

    def idempotent(self, spec: OutletSpec) -> bool:
        publisher = self.publishers.get(spec.name)
        flag = getattr(publisher, "idempotent", None) if publisher is not None else None
        return bool(flag) if flag is not None else spec.kind in IDEMPOTENT_KINDS

    async def run(self, now: datetime) -> int:
        """One tick: housekeeping, then every due proposal published; returns how many
        attempts were made."""
        await self.hub.call(self._sweep, now)
        claimed = await self.hub.call(self._claim, now)
        for job in claimed:
            outcome = await self._attempt(job)
            await self.hub.call(self._record, job, outcome, self.hub.clock.now())
        self.hub.wake()
        return len(claimed)

    async def aclose(self) -> None:
        for publisher in self.publishers.values():
            await publisher.aclose()

    # --- housekeeping ---------------------------------------------------------------

    def _sweep(self, now: datetime) -> None:
        with self.hub.db.uow() as uow:
            expire_due(self.core, uow, now)
            warn_expiring_tokens(self.core, uow, self.outlets, now)
            for proposal_id in uow.proposals.interrupted(now - self.interrupted_after):
                self._interrupted(uow, proposal_id, now)
            self._measure(uow, now)
            uow.commit()

    def _interrupted(self, uow: UnitOfWork, proposal_id: int, now: datetime) -> None:
        proposal = uow.proposals.lock(proposal_id)
        if proposal is None or proposal.status != ProposalStatus.PUBLISHING:
            return
        spec = self.outlets.get(proposal.outlet)
        if spec is not None and self.idempotent(spec):
            # The same key again: the outlet answers with the post it may have made.
            uow.proposals.transition(
                proposal.id,
                [ProposalStatus.PUBLISHING],
                status=ProposalStatus.APPROVED,
                next_attempt_at=now,
                attempt_started_at=None,
            )
            audit(uow, now, None, "proposal.publish_resumed", proposal, attempt=proposal.attempts)
            return
        reason = "interrupted while publishing"
        self._uncertain(uow, proposal, now, reason)

    def _measure(self, uow: UnitOfWork, now: datetime) -> None:
        """Approval turnaround: from a proposal's (revision's) making to the decision."""
        since, self._measured_until = self._measured_until, now
        for p in uow.proposals.decided_between(since, now):
            if p.decided_at is None:
                continue
            outcome = p.status if p.status in ("rejected", "changes") else "approved"
            seconds = max(0.0, (p.decided_at - p.revised_at).total_seconds())
            self.hub.metrics.approval_turnaround.labels(outcome).observe(seconds)

    # --- an attempt -------------------------------------------------------------------

    def _claim(self, now: datetime) -> list[Claimed]:
        """Marks due proposals as being published, recording the attempt, and commits."""
        out: list[Claimed] = []
        with self.hub.db.uow() as uow:
            for proposal_id in uow.proposals.due(now, BATCH):
                proposal = uow.proposals.lock(proposal_id)
                if proposal is None or proposal.status != ProposalStatus.APPROVED:
                    continue
                spec = self.outlets.get(proposal.outlet)
                attempt = proposal.attempts + 1
                if not uow.proposals.transition(
                    proposal.id,
                    [ProposalStatus.APPROVED],
                    proposal.revision,
                    status=ProposalStatus.PUBLISHING,
                    attempts=attempt,
                    attempt_started_at=now,
                    next_attempt_at=None,
                ):
                    continue
                audit(uow, now, None, "proposal.publish_attempt", proposal, attempt=attempt)
                if spec is None:  # the outlet was removed from the configuration
                    spec = OutletSpec(proposal.outlet, "unknown")
                out.append(Claimed(proposal.id, attempt, spec, self._publication(uow, proposal)))
            uow.commit()
        return out

    def _publication(self, uow: UnitOfWork, proposal: Proposal) -> Publication:
        link, media = None, []
        title = description = image = None
        item = uow.items.get(proposal.item_id) if proposal.item_id else None
        if item is not None:
            link = item.url
            if item.title and item.title != item.url:
                title = item.title
            description, image = item.description, item.image_url
            blobs = self.hub.blobs
            if blobs is not None:
                for f, blob in uow.blobs.files_of(item.id):
                    media.append(MediaFile(f.name, blob.mime_type, blobs.path(blob.id), blob.size))
        return Publication(
            proposal_id=proposal.id,
            text=proposal.text,
            link=link,
            media=tuple(media),
            idempotency_key=idempotency_key(proposal),
            link_title=title,
            link_description=description,
            link_image=image,
        )

    async def _attempt(self, job: Claimed) -> Outcome:
        try:
            publisher = self.publisher(job.spec)
        except ConfigError as exc:
            return PermanentPublishError(str(exc))
        try:
            return await asyncio.wait_for(
                publisher.publish(job.publication), timeout=self.context.timeout + 5
            )
        except PublishError as exc:
            return exc
        except TimeoutError:
            return UncertainPublishError("no answer in time")
        except Exception as exc:  # a publisher's bug: it may have posted
            log.exception("publishing P%s to %s failed", job.proposal_id, job.spec.name)
            return UncertainPublishError(f"unexpected {type(exc).__name__}")

    def _record(self, job: Claimed, outcome: Outcome, now: datetime) -> None:
        with self.hub.db.uow() as uow:
            proposal = uow.proposals.lock(job.proposal_id)
            if (
                proposal is None
                or proposal.status != ProposalStatus.PUBLISHING
                or proposal.attempts != job.attempt
            ):
                log.warning("P%s changed while it was being published", job.proposal_id)
                return
            kind = type(outcome).__name__
            self.hub.metrics.publish_outcomes.labels(job.spec.name, _label(outcome)).inc()
            match outcome:
                case Published():
                    self._published(uow, proposal, outcome, now)
                case TransientPublishError() if job.attempt < MAX_ATTEMPTS:
                    self._retry(uow, proposal, outcome, now)
                case UncertainPublishError():
                    self._uncertain(uow, proposal, now, str(outcome))
                case TokenRefusedError():
                    self._failed(uow, proposal, now, str(outcome))
                    tell_admins(
                        self.core,
                        uow,
                        proposal,
                        now,
                        outcome.admin_key,
                        error=str(outcome),
                        variable=outlet_token_variable(job.spec.name),
                    )
                case _:
                    self._failed(uow, proposal, now, str(outcome))
            log.info("P%s on %s: %s", proposal.id, job.spec.name, kind)
            uow.commit()

    def _published(
        self, uow: UnitOfWork, proposal: Proposal, published: Published, now: datetime
    ) -> None:
        uow.proposals.transition(
            proposal.id,
            [ProposalStatus.PUBLISHING],
            status=ProposalStatus.PUBLISHED,
            remote_id=published.remote_id[:255],
            url=published.url,
            published_at=now,
            attempt_started_at=None,
            last_error=None,
        )
        uow.session.refresh(proposal)
        audit(uow, now, None, "proposal.published", proposal, url=published.url)
        shown = "card.published" if published.url else "card.published_no_url"
        self._cards(uow, proposal, now, (shown, {"url": published.url or ""}))
        told = "proposal.told_published" if published.url else "proposal.told_published_no_url"
        tell_author(self.core, uow, proposal, now, told, url=published.url or "")

    def _retry(
        self, uow: UnitOfWork, proposal: Proposal, error: TransientPublishError, now: datetime
    ) -> None:
        uow.proposals.transition(
            proposal.id,
            [ProposalStatus.PUBLISHING],
            status=ProposalStatus.APPROVED,
            next_attempt_at=now + backoff(proposal.attempts, error.retry_after),
            attempt_started_at=None,
            last_error=str(error)[:2000],
        )
        audit(
            uow,
            now,
            None,
            "proposal.publish_retry",
            proposal,
            attempt=proposal.attempts,
            error=str(error),
        )

    def _uncertain(self, uow: UnitOfWork, proposal: Proposal, now: datetime, error: str) -> None:
        uow.proposals.transition(
            proposal.id,
            [ProposalStatus.PUBLISHING],
            status=ProposalStatus.UNCERTAIN,
            last_error=error[:2000],
        )
        uow.session.refresh(proposal)
        audit(uow, now, None, "proposal.publish_uncertain", proposal, error=error)
        self._cards(uow, proposal, now, ("card.uncertain", {"error": error}))
        tell_author(self.core, uow, proposal, now, "proposal.told_uncertain", error=error)
        tell_admins(self.core, uow, proposal, now, "proposal.admin_uncertain", error=error)

    def _failed(self, uow: UnitOfWork, proposal: Proposal, now: datetime, error: str) -> None:
        uow.proposals.transition(
            proposal.id,
            [ProposalStatus.PUBLISHING],
            status=ProposalStatus.FAILED,
            attempt_started_at=None,
            last_error=error[:2000],
        )
        uow.session.refresh(proposal)
        audit(uow, now, None, "proposal.publish_failed", proposal, error=error)
        self._cards(uow, proposal, now, ("card.failed", {"error": error}))
        tell_author(self.core, uow, proposal, now, "proposal.told_failed", error=error)

    def _cards(
        self, uow: UnitOfWork, proposal: Proposal, now: datetime, line: tuple[str, dict[str, Any]]
    ) -> None:
        """The gatekeepers' cards show who approved it and how publishing went."""
        lines: list[tuple[str, dict[str, Any]]] = []
        approved_by = approvers(uow, proposal)
        if approved_by:
            lines.append(("card.approved", {"by": handle_list(approved_by)}))
        lines.append(line)
        show_outcome(self.core, uow, proposal, now, lines, every=True)


def _label(outcome: Outcome) -> str:
    match outcome:
        case Published():
            return "published"
        case TransientPublishError():
            return "transient"
        case UncertainPublishError():
            return "uncertain"
    return "failed"
