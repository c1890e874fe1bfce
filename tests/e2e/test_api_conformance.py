"""The live API answers as its own OpenAPI document says: status, media type and body schema, against a real
API server and the session's worker (runs, ledger results and a report made for real, then read back)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.services import keys as key_service
from tests.e2e.conftest import ApiServer
from tests.ledger_cases import setup

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Every area, cheap for the worker: no generated workflow, no generated report (those are made once below).
GENERATED = {
    ("GET", "/health/live"),
    ("GET", "/api/v1/config"),
    ("POST", "/api/v1/ping"),
    ("GET", "/api/v1/tools"),
    ("GET", "/api/v1/tools/{tool_id}"),
    ("POST", "/api/v1/tools/{tool_id}/execute"),
    ("GET", "/api/v1/agent/status/{run_id}"),
    ("POST", "/api/v1/ledger/events"),
    ("GET", "/api/v1/ledger/results/{event_id}"),
    ("GET", "/api/v1/ledger/versions"),
    ("GET", "/api/v1/reports/{day}"),
    ("GET", "/api/v1/briefing"),
}
EXAMPLES = 8


@pytest.fixture(scope="module")
def schema(api_server: ApiServer) -> Any:
    """The live API's own document."""
    return schemathesis.openapi.from_url(api_server.url + "/openapi.json")


@pytest.fixture(scope="module")
def auth(api_server: ApiServer) -> Iterator[dict[str, str]]:
    """An admin key without a practical rate limit, revoked afterwards (the session's API is open again)."""
    info, token = key_service.create_key("e2e-conformance", ["admin"], rate_limit=1_000_000)
    yield {"Authorization": f"Bearer {token}"}
    key_service.revoke_key(info.key_id)


def call(schema: Any, auth: dict[str, str], method: str, path: str, **parts: Any) -> Any:
    """One request, checked against the document; the response."""
    case = schema[path][method].Case(**parts)
    return case.call_and_validate(headers=auth, checks=CHECKS, timeout=120)


def test_generated_requests_get_the_answers_the_document_describes(schema: Any, auth: dict[str, str]) -> None:
    # Given requests generated from each representative operation's own schema
    for method, path in sorted(GENERATED):
        strategy = schema[path][method].as_strategy()

        @given(case=strategy)
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def conforms(case: Any) -> None:
            # Then each answer has a documented status, media type and body shape
            case.call_and_validate(headers=auth, checks=CHECKS, timeout=60)

        conforms()


def test_real_records_read_back_have_their_documented_shapes(schema: Any, auth: dict[str, str]) -> None:
    # Given a workflow run to rest, ledger events processed and a report made by the real worker
    request = {"input": "compute (12+30)*2 and summarise the result", "mode": "planner", "profile": "local"}
    run = call(schema, auth, "POST", "/api/v1/agent/run", body=request, query={"wait": "true"})
    assert run.status_code == 200 and run.json()["stages"]
    events = [*setup("conf"), {**setup("conf")[1], "timestamp": "2026-11-21T10:00:00Z"}]
    ledger = call(schema, auth, "POST", "/api/v1/ledger/events", body={"events": events}, query={"wait": "true"})
    assert ledger.status_code == 202 and ledger.json()["results"]
    made = call(schema, auth, "POST", "/api/v1/reports/run", body={})
    assert made.status_code == 201
    # When each is read back, and the compatible and health routes are asked
    run_id = run.json()["run_id"]
    call(schema, auth, "GET", "/api/v1/agent/status/{run_id}", path_parameters={"run_id": run_id})
    call(schema, auth, "GET", "/api/workflow/{run_id}", path_parameters={"run_id": run_id})
    for event in events[:2]:
        call(schema, auth, "GET", "/api/v1/ledger/results/{event_id}", path_parameters={"event_id": event["event_id"]})
    call(schema, auth, "GET", "/api/v1/reports/latest")
    call(schema, auth, "GET", "/api/v1/reports/{day}", path_parameters={"day": made.json()["date"]})
    call(schema, auth, "POST", "/api/v1/agent/batch", body={"requests": [{**request, "mode": "plan_only"}]})
    for path in ("/health/ready", "/health/startup", "/api/health"):
        call(schema, auth, "GET", path)
    # Then every answer conformed (call_and_validate raises on the first that does not)
