"""The reports worker's client secret: never the public default off a developer machine; rotatable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.auth.config import DEFAULT_WORKER_SECRET, AuthSettings
from tests.auth.conftest import start_auth
from tests.auth.flows import AuthFlows
from tests.suite import SIGNING_KEK, auth_env
from tests.support import ROOT, free_port


def _env_without_secret(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "REPORTS_WORKER_CLIENT_SECRET"}
    return {**env, **extra}


def test_the_built_in_secret_is_refused_when_the_issuer_is_not_loopback(auth_db: tuple[str, str]) -> None:
    env = auth_env(free_port(), auth_db[1], AUTH_URL="https://auth.example.com")
    del env["REPORTS_WORKER_CLIENT_SECRET"]
    done = subprocess.run(
        [sys.executable, "-m", "services.auth", "serve"],
        cwd=ROOT,
        env=_env_without_secret(**env),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode != 0
    assert "REPORTS_WORKER_CLIENT_SECRET" in done.stderr
    # The same default set explicitly is refused too.
    done = subprocess.run(
        [sys.executable, "-m", "services.auth", "serve"],
        cwd=ROOT,
        env=_env_without_secret(**env, REPORTS_WORKER_CLIENT_SECRET=DEFAULT_WORKER_SECRET),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode != 0 and "REPORTS_WORKER_CLIENT_SECRET" in done.stderr


@pytest.mark.parametrize(
    "issuer", ["http://127.0.0.1:8001", "http://localhost:8001", "http://[::1]:8001", "http://127.0.0.2"]
)
def test_the_built_in_secret_is_allowed_on_a_loopback_issuer(issuer: str) -> None:
    settings = AuthSettings(auth_url=issuer, reports_worker_client_secret=DEFAULT_WORKER_SECRET)
    assert settings.reports_worker_client_secret.get_secret_value() == DEFAULT_WORKER_SECRET


@pytest.mark.parametrize("issuer", ["http://auth:8001", "https://auth.example.com", "http://10.0.0.5:8001"])
def test_a_real_secret_is_required_elsewhere(issuer: str) -> None:
    with pytest.raises(ValidationError, match="REPORTS_WORKER_CLIENT_SECRET"):
        AuthSettings(auth_url=issuer, reports_worker_client_secret=DEFAULT_WORKER_SECRET)
    real = {"reports_worker_client_secret": "s3cret-" + "x" * 20, "signing_kek": SIGNING_KEK}
    assert AuthSettings(auth_url=issuer, **real)  # type: ignore[arg-type]


async def test_a_changed_secret_replaces_the_stored_one_at_start(auth_db: tuple[str, str], log_dir: Path) -> None:
    first, second = "first-secret-" + os.urandom(8).hex(), "second-secret-" + os.urandom(8).hex()
    async for service in start_auth(auth_db, log_dir, REPORTS_WORKER_CLIENT_SECRET=first):
        async with AuthFlows(service.url) as flows:
            assert (await flows.client_credentials(secret=first)).status_code == 200
    async for service in start_auth(auth_db, log_dir, REPORTS_WORKER_CLIENT_SECRET=second):
        async with AuthFlows(service.url) as flows:
            assert (await flows.client_credentials(secret=second)).status_code == 200
            old = await flows.client_credentials(secret=first)
            assert old.status_code == 401 and old.json()["error"] == "invalid_client"
