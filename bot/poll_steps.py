"""What an anonymous poll's cards show of its tally, in steps, so that no single vote can
be read off two tallies.

Were every vote shown as it came, anyone looking at the poll before and after a
colleague voted (a `show`, or a live card edited right then) would see that vote: the
one count that went up. So an open anonymous poll shows its tally as of its last step:
the first once `poll_anonymous_minimum` people voted, each next one once that many
different people voted (or changed their vote) since. Every change anyone can see then
carries at least that many votes, and the cards are edited only when a step is taken
(before the first: when the number of voters changes). Closing shows the true tally.

The step is kept as a cursor of the poll ("poll:<id>:step"): the tally shown, and the
short voter keys (a prefix of the anonymous key, bot.polls.voter_key) that voted since.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from store.models import Poll
from store.uow import UnitOfWork

if TYPE_CHECKING:
    from bot.core import Core

KEY_PREFIX = 16  # enough to tell the voters of one poll apart


def _name(poll_id: int) -> str:
    return f"poll:{poll_id}:step"


def _step(uow: UnitOfWork, poll_id: int) -> dict[str, Any]:
    raw = uow.cursors.get(_name(poll_id))
    return dict(json.loads(raw)) if raw else {}


def shown_tally(uow: UnitOfWork, poll: Poll) -> tuple[dict[int, int], int, bool]:
    """(votes per option, voters, whether the per-option votes show) as a card shows
    them: a named or closed poll's as they are; an open anonymous poll's as of its last
    step, and before its first only how many voted."""
    per, voters = uow.announcements.tally(poll.id)
    if not poll.anonymous or poll.closed_at is not None:
        return per, voters, True
    step = _step(uow, poll.id)
    if step.get("per") is None:
        return {}, voters, False
    return {int(k): int(v) for k, v in step["per"].items()}, int(step["voters"]), True


def count_vote(core: Core, uow: UnitOfWork, poll: Poll, voter: str, now: datetime) -> str:
    """Counts an anonymous vote (or a change of one) toward the next step. "step": the
    shown tally changed (every card is edited); "voters": no step yet, only the number
    of voters shows (the cards that show it are edited); "": nothing visible changed."""
    step = _step(uow, poll.id)
    recent = set(step.get("recent", [])) | {voter[:KEY_PREFIX]}
    per, voters = uow.announcements.tally(poll.id)
    minimum = core.settings.poll_anonymous_minimum
    if voters >= minimum and len(recent) >= minimum:
        value = {"per": {str(k): v for k, v in per.items()}, "voters": voters, "recent": []}
        uow.cursors.set(_name(poll.id), json.dumps(value), now)
        return "step"
    uow.cursors.set(_name(poll.id), json.dumps({**step, "recent": sorted(recent)}), now)
    return "" if step.get("per") is not None else "voters"


def forget(uow: UnitOfWork, poll_id: int) -> None:
    """The poll closed: its true tally shows; the steps are not needed any more."""
    uow.cursors.delete(_name(poll_id))
