"""The kit's process runner: settings errors, a process that cannot start, and the drain on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest

from services.kit import runner
from services.kit.config import ServiceSettings
from tests.support import ROOT


class Recorder(runner.Process[ServiceSettings]):
    """Records what the runner did to it, in order, with the loop time."""

    def __init__(self, settings: ServiceSettings) -> None:
        super().__init__(settings)
        self.steps: list[tuple[str, float]] = []

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def begin_drain(self) -> None:
        self.steps.append(("drain", self.now()))

    async def serve(self, until: runner.Until) -> None:
        self.steps.append(("serving", self.now()))
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)  # a second signal changes nothing
        await until()
        self.steps.append(("stop", self.now()))


async def test_sigterm_drains_for_the_delay_then_stops_the_process() -> None:
    process = Recorder(ServiceSettings(service_name="runner-test", drain_delay_seconds=0.3))
    await runner.serve_until_signalled(process)
    assert [step for step, _ in process.steps] == ["serving", "drain", "stop"]
    (_, drained), (_, stopped) = process.steps[1:]
    assert stopped - drained >= 0.29


class CannotStartProcess(runner.Process[ServiceSettings]):
    def __init__(self, settings: ServiceSettings) -> None:
        raise runner.CannotStart("runner-test cannot start: no fonts")


def test_a_process_that_cannot_start_exits_2_saying_why(capsys: pytest.CaptureFixture[str]) -> None:
    assert runner.main(ServiceSettings, CannotStartProcess) == 2
    err = capsys.readouterr().err
    assert err == "runner-test cannot start: no fonts\n"


@pytest.mark.parametrize("module", ["gateway", "services.ping", "services.reports.worker"])
def test_invalid_settings_exit_2_without_a_traceback(module: str) -> None:
    env = {**os.environ, "PORT": "not-a-port", "WORKER_METRICS_PORT": "not-a-port"}
    done = subprocess.run([sys.executable, "-m", module], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("invalid configuration:")
    assert "Traceback" not in done.stderr
