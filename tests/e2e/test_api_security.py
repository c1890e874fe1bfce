"""The API's doors under attack, through the real `agent api`: queue names, hostile numbers, Redis errors, run
ownership, report dates. (Waits, readiness, failed logins and forwarded headers: test_api_limits.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.models import AGENT_QUEUE_PATTERN
from tests.e2e.conftest import AGENT, ApiServer
from tests.support import ROOT, run_agent, wait_for

pytestmark = pytest.mark.e2e

HYPOTHESIS = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def create_key(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """`agent keys create --json ...` as an operator runs it."""
    out = subprocess.run(
        [AGENT, "keys", "create", "--json", *args],
        cwd=ROOT,
        capture_output=True,
        check=True,
        env={**os.environ, **(env or {})},
    )
    return dict(json.loads(out.stdout))


def revoke(key: dict[str, Any], env: dict[str, str] | None = None) -> None:
    """`agent keys revoke ID`."""
    subprocess.run(
        [AGENT, "keys", "revoke", key["key_id"]],
        cwd=ROOT,
        capture_output=True,
        check=True,
        env={**os.environ, **(env or {})},
    )


def bearer(key: dict[str, Any]) -> dict[str, str]:
    """The key as an Authorization header."""
    return {"Authorization": f"Bearer {key['token']}"}


@pytest.fixture(scope="module")
def keys(api_server: ApiServer) -> Iterator[dict[str, dict[str, Any]]]:
    """Two run keys (A and B), an operator, a reader and an admin; revoked afterwards."""
    made = {
        "a": create_key("--name", "sec-a", "--scope", "run"),
        "b": create_key("--name", "sec-b", "--scope", "run"),
        "operator": create_key("--name", "sec-operator", "--scope", "operator"),
        "read": create_key("--name", "sec-read", "--scope", "read"),
        "admin": create_key("--name", "sec-admin", "--scope", "admin"),
    }
    yield made
    for key in made.values():
        revoke(key)


@pytest.fixture(scope="module")
def broker() -> Iterator[redis.Redis]:
    """A client on the session's broker, to look at the keys the API wrote."""
    client = redis.Redis.from_url(os.environ["FLEET_BROKER_URL"])
    yield client
    client.close()


not_a_fleet_queue = st.one_of(
    st.builds(lambda key_id: f"fleet:ratelimit:{key_id}", st.from_regex(r"[0-9a-f]{8}", fullmatch=True)),
    st.sampled_from(["fleet:idempotency:x", "unacked", "_kombu.binding.agents", "agents:5", "ledger", "AGENTS"]),
    st.text(min_size=1, max_size=60),
).filter(lambda queue: not __import__("re").fullmatch(AGENT_QUEUE_PATTERN, queue))


def test_a_run_naming_another_keys_rate_limit_as_its_queue_is_refused(
    api_server: ApiServer, keys: dict[str, dict[str, Any]], broker: redis.Redis
) -> None:
    # Given key B's rate-limit counter, the Redis key the reported attack pushed a message onto
    target = f"fleet:ratelimit:{keys['b']['key_id']}"
    assert httpx.get(api_server.url + "/api/v1/tools", headers=bearer(keys["b"]), timeout=10).status_code == 200
    # When key A asks for a run on that "queue"
    body = {"input": "compute 1+1", "options": {"queue": target}}
    answer = httpx.post(api_server.url + "/api/v1/agent/run", json=body, headers=bearer(keys["a"]), timeout=10)
    # Then it is refused, nothing is pushed there, and key B keeps working
    assert answer.status_code == 422 and answer.json()["code"] == "validation_failed", answer.text
    assert "agents-<name>" in answer.json()["detail"]
    assert broker.type(target) == b"string"
    assert httpx.get(api_server.url + "/api/v1/tools", headers=bearer(keys["b"]), timeout=10).status_code == 200


def _shape(broker: redis.Redis, key: str) -> tuple[bytes, int]:
    kind = broker.type(key)
    return kind, int(broker.llen(key)) if kind == b"list" else 0


def test_any_queue_name_but_the_fleets_own_is_refused_and_creates_no_key(
    api_server: ApiServer, keys: dict[str, dict[str, Any]], broker: redis.Redis
) -> None:
    @HYPOTHESIS
    @given(queue=not_a_fleet_queue)
    def refused(queue: str) -> None:
        body = {"input": "compute 1+1", "options": {"queue": queue}}
        before = _shape(broker, queue)
        for path in ("/api/v1/agent/run", "/api/workflow", "/api/v1/agent/run/stream"):
            answer = httpx.post(api_server.url + path, json=body, headers=bearer(keys["a"]), timeout=30)
            assert answer.status_code == 422, (path, queue, answer.text)
        batch = {"requests": [{"input": "compute 1+1"}, body]}
        answer = httpx.post(api_server.url + "/api/v1/agent/batch", json=batch, headers=bearer(keys["a"]), timeout=30)
        assert answer.status_code == 422, answer.text
        assert _shape(broker, queue) == before  # nothing pushed onto that key

    refused()


def test_a_plain_producers_run_on_a_foreign_queue_is_refused_by_the_worker(celery_app, broker: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    # Given a plain Celery producer that sends agents.run_workflow naming a Redis key as its queue
    target = f"fleet:victim:{uuid.uuid4().hex[:8]}"
    request = {"input": "compute 1+1", "options": {"queue": target}}
    result = celery_app.send_task("agents.run_workflow", args=[request], queue="agents", priority=5)
    # Then the worker refuses the run (the task fails with the reason) and sends nothing to that key
    wait_for(result.ready, timeout=60, what="the worker's answer")
    assert result.failed() and "agents-<name>" in str(result.result)
    assert broker.exists(target) == 0


def _post_raw(api_server: ApiServer, key: dict[str, Any], body: str) -> httpx.Response:
    headers = {**bearer(key), "Content-Type": "application/json"}
    return httpx.post(api_server.url + "/api/v1/agent/run", content=body.encode(), headers=headers, timeout=30)


non_finite = st.sampled_from(["NaN", "Infinity", "-Infinity", "1e309", "-1e400"])
containers = st.sampled_from(['{"priority": %s}', '{"x": [1, {"y": %s}]}', '{"subtasks": [{"args": {"n": %s}}]}'])


def test_nan_or_infinite_numbers_in_options_are_refused_not_stored_as_null(
    api_server: ApiServer, keys: dict[str, dict[str, Any]]
) -> None:
    @HYPOTHESIS
    @given(number=non_finite, container=containers)
    def refused(number: str, container: str) -> None:
        # Given a run whose options hold a number JSON cannot carry (Python's parser reads it as nan or inf)
        answer = _post_raw(api_server, keys["a"], '{"input": "compute 1+1", "options": %s}' % (container % number))
        # Then it is refused with 422 naming the options, never run with the number turned into null
        assert answer.status_code == 422, answer.text
        assert answer.json()["code"] == "validation_failed" and "finite" in answer.json()["detail"]

    refused()


def test_a_redis_error_is_logged_but_the_client_gets_only_a_stable_code(
    api_server: ApiServer, keys: dict[str, dict[str, Any]], broker: redis.Redis
) -> None:
    # Given a key whose rate-limit counter is not a counter (what the queue attack left behind)
    target = f"fleet:ratelimit:{keys['read']['key_id']}"
    broker.delete(target)
    broker.lpush(target, "junk")
    try:
        # When the key calls the API
        answer = httpx.get(api_server.url + "/api/v1/tools", headers=bearer(keys["read"]), timeout=10)
    finally:
        broker.delete(target)
    # Then the answer is 503 with a generic detail and Retry-After; Redis's own words are only in the log
    assert answer.status_code == 503 and answer.json()["code"] == "broker_unavailable"
    assert answer.headers["Retry-After"].isdigit()
    for internal in ("WRONGTYPE", "script", "redis", "Redis"):
        assert internal not in answer.json()["detail"]
    wait_for(lambda: "WRONGTYPE" in api_server.tail(200), timeout=10, what="the Redis error in the API's log")


def _status(api_server: ApiServer, key: dict[str, Any], run_id: str) -> httpx.Response:
    return httpx.get(f"{api_server.url}/api/v1/agent/status/{run_id}", headers=bearer(key), timeout=10)


def test_a_run_is_seen_and_acted_on_only_by_its_own_key_or_an_operator(
    api_server: ApiServer, keys: dict[str, dict[str, Any]]
) -> None:
    url = api_server.url
    # Given a run of key A held for approval
    body = {"input": "compute (2+3)*4", "options": {"require_approval": True}}
    submitted = httpx.post(url + "/api/v1/agent/run", json=body, headers=bearer(keys["a"]), timeout=30)
    assert submitted.status_code == 202, submitted.text
    run_id = submitted.json()["run_id"]
    held = wait_for(lambda: _status(api_server, keys["a"], run_id).json().get("status") == "awaiting_approval",
                    timeout=60, what="the run to await approval")  # fmt: skip
    assert held
    # When key B (run scope) and a read key try every route on it
    for other in (keys["b"], keys["read"]):
        tries = [
            _status(api_server, other, run_id),
            httpx.get(f"{url}/api/workflow/{run_id}", headers=bearer(other), timeout=10),
            httpx.get(f"{url}/api/v1/agent/run/{run_id}/events", headers=bearer(other), timeout=10),
            httpx.post(f"{url}/api/v1/agent/{run_id}/approve", headers=bearer(other), timeout=10),
            httpx.post(f"{url}/api/v1/agent/{run_id}/reject", headers=bearer(other), timeout=10),
            httpx.delete(f"{url}/api/v1/agent/cancel/{run_id}", headers=bearer(other), timeout=10),
            httpx.post(f"{url}/api/v1/agent/run/stream", json={"input": "x"},
                       headers={**bearer(other), "Last-Event-ID": f"{run_id}/0"}, timeout=10),
        ]  # fmt: skip
        # Then each answers as if the run did not exist (403 for the read key's writes), and the run is untouched
        for answer in tries:
            assert answer.status_code in (404, 403), (answer.request.url, answer.status_code, answer.text)
            assert answer.json()["code"] in {"run_not_found", "forbidden"}
            assert "(2+3)*4" not in answer.text and "awaiting_approval" not in answer.text
    own = _status(api_server, keys["a"], run_id)
    assert own.status_code == 200 and own.json()["status"] == "awaiting_approval"
    assert own.json()["owner"] == keys["a"]["key_id"]
    # And an operator key sees it and approves it, and the run finishes for its owner
    assert _status(api_server, keys["operator"], run_id).status_code == 200
    approved = httpx.post(f"{url}/api/v1/agent/{run_id}/approve", headers=bearer(keys["operator"]), timeout=30)
    assert approved.status_code == 200, approved.text
    done = wait_for(lambda: _status(api_server, keys["a"], run_id).json().get("status") in {"succeeded", "failed"},
                    timeout=90, what="the approved run to finish")  # fmt: skip
    assert done and _status(api_server, keys["a"], run_id).json()["status"] == "succeeded"


def test_another_keys_idempotency_key_does_not_hand_over_its_run(
    api_server: ApiServer, keys: dict[str, dict[str, Any]]
) -> None:
    body = {"input": "compute 6*7", "mode": "plan_only", "idempotency_key": f"sec-{uuid.uuid4()}"}
    first = httpx.post(api_server.url + "/api/v1/agent/run", json=body, headers=bearer(keys["a"]), timeout=30)
    run_id = first.json()["run_id"]
    wait_for(lambda: _status(api_server, keys["a"], run_id).status_code == 200, timeout=60, what="the run recorded")
    other = httpx.post(api_server.url + "/api/v1/agent/run", json=body, headers=bearer(keys["b"]), timeout=30)
    assert other.status_code == 409 and other.json()["code"] == "idempotency_key_conflict"
    assert run_id not in other.text
    again = httpx.post(api_server.url + "/api/v1/agent/run", json=body, headers=bearer(keys["a"]), timeout=30)
    assert again.status_code == 202 and again.json()["run_id"] == run_id


out_of_range_dates = st.one_of(
    st.dates(max_value=date(1999, 12, 31)), st.dates(min_value=date.today() + timedelta(days=3))
)


def test_report_dates_out_of_range_are_refused_by_every_door(
    api_server: ApiServer, keys: dict[str, dict[str, Any]]
) -> None:
    admin = bearer(keys["admin"])

    @HYPOTHESIS
    @given(day=st.one_of(st.sampled_from([date(1, 1, 1), date(9999, 12, 31)]), out_of_range_dates))
    def refused(day: date) -> None:
        made = httpx.post(
            api_server.url + "/api/v1/reports/run", json={"date": day.isoformat()}, headers=admin, timeout=60
        )
        read = httpx.get(f"{api_server.url}/api/v1/reports/{day.isoformat()}", headers=admin, timeout=10)
        for answer in (made, read):
            assert answer.status_code == 422, answer.text
            assert answer.json()["code"] == "report_date_invalid" and "out of range" in answer.json()["detail"]

    refused()
    latest = httpx.get(api_server.url + "/api/v1/reports/latest", headers=admin, timeout=10)
    assert latest.status_code == 404 or latest.json()["date"] <= (date.today() + timedelta(days=1)).isoformat()
    cli = run_agent("report", "--date", "0001-01-01", timeout=60)
    assert cli.returncode == 2 and "out of range" in cli.stderr, cli.stderr
