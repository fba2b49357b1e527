"""The clients the suite needs, kept in line with the configuration at every start."""

from __future__ import annotations

from services.auth.config import AuthSettings
from services.auth.passwords import Passwords
from services.auth.scopes import SERVICE_SCOPES, USER_SCOPES
from services.auth.store import clients
from services.kit.db import Database

WEB_CLIENT_ID = "quartet-web"
DOCS_CLIENT_ID = "quartet-docs"
REPORTS_WORKER_CLIENT_ID = "reports-worker"


async def seed_clients(db: Database, settings: AuthSettings, passwords: Passwords) -> None:
    worker_secret_hash = await passwords.hash(settings.reports_worker_client_secret.get_secret_value())
    async with db.transaction() as conn:
        # The SPA: a public client (no secret), so PKCE is what binds its code to it.
        await clients.put_client(
            conn,
            WEB_CLIENT_ID,
            name="Quartet",
            secret_hash=None,
            redirect_uris=[*settings.web_redirect_uris, *settings.web_extra_redirect_uris],
            grant_types=["authorization_code", "refresh_token"],
            scopes=USER_SCOPES,
        )
        # The gateway's /docs (Swagger UI): public, PKCE; no refresh token, Authorize again after expiry.
        await clients.put_client(
            conn,
            DOCS_CLIENT_ID,
            name="Quartet API docs",
            secret_hash=None,
            redirect_uris=[*settings.docs_redirect_uris, *settings.docs_extra_redirect_uris],
            grant_types=["authorization_code"],
            scopes=USER_SCOPES,
        )
        # The reports worker reads any user's todos for the reports it renders.
        await clients.put_client(
            conn,
            REPORTS_WORKER_CLIENT_ID,
            name="Quartet reports worker",
            secret_hash=worker_secret_hash,
            redirect_uris=[],
            grant_types=["client_credentials"],
            scopes=SERVICE_SCOPES,
        )
