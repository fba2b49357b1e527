from __future__ import annotations

from pydantic import Field, SecretStr

from services.kit.config import ServiceSettings


class ReportsSettings(ServiceSettings):
    """Settings of the reports service and of its worker (one environment serves both)."""

    service_name: str = "reports"
    port: int = Field(8004, ge=0, le=65535)
    database_url: str | None = "postgresql://quartet_reports:quartet_reports_dev@127.0.0.1:5432/quartet_reports"

    # Jobs: queued or running reports one user may have at once (429 beyond).
    max_unfinished_jobs: int = Field(5, ge=1, le=100)

    # Worker: where the todos live and how it gets a token to read them.
    todos_url: str = "http://127.0.0.1:8002"
    worker_client_id: str = "reports-worker"
    reports_worker_client_secret: SecretStr = SecretStr("quartet-dev-reports-worker-secret")
    todos_page_size: int = Field(100, ge=1, le=100)
    # A report holds at most this many todos (bounds the worker's memory and render time).
    max_report_todos: int = Field(20_000, ge=1)
    # One request to todos (or auth) waits at most this long.
    fetch_timeout_seconds: float = Field(10.0, gt=0)
    # A failing request is tried this many times, with backoff doubling from min to max.
    fetch_attempts: int = Field(6, ge=1, le=50)
    fetch_backoff_min_seconds: float = Field(0.5, gt=0)
    fetch_backoff_max_seconds: float = Field(10.0, gt=0)
    # The worker serves its Prometheus metrics on GET /metrics at host:worker_metrics_port
    # (0: a free port, logged at start). Several workers on one machine need one port each.
    worker_metrics_port: int = Field(9104, ge=0, le=65535)
    # A job whose worker died this many times is failed instead of tried again (poison job).
    max_job_attempts: int = Field(3, ge=1, le=20)

    @property
    def jobs_queue(self) -> str:
        """The durable work queue of report jobs (derived from the service name, like the kit's queues)."""
        return f"{self.service_name}.jobs"
