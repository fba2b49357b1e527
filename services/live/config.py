from __future__ import annotations

from pydantic import Field, model_validator

from services.kit.config import ServiceSettings


class LiveSettings(ServiceSettings):
    service_name: str = "live"
    port: int = Field(8005, ge=0, le=65535)
    # Every instance shares it: the per-user streams (the resume window) and the stream leases.
    live_redis_url: str = "redis://127.0.0.1:6379/0"
    # Every key starts with it: `make up` gives each checkout its own, tests one per run.
    live_key_prefix: str = Field("quartet:", pattern=r"^[A-Za-z0-9_.:-]{1,100}$")
    # Each Redis command's timeout (the blocking read has its block time on top).
    live_redis_timeout_seconds: float = Field(2.0, gt=0, le=30)
    # Connections to Redis per instance (a burst of new streams waits for one at most the timeout).
    live_redis_max_connections: int = Field(64, ge=2, le=10_000)
    # A comment line this often on every stream (the gateway's idle timeout is 3 of them).
    live_heartbeat_seconds: float = Field(15.0, gt=0, le=300)
    # Resume: a reconnect within this window (and at most this many events back per user)
    # misses nothing; older, the client is told to reload (``event: reset``).
    live_window_seconds: int = Field(300, ge=10, le=86_400)
    live_window_events: int = Field(1000, ge=10, le=100_000)
    # Open streams per user across instances (429 beyond) and per instance (503 beyond).
    live_max_streams_per_user: int = Field(10, ge=1, le=1000)
    live_max_streams: int = Field(5000, ge=1, le=1_000_000)
    # A stream's place in its user's count is a lease renewed every third of this; a killed
    # instance's streams stop counting when their leases run out.
    live_lease_seconds: float = Field(30.0, ge=3, le=3600)
    # The blocking read waits at most this long for new events before it asks again.
    live_block_seconds: float = Field(5.0, gt=0, le=60)
    # A client this many frames behind is dropped (it reconnects and resumes).
    live_max_queued_frames: int = Field(2000, ge=10, le=1_000_000)

    @model_validator(mode="after")
    def _read_within_socket_timeout(self) -> LiveSettings:
        if self.live_lease_seconds <= self.live_redis_timeout_seconds * 3:
            raise ValueError("LIVE_LEASE_SECONDS must be more than three LIVE_REDIS_TIMEOUT_SECONDS")
        return self
