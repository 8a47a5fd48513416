"""Send pacing: token buckets per platform and per conversation.

Before a send the worker asks `acquire`: either the send may go now (its tokens are
taken) or it is told how long until it could. Nothing is reserved in the future, so
a slow conversation (Telegram's one message a second per chat) never holds up the
others, and a platform's overall limit holds however many conversations there are.
A 429 blocks the bucket it hit until its Retry-After has passed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Rate:
    per_second: float
    burst: float = 1.0


@dataclass(frozen=True)
class PlatformLimits:
    overall: Rate | None = None  # across the whole platform (bot or workspace)
    per_dm: Rate | None = None  # each direct chat
    per_room: Rate | None = None  # each group, channel or room


# From the platforms' documented limits (and what a homeserver grants an exempted bot).
DEFAULT_LIMITS: dict[str, PlatformLimits] = {
    "telegram": PlatformLimits(overall=Rate(30, 30), per_dm=Rate(1, 1), per_room=Rate(20 / 60, 3)),
    "slack": PlatformLimits(overall=Rate(20, 20), per_dm=Rate(1, 1), per_room=Rate(1, 1)),
    "matrix": PlatformLimits(overall=Rate(10, 10), per_dm=Rate(5, 5), per_room=Rate(5, 5)),
}


def limits_from_settings(overrides: Mapping[str, Mapping[str, float]]) -> dict[str, PlatformLimits]:
    """`[rate_limits.telegram] overall = 30, per_dm = 1, per_room = 0.33` over the defaults."""
    limits = dict(DEFAULT_LIMITS)
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
    blocked_until: float = field(init=False, default=0.0)

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
        wait = max(missing, self.blocked_until - now)
        return wait if wait > 1e-6 else 0.0

    def take(self) -> None:
        self.tokens -= 1

    def block(self, until: float) -> None:
        self.blocked_until = max(self.blocked_until, until)
        self.tokens = min(self.tokens, 0.0)


class RateLimiter:
    def __init__(
        self,
        limits: Mapping[str, PlatformLimits] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = dict(DEFAULT_LIMITS if limits is None else limits)
        self.clock = clock
        self._overall: dict[str, TokenBucket] = {}
        self._conversations: dict[tuple[str, str, str], TokenBucket] = {}

    def _buckets(self, platform: str, kind: str, conversation: str) -> list[TokenBucket]:
        limits = self.limits.get(platform)
        if limits is None:
            return []
        buckets = []
        if limits.overall is not None:
            bucket = self._overall.get(platform)
            if bucket is None:
                bucket = self._overall[platform] = TokenBucket(limits.overall)
            buckets.append(bucket)
        rate = limits.per_room if kind == "room" else limits.per_dm
        if rate is not None:
            key = (platform, kind, conversation)
            bucket = self._conversations.get(key)
            if bucket is None:
                bucket = self._conversations[key] = TokenBucket(rate)
            buckets.append(bucket)
        return buckets

    def acquire(self, platform: str, kind: str, conversation: str) -> float:
        """0 when a send may go now (and counts it); else the seconds until it could."""
        now = self.clock()
        buckets = self._buckets(platform, kind, conversation)
        wait = max((b.wait(now) for b in buckets), default=0.0)
        if wait == 0.0:
            for bucket in buckets:
                bucket.take()
        return wait

    def penalize(
        self, platform: str, kind: str, conversation: str, retry_after: float, *, overall: bool
    ) -> None:
        """The platform said 429: nothing more to that bucket before Retry-After."""
        until = self.clock() + max(0.0, retry_after)
        buckets = self._buckets(platform, kind, conversation)
        if not overall and len(buckets) > 1:
            buckets = buckets[1:]  # only the conversation's bucket
        for bucket in buckets:
            bucket.block(until)
