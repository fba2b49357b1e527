"""Private signing keys are sealed at rest: a dump of the auth database signs nothing.

The dump is taken with the real ``pg_dump`` binary of this machine's PostgreSQL.
"""

from __future__ import annotations

import base64
import glob
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from joserfc.jwk import JWKRegistry

from services.auth.app import MIGRATIONS
from services.auth.sealing import KeyEncryptionKeys, SealedKey, kek_id
from services.auth.signing import generate_key
from services.kit.security import TokenVerifier
from services.kit.security.verifier import unverified_header
from tests.auth.conftest import AuthService, start_auth
from tests.auth.test_keys import rotate_keys, service_token
from tests.commands import refuses_to_start
from tests.inprocess import MigratedDatabase
from tests.suite import SIGNING_KEK, auth_env
from tests.support import free_port

PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi")


def pg_dump(dsn: str) -> str:
    """The plain-SQL dump ``pg_dump`` makes of the database (data and schema)."""
    binary = shutil.which("pg_dump") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_dump"))), None)
    assert binary, "pg_dump is part of PostgreSQL's client package (scripts/bootstrap.py installs postgresql)"
    done = subprocess.run([binary, "--dbname", dsn], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def b64url_to_bytes(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def spellings(value: str) -> set[str]:
    """Ways a JWK member's bytes could appear in a dump: base64url, base64, hex (bytea)."""
    raw = b64url_to_bytes(value)
    return {value, base64.b64encode(raw).decode().rstrip("="), raw.hex()}


async def private_jwks(service: AuthService, keks: KeyEncryptionKeys) -> list[dict[str, Any]]:
    rows = await service.fetch("SELECT kid, sealed_private, wrapped_data_key, kek_id FROM signing_keys")
    return [keks.open(r["kid"], SealedKey(r["sealed_private"], r["wrapped_data_key"], r["kek_id"])) for r in rows]


def assert_no_private_material(dump: str, keys: list[dict[str, Any]]) -> None:
    assert "PRIVATE KEY" not in dump
    members = re.findall(r'"(d|p|q|dp|dq|qi)"\s*:', dump)
    assert members == [], f"private JWK members in the dump: {sorted(set(members))}"
    for jwk in keys:
        # The control: the public half of the same key is in the dump, so the table was dumped
        # and the search would find the private half if it were there.
        public = "n" if jwk["kty"] == "RSA" else "x"
        assert jwk[public] in dump, f"the public key of {jwk['kid']} is not in the dump"
        for member in PRIVATE_MEMBERS:
            if member in jwk:
                for spelled in spellings(jwk[member]):
                    assert spelled not in dump, f"{jwk['kid']}: private member {member!r} is in the dump"


async def test_a_database_dump_contains_no_private_key_material(auth_service: AuthService) -> None:
    rotate_keys(auth_service)  # two keys: the one made at start and a rotated one
    keys = await private_jwks(auth_service, KeyEncryptionKeys.from_setting(SIGNING_KEK))
    assert len(keys) >= 2 and all("d" in jwk for jwk in keys)
    assert_no_private_material(pg_dump(auth_service.dsn), keys)
    columns = await auth_service.fetch("SELECT count(*) AS n FROM signing_keys WHERE private_jwk IS NOT NULL")
    assert columns[0]["n"] == 0


@pytest.fixture
async def own_db(migrated_db: MigratedDatabase) -> tuple[str, str]:
    """A database of this test's own, auth's migrations applied (dropped after the test): (name, dsn)."""
    dsn = await migrated_db(MIGRATIONS)
    return dsn.rsplit("/", 1)[-1], dsn


async def test_plaintext_keys_from_before_are_sealed_at_start_and_old_keks_rewrapped(
    own_db: tuple[str, str], log_dir: Path
) -> None:
    new_kek = base64.b64encode(os.urandom(32)).decode()
    legacy = generate_key("RS256")
    async for first in start_auth(own_db, log_dir):
        # A key as an older release stored it: the private JWK in plain JSON, signing now.
        await first.fetch(
            "INSERT INTO signing_keys (kid, alg, private_jwk, public_jwk, activated_at) "
            "VALUES ($1, 'RS256', $2::jsonb, $3::jsonb, now())",
            legacy.kid,
            json.dumps(legacy.as_dict(private=True)),
            json.dumps(legacy.as_dict(private=False)),
        )
        assert str(legacy.as_dict(private=True)["d"]) in pg_dump(first.dsn)  # the control: a dump did leak it
    # The next start seals it; with a new KEK listed first, every data key is re-wrapped too.
    async for second in start_auth(own_db, log_dir, SIGNING_KEK=f"{new_kek},{SIGNING_KEK}"):
        rows = await second.fetch("SELECT kid, private_jwk, kek_id FROM signing_keys")
        assert len(rows) == 2
        assert all(r["private_jwk"] is None for r in rows)
        assert {r["kek_id"] for r in rows} == {kek_id(base64.b64decode(new_kek))}
        keys = await private_jwks(second, KeyEncryptionKeys.from_setting(new_kek))
        assert next(k for k in keys if k["kid"] == legacy.kid)["d"] == legacy.as_dict(private=True)["d"]
        assert_no_private_material(pg_dump(second.dsn), keys)

        async with second.flows() as flows:
            token = await service_token(flows)
        assert unverified_header(token)["kid"] == legacy.kid  # the sealed key still signs
        async with aiohttp.ClientSession() as session:
            verifier = TokenVerifier(second.issuer, "quartet", f"{second.url}/.well-known/jwks.json", session)
            assert (await verifier.verify(token)).client_id == "reports-worker"

    # Without the KEK that now seals the keys, auth refuses to start and says what to do.
    said = refuses_to_start("services.auth", auth_env(free_port(), own_db[1]))  # the old KEK only
    assert "SIGNING_KEK does not hold" in said
    assert "rotate-keys" in said


def test_a_sealed_key_opens_only_under_its_own_kid_and_kek() -> None:
    keks = KeyEncryptionKeys.from_setting(SIGNING_KEK)
    a, b = generate_key("ES256"), generate_key("ES256")
    sealed_a, sealed_b = keks.seal(str(a.kid), a.as_dict(private=True)), keks.seal(str(b.kid), b.as_dict(private=True))
    assert keks.open(str(a.kid), sealed_a) == a.as_dict(private=True)
    assert JWKRegistry.import_key(keks.open(str(a.kid), sealed_a)).as_dict(private=False) == a.as_dict(private=False)
    from services.auth.sealing import SealError

    # Copied onto another row (kid), or with another row's data key: neither opens.
    with pytest.raises(SealError):
        keks.open(str(b.kid), sealed_a)
    with pytest.raises(SealError):
        keks.open(str(a.kid), SealedKey(sealed_a.sealed_private, sealed_b.wrapped_data_key, sealed_a.kek_id))
    flipped = bytearray(sealed_a.sealed_private)
    flipped[-1] ^= 1
    with pytest.raises(SealError):
        keks.open(str(a.kid), SealedKey(bytes(flipped), sealed_a.wrapped_data_key, sealed_a.kek_id))
    other = KeyEncryptionKeys.from_setting(base64.b64encode(os.urandom(32)).decode())
    with pytest.raises(SealError, match="SIGNING_KEK does not hold"):
        other.open(str(a.kid), sealed_a)


REAL_WORKER_SECRET = "s3cret-" + "x" * 20


@pytest.mark.parametrize(
    ("auth_url", "public_url"),
    [("http://auth:8001", None), ("https://auth.example.com", None), ("http://127.0.0.1:8001", "https://example.com")],
)
def test_the_built_in_kek_is_refused_unless_the_issuer_is_on_loopback(auth_url: str, public_url: str | None) -> None:
    from pydantic import ValidationError

    from services.auth.config import DEFAULT_SIGNING_KEK, AuthSettings

    for kek in (DEFAULT_SIGNING_KEK, f"{SIGNING_KEK},{DEFAULT_SIGNING_KEK}"):
        with pytest.raises(ValidationError, match=r"SIGNING_KEK is .*built-in development key"):
            AuthSettings(
                auth_url=auth_url,
                public_url=public_url,
                reports_worker_client_secret=REAL_WORKER_SECRET,
                signing_kek=kek,
            )
    settings = AuthSettings(
        auth_url=auth_url,
        public_url=public_url,
        reports_worker_client_secret=REAL_WORKER_SECRET,
        signing_kek=SIGNING_KEK,
    )
    assert settings.key_encryption_keys().current_id == kek_id(base64.b64decode(SIGNING_KEK))
    # On a developer machine the default is fine.
    assert AuthSettings(auth_url="http://127.0.0.1:8001", public_url="http://localhost:8080")


@pytest.mark.parametrize("bad", ["not base64!", base64.b64encode(b"short").decode(), "", ","])
def test_a_kek_that_is_not_32_bytes_of_base64_is_refused_with_the_reason(bad: str) -> None:
    from pydantic import ValidationError

    from services.auth.config import AuthSettings

    with pytest.raises(ValidationError, match=r"SIGNING_KEK|key-encryption key"):
        AuthSettings(signing_kek=bad)
