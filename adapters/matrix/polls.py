"""Matrix's native polls (MSC3381) as Pinwall sends and reads them. No I/O here.

A poll card goes to Matrix as the text card every client shows (the tally, edited in
place; answered with a number or a keycap reaction) and, beside it, a native poll that
clients with polls (Element and others) show with their own vote buttons. Pinwall sends
the unstable `org.matrix.msc3381.poll.start` / `.end` events, as Element does: the stable
`m.poll.*` types belong to room versions with extensible events, which no stable room
version has yet. It reads responses of either form: the unstable
`org.matrix.msc3381.poll.response` ({"answers": [...]}) and the stable `m.poll.response`
(`m.selections`, or MSC3381 v2's `org.matrix.msc3381.v2.selections`).

An answer's id is its option's number ("1", "2", ...); a response carries the whole
selection, which the core's CHOOSE action takes as it is (none: the vote taken back).
An anonymous poll is native only in a direct chat (in a room everyone would see who
answered what), and there the bot redacts each answer once it is counted (sync.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

START_TYPE = "org.matrix.msc3381.poll.start"
END_TYPE = "org.matrix.msc3381.poll.end"
RESPONSE_TYPES = ("org.matrix.msc3381.poll.response", "m.poll.response")
TEXT = "org.matrix.msc1767.text"
DISCLOSED = "org.matrix.msc3381.poll.disclosed"
UNDISCLOSED = "org.matrix.msc3381.poll.undisclosed"
MAX_ANSWERS = 20  # MSC3381: clients show at most 20 answers
# Kept with an anonymous poll's card among its choices (no reaction or number presses
# it): an answer to the card, a keycap reaction or a number, is taken back once counted
# or refused (sync.py), as a native answer is.
ANONYMOUS_CARD = {
    "number": -1,
    "key": None,
    "label": "",
    "action": "",
    "value": "",
    "anonymous": True,
}


def native_of(meta: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The card's poll as the core describes it (bot.polls.poll_message), or None."""
    native = meta.get("native_poll")
    return native if isinstance(native, Mapping) else None


def wanted(native: Mapping[str, Any], direct: bool) -> bool:
    """Whether this copy gets a native poll: an open poll, where answering natively tells
    no one else who voted what (an anonymous poll: only a direct chat), and not a mere
    look at it (`show`: "view"), which would start a second poll beside the first."""
    if native.get("view"):
        return False
    return bool(native.get("open")) and (direct or not native.get("anonymous"))


def fallback_text(native: Mapping[str, Any]) -> str:
    options = [str(o) for o in native.get("options", [])]
    lines = [str(native.get("question", ""))]
    lines += [f"{i}. {option}" for i, option in enumerate(options, 1)]
    return "\n".join(lines)


def start_content(native: Mapping[str, Any]) -> dict[str, Any]:
    """An `org.matrix.msc3381.poll.start` event's content, with its text fallback."""
    options = [str(o) for o in native.get("options", [])][:MAX_ANSWERS]
    maximum = int(native.get("max", 1) or 1)
    return {
        START_TYPE: {
            "question": {TEXT: str(native.get("question", ""))},
            # An anonymous poll's results show in Pinwall's card once enough voted; the
            # client shows them only when the poll ends.
            "kind": UNDISCLOSED if native.get("anonymous") else DISCLOSED,
            "max_selections": min(maximum, len(options)),
            "answers": [{"id": str(i), TEXT: option} for i, option in enumerate(options, 1)],
        },
        TEXT: fallback_text(native),
    }


def end_content(start_event_id: str, text: str) -> dict[str, Any]:
    """Ends the native poll (`org.matrix.msc3381.poll.end`), referencing its start."""
    return {
        "m.relates_to": {"rel_type": "m.reference", "event_id": start_event_id},
        END_TYPE: {},
        TEXT: text,
    }


def response_of(kind: str, content: Mapping[str, Any]) -> tuple[str, tuple[str, ...]] | None:
    """(the poll's start event, the answer ids chosen) of a poll response, else None."""
    if kind not in RESPONSE_TYPES:
        return None
    relates = content.get("m.relates_to")
    if not isinstance(relates, Mapping) or relates.get("rel_type") != "m.reference":
        return None
    start = relates.get("event_id")
    if not isinstance(start, str):
        return None
    answers: Any = None
    unstable = content.get("org.matrix.msc3381.poll.response")
    if isinstance(unstable, Mapping):
        answers = unstable.get("answers")
    for key in ("m.selections", "org.matrix.msc3381.v2.selections"):
        if answers is None and key in content:
            answers = content.get(key)
    if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
        return None
    return start, tuple(answers)


def selection_value(poll_value: str, answers: tuple[str, ...]) -> str | None:
    """The core's CHOOSE value ("<poll>:0,2") of a response's answer ids; None when one
    is not an answer Pinwall gave (the core checks the range)."""
    if not all(a.isdigit() and 1 <= int(a) <= MAX_ANSWERS for a in answers):
        return None
    return f"{poll_value}:" + ",".join(str(int(a) - 1) for a in answers)
