"""Matrix's native polls, the pure part: the start event Pinwall sends, and the responses it
reads in either form (unstable, as Element sends them; stable m.poll.response)."""

from __future__ import annotations

from typing import Any

from adapters.matrix import polls
from adapters.matrix.inbound import Me, RoomView, translate

ME = Me(user_id="@pinwall:example.org", member_servers=frozenset({"example.org"}))
DM = RoomView(room_id="!dm:example.org", direct_with="@ann:example.org")
NATIVE = {
    "question": "Which date?",
    "options": ["12.1.", "19.1.", "26.1."],
    "max": 3,
    "anonymous": False,
    "open": True,
    "value": "7",
    "action": "poll.choose",
}


def response(kind: str, content: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": kind,
        "sender": "@ann:example.org",
        "event_id": "$r1",
        "origin_server_ts": 1_700_000_000_000,
        "content": {"m.relates_to": {"rel_type": "m.reference", "event_id": "$start"}, **content},
    }


def test_the_start_event_of_a_multiple_choice_poll() -> None:
    content = polls.start_content(NATIVE)
    start = content[polls.START_TYPE]
    assert start["max_selections"] == 3
    assert start["kind"] == polls.DISCLOSED
    assert [a["id"] for a in start["answers"]] == ["1", "2", "3"]
    assert content[polls.TEXT] == "Which date?\n1. 12.1.\n2. 19.1.\n3. 26.1."
    anonymous = polls.start_content({**NATIVE, "anonymous": True, "max": 1})
    assert anonymous[polls.START_TYPE]["kind"] == polls.UNDISCLOSED
    assert anonymous[polls.START_TYPE]["max_selections"] == 1


def test_where_a_native_poll_goes() -> None:
    assert polls.wanted(NATIVE, direct=False)
    assert polls.wanted({**NATIVE, "anonymous": True}, direct=True)
    assert not polls.wanted({**NATIVE, "anonymous": True}, direct=False)  # a room sees answers
    assert not polls.wanted({**NATIVE, "open": False}, direct=True)


def test_responses_of_either_form_are_read() -> None:
    unstable = response(
        "org.matrix.msc3381.poll.response",
        {"org.matrix.msc3381.poll.response": {"answers": ["2", "3"]}},
    )
    stable = response("m.poll.response", {"m.selections": ["1"]})
    for raw, answers in ((unstable, ("2", "3")), (stable, ("1",))):
        inbound = translate(raw, DM, ME)
        assert inbound is not None
        assert inbound.poll_response == ("$start", answers)
        assert inbound.event() is None  # nothing, unless it answers one of Pinwall's polls
    assert polls.selection_value("7", ("2", "3")) == "7:1,2"
    assert polls.selection_value("7", ()) == "7:"  # the vote taken back


def test_malformed_responses_are_nothing() -> None:
    assert translate(response("m.poll.response", {"m.selections": "1"}), DM, ME) is None
    no_reference = response("m.poll.response", {"m.selections": ["1"]})
    no_reference["content"]["m.relates_to"] = {"rel_type": "m.annotation", "event_id": "$s"}
    assert translate(no_reference, DM, ME) is None
    assert polls.selection_value("7", ("pizza",)) is None
    assert polls.selection_value("7", ("0",)) is None
