"""Settings from a .env file: the file fills in, the process environment wins; .env.example is complete."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, SecretStr

from gateway.config import GatewaySettings
from scripts.suite.plan import plan as build_plan
from scripts.suite.secrets import with_env_file
from services.auth.config import AuthSettings
from services.kit.config import ServiceSettings
from services.live.config import LiveSettings
from services.ping.config import PingSettings
from services.reports.config import ReportsSettings
from services.todos.config import TodosSettings
from tests.support import ROOT, ServiceProcess, free_port

SECTIONS: dict[str, type[ServiceSettings]] = {
    "shared": ServiceSettings,
    "auth": AuthSettings,
    "todos": TodosSettings,
    "ping": PingSettings,
    "reports": ReportsSettings,
    "live": LiveSettings,
    "gateway": GatewaySettings,
}


@pytest.fixture
def env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "quartet.env"
    monkeypatch.setenv("QUARTET_ENV_FILE", str(path))
    for name in ("LOG_LEVEL", "REGION", "IDEMPOTENCY_TTL_HOURS", "EVENTS_RETRY_DELAYS", "TODOS_URLS"):
        monkeypatch.delenv(name, raising=False)
    return path


def test_settings_missing_from_the_environment_come_from_the_env_file(env_file: Path) -> None:
    env_file.write_text(
        "# a comment\nLOG_LEVEL=debug\nIDEMPOTENCY_TTL_HOURS=48\nEVENTS_RETRY_DELAYS=[0.5, 2]\n"
        "TODOS_URLS=http://a:8002,http://b:8002\n"
    )
    todos = TodosSettings()
    assert (todos.log_level, todos.idempotency_ttl_hours, todos.events_retry_delays) == ("DEBUG", 48, (0.5, 2.0))
    assert GatewaySettings().todos_urls == ("http://a:8002", "http://b:8002")
    assert PingSettings().log_level == "DEBUG"


def test_the_process_environment_overrides_the_env_file(env_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file.write_text("LOG_LEVEL=DEBUG\nREGION=from-file\n")
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    settings = TodosSettings()
    assert (settings.log_level, settings.region) == ("WARNING", "from-file")


def test_dot_env_in_the_working_directory_is_read_unless_told_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QUARTET_ENV_FILE")
    monkeypatch.delenv("REGION", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("REGION=dotenv-region\n")
    assert TodosSettings().region == "dotenv-region"
    monkeypatch.setenv("QUARTET_ENV_FILE", "")  # empty: no file at all
    assert TodosSettings().region == "local"


def test_a_bad_value_in_the_env_file_fails_at_start_like_a_bad_variable(env_file: Path) -> None:
    env_file.write_text("IDEMPOTENCY_TTL_HOURS=forever\n")
    with pytest.raises(ValueError, match="idempotency_ttl_hours"):
        TodosSettings()


async def test_a_running_service_reads_the_env_file_and_its_environment_wins(tmp_path: Path) -> None:
    path = tmp_path / "ping.env"
    path.write_text("REGION=dotenv-region\nINSTANCE=dotenv-instance\n")
    port = free_port()
    env = {"PORT": str(port), "QUARTET_ENV_FILE": str(path), "INSTANCE": "env-instance"}
    proc = ServiceProcess("services.ping", env, tmp_path / "ping.log")
    try:
        proc.wait_ready()
        async with httpx.AsyncClient(base_url=proc.url) as http:
            body = (await http.get("/ping", params={"ECHOMSG": "x"})).json()
    finally:
        proc.stop()
    assert (body["region"], body["instance"]) == ("dotenv-region", "env-instance")


def test_make_up_reads_the_env_file_for_what_it_hands_out_and_the_environment_wins(tmp_path: Path) -> None:
    path = tmp_path / "suite.env"
    path.write_text('export LOG_LEVEL="DEBUG"\nREGION=eu # where\nTODOS_INSTANCES=2\n')
    environ = with_env_file({"QUARTET_ENV_FILE": str(path), "REGION": "us"})
    plan = build_plan(environ)
    todos = [p for p in plan.services if p.module == "services.todos"]
    assert [p.port for p in todos] == [8002, 8012]
    assert {(p.env["LOG_LEVEL"], p.env["REGION"]) for p in todos} == {("DEBUG", "us")}
    assert with_env_file({"QUARTET_ENV_FILE": ""}) == {"QUARTET_ENV_FILE": ""}


# .env.example ----------------------------------------------------------------------------------


def example_sections() -> dict[str, dict[str, str]]:
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in (ROOT / ".env.example").read_text().splitlines():
        header = re.match(r"^# \[([a-z -]+)\]", line)
        if header:
            current = sections.setdefault(header.group(1), {})
            continue
        setting = re.match(r"^# ([A-Z][A-Z0-9_]*)=(.*)$", line)
        if setting and current is not None:
            assert setting.group(1) not in current, f"{setting.group(1)} listed twice"
            current[setting.group(1)] = setting.group(2)
    return sections


def comparable(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, BaseModel):
        return value.model_dump()
    return value


def test_env_example_lists_every_setting_of_every_service() -> None:
    sections = example_sections()
    listed = {key for section in sections.values() for key in section}
    for cls in SECTIONS.values():
        missing = {name.upper() for name in cls.model_fields} - listed
        assert not missing, f"{cls.__name__} settings missing from .env.example: {sorted(missing)}"
    known = {name.upper() for cls in SECTIONS.values() for name in cls.model_fields}
    assert set(sections) == {*SECTIONS, "per-process", "make up"}
    assert listed - set(sections["make up"]) <= known, "a setting that no Settings class has"


@pytest.mark.parametrize("section", list(SECTIONS))
def test_env_example_shows_the_true_defaults(section: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cls = SECTIONS[section]
    entries = example_sections()[section]
    # Read the section's values through a real dotenv file, the way a copied .env would be read.
    path = tmp_path / "example.env"
    path.write_text("".join(f"{key}={value}\n" for key, value in entries.items() if value))
    monkeypatch.setenv("QUARTET_ENV_FILE", str(path))
    for key in entries:
        monkeypatch.delenv(key, raising=False)
    from_file = cls()
    for key, value in entries.items():
        field = cls.model_fields[key.lower()]
        if not value:
            # Shown unset: None, an empty list, or a default worked out at start (the web dir of the checkout).
            assert field.get_default(call_default_factory=True) in (None, (), {}) or key == "WEB_DIR", key
            continue
        assert comparable(getattr(from_file, key.lower())) == comparable(
            field.get_default(call_default_factory=True)
        ), key
