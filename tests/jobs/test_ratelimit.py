"""Send pacing with a fake monotonic clock."""

from __future__ import annotations

import pytest

from app.messengers import MESSENGERS, default_limits
from jobs.ratelimit import PlatformLimits, Rate, RateLimiter, limits_from_settings


class Ticker:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_per_conversation_limit_does_not_hold_up_other_conversations() -> None:
    t = Ticker()
    rl = RateLimiter({"tg": PlatformLimits(overall=Rate(30, 30), per_dm=Rate(1, 1))}, t)
    assert rl.acquire("tg", "dm", "a") == 0
    assert rl.acquire("tg", "dm", "a") == pytest.approx(1.0)
    assert rl.acquire("tg", "dm", "b") == 0  # another chat goes at once
    t.now += 0.5
    assert rl.acquire("tg", "dm", "a") == pytest.approx(0.5)
    t.now += 0.5
    assert rl.acquire("tg", "dm", "a") == 0


def test_overall_limit_paces_many_conversations() -> None:
    t = Ticker()
    rl = RateLimiter({"tg": PlatformLimits(overall=Rate(30, 30), per_dm=Rate(1, 1))}, t)
    sent_at = []
    pending = [f"chat{i}" for i in range(90)]
    while pending:  # what the worker does: send what may go, else wait as told
        wait = rl.acquire("tg", "dm", pending[0])
        if wait:
            t.now += wait
        else:
            sent_at.append(t.now)
            pending.pop(0)
    assert sent_at[29] == 1000.0  # the burst
    assert sent_at[59] == pytest.approx(1001.0)
    assert sent_at[89] == pytest.approx(1002.0)  # then 30 a second


def test_group_limit_of_twenty_a_minute() -> None:
    t = Ticker()
    rl = RateLimiter({"tg": PlatformLimits(per_room=Rate(20 / 60, 1))}, t)
    assert rl.acquire("tg", "room", "g") == 0
    assert rl.acquire("tg", "room", "g") == pytest.approx(3.0)


def test_retry_after_blocks_until_then() -> None:
    t = Ticker()
    rl = RateLimiter({"slack": PlatformLimits(overall=Rate(20, 20), per_room=Rate(1, 1))}, t)
    rl.penalize("slack", "room", "C1", 7.5, overall=False)
    assert rl.acquire("slack", "room", "C1") == pytest.approx(7.5)
    assert rl.acquire("slack", "room", "C2") == 0
    rl.penalize("slack", "room", "C2", 3, overall=True)
    assert rl.acquire("slack", "room", "C3") == pytest.approx(3.0)
    t.now += 10
    assert rl.acquire("slack", "room", "C4") == 0


def test_a_platform_wide_429_pauses_the_platform_also_without_an_overall_limit() -> None:
    """`[rate_limits.matrix] overall = 0`: Matrix's M_LIMIT_EXCEEDED still pauses it all."""
    t = Ticker()
    rl = RateLimiter(
        limits_from_settings(default_limits(MESSENGERS), {"matrix": {"overall": 0}}), t
    )
    rl.penalize("matrix", "room", "!a", 4, overall=True)
    assert rl.acquire("matrix", "room", "!b") == pytest.approx(4.0)
    assert rl.acquire("matrix", "dm", "!c") == pytest.approx(4.0)
    assert rl.acquire("slack", "room", "C1") == 0  # another platform goes on
    t.now += 4
    assert rl.acquire("matrix", "room", "!b") == 0


def test_a_conversations_429_pauses_only_it_also_without_a_per_conversation_limit() -> None:
    t = Ticker()
    rl = RateLimiter({"tg": PlatformLimits(overall=Rate(30, 30))}, t)
    rl.penalize("tg", "dm", "a", 5, overall=False)
    assert rl.acquire("tg", "dm", "a") == pytest.approx(5.0)
    assert rl.acquire("tg", "dm", "b") == 0  # the others are not held up
    t.now += 5
    assert rl.acquire("tg", "dm", "a") == 0


def test_unknown_platforms_are_unlimited_and_settings_override() -> None:
    overrides = {"matrix": {"overall": 50}, "slack": {"per_room": 0}}
    rl = RateLimiter(limits_from_settings(default_limits(MESSENGERS), overrides))
    assert all(rl.acquire("console", "dm", "x") == 0 for _ in range(100))
    assert rl.limits["matrix"].overall == Rate(50, 50)
    assert rl.limits["slack"].per_room is None
