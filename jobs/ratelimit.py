"""Send pacing: token buckets per platform and per conversation.

Before a send the worker asks `acquire`: either the send may go now (its tokens are
taken) or it is told how long until it could. Nothing is reserved in the future, so
a slow conversation (Telegram's one message a second per chat) never holds up the
others, and a platform's overall limit holds however many conversations there are.
A 429 pauses what it hit — the conversation, or the whole platform when the platform
says so — until its Retry-After has passed, also where that limit is switched off.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from bot.messenger import PlatformLimits, Rate


def limits_from_settings(
    defaults: Mapping[str, PlatformLimits], overrides: Mapping[str, Mapping[str, float]]
) -> dict[str, PlatformLimits]:
    """`[rate_limits.telegram] overall = 30, per_dm = 1, per_room = 0.33` over the
    messengers' own limits (their descriptors' `rate_limits`)."""
    limits = dict(defaults)
    for platform, values in overrides.items():
        base = limits.get(platform, PlatformLimits())

        def rate(
            key: str, current: Rate | None, values: Mapping[str, float] = values
        ) -> Rate | None:
            if key not in values:
                return current
            per_second = float(values[key])
            if per_second <= 0:
                return None  # 0 switches the limit off
            return Rate(per_second, max(1.0, float(values.get(f"{key}_burst", per_second))))

        limits[platform] = PlatformLimits(
            overall=rate("overall", base.overall),
            per_dm=rate("per_dm", base.per_dm),
            per_room=rate("per_room", base.per_room),
        )
    return limits


@dataclass
class TokenBucket:
    rate: Rate
    tokens: float = field(init=False)
    updated: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.tokens = self.rate.burst
        self.updated = -1.0  # set on first use

    def _refill(self, now: float) -> None:
        if self.updated < 0:
            self.updated = now
        elif now > self.updated:
            self.tokens = min(
                self.rate.burst, self.tokens + (now - self.updated) * self.rate.per_second
            )
            self.updated = now

    def wait(self, now: float) -> float:
        """Seconds until a token is there (0: now)."""
        self._refill(now)
        # The epsilon keeps float dust from yielding waits too small to pass on a clock.
        missing = 0.0 if self.tokens >= 1 - 1e-9 else (1 - self.tokens) / self.rate.per_second
        return missing if missing > 1e-6 else 0.0

    def take(self) -> None:
        self.tokens -= 1


class RateLimiter:
    def __init__(
        self,
        limits: Mapping[str, PlatformLimits] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # By platform; one not named here is not paced (app.wiring.rate_limits gives the
        # messengers' own).
        self.limits = dict(limits or {})
        self.clock = clock
        self._overall: dict[str, TokenBucket] = {}
        self._conversations: dict[tuple[str, str, str], TokenBucket] = {}
        # Paused by a 429 until then: a platform, or one conversation of it.
        self._paused: dict[str | tuple[str, str, str], float] = {}

    def _overall_bucket(self, platform: str) -> TokenBucket | None:
        limits = self.limits.get(platform)
        if limits is None or limits.overall is None:
            return None
        bucket = self._overall.get(platform)
        if bucket is None:
            bucket = self._overall[platform] = TokenBucket(limits.overall)
        return bucket

    def _conversation_bucket(self, key: tuple[str, str, str]) -> TokenBucket | None:
        limits = self.limits.get(key[0])
        rate = None if limits is None else limits.per_room if key[1] == "room" else limits.per_dm
        if rate is None:
            return None
        bucket = self._conversations.get(key)
        if bucket is None:
            bucket = self._conversations[key] = TokenBucket(rate)
        return bucket

    def _pause_left(self, key: str | tuple[str, str, str], now: float) -> float:
        until = self._paused.get(key)
        if until is None:
            return 0.0
        if until <= now:
            del self._paused[key]
            return 0.0
        return until - now

    def acquire(self, platform: str, kind: str, conversation: str) -> float:
        """0 when a send may go now (and counts it); else the seconds until it could."""
        now = self.clock()
        key = (platform, kind, conversation)
        paused = max(self._pause_left(platform, now), self._pause_left(key, now))
        if paused > 1e-6:
            return paused
        buckets = [b for b in (self._overall_bucket(platform), self._conversation_bucket(key)) if b]
        wait = max((b.wait(now) for b in buckets), default=0.0)
        if wait == 0.0:
            for bucket in buckets:
                bucket.take()
        return wait

    def penalize(
        self, platform: str, kind: str, conversation: str, retry_after: float, *, overall: bool
    ) -> None:
        """The platform said 429: nothing more to the conversation (`overall`: to the whole
        platform) before Retry-After."""
        if platform not in self.limits:
            return  # unpaced (in-process: console, memory): the message's retry time holds it
        until = self.clock() + max(0.0, retry_after)
        key = (platform, kind, conversation)
        paused: str | tuple[str, str, str] = platform if overall else key
        self._paused[paused] = max(self._paused.get(paused, 0.0), until)


__all__ = ["PlatformLimits", "Rate", "RateLimiter", "TokenBucket", "limits_from_settings"]
