"""Figures for the operators' dashboards, read at each scrape of /metrics: feeds that fail
and proposals that wait (the outbox's own are in the outbox repository)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.models import Feed, Proposal, ProposalStatus


@dataclass(frozen=True, slots=True)
class Figures:
    feeds_failing: int
    oldest_failure: datetime | None  # since when the longest-failing feed fails
    proposals_pending: int
    oldest_proposal: datetime | None  # when the longest-waiting one was made or revised


def figures(session: Session) -> Figures:
    failing, since = session.execute(
        select(func.count(), func.min(Feed.failing_since)).where(
            Feed.failing_since.is_not(None), Feed.paused_at.is_(None)
        )
    ).one()
    pending, oldest = session.execute(
        select(func.count(), func.min(Proposal.revised_at)).where(
            Proposal.status == ProposalStatus.PENDING
        )
    ).one()
    return Figures(int(failing), since, int(pending), oldest)
