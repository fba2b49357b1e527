"""What browsers need from the edge: CORS for the allowed origins, and security headers.

CORS: a preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``)
is answered here and never forwarded: 204 with the allowed methods and headers for
an origin in ``CORS_ORIGINS``, 403 problem+json for any other. Actual requests from
an allowed origin get ``Access-Control-Allow-Origin`` (that origin, with ``Vary:
Origin``) and the response headers a client may read. No credentials mode: the API
takes bearer tokens, not cookies.

Security headers on every answer: ``X-Content-Type-Options: nosniff``,
``Referrer-Policy``, ``X-Frame-Options: DENY``, and a Content-Security-Policy with
``frame-ancestors 'none'`` — strict (``default-src 'none'``) for API answers, the
app's own files only for ``/app/``, and the kit's ``DOCS_CSP`` (own files only, no
eval) for ``/docs`` and below. A service that sets its own CSP (the auth login form)
keeps it. HSTS when the request came over https (here, or at a trusted proxy that
says so in ``X-Forwarded-Proto``).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.config import GatewaySettings
from services.kit.client_address import in_networks, parse_networks
from services.kit.docs import DOCS_CSP
from services.kit.problem import Problem

ALLOWED_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
ALLOWED_HEADERS = frozenset(
    {"authorization", "content-type", "idempotency-key", "if-match", "if-none-match", "x-request-id"}
    | {"traceparent", "tracestate"}  # W3C Trace Context from a traced SPA on another origin
)
EXPOSED_HEADERS = (
    "ETag, Location, Retry-After, X-Request-ID, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, traceresponse"
)

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"


def app_csp(connect_origins: Iterable[str] = ()) -> str:
    """The SPA's CSP; ``connect_origins`` are other regions' gateways the diagnostics page pings."""
    connect = " ".join(["'self'", *sorted(set(connect_origins))])
    return (
        f"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src {connect}; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


APP_CSP = app_csp()
HSTS = "max-age=31536000; includeSubDomains"


def _is_preflight(request: web.Request) -> bool:
    return request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers


class Browser:
    def __init__(self, settings: GatewaySettings) -> None:
        self._origins = frozenset(settings.cors_origins)
        self._max_age = str(settings.cors_max_age_seconds)
        region_origins = (urlsplit(r["url"]) for r in settings.ping_region_list())
        self._app_csp = app_csp(f"{u.scheme}://{u.netloc}" for u in region_origins if u.scheme)
        self._trusted = parse_networks(settings.trusted_proxies)

    def _over_https(self, request: web.Request) -> bool:
        """TLS here, or at a trusted proxy in front that says so."""
        if request.secure:
            return True
        if not self._trusted:
            return False  # nobody's X-Forwarded-Proto is believed
        forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        return forwarded == "https" and request.remote is not None and in_networks(request.remote, self._trusted)

    def cors(self) -> Middleware:
        @web.middleware
        async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
            origin = request.headers.get("Origin")
            if origin is None:
                return await handler(request)
            if _is_preflight(request):
                return self._preflight(request, origin)
            return await handler(request)

        return cors

    def _preflight(self, request: web.Request, origin: str) -> web.Response:
        if origin not in self._origins:
            raise Problem(403, "this origin may not call the API", headers={"Vary": "Origin"})
        asked = request.headers.get("Access-Control-Request-Headers", "")
        wanted = {name.strip().lower() for name in asked.split(",") if name.strip()}
        if not wanted <= ALLOWED_HEADERS:
            raise Problem(403, "a requested header is not allowed", headers={"Vary": "Origin"})
        method = request.headers["Access-Control-Request-Method"].upper()
        if method not in ALLOWED_METHODS.split(", "):
            raise Problem(403, "the requested method is not allowed", headers={"Vary": "Origin"})
        headers = {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": ALLOWED_METHODS,
            "Access-Control-Max-Age": self._max_age,
            "Vary": "Origin",
        }
        if wanted:
            headers["Access-Control-Allow-Headers"] = ", ".join(sorted(wanted))
        return web.Response(status=204, headers=headers)

    def add_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        """Before a response is sent: CORS fields for allowed origins, security headers for everyone."""
        headers = response.headers
        origin = request.headers.get("Origin")
        if origin is not None and not _is_preflight(request):
            # The gateway alone speaks CORS for the suite: whatever a service said is replaced.
            headers.popall("Access-Control-Allow-Origin", None)
            if origin in self._origins:
                headers["Access-Control-Allow-Origin"] = origin
                headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
                vary = headers.get("Vary")
                headers["Vary"] = f"{vary}, Origin" if vary and "origin" not in vary.lower() else vary or "Origin"
        # A name without versions: else aiohttp adds "Python/3.x aiohttp/3.y" (the services send none).
        headers["Server"] = "quartet"
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("X-Frame-Options", "DENY")
        path = request.path
        if path == "/app" or path.startswith("/app/"):
            headers["Content-Security-Policy"] = self._app_csp
        elif path == "/docs" or path.startswith("/docs/"):
            headers["Content-Security-Policy"] = DOCS_CSP
        else:
            headers.setdefault("Content-Security-Policy", API_CSP)
        if self._over_https(request):
            headers.setdefault("Strict-Transport-Security", HSTS)
