"""Token buckets for the gateway's rate limits: the arithmetic, and where the levels live.

Each budget is a bucket of ``burst`` tokens refilled at ``per_second``; taking a token
answers a :class:`Decision` (allowed, and the values of the ``RateLimit-*`` fields).
Buckets live in this process (:class:`MemoryBuckets`) or, with ``REDIS_URL``, in
Redis (:class:`RedisBuckets`) so several gateways share them. When Redis does not
answer in time the request passes (fail open) and a warning is logged: an outage of
the limiter must not become an outage of the suite. :mod:`gateway.ratelimit` decides
which buckets a request takes from.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from services.kit.logging import get_logger

log = get_logger("gateway.ratelimit")


@dataclass(frozen=True)
class Budget:
    name: str
    per_second: float
    burst: int

    @property
    def enabled(self) -> bool:
        return self.per_second > 0


@dataclass(slots=True)  # one per budget per request: slots, and no frozen __setattr__ detour
class Decision:
    """One bucket's answer: whether the request may pass, and the header values."""

    allowed: bool
    limit: int
    remaining: int
    retry_after: float  # seconds until a token is back (0 when allowed)
    reset: float  # seconds until the bucket is full

    def headers(self) -> dict[str, str]:
        fields = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(math.ceil(self.reset)),
        }
        if not self.allowed:
            fields["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return fields


def refill(tokens: float, elapsed: float, budget: Budget) -> tuple[float, Decision]:
    """Take one token from a bucket holding ``tokens`` ``elapsed`` seconds ago: the new level and the answer."""
    tokens = min(float(budget.burst), tokens + max(0.0, elapsed) * budget.per_second)
    allowed = tokens >= 1.0
    if allowed:
        tokens -= 1.0
    retry_after = 0.0 if allowed else (1.0 - tokens) / budget.per_second
    reset = (budget.burst - tokens) / budget.per_second
    return tokens, Decision(allowed, budget.burst, int(tokens), retry_after, reset)


class Buckets(Protocol):
    async def take(self, key: str, budget: Budget) -> Decision: ...

    def take_now(self, key: str, budget: Budget) -> Decision | None:
        """The answer without waiting when the buckets are in this process; ``None``: await :meth:`take`."""
        ...

    async def close(self) -> None: ...


class MemoryBuckets:
    """Buckets in this process. Full buckets are forgotten when the table grows past ``max_keys``."""

    def __init__(self, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._levels: dict[str, tuple[float, float, Budget]] = {}
        self._max_keys = max_keys
        self._clock = clock

    async def take(self, key: str, budget: Budget) -> Decision:
        return self.take_now(key, budget)

    def take_now(self, key: str, budget: Budget) -> Decision:
        now = self._clock()
        tokens, then, _ = self._levels.get(key, (float(budget.burst), now, budget))
        tokens, decision = refill(tokens, now - then, budget)
        self._levels[key] = (tokens, now, budget)
        if len(self._levels) > self._max_keys:
            self._forget_full(now)
        return decision

    def _forget_full(self, now: float) -> None:
        levels = {
            key: (tokens, then, budget)
            for key, (tokens, then, budget) in self._levels.items()
            if tokens + (now - then) * budget.per_second < budget.burst
        }
        if len(levels) > self._max_keys // 2:
            # Still crowded (many clients at once): forget the oldest half rather than
            # sweep the whole table again on the next request. They start afresh: fail open.
            levels = dict(list(levels.items())[len(levels) - self._max_keys // 2 :])
        self._levels = levels

    async def close(self) -> None:
        self._levels.clear()


# The same arithmetic as refill(), atomically in Redis, on Redis's clock (one clock for
# every gateway). KEYS[1] the bucket; ARGV per_second, burst. Returns allowed, tokens*1000.
_TAKE_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return {allowed, math.floor(tokens * 1000)}
"""


class RedisBuckets:
    """Buckets in Redis, shared by every gateway that points at the same ``REDIS_URL``."""

    def __init__(self, url: str, timeout_seconds: float, prefix: str = "quartet:gateway:rl:") -> None:
        import redis.asyncio as redis

        self._redis = redis.Redis.from_url(url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds)
        self._script = self._redis.register_script(_TAKE_SCRIPT)
        self._prefix = prefix
        self._warned_at = float("-inf")

    def take_now(self, key: str, budget: Budget) -> None:
        return None  # a round trip to Redis: always awaited

    async def take(self, key: str, budget: Budget) -> Decision:
        import redis.exceptions

        try:
            allowed, milli_tokens = await self._script(
                keys=[self._prefix + key], args=[budget.per_second, budget.burst]
            )
        except (redis.exceptions.RedisError, OSError, TimeoutError) as error:
            if time.monotonic() - self._warned_at > 10:
                self._warned_at = time.monotonic()
                log.warning("rate limit store unavailable; letting requests pass", error=type(error).__name__)
            return Decision(True, budget.burst, budget.burst, 0.0, 0.0)
        tokens = int(milli_tokens) / 1000
        retry_after = 0.0 if allowed else (1.0 - tokens) / budget.per_second
        return Decision(
            bool(allowed), budget.burst, int(tokens), retry_after, (budget.burst - tokens) / budget.per_second
        )

    async def close(self) -> None:
        await self._redis.aclose()
