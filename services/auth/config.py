from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator

from services.auth.sealing import KeyEncryptionKeys, decode_kek, kek_id
from services.kit.client_address import parse_networks
from services.kit.config import CommaList, ServiceSettings, is_loopback_url, split_commas

# Public in the source: good enough on a developer machine, refused anywhere else.
DEFAULT_WORKER_SECRET = "quartet-dev-reports-worker-secret"  # noqa: S105
# The development key-encryption key (base64 of sha256("quartet-dev-signing-kek")): same rule.
DEFAULT_SIGNING_KEK = "IRoPnVLq0QETTB2wdTm+S531DOvmldQCyO44ZJCllzw="


class AuthSettings(ServiceSettings):
    """The auth service's settings. ``AUTH_URL`` is where the suite reaches this service;
    ``PUBLIC_URL`` (default: ``AUTH_URL``) is the issuer the outside sees (see the kit's settings)."""

    service_name: str = "auth"
    port: int = Field(8001, ge=0, le=65535)
    database_url: str | None = "postgresql://quartet_auth:quartet_auth_dev@127.0.0.1:5432/quartet_auth"

    # Tokens. Every access token carries this one audience: the whole suite is its resource server.
    access_token_audience: str = "quartet"  # noqa: S105 - an audience, not a secret
    access_token_ttl_seconds: int = Field(900, ge=60, le=900)
    refresh_token_ttl_seconds: int = Field(30 * 24 * 3600, ge=3600)
    authorization_code_ttl_seconds: int = Field(60, ge=5, le=60)
    signing_algorithm: str = Field("RS256", pattern="^(RS256|ES256|Ed25519)$")
    # Key-encryption keys of the private signing keys (envelope encryption, services/auth/sealing.py):
    # comma-separated base64 of 32 random bytes each; the first seals, all open (KEK rotation).
    # The built-in default is accepted only on a loopback issuer (see below).
    signing_kek: SecretStr = SecretStr(DEFAULT_SIGNING_KEK)

    # Seeded clients. The SPA is public; the reports worker is confidential.
    web_redirect_uris: CommaList = ("http://localhost:8080/app/callback",)
    web_extra_redirect_uris: CommaList = ()
    # The gateway's API docs (Swagger UI's Authorize): public too, on either loopback name.
    docs_redirect_uris: CommaList = (
        "http://localhost:8080/docs/oauth2-redirect",
        "http://127.0.0.1:8080/docs/oauth2-redirect",
    )
    docs_extra_redirect_uris: CommaList = ()
    # The built-in default is accepted only when the issuer is a loopback address (see below).
    reports_worker_client_secret: SecretStr = SecretStr(DEFAULT_WORKER_SECRET)

    # argon2id (RFC 9106's second recommended option by default: t=3, 64 MiB, p=4).
    password_time_cost: int = Field(3, ge=1)
    password_memory_kib: int = Field(64 * 1024, ge=8)
    password_parallelism: int = Field(4, ge=1)
    # Concurrent hashes (each holds password_memory_kib) and concurrent authlib calls.
    hash_threads: int = Field(4, ge=1, le=64)
    # Hashes allowed to wait for a thread; beyond it the caller gets 503 + Retry-After.
    # Registrations may fill only half of it, so a flood of them leaves room for sign-ins.
    hash_queue_limit: int = Field(32, ge=1, le=10_000)
    oauth_threads: int = Field(8, ge=1, le=64)
    oauth_storage_timeout_seconds: float = Field(10.0, gt=0)

    # Brute force (docs/auth.md). Fixed windows per (account, address) — or per device
    # cookie — and per address; per account, for sources that never signed in to it, the
    # first ..._PER_ACCOUNT attempts pass, then each waits BASE doubling up to MAX seconds.
    # Devices and known addresses never spend the account's budget: no lockout by strangers.
    login_max_failures_per_account_and_address: int = Field(5, ge=1)
    login_max_failures_per_address: int = Field(20, ge=1)
    login_max_failures_per_account: int = Field(50, ge=1)
    login_failure_window_seconds: int = Field(900, ge=1)
    login_delay_base_seconds: float = Field(15.0, gt=0)
    login_max_delay_seconds: float = Field(600.0, gt=0)
    # A signed device cookie lives this long; an address that signed in stays known this
    # long after its last sign-in (0: addresses are never trusted, only device cookies).
    login_device_cookie_days: int = Field(180, ge=1, le=400)
    login_known_address_days: int = Field(90, ge=0)
    # Proxies (addresses or networks) whose X-Forwarded-For is believed: the gateway's.
    # Anyone else counts by their own address.
    trusted_proxies: CommaList = ("127.0.0.1", "::1")

    @field_validator(
        "web_redirect_uris",
        "web_extra_redirect_uris",
        "docs_redirect_uris",
        "docs_extra_redirect_uris",
        "trusted_proxies",
        mode="before",
    )
    @classmethod
    def _split(cls, value: object) -> object:
        return tuple(split_commas(value)) if isinstance(value, str) else value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        parse_networks(value)  # raises ValueError: a typo fails at start
        return value

    @field_validator("signing_kek")
    @classmethod
    def _kek_parses(cls, value: SecretStr) -> SecretStr:
        KeyEncryptionKeys.from_setting(value.get_secret_value())  # raises ValueError with the reason
        return value

    @model_validator(mode="after")
    def _no_public_secret_in_production(self) -> AuthSettings:
        # A developer machine: the service is reached and seen on this machine only.
        if is_loopback_url(self.auth_url) and is_loopback_url(self.issuer):
            return self
        where = f"not {self.auth_url!r}" + (f" / {self.issuer!r}" if self.issuer != self.auth_url.rstrip("/") else "")
        if self.reports_worker_client_secret.get_secret_value() == DEFAULT_WORKER_SECRET:
            raise ValueError(
                "REPORTS_WORKER_CLIENT_SECRET is the built-in default, which is public in the source; "
                f"it is accepted only on a loopback issuer, {where}. "
                "Set REPORTS_WORKER_CLIENT_SECRET to a random value (e.g. `openssl rand -base64 32`), "
                "the same for auth and the reports worker."
            )
        if self.key_encryption_keys().knows(kek_id(decode_kek(DEFAULT_SIGNING_KEK))):
            raise ValueError(
                "SIGNING_KEK is (or includes) the built-in development key, which is public in the source; "
                f"it is accepted only on a loopback issuer, {where}. "
                "Set SIGNING_KEK to 32 random bytes in base64 (`openssl rand -base64 32`) and keep it "
                "out of the database and its backups (see docs/auth.md, Signing keys)."
            )
        return self

    def key_encryption_keys(self) -> KeyEncryptionKeys:
        return KeyEncryptionKeys.from_setting(self.signing_kek.get_secret_value())
