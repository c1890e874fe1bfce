"""Schedules over HTTP and from the CLI, as an operator manages them: clear refusals, scopes, no restart."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from gateway.services import keys as key_service
from tests.e2e.conftest import ApiServer
from tests.support import run_agent

pytestmark = pytest.mark.e2e

HOURLY = {"name": "ledger-hourly", "task": "fleet.ping", "cron": "0 * * * *", "queue": "ledger", "priority": 2}


@pytest.fixture
def keys(idle_api_server: ApiServer) -> Iterator[dict[str, dict[str, str]]]:
    made = {scope: key_service.create_key(f"e2e-schedules-{scope}", [scope]) for scope in ("operator", "read")}
    yield {scope: {"Authorization": f"Bearer {token}"} for scope, (_info, token) in made.items()}
    for info, _token in made.values():
        key_service.revoke_key(info.key_id)
    run_agent("schedule", "remove", HOURLY["name"])


def test_an_operator_adds_lists_pauses_and_removes_a_schedule(
    idle_api_server: ApiServer, keys: dict[str, dict[str, str]]
) -> None:
    url = idle_api_server.url + "/api/v1/schedules"
    # When an operator adds an hourly schedule
    added = httpx.post(url, json=HOURLY, headers=keys["operator"])
    # Then it is stored with the fleet's time zone and who added it
    assert added.status_code == 201, added.text
    assert added.json()["timezone"] == "UTC" and added.json()["enabled"] is True
    listed = httpx.get(url, headers=keys["read"]).json()
    assert [s["name"] for s in listed["schedules"]] == ["ledger-hourly"]
    # And a read-only key cannot change schedules
    assert httpx.post(url + "/ledger-hourly/pause", headers=keys["read"]).status_code == 403
    # When it is paused, then it stays listed as paused
    assert httpx.post(url + "/ledger-hourly/pause", headers=keys["operator"]).json()["enabled"] is False
    # And the CLI shows the same
    shown = run_agent("schedule", "list")
    assert shown.returncode == 0 and "ledger-hourly" in shown.stdout and "paused" in shown.stdout
    # When it is removed, then it is gone, and removing it again is a 404
    removed = httpx.delete(url + "/ledger-hourly", headers=keys["operator"])
    assert removed.status_code == 200 and removed.json() == {"removed": "ledger-hourly"}
    assert httpx.delete(url + "/ledger-hourly", headers=keys["operator"]).status_code == 404


@pytest.mark.parametrize(
    ("change", "field_or_reason"),
    [
        ({"task": "ledger.consistency"}, "unknown task 'ledger.consistency'"),
        ({"cron": "0 25 * * *"}, "Invalid end range"),
        ({"cron": "every hour"}, "cron"),
        ({"queue": "fleet:ratelimit:abc"}, "unknown queue"),
        ({"priority": 10}, "priority"),
        ({"name": "Bad Name"}, "name"),
    ],
)
def test_a_bad_schedule_is_a_422_that_says_what_is_wrong(
    idle_api_server: ApiServer, keys: dict[str, dict[str, str]], change: dict[str, object], field_or_reason: str
) -> None:
    answer = httpx.post(idle_api_server.url + "/api/v1/schedules", json={**HOURLY, **change}, headers=keys["operator"])
    assert answer.status_code == 422
    assert field_or_reason in answer.text


def test_a_taken_name_is_a_409(idle_api_server: ApiServer, keys: dict[str, dict[str, str]]) -> None:
    url = idle_api_server.url + "/api/v1/schedules"
    assert httpx.post(url, json=HOURLY, headers=keys["operator"]).status_code == 201
    again = httpx.post(url, json=HOURLY, headers=keys["operator"])
    assert again.status_code == 409 and "exists" in again.json()["detail"]


def test_the_cli_refuses_a_bad_schedule_in_one_line_with_exit_code_2() -> None:
    bad_cron = run_agent("schedule", "add", "x", "--cron", "61 * * * *", "--task", "fleet.ping")
    assert bad_cron.returncode == 2 and "Traceback" not in bad_cron.stderr
    assert "error:" in bad_cron.stderr and "61" in bad_cron.stderr
    bad_json = run_agent("schedule", "add", "x", "--cron", "0 * * * *", "--task", "fleet.ping", "--args", "[1,")
    assert bad_json.returncode == 2 and "not JSON" in bad_json.stderr
    unknown = run_agent("schedule", "remove", "never-added")
    assert unknown.returncode == 2 and "no schedule named 'never-added'" in unknown.stderr
