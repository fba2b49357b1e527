"""Rate limits at the edge: token buckets per client address, per token subject, and for logins.

Which budgets a path takes from is its route's (:func:`gateway.routing.budget_for`):
the address budget, the login budget too for a POST to a login route, none for the
probes.

Besides requests per second, requests *in flight* are capped per client address and
per token subject (:class:`gateway.bulkheads.ClientSlots`, 429 with ``Retry-After``):
the slot is held until the answer is sent, the time a dribbled body takes included.

Each budget is a bucket of ``burst`` tokens refilled at ``per_second``; a request
takes one token from every bucket that applies, and is answered 429 problem+json
when one is empty, with ``Retry-After`` (seconds until a token is back) and the
draft IETF fields ``RateLimit-Limit``, ``RateLimit-Remaining`` and
``RateLimit-Reset`` (seconds until the bucket is full). Answers that pass carry
the same three fields, for the tightest bucket they went through.

The buckets themselves, in this process or shared in Redis, are :mod:`gateway.buckets`.

The client address is the kit's :func:`~services.kit.client_address.client_address`
(the peer's, or behind ``TRUSTED_PROXIES`` the rightmost ``X-Forwarded-For`` entry that
is not a trusted proxy; malformed entries ignored), and buckets are keyed by its
:func:`~services.kit.client_address.throttle_key`: an IPv6 client spends its /64's
budget, so rotating through the addresses of one prefix buys no fresh bucket.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.buckets import Buckets, Budget, Decision
from gateway.bulkheads import ClientSlots
from gateway.config import GatewaySettings
from gateway.middleware import EXCHANGE
from gateway.routing import RateBudget, budget_for
from services.kit.client_address import client_address, in_networks, parse_networks, throttle_key
from services.kit.problem import Problem

# The answer of the tightest bucket a request went through, for its response headers.
_TIGHTEST = web.RequestKey("rate_limit_decision", Decision)


# Client identities remembered (peer and X-Forwarded-For → address, bucket key, exemption).
# Past this many the memo starts afresh: a client rotating forged headers only costs itself
# the parse it would have cost anyway.
_IDENTITY_MEMO_SIZE = 4096


@dataclass(frozen=True)
class ClientIdentity:
    """Who a request comes from, for the budgets: its address, the key it spends, whether it is exempt."""

    address: str
    key: str
    exempt: bool


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
        self._identities: dict[tuple[str | None, tuple[str, ...]], ClientIdentity] = {}

    def identify(self, request: web.Request) -> ClientIdentity:
        """The request's :class:`ClientIdentity`; parsed once per peer (and forwarded chain), then remembered.

        Without trusted proxies ``X-Forwarded-For`` is never read, so it is not part of the key.
        """
        peer = request.remote
        forwarded: tuple[str, ...] = ()
        if self._trusted and "X-Forwarded-For" in request.headers:
            forwarded = tuple(request.headers.getall("X-Forwarded-For"))
        identity = self._identities.get((peer, forwarded))
        if identity is None:
            address = client_address(peer, forwarded, self._trusted)
            identity = ClientIdentity(address, throttle_key(address), in_networks(address, self._exempt))
            if len(self._identities) >= _IDENTITY_MEMO_SIZE:
                self._identities.clear()
            self._identities[(peer, forwarded)] = identity
        return identity

    async def _take(self, request: web.Request, key: str, budget: Budget) -> None:
        """Take a token; remember the tightest answer for the response headers; raise 429 when empty."""
        # In-process buckets answer at once: no coroutine per budget on the hot path.
        decision = self.buckets.take_now(key, budget) or await self.buckets.take(key, budget)
        tightest = request.get(_TIGHTEST)
        if tightest is None or decision.remaining * tightest.limit < tightest.remaining * decision.limit:
            request[_TIGHTEST] = decision
        if not decision.allowed:
            request[EXCHANGE].limited = budget.name
            raise Problem(429, f"too many requests ({budget.name} budget); retry later", headers=decision.headers())

    def by_address(self, on_limited: Callable[[str], None]) -> Middleware:
        """Per client address, and the stricter login budget; before the token check."""
        address_key = f"{self.address.name}:"
        login_key = f"{self.login.name}:"

        @web.middleware
        async def rate_limit_address(request: web.Request, handler: Handler) -> web.StreamResponse:
            exchange = request[EXCHANGE]
            identity = self.identify(request)
            exchange.client = identity.address
            budget = budget_for(request.path)  # the route's, from gateway.routing.TABLE
            if budget is RateBudget.EXEMPT or identity.exempt:
                return await handler(request)
            key = identity.key
            slot = False
            try:
                if self.address.enabled:
                    await self._take(request, address_key + key, self.address)
                if self.login.enabled and request.method == "POST" and budget is RateBudget.LOGIN:
                    await self._take(request, login_key + key, self.login)
                if self.address_slots.enabled:
                    exchange.limited = "in_flight_address"  # unless the slot is granted
                    self.address_slots.acquire(key)
                    slot = True
                    exchange.limited = ""
            except Problem:
                on_limited(exchange.limited)
                raise
            try:
                return await handler(request)
            finally:
                if slot:
                    self.address_slots.release(key)

        return rate_limit_address

    def by_subject(self, on_limited: Callable[[str], None]) -> Middleware:
        """Per token subject, once the edge check has verified one; after the token check."""
        subject_key = f"{self.subject.name}:"

        @web.middleware
        async def rate_limit_subject(request: web.Request, handler: Handler) -> web.StreamResponse:
            exchange = request[EXCHANGE]
            subject = exchange.subject
            if not subject or self.identify(request).exempt:
                return await handler(request)
            slot = False
            try:
                if self.subject.enabled:
                    await self._take(request, subject_key + subject, self.subject)
                if self.subject_slots.enabled:
                    exchange.limited = "in_flight_subject"  # unless the slot is granted
                    self.subject_slots.acquire(subject)
                    slot = True
                    exchange.limited = ""
            except Problem:
                on_limited(exchange.limited)
                raise
            try:
                return await handler(request)
            finally:
                if slot:
                    self.subject_slots.release(subject)

        return rate_limit_subject


def add_rate_limit_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Before a response is sent: the tightest bucket's fields on every answer that took a token."""
    decision = request.get(_TIGHTEST)
    if decision is not None:
        response.headers.update(decision.headers())
