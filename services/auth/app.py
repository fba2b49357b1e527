from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from quart import Quart

from services.auth.api import authorize, oauth, users, wellknown
from services.auth.config import AuthSettings
from services.auth.csrf import CsrfTokens
from services.auth.devices import DeviceCookies
from services.auth.events import HANDLERS
from services.auth.key_lifecycle import prepare_keys
from services.auth.oauth.bridge import SyncBridge
from services.auth.oauth.server import QuartetAuthorizationServer
from services.auth.oauth.storage import OAuthStorage
from services.auth.passwords import Passwords
from services.auth.runtime import AuthRuntime, AuthState
from services.auth.seed import seed_clients
from services.auth.signing import KeyRing
from services.auth.store import grants
from services.auth.store.keys import service_secret
from services.auth.throttle import LoginThrottle
from services.kit import events
from services.kit.app import ServiceKit, create_service_app, kit_of
from services.kit.client_address import parse_networks
from services.kit.db import Database
from services.kit.events import MIGRATIONS as EVENT_MIGRATIONS
from services.kit.logging import get_logger
from services.kit.migrations import MigrationSource
from services.kit.security import BEARER_SECURITY_SCHEME, install_auth

log = get_logger("auth.app")

MIGRATIONS = [EVENT_MIGRATIONS, MigrationSource("auth", Path(__file__).parent / "migrations")]
JANITOR_INTERVAL_SECONDS = 600


def create_app(settings: AuthSettings) -> Quart:
    state = AuthState(settings)
    app = create_service_app(
        settings,
        state=state,
        blueprints=[users.bp, authorize.bp, oauth.bp, wellknown.bp],
        title="Quartet auth",
        description="OAuth2 authorization server (code + PKCE, refresh, client credentials), users and keys.",
        migrations=MIGRATIONS,
        security_schemes=BEARER_SECURITY_SCHEME,
    )
    kit = kit_of(app)

    async def start(kit: ServiceKit) -> None:
        state.started = await _start_runtime(settings, kit.database)

    async def stop(kit: ServiceKit) -> None:
        rt, state.started = state.started, None
        if rt is not None:
            rt.bridge.close()
            rt.passwords.close()

    kit.on_start.append(start)
    kit.on_stop.append(stop)
    kit.run_in_background("auth-janitor", lambda: _janitor(kit.database, state))
    # The auth service checks its own tokens (GET /auth/me) with the kit verifier, reading
    # the keys from its database instead of over HTTP.
    install_auth(
        app,
        audience=settings.access_token_audience,
        issuer=settings.issuer,
        fetch_jwks=lambda: state.runtime.keys.jwks(),
    )
    events.install(app, handlers=HANDLERS)  # relays user.registered / user.deleted; consumes nothing
    return app


async def _start_runtime(settings: AuthSettings, db: Database) -> AuthRuntime:
    passwords = Passwords(settings)
    await passwords.start()
    keks = settings.key_encryption_keys()
    token_ttl = timedelta(seconds=settings.access_token_ttl_seconds)
    async with db.connection() as conn:
        await prepare_keys(conn, settings.signing_algorithm, keks, token_ttl)  # KeysUnusable: refuse to start
        csrf_key = await service_secret(conn, "login-csrf")
        device_key = await service_secret(conn, "login-device")
    await seed_clients(db, settings, passwords)
    devices = DeviceCookies(device_key, settings.login_device_cookie_days * 86400)
    keys = KeyRing(db, token_ttl, keks)
    bridge = SyncBridge(settings.oauth_threads, settings.oauth_storage_timeout_seconds)
    bridge.bind(asyncio.get_running_loop())
    return AuthRuntime(
        settings=settings,
        db=db,
        passwords=passwords,
        keys=keys,
        bridge=bridge,
        server=QuartetAuthorizationServer(OAuthStorage(bridge, db, keys, passwords, settings)),
        throttle=LoginThrottle(settings, devices),
        csrf=CsrfTokens(csrf_key),
        devices=devices,
        trusted_proxies=parse_networks(settings.trusted_proxies),
    )


async def _janitor(db: Database, state: AuthState) -> None:
    """Forget expired codes, tokens and login counters now and then (bounded tables)."""
    while True:
        await asyncio.sleep(JANITOR_INTERVAL_SECONDS)
        try:
            async with db.transaction() as conn:
                deleted = await grants.delete_expired(conn, timedelta(days=1))
                await state.runtime.throttle.forget_stale(conn)
            log.info("expired grants removed", rows=deleted)
        except Exception as error:  # keep cleaning next time; the service works without it
            log.warning("janitor failed", error=f"{type(error).__name__}: {error}")
