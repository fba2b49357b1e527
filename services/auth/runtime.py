"""The auth service's state: its settings, and the working parts built when the app starts.

``create_app`` builds one :class:`AuthState`; its start hook fills in the
:class:`AuthRuntime` (those parts need the database: signing keys, login secrets,
seeded clients). Handlers reach them through :func:`runtime`.
"""

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
from services.kit.client_address import Network
from services.kit.context import current_state
from services.kit.db import Database


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


@dataclass
class AuthState:
    settings: AuthSettings
    started: AuthRuntime | None = None  # set while the app runs

    @property
    def runtime(self) -> AuthRuntime:
        if self.started is None:
            raise RuntimeError("the auth runtime is not started")
        return self.started


def runtime() -> AuthRuntime:
    """The working parts of the auth app handling the current request."""
    return current_state(AuthState).runtime
