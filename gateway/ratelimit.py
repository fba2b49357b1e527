"""Rate limits at the edge: token buckets per client address, per token subject, and for logins.

Besides requests per second, requests *in flight* are capped per client address and
per token subject (:class:`gateway.bulkheads.ClientSlots`, 429 with ``Retry-After``):
the slot is held until the answer is sent, the time a dribbled body takes included.

Each budget is a bucket of ``burst`` tokens refilled at ``per_second``; a request
takes one token from every bucket that applies, and is answered 429 problem+json
when one is empty, with ``Retry-After`` (seconds until a token is back) and the
draft IETF fields ``RateLimit-Limit``, ``RateLimit-Remaining`` and
``RateLimit-Reset`` (seconds until the bucket is full). Answers that pass carry
the same three fields, for the tightest bucket they went through.

Buckets live in this process (:class:`MemoryBuckets`) or, with ``REDIS_URL``, in
Redis (:class:`RedisBuckets`) so several gateways share them. When Redis does not
answer in time the request passes (fail open) and a warning is logged: an outage of
the limiter must not become an outage of the suite.

The client address is the kit's :func:`~services.kit.client_address.client_address`
(the peer's, or behind ``TRUSTED_PROXIES`` the rightmost ``X-Forwarded-For`` entry that
is not a trusted proxy; malformed entries ignored), and buckets are keyed by its
:func:`~services.kit.client_address.throttle_key`: an IPv6 client spends its /64's
budget, so rotating through the addresses of one prefix buys no fresh bucket.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.bulkheads import ClientSlots
from gateway.config import GatewaySettings
from gateway.middleware import EXCHANGE
from services.kit.client_address import client_address, in_networks, parse_networks, throttle_key
from services.kit.logging import get_logger
from services.kit.problem import Problem

log = get_logger("gateway.ratelimit")

# The gateway's own endpoints: probes and scrapers are never throttled.
UNLIMITED_PATHS = frozenset({"/healthz", "/readyz"})
# POSTs here take a token from the stricter login budget too: they check credentials
# (token, authorize, introspect, revoke) or cost a 64 MiB argon2 hash (register).
LOGIN_PATHS = frozenset({"/auth/token", "/auth/authorize", "/auth/register", "/auth/revoke", "/auth/introspect"})


def is_login_path(path: str) -> bool:
    """``path`` is one of LOGIN_PATHS, also when spelt with empty segments or a trailing slash."""
    return "/" + "/".join(segment for segment in path.split("/") if segment) in LOGIN_PATHS


@dataclass(frozen=True)
class Budget:
    name: str
    per_second: float
    burst: int

    @property
    def enabled(self) -> bool:
        return self.per_second > 0


@dataclass(frozen=True)
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

    async def close(self) -> None: ...


class MemoryBuckets:
    """Buckets in this process. Full buckets are forgotten when the table grows past ``max_keys``."""

    def __init__(self, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._levels: dict[str, tuple[float, float, Budget]] = {}
        self._max_keys = max_keys
        self._clock = clock

    async def take(self, key: str, budget: Budget) -> Decision:
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


# The answer of the tightest bucket a request went through, for its response headers.
_TIGHTEST = web.RequestKey("rate_limit_decision", Decision)


class RateLimiter:
    """The budgets from settings, their buckets, and the two middlewares that apply them."""

    def __init__(self, settings: GatewaySettings, buckets: Buckets) -> None:
        self.buckets = buckets
        self.address = Budget("address", settings.rate_limit_address_per_second, settings.rate_limit_address_burst)
        self.subject = Budget("subject", settings.rate_limit_subject_per_second, settings.rate_limit_subject_burst)
        self.login = Budget("login", settings.rate_limit_login_per_second, settings.rate_limit_login_burst)
        self._trusted = parse_networks(settings.trusted_proxies)
        self._exempt = parse_networks(settings.rate_limit_exempt)
        # Requests in flight, besides requests per second: a few slow ones cost more than many fast ones.
        self.address_slots = ClientSlots("client address", settings.in_flight_per_address)
        self.subject_slots = ClientSlots("token subject", settings.in_flight_per_subject)

    async def _take(self, request: web.Request, key: str, budget: Budget) -> None:
        """Take a token; remember the tightest answer for the response headers; raise 429 when empty."""
        decision = await self.buckets.take(f"{budget.name}:{key}", budget)
        tightest = request.get(_TIGHTEST)
        if tightest is None or decision.remaining * tightest.limit < tightest.remaining * decision.limit:
            request[_TIGHTEST] = decision
        if not decision.allowed:
            request[EXCHANGE].limited = budget.name
            raise Problem(429, f"too many requests ({budget.name} budget); retry later", headers=decision.headers())

    def by_address(self, on_limited: Callable[[str], None]) -> Middleware:
        """Per client address, and the stricter login budget; before the token check."""

        @web.middleware
        async def rate_limit_address(request: web.Request, handler: Handler) -> web.StreamResponse:
            exchange = request[EXCHANGE]
            exchange.client = client_address(
                request.remote, request.headers.getall("X-Forwarded-For", ()), self._trusted
            )
            if request.path in UNLIMITED_PATHS or in_networks(exchange.client, self._exempt):
                return await handler(request)
            key = throttle_key(exchange.client)
            with contextlib.ExitStack() as held:
                try:
                    if self.address.enabled:
                        await self._take(request, key, self.address)
                    if self.login.enabled and request.method == "POST" and is_login_path(request.path):
                        await self._take(request, key, self.login)
                    if self.address_slots.enabled:
                        exchange.limited = "in_flight_address"  # unless the slot is granted
                        held.enter_context(self.address_slots.hold(key))
                        exchange.limited = ""
                except Problem:
                    on_limited(exchange.limited)
                    raise
                return await handler(request)

        return rate_limit_address

    def by_subject(self, on_limited: Callable[[str], None]) -> Middleware:
        """Per token subject, once the edge check has verified one; after the token check."""

        @web.middleware
        async def rate_limit_subject(request: web.Request, handler: Handler) -> web.StreamResponse:
            exchange = request[EXCHANGE]
            if not exchange.subject or in_networks(exchange.client, self._exempt):
                return await handler(request)
            with contextlib.ExitStack() as held:
                try:
                    if self.subject.enabled:
                        await self._take(request, exchange.subject, self.subject)
                    if self.subject_slots.enabled:
                        exchange.limited = "in_flight_subject"  # unless the slot is granted
                        held.enter_context(self.subject_slots.hold(exchange.subject))
                        exchange.limited = ""
                except Problem:
                    on_limited(exchange.limited)
                    raise
                return await handler(request)

        return rate_limit_subject


async def add_rate_limit_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the tightest bucket's fields on every answer that took a token."""
    decision = request.get(_TIGHTEST)
    if decision is not None:
        response.headers.update(decision.headers())
