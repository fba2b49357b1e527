from __future__ import annotations

from pydantic import Field, SecretStr

from services.kit.config import ServiceSettings


class TodosSettings(ServiceSettings):
    service_name: str = "todos"
    port: int = Field(8002, ge=0, le=65535)
    database_url: str | None = "postgresql://quartet_todos:quartet_todos_dev@127.0.0.1:5432/quartet_todos"
    db_pool_max: int = Field(20, ge=1)
    # Todos sets no session state (no SET, LISTEN or session advisory locks on pooled
    # connections), so releasing a connection skips asyncpg's reset round trip.
    db_reset_session_on_release: bool = False
    # Signs pagination cursors so a client cannot forge or alter one. Set it in production.
    cursor_secret: SecretStr = SecretStr("quartet-dev-cursor-secret-change-me")
    idempotency_ttl_hours: int = Field(24, ge=1, le=24 * 30)
    # How often expired idempotency records are deleted.
    housekeeping_interval_seconds: float = Field(3600.0, gt=0)
