"""docker-compose.yml stays true to the real commands, settings and limits (Docker is not run here)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.cli import app as cli_app
from tests import deploy_contract as contract
from worker.constants import QUEUES, TIME_LIMITS
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _seconds(duration: str) -> int:
    total = 0
    for amount, unit in re.findall(r"(\d+)([hms])", duration):
        total += int(amount) * {"h": 3600, "m": 60, "s": 1}[unit]
    return total


def test_every_process_of_the_design_is_a_service(compose: dict[str, Any]) -> None:
    assert {"redis", "postgres", "worker", "beat", "flower", "api"} <= set(compose["services"])


def test_every_fleet_variable_is_a_real_setting(compose: dict[str, Any]) -> None:
    fields = {f"FLEET_{name.upper()}" for name in Settings.model_fields}
    for name, service in compose["services"].items():
        for variable in service.get("environment", {}):
            if variable.startswith("FLEET_"):
                assert variable in fields, f"{name}: {variable} is not a setting"


def test_celery_commands_use_the_app_and_known_queues(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]["command"]
    assert worker[:4] == ["celery", "-A", "worker", "worker"]
    assert set(worker[worker.index("-Q") + 1].split(",")) <= set(QUEUES)
    assert compose["services"]["beat"]["command"][:4] == ["celery", "-A", "worker", "beat"]
    assert compose["services"]["flower"]["command"][:4] == ["celery", "-A", "worker", "flower"]


def test_agent_commands_exist_in_the_cli(compose: dict[str, Any]) -> None:
    names = {command.name or command.callback.__name__ for command in cli_app.registered_commands}
    groups = {group.name for group in cli_app.registered_groups}
    for service in compose["services"].values():
        command = service.get("command")
        if isinstance(command, list) and command[0] == "agent":
            assert command[1] in names | groups, f"agent {command[1]} does not exist"


def test_redis_keeps_messages(compose: dict[str, Any]) -> None:
    command = " ".join(compose["services"]["redis"]["command"])
    assert "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command


def test_redis_demands_the_password_the_fleet_connects_with(compose: dict[str, Any]) -> None:
    command = compose["services"]["redis"]["command"]
    assert command[command.index("--requirepass") + 1] == "${REDIS_PASSWORD:?set REDIS_PASSWORD}"
    assert compose["x-fleet-env"]["FLEET_BROKER_URL"].startswith("redis://:${REDIS_PASSWORD:?set REDIS_PASSWORD}@")
    assert compose["services"]["redis"]["environment"]["REDISCLI_AUTH"] == "${REDIS_PASSWORD:?set REDIS_PASSWORD}"


def test_services_wait_for_healthy_dependencies(compose: dict[str, Any]) -> None:
    for name in ("worker", "api"):
        depends = compose["services"][name]["depends_on"]
        assert depends["redis"]["condition"] == "service_healthy"
        assert depends["postgres"]["condition"] == "service_healthy"
    for name in ("redis", "postgres", "worker", "flower", "api"):
        assert "healthcheck" in compose["services"][name], name


def test_workers_get_longer_than_the_longest_task_to_stop(compose: dict[str, Any]) -> None:
    longest = max(hard for _soft, hard in TIME_LIMITS.values())
    assert _seconds(compose["services"]["worker"]["stop_grace_period"]) > longest


def test_a_standby_beat_runs_beside_the_active_one(compose: dict[str, Any]) -> None:
    # Two beats are safe: the Redis lock lets one schedule (tests/faults/test_beat_failover.py)
    assert compose["services"]["beat"]["deploy"]["replicas"] == 2


def test_every_fleet_command_is_a_real_entry_point_with_real_options(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        command = service.get("command")
        if isinstance(command, list) and command[0] in {"celery", "agent"}:
            assert contract.command_problems(command) == [], name
        test = service.get("healthcheck", {}).get("test", [])
        if test[:1] == ["CMD-SHELL"] and test[1].startswith("celery"):
            assert contract.command_problems(["sh", "-c", test[1]]) == [], name


def test_health_checks_ask_paths_the_processes_serve_on_the_ports_they_listen_on(compose: dict[str, Any]) -> None:
    served = {"api": contract.api_paths(), "flower": contract.flower_paths()}
    for name, paths in served.items():
        service = compose["services"][name]
        url = re.search(r"http://127\.0\.0\.1:(\d+)(/[\w/]*)", service["healthcheck"]["test"][1])
        assert url, name
        assert url.group(1) == contract.option_value(service["command"], "--port"), name
        assert url.group(2) in paths, name
        assert f"{url.group(1)}:{url.group(1)}" in service["ports"], name


def test_no_variable_is_unknown_to_the_fleet_or_its_libraries(compose: dict[str, Any]) -> None:
    names = set(compose["x-fleet-env"])
    for service in compose["services"].values():
        names |= {n for n in service.get("environment", {}) if n.startswith(("FLEET_", "PROMETHEUS", "MPL"))}
    assert contract.unknown_variables(names) == set()
