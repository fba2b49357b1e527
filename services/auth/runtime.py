"""The auth service's working parts, built at start and attached to the app (``kit.extras["auth"]``)."""

from __future__ import annotations

from dataclasses import dataclass

from services.auth.config import AuthSettings
from services.auth.csrf import CsrfTokens
from services.auth.devices import DeviceCookies
from services.auth.oauth.bridge import SyncBridge
from services.auth.oauth.server import QuartetAuthorizationServer
from services.auth.passwords import Passwords
from services.auth.signing import KeyRing
from services.auth.throttle import LoginThrottle
from services.kit.app import current_kit
from services.kit.client_address import Network
from services.kit.db import Database

RUNTIME_KEY = "auth"


@dataclass
class AuthRuntime:
    settings: AuthSettings
    db: Database
    passwords: Passwords
    keys: KeyRing
    bridge: SyncBridge
    server: QuartetAuthorizationServer
    throttle: LoginThrottle
    csrf: CsrfTokens
    devices: DeviceCookies
    trusted_proxies: tuple[Network, ...]


def runtime() -> AuthRuntime:
    found = current_kit().extras.get(RUNTIME_KEY)
    if not isinstance(found, AuthRuntime):
        raise RuntimeError("the auth runtime is not started")
    return found
