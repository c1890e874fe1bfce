"""The HTTP API over real uvicorn and a real worker: keys, scopes, limits, problems, idempotency, health."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.e2e.conftest import AGENT, ApiServer
from tests.support import ROOT, wait_for
from worker.db import session_scope
from worker.models.core import AuditEvent

pytestmark = pytest.mark.e2e


def _create_key(*args: str) -> dict[str, Any]:
    out = subprocess.run([AGENT, "keys", "create", "--json", *args], cwd=ROOT, capture_output=True, check=True)
    return dict(json.loads(out.stdout))


@pytest.fixture(scope="module")
def keys(api_server: ApiServer) -> Iterator[dict[str, dict[str, Any]]]:
    """Keys created with `agent keys create`, revoked afterwards so the session's API is open again."""
    made = {
        "admin": _create_key("--name", "e2e-admin", "--scope", "admin"),
        "read": _create_key("--name", "e2e-read", "--scope", "read"),
        "run": _create_key("--name", "e2e-run", "--scope", "run", "--scope", "ledger:write"),
        "limited": _create_key("--name", "e2e-limited", "--scope", "read", "--rate-limit", "3"),
    }
    yield made
    for key in made.values():
        subprocess.run([AGENT, "keys", "revoke", key["key_id"]], cwd=ROOT, capture_output=True, check=True)


def _bearer(key: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['token']}"}


def test_without_any_key_the_api_is_open_and_says_so_in_its_log(api_server: ApiServer) -> None:
    # Given an API with no keys configured
    # When a caller sends no key
    answer = httpx.get(api_server.url + "/api/v1/config", timeout=10)
    # Then it is served, and the start-up log warned loudly
    assert answer.status_code == 200
    assert "NO API KEYS CONFIGURED" in api_server.log_path.read_text()


def test_health_answers_for_broker_database_and_a_worker_on_each_queue(api_server: ApiServer) -> None:
    ready = httpx.get(api_server.url + "/health/ready", timeout=30)
    assert ready.status_code == 200, ready.text
    components = {c["name"]: c for c in ready.json()["components"]}
    assert set(components) == {"broker", "database", "queue:agents", "queue:ledger", "queue:reports"}
    assert all(c["status"] == "ok" for c in components.values())
    assert "answered by session@" in components["queue:ledger"]["detail"]
    startup = httpx.get(api_server.url + "/health/startup", timeout=10)
    assert startup.status_code == 200 and "gateway_0001" in startup.json()["components"][0]["detail"]


def test_once_keys_exist_a_call_without_one_is_refused_but_health_stays_open(
    api_server: ApiServer, keys: dict[str, dict[str, Any]]
) -> None:
    refused = httpx.get(api_server.url + "/api/v1/config", timeout=10)
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "unauthorized" and refused.json()["status"] == 401
    wrong = httpx.get(api_server.url + "/api/v1/config", headers={"X-API-Key": "fleet_00000000_nope"}, timeout=10)
    assert wrong.status_code == 401
    assert httpx.get(api_server.url + "/health/live", timeout=10).status_code == 200
    legacy = httpx.get(api_server.url + "/api/health", timeout=30)
    assert legacy.status_code == 200 and legacy.json()["components"]["queue:agents"]["status"] == "ok"


def test_a_key_is_accepted_as_bearer_or_x_api_key_and_scopes_are_enforced(
    api_server: ApiServer, keys: dict[str, dict[str, Any]]
) -> None:
    url = api_server.url
    config = httpx.get(url + "/api/v1/config", headers={"X-API-Key": keys["admin"]["token"]}, timeout=10)
    assert config.status_code == 200
    assert config.json()["flower_auth"] == "***" and "not-a-real-secret" not in config.text
    forbidden = httpx.get(url + "/api/v1/config", headers=_bearer(keys["read"]), timeout=10)
    assert forbidden.status_code == 403 and forbidden.json()["code"] == "forbidden"
    assert forbidden.json()["required_scope"] == "admin"
    metrics = httpx.get(url + "/metrics", headers=_bearer(keys["read"]), timeout=10)
    assert metrics.status_code == 200 and "fleet_http_request_duration_seconds" in metrics.text
    ping = httpx.post(url + "/api/v1/ping", json={"queue": "ledger"}, headers=_bearer(keys["read"]), timeout=10)
    assert ping.status_code == 403


def test_a_revoked_key_stops_working(api_server: ApiServer, keys: dict[str, dict[str, Any]]) -> None:
    key = _create_key("--name", "e2e-doomed", "--scope", "read")
    assert httpx.get(api_server.url + "/metrics", headers=_bearer(key), timeout=10).status_code == 200
    subprocess.run([AGENT, "keys", "revoke", key["key_id"]], cwd=ROOT, capture_output=True, check=True)
    assert httpx.get(api_server.url + "/metrics", headers=_bearer(key), timeout=10).status_code == 401


def test_past_its_rate_limit_a_key_gets_429_with_retry_after(
    api_server: ApiServer, keys: dict[str, dict[str, Any]]
) -> None:
    # Given a key limited to 3 requests per window
    headers = _bearer(keys["limited"])
    answers = [httpx.get(api_server.url + "/metrics", headers=headers, timeout=10) for _ in range(4)]
    # Then the fourth is refused with a problem and a Retry-After, while other keys are unaffected
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[2].headers["RateLimit-Remaining"] == "0"
    refused = answers[3]
    assert refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert httpx.get(api_server.url + "/metrics", headers=_bearer(keys["read"]), timeout=10).status_code == 200


def test_a_body_over_the_limit_is_refused_with_413_declared_or_streamed(
    api_server: ApiServer, keys: dict[str, dict[str, Any]]
) -> None:
    url = api_server.url + "/api/v1/ping"
    big = b'{"queue": "ledger", "pad": "' + b"x" * 70_000 + b'"}'
    declared = httpx.post(url, content=big, headers={**_bearer(keys["run"]), "Content-Type": "application/json"})
    assert declared.status_code == 413 and declared.json()["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:
        # Streamed without Content-Length: the limit is enforced on the bytes received.
        yield big[:40_000]
        yield big[40_000:]

    streamed = httpx.post(url, content=chunks(), headers={**_bearer(keys["run"]), "Content-Type": "application/json"})
    assert streamed.status_code == 413 and streamed.headers["content-type"] == "application/problem+json"


def test_an_invalid_body_is_refused_with_422_naming_the_field(
    api_server: ApiServer, keys: dict[str, dict[str, Any]]
) -> None:
    answer = httpx.post(
        api_server.url + "/api/v1/ping", json={"queue": "nowhere"}, headers=_bearer(keys["run"]), timeout=10
    )
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["code"] == "validation_failed" and problem["detail"].startswith("queue:")
    assert problem["errors"][0]["field"] == "queue"
    unknown = httpx.get(api_server.url + "/api/v1/nothing-here", headers=_bearer(keys["read"]), timeout=10)
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"


def _decode_error(body: bytes) -> json.JSONDecodeError | None:
    """The error the server's JSON parser meets in `body` (None: it parses, or is not text at all)."""
    try:
        json.loads(body)
    except json.JSONDecodeError as exc:
        return exc
    except UnicodeDecodeError:
        return None
    return None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(min_size=1, max_size=80).filter(lambda t: _decode_error(t.encode()) is not None))
def test_a_body_that_is_not_json_is_a_body_error_with_its_line_and_column(
    api_server: ApiServer, keys: dict[str, dict[str, Any]], text: str
) -> None:
    # Given a body the JSON parser stops in, at some line and column
    error = _decode_error(text.encode())
    assert error is not None
    # When it is posted as JSON
    answer = httpx.post(
        api_server.url + "/api/v1/ledger/events",
        content=text.encode(),
        headers={**_bearer(keys["run"]), "Content-Type": "application/json"},
        timeout=10,
    )
    # Then the problem is the body's, and says where the parser stopped (not a byte offset posing as a field)
    assert answer.status_code == 422, answer.text
    message = f"invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}"
    problem = answer.json()
    assert problem["errors"] == [{"field": "body", "message": message}]
    assert problem["detail"] == f"body: {message}"


def test_a_repeated_idempotency_key_returns_the_first_response_without_new_work(
    api_server: ApiServer, keys: dict[str, dict[str, Any]]
) -> None:
    headers = {**_bearer(keys["run"]), "Idempotency-Key": "e2e-ping-1"}
    body = {"queue": "ledger", "priority": 3, "wait_s": 10}
    first = httpx.post(api_server.url + "/api/v1/ping", json=body, headers=headers, timeout=30)
    again = httpx.post(api_server.url + "/api/v1/ping", json=body, headers=headers, timeout=30)
    assert first.status_code == again.status_code == 201
    assert first.json()["answer"]["hostname"].startswith("session@")
    assert again.json()["task_id"] == first.json()["task_id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    reused = httpx.post(api_server.url + "/api/v1/ping", json={"queue": "agents"}, headers=headers, timeout=30)
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"


def test_a_revoked_key_gets_401_instead_of_its_stored_idempotent_response(
    api_server: ApiServer, keys: dict[str, dict[str, Any]]
) -> None:
    # Given a key whose ping was stored under an Idempotency-Key
    key = _create_key("--name", "e2e-replay-revoked", "--scope", "run")
    headers = {**_bearer(key), "Idempotency-Key": f"e2e-revoked-{uuid.uuid4()}"}
    body = {"queue": "ledger", "priority": 3, "wait_s": 10}
    first = httpx.post(api_server.url + "/api/v1/ping", json=body, headers=headers, timeout=30)
    assert first.status_code == 201
    # When the key is revoked and the same request is repeated, with the key or with none
    subprocess.run([AGENT, "keys", "revoke", key["key_id"]], cwd=ROOT, capture_output=True, check=True)
    revoked = httpx.post(api_server.url + "/api/v1/ping", json=body, headers=headers, timeout=30)
    keyless = httpx.post(
        api_server.url + "/api/v1/ping", json=body, headers={"Idempotency-Key": headers["Idempotency-Key"]}
    )
    # Then both are refused as unauthenticated, and neither sees the stored answer
    for answer in (revoked, keyless):
        assert answer.status_code == 401 and answer.json()["code"] == "unauthorized"
        assert answer.headers["WWW-Authenticate"] == "Bearer" and "Idempotent-Replayed" not in answer.headers
        assert first.json()["task_id"] not in answer.text


def test_another_key_with_the_same_idempotency_key_gets_422_not_the_first_response(
    api_server: ApiServer, keys: dict[str, dict[str, Any]]
) -> None:
    # Given a response stored for the run key under an Idempotency-Key
    idempotency_key = f"e2e-shared-{uuid.uuid4()}"
    body = {"queue": "ledger", "priority": 3, "wait_s": 10}
    url = api_server.url + "/api/v1/ping"
    first = httpx.post(url, json=body, headers={**_bearer(keys["run"]), "Idempotency-Key": idempotency_key})
    assert first.status_code == 201
    # When another valid key (even an admin one) sends the same request with the same Idempotency-Key
    other = httpx.post(
        url, json=body, headers={"X-API-Key": keys["admin"]["token"], "Idempotency-Key": idempotency_key}
    )
    # Then it is told the key belongs to another caller, and sees nothing of the first response
    assert other.status_code == 422 and other.headers["content-type"] == "application/problem+json"
    assert other.json()["code"] == "idempotency_key_reused"
    assert other.json()["detail"] == "this Idempotency-Key was used by another API key"
    assert first.json()["task_id"] not in other.text
    # And the first key, presented in either header, still gets its own response replayed
    for auth in (_bearer(keys["run"]), {"X-API-Key": keys["run"]["token"]}):
        again = httpx.post(url, json=body, headers={**auth, "Idempotency-Key": idempotency_key}, timeout=30)
        assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
        assert again.json()["task_id"] == first.json()["task_id"]


def test_a_repeat_sent_as_soon_as_the_first_answer_arrives_is_replayed(
    api_server: ApiServer, keys: dict[str, dict[str, Any]]
) -> None:
    # Given clients that repeat a request the moment its first answer arrives (a retry loop, a double click)
    url = api_server.url + "/api/v1/ping"
    body = {"queue": "ledger", "wait_s": 0}
    with httpx.Client(headers=_bearer(keys["admin"]), timeout=30) as client:
        for attempt in range(40):
            headers = {"Idempotency-Key": f"e2e-quick-{attempt}-{uuid.uuid4()}"}
            first = client.post(url, json=body, headers=headers)
            again = client.post(url, json=body, headers=headers)
            # Then the repeat gets the stored answer, never 409 "the first request is still running"
            assert first.status_code == 201, first.text
            assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true", again.text
            assert again.json() == first.json()


def test_a_replayed_response_counts_against_the_keys_rate_limit(api_server: ApiServer) -> None:
    # Given a key allowed 2 requests per window, whose first ping was stored under an Idempotency-Key
    key = _create_key("--name", "e2e-replay-limited", "--scope", "run", "--rate-limit", "2")
    try:
        headers = {**_bearer(key), "Idempotency-Key": f"e2e-limited-{uuid.uuid4()}"}
        body = {"queue": "ledger", "priority": 3, "wait_s": 10}
        answers = [
            httpx.post(api_server.url + "/api/v1/ping", json=body, headers=headers, timeout=30) for _ in range(3)
        ]
        # Then the replay carries the key's RateLimit headers, and past the limit the replay is refused too
        assert [a.status_code for a in answers] == [201, 201, 429]
        assert answers[1].headers["Idempotent-Replayed"] == "true" and answers[1].headers["RateLimit-Remaining"] == "0"
        assert answers[2].json()["code"] == "rate_limited" and "Idempotent-Replayed" not in answers[2].headers
    finally:
        subprocess.run([AGENT, "keys", "revoke", key["key_id"]], cwd=ROOT, capture_output=True, check=True)


def test_authenticated_calls_reach_the_audit_trail(api_server: ApiServer, keys: dict[str, dict[str, Any]]) -> None:
    httpx.get(api_server.url + "/metrics", headers=_bearer(keys["read"]), timeout=10)

    def audited() -> list[AuditEvent]:
        with session_scope() as session:
            query = select(AuditEvent).where(
                AuditEvent.action == "api_call", AuditEvent.actor == keys["read"]["key_id"]
            )
            return list(session.scalars(query))

    rows = wait_for(audited, timeout=15, what="api_call audit rows")
    assert any(row.subject == "GET /metrics" and row.details["status"] == 200 for row in rows)


def test_each_uvicorn_worker_process_writes_json_lines_to_a_log_file_of_its_own(
    fleet_worker, session_dir: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    # Given `agent api --workers 2` (uvicorn spawns two fresh processes, which do not inherit logging)
    config = tmp_path / "fleet.yaml"
    config.write_text("gateway:\n  key_cache_s: 0\n")
    log_dir = tmp_path / "log"
    server = ApiServer(config, tmp_path / "api.out", {"FLEET_LOG_DIR": str(log_dir)}, ("--workers", "2"))
    # When it starts and answers
    server.start()
    try:
        for _ in range(10):
            assert httpx.get(server.url + "/health/live", timeout=5).status_code == 200
        files = wait_for(lambda: sorted(log_dir.glob("api-*.jsonl")) if len(list(log_dir.glob("api-*.jsonl"))) >= 2 else None,
                         timeout=30, what="a log file per uvicorn worker")  # fmt: skip
    finally:
        server.stop()
    # Then each process wrote its start-up line as JSON to a file named by its pid
    assert len(files) == 2
    for path in files:
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        assert any("API" in r["message"] and r.get("category") == "security" for r in records), records
