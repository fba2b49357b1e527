from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from services.kit.config import ServiceSettings

_DEJAVU = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
_DEJAVU_BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
_DROID = "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"
_WQY = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
# The Debian package of each default font file (scripts/bootstrap.py installs them), for error messages.
FONT_PACKAGES = {
    _DEJAVU: "fonts-dejavu-core",
    _DEJAVU_BOLD: "fonts-dejavu-core",
    _DROID: "fonts-droid-fallback",
    _WQY: "fonts-wqy-microhei",
}


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
    # The sweeper (in the API process): every job_sweep_interval, an unfinished job without progress
    # for job_stale_seconds that no live worker holds has its report.requested published again; one
    # older than job_give_up_seconds, or already re-published job_max_sweeps times, is failed instead.
    job_sweep_interval_seconds: float = Field(30.0, gt=0)
    job_stale_seconds: float = Field(300.0, gt=0)
    job_give_up_seconds: float = Field(3600.0, gt=0)
    job_max_sweeps: int = Field(3, ge=0, le=100)
    job_sweep_batch: int = Field(100, ge=1, le=10_000)
    # PDF fonts: TrueType files (a .ttc: its first face). Each character is drawn with the first of
    # PDF_FONT (or PDF_BOLD_FONT), then PDF_FALLBACK_FONTS (a JSON list) whose cmap has it.
    pdf_font: Path = Path(_DEJAVU)
    pdf_bold_font: Path = Path(_DEJAVU_BOLD)
    pdf_fallback_fonts: tuple[Path, ...] = (Path(_DROID), Path(_WQY))

    @property
    def jobs_queue(self) -> str:
        """The durable work queue of report jobs (derived from the service name, like the kit's queues)."""
        return f"{self.service_name}.jobs"
