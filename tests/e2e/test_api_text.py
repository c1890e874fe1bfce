"""Unstorable text (lone surrogates, NUL) in every string of request bodies, over real uvicorn: never a 5xx.

`?wait=true` on a ledger event holding "\\ud800" answered 500; a run whose `options` held one was stored and
its status answered 500 for good.
"""

from __future__ import annotations

import copy
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.services import keys as key_service
from tests.e2e.conftest import ApiServer
from tests.junk import generated
from tests.ledger_cases import event
from tests.support import WorkerProcess, wait_for
from tests.unstorable import BAD, _positions, spoiled_events, storable

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
# Bodies of the routes that take text, one string of which is spoiled per request.
BODIES: dict[str, dict[str, Any]] = {
    "/api/v1/agent/run": {
        "input": "compute 1+1 and summarise",
        "options": {"note": "text", "nested": {"key": ["value"]}},
        "idempotency_key": "text-key",
    },
    "/api/v1/agent/batch": {"requests": [{"input": "compute 2+2", "options": {"tag": "t"}}]},
    "/api/v1/tools/math.calculate/execute": {"args": {"expression": "6*7"}},
    "/api/workflow": {"input": "compute 3+3", "options": {"k": "v"}},
    "/api/v1/agent/no-such-run/reject": {"reason": "not needed"},
}


@pytest.fixture(scope="module")
def client(api_server: ApiServer) -> Iterator[httpx.Client]:
    """An admin key's client, without a practical rate limit (revoked afterwards)."""
    info, token = key_service.create_key("e2e-text", ["admin"], rate_limit=1_000_000)
    with httpx.Client(base_url=api_server.url, headers={"X-API-Key": token}, timeout=120) as http:
        yield http
    key_service.revoke_key(info.key_id)


def _post(client: httpx.Client, path: str, body: Any, **params: str) -> httpx.Response:
    # As JSON text with \\u escapes: httpx's own encoder cannot write a lone surrogate as UTF-8.
    headers = {"Content-Type": "application/json"}
    return client.post(path, content=json.dumps(body).encode(), headers=headers, params=params)


@st.composite
def spoiled_bodies(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A route and its body with unstorable text put into one of its strings (a key or a value)."""
    path = draw(st.sampled_from(sorted(BODIES)))
    body = copy.deepcopy(BODIES[path])
    positions = _positions(body)
    positions[draw(st.integers(0, len(positions) - 1))](body, draw(BAD))
    return path, body


def test_requests_with_unstorable_text_anywhere_are_refused_with_422(client: httpx.Client) -> None:
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(spoiled_bodies())
    def check(case: tuple[str, dict[str, Any]]) -> None:
        path, body = case
        answer = _post(client, path, body)
        assert answer.status_code == 422, (path, answer.status_code, answer.text)
        assert answer.json()["code"] == "validation_failed" and storable(answer.json())

    check()


@pytest.fixture(scope="module")
def postgres_api(postgres_url: str, redis_server: Any, session_dir: Path) -> Iterator[httpx.Client]:
    """`agent api` and a worker storing in PostgreSQL, on a Redis database of their own (the API is open: its
    database holds no key)."""
    broker = os.environ["FLEET_BROKER_URL"].rsplit("/", 1)[0] + "/3"
    env = {"FLEET_BROKER_URL": broker, "FLEET_RESULT_BACKEND": broker, "FLEET_DATABASE_URL": postgres_url}
    worker = WorkerProcess(queues="ledger", name=f"pgtext-{uuid.uuid4().hex[:6]}", env=env).start()
    config = session_dir / "gateway-text.yaml"
    config.write_text("gateway:\n  key_cache_s: 0\n")
    server = ApiServer(config, session_dir / "log" / "api-text-pg.out", env)
    try:
        wait_for(lambda: f"{worker.hostname} ready." in worker.log_path.read_text(errors="replace"), 90, 0.2)
        server.start()
        with httpx.Client(base_url=server.url, timeout=120) as http:
            yield http
    finally:
        server.stop()
        worker.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ledger_api(request: pytest.FixtureRequest) -> httpx.Client:
    """The session's API (SQLite), or one storing in PostgreSQL."""
    return request.getfixturevalue("client" if request.param == "sqlite" else "postgres_api")


def test_ledger_events_with_unstorable_text_each_get_a_clear_result_and_the_others_are_applied(
    ledger_api: httpx.Client,
) -> None:
    client = ledger_api
    # Given good openings around events with a lone surrogate or NUL in one to three of their strings
    prefix = f"apitext{uuid.uuid4().hex[:6]}"
    spoiled = generated(spoiled_events(prefix), 15)
    good = [event(f"{prefix}-{n}", "account_opened", {"account": f"{prefix}-{n}", "currency": "EUR"}) for n in "ab"]
    # When they are submitted in one request and waited for
    answer = _post(client, "/api/v1/ledger/events", {"events": [good[0], *spoiled, good[1]]}, wait="true")
    # Then the request succeeds, each spoiled event is refused with a clear code, and the good ones are applied
    assert answer.status_code == 202, answer.text
    results = answer.json()["results"]
    assert [results[0]["status"], results[-1]["status"]] == ["accepted", "accepted"]
    refused = results[1:-1]
    assert all(r["status"] in {"rejected", "duplicate"} for r in refused), refused
    assert all(r["codes"][0] in {"invalid_identifier", "schema_invalid", "exists"} for r in refused), refused
    # And each result can be read back
    for result in results:
        assert client.get(f"/api/v1/ledger/results/{result['event_id']}").status_code == 200, result
