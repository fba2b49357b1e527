from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator

from services.kit.config import ServiceSettings, is_loopback_host, is_loopback_url

# Public in the source: good enough on a developer machine, refused anywhere else.
DEFAULT_CURSOR_SECRET = "quartet-dev-cursor-secret-change-me"  # noqa: S105


class TodosSettings(ServiceSettings):
    service_name: str = "todos"
    port: int = Field(8002, ge=0, le=65535)
    database_url: str | None = "postgresql://quartet_todos:quartet_todos_dev@127.0.0.1:5432/quartet_todos"
    db_pool_max: int = Field(20, ge=1)
    # Todos sets no session state (no SET, LISTEN or session advisory locks on pooled
    # connections), so releasing a connection skips asyncpg's reset round trip.
    db_reset_session_on_release: bool = False
    # Signs pagination cursors so a client cannot forge or alter one. The built-in default is
    # accepted only on loopback (see below); `make up` generates one per checkout.
    cursor_secret: SecretStr = SecretStr(DEFAULT_CURSOR_SECRET)
    # A user may hold at most this many todos; a create beyond it is 409 (the limit in the detail).
    max_todos_per_user: int = Field(10_000, ge=1, le=10_000_000)
    idempotency_ttl_hours: int = Field(24, ge=1, le=24 * 30)
    # How often expired idempotency records are deleted.
    housekeeping_interval_seconds: float = Field(3600.0, gt=0)
    # The first-page cache (docs/caching.md): Redis shared by every instance; unset or empty, off.
    cache_redis_url: str | None = None
    # Every key starts with it (tests use one of their own beside a running suite).
    cache_key_prefix: str = Field("quartet:todos:", pattern=r"^[A-Za-z0-9_.:-]{1,100}$")
    # A page lives at most this long (it bounds staleness only if an invalidation is lost).
    cache_page_ttl_seconds: float = Field(60.0, gt=0, le=3600)
    # Each Redis call's timeout; past it, the breaker bypasses Redis for retry_after seconds.
    cache_timeout_seconds: float = Field(1.0, gt=0, le=5)
    cache_retry_after_seconds: float = Field(2.0, gt=0, le=300)
    # Single flight: a loader's lock expires after lock_ttl (a dead holder blocks nobody
    # longer); the others wait for its page at most lock_wait, then load themselves.
    cache_lock_ttl_seconds: float = Field(2.0, gt=0, le=60)
    cache_lock_wait_seconds: float = Field(1.0, gt=0, le=10)

    @field_validator("cache_redis_url")
    @classmethod
    def _blank_url_is_off(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @model_validator(mode="after")
    def _no_public_secret_in_production(self) -> TodosSettings:
        off_loopback = not is_loopback_host(self.host) or not is_loopback_url(self.auth_url)
        if self.cursor_secret.get_secret_value() == DEFAULT_CURSOR_SECRET and off_loopback:
            raise ValueError(
                "CURSOR_SECRET is the built-in default, which is public in the source; it is accepted only "
                f"when todos listens on loopback with a loopback issuer, not HOST={self.host!r} "
                f"AUTH_URL={self.auth_url!r}. Set CURSOR_SECRET to a random value (e.g. `openssl rand -base64 32`)."
            )
        return self
