"""One user action is one trace: from the gateway through todos, the outbox, RabbitMQ, the worker and back.

The suite runs as real processes with tracing on (``OTEL_EXPORTER_OTLP_ENDPOINT``
pointing at an OTLP/HTTP receiver this test runs, see tests/otlp.py). The client
acts like the SPA with a tracer: every request of the action carries a
``traceparent`` of one trace id. The test then reads what the processes exported
and what they logged.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.otlp import OtlpReceiver, Span, running_receiver
from tests.suite import Suite, User, running
from tests.support import ServiceProcess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with running_receiver() as running:
        yield running


def otel_env(receiver: OtlpReceiver) -> dict[str, str]:
    # A short batch delay so spans arrive while the test waits, not seconds later.
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "100"}


@pytest.fixture(scope="module")
async def traced(log_dir: Path, receiver: OtlpReceiver) -> AsyncIterator[tuple[Suite, ServiceProcess]]:
    """The suite and a gateway in front of it, every process exporting to ``receiver``."""
    (log_dir / "traced").mkdir(exist_ok=True)
    async with running(Suite(log_dir / "traced", extra_env=otel_env(receiver)), gateway={}) as suite:
        yield suite, suite.processes["gateway"]


class SpaTracer:
    """What a traced SPA sends: one trace id per user action, a new parent span per request."""

    def __init__(self) -> None:
        self.trace_id = secrets.token_hex(16)

    def headers(self) -> dict[str, str]:
        return {"traceparent": f"00-{self.trace_id}-{secrets.token_hex(8)}-01", "tracestate": "quartet=spa"}


async def create_todo_and_wait_for_pdf(gateway: ServiceProcess, user: User, spa: SpaTracer) -> dict[str, Any]:
    """The user action; returns request ids and the gateway's answers."""
    auth = {"Authorization": f"Bearer {user.token}"}
    async with httpx.AsyncClient(base_url=gateway.url, headers=auth, timeout=30) as http:
        created = await http.post("/todos", json={"content": "trace me"}, headers=spa.headers())
        assert created.status_code == 201, created.text
        requested = await http.post("/reports", json={"format": "pdf"}, headers=spa.headers())
        assert requested.status_code == 202, requested.text
        report_id = requested.json()["id"]
        for _ in range(300):
            report = (await http.get(f"/reports/{report_id}", headers=spa.headers())).json()
            if report["status"] in ("done", "failed"):
                break
            await asyncio.sleep(0.1)
        assert report["status"] == "done", report
    return {"created": created, "requested": requested}


def sent(spans: list[Span], services: set[str], event_type: str) -> Span:
    """The aio-pika publication of ``event_type`` by one of ``services`` (destination ``<exchange>,<routing key>``)."""
    found = [
        s
        for s in spans
        if s.service in services
        and s.kind == "producer"
        and str(s.attributes.get("messaging.destination", "")).endswith("," + event_type)
    ]
    assert len(found) == 1, [s.name for s in spans if s.service in services]
    return found[0]


def orphans(spans: list[Span]) -> list[Span]:
    """Spans whose parent is not in ``spans`` (the gateway's server spans have the SPA's as parents)."""
    ours = {s.span_id for s in spans}
    return [s for s in spans if s.parent_span_id not in ours and not (s.service == "gateway" and s.kind == "server")]


def names(spans: list[Span], service: str, kind: str | None = None) -> list[str]:
    return [s.name for s in spans if s.service == service and (kind is None or s.kind == kind)]


def log_lines(proc: ServiceProcess) -> list[dict[str, Any]]:
    lines = []
    for raw in proc.logs().splitlines():
        if raw.startswith("{"):
            try:
                lines.append(json.loads(raw))
            except ValueError:
                continue
    return lines


async def test_one_user_action_is_one_trace_across_gateway_services_broker_and_worker(
    traced: tuple[Suite, ServiceProcess], receiver: OtlpReceiver
) -> None:
    suite, gateway = traced
    user = await suite.register()
    spa = SpaTracer()
    answers = await create_todo_and_wait_for_pdf(gateway, user, spa)
    reports = suite.envs["reports"]["SERVICE_NAME"]
    worker = f"{reports}-worker"

    def complete(spans: list[Span]) -> bool:
        # The last hops to arrive: the worker's fetch answered by todos, the report.completed publication.
        worker_clients = {s.span_id for s in spans if s.service == worker and s.kind == "client"}
        answered = any(s.service == "todos" and s.parent_span_id in worker_clients for s in spans)
        return answered and any(s.service == worker and s.kind == "producer" for s in spans) and not orphans(spans)

    spans = receiver.wait_for(spa.trace_id, complete)
    services = {s.service for s in spans}
    assert {"gateway", "todos", reports, worker} <= services, sorted(services)

    # The gateway continued the SPA's traceparent and told the client which trace it was.
    assert answers["created"].headers["traceresponse"].split("-")[1] == spa.trace_id
    assert "POST /todos" in names(spans, "todos", "server")
    # todos' relay published todo.created as a child of that request; reports' consumer continued it.
    assert "todo.created publish" in names(spans, "todos", "producer")
    todo_sent = sent(spans, {"todos"}, "todo.created")
    assert any(s.service == reports and s.kind == "consumer" and s.parent_span_id == todo_sent.span_id for s in spans)
    # The reports database's relay (in the API or in a worker: both relay it) published the job;
    # the worker consumed it and called todos back.
    assert "report.requested publish" in names(spans, reports, "producer") + names(spans, worker, "producer")
    job_sent = sent(spans, {reports, worker}, "report.requested")
    job = [s for s in spans if s.service == worker and s.kind == "consumer" and s.parent_span_id == job_sent.span_id]
    assert job, names(spans, worker)
    worker_calls = [
        s for s in spans if s.service == worker and s.kind == "client" and s.parent_span_id == job[0].span_id
    ]
    assert {"GET", "POST"} <= {s.name for s in worker_calls}  # the todos page, the service token
    answered = [s for s in spans if s.service == "todos" and s.parent_span_id in {c.span_id for c in worker_calls}]
    assert [s.name for s in answered] == ["GET /todos"]
    # Database and broker spans are among them.
    scopes = {s.scope for s in spans}
    assert "opentelemetry.instrumentation.asyncpg" in scopes
    assert "opentelemetry.instrumentation.aio_pika" in scopes
    # One trace: every span's parent is a span of this trace, or the SPA's own (not exported) spans.
    assert not orphans(spans)

    # The logs: every process of the action wrote lines with this trace id.
    by_process = {name: log_lines(proc) for name, proc in suite.processes.items()}
    traced_lines = {
        name: [ln for ln in lines if ln.get("trace_id") == spa.trace_id] for name, lines in by_process.items()
    }
    for name in ("gateway", "todos", "reports", "reports-worker"):
        assert traced_lines[name], f"no log line of {name} carries trace id {spa.trace_id}"
        assert all(len(ln.get("span_id", "")) == 16 for ln in traced_lines[name])
    # The worker's call back to todos carried the request id of POST /reports (and the trace).
    report_request_id = answers["requested"].headers["x-request-id"]
    todos_reads = [ln for ln in traced_lines["todos"] if ln.get("event") == "request" and ln.get("method") == "GET"]
    assert any(ln.get("request_id") == report_request_id for ln in todos_reads), todos_reads
    worker_lines = [ln for ln in traced_lines["reports-worker"] if ln.get("event") == "job done"]
    assert worker_lines and worker_lines[0]["request_id"] == report_request_id


async def test_a_request_without_traceparent_starts_a_trace_and_is_told_its_id(
    traced: tuple[Suite, ServiceProcess], receiver: OtlpReceiver
) -> None:
    suite, gateway = traced
    user = await suite.register()
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        resp = await http.get("/todos", headers={"Authorization": f"Bearer {user.token}"})
    assert resp.status_code == 200
    version, trace_id, span_id, flags = resp.headers["traceresponse"].split("-")
    assert (version, len(trace_id), len(span_id)) == ("00", 32, 16)
    assert int(flags, 16) & 1  # sampled (level 2 also sets the random-trace-id flag, 0x02)
    spans = receiver.wait_for(trace_id, lambda found: {"gateway", "todos"} <= {s.service for s in found})
    assert {"gateway", "todos"} <= {s.service for s in spans}
    gateway_server = [s for s in spans if s.service == "gateway" and s.kind == "server"]
    assert gateway_server and gateway_server[0].span_id == span_id
