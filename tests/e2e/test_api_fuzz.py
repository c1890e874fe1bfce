"""Property-based fuzz of the OpenAPI spec against live uvicorn: no request makes the API answer 5xx.

The server under fuzz sends to a Redis database no worker reads, so generated workflows and ledger events
exercise validation, auth, routing and the services' producers without loading the session's worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from gateway.services import keys as key_service
from tests.e2e.conftest import ApiServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Moderate: the whole fuzz runs in about a minute on a shared two-core machine.
MAX_EXAMPLES = 20
# Operations that wait (for a worker that never comes, up to gateway.wait_timeout_s) or render a report.
SLOW = {"/api/v1/reports/run", "/api/v1/agent/run", "/api/v1/agent/run/stream", "/api/v1/ledger/events", "/api/v1/ping",
        "/api/v1/conversations/{conversation_id}/turns"}  # fmt: skip
SLOW_EXAMPLES = 6


@pytest.fixture(scope="module")
def fuzz_key(idle_api_server: ApiServer) -> Iterator[str]:
    """An admin key without a practical rate limit, revoked afterwards (the session's API is open again)."""
    info, token = key_service.create_key("e2e-fuzz", ["admin"], rate_limit=1_000_000)
    yield token
    key_service.revoke_key(info.key_id)


@pytest.mark.timeout(600)
def test_no_generated_request_gets_a_server_error(idle_api_server: ApiServer, fuzz_key: str) -> None:
    # Given the live API's own OpenAPI document (readiness excluded: 503 is its answer while no worker serves)
    schema = (
        schemathesis.openapi.from_url(idle_api_server.url + "/openapi.json")
        .exclude(path=["/health/ready", "/api/health"])
        # Operator actions on the whole session's data (another test's dead letters and runs): their inputs are
        # fuzzed by tests/e2e/test_operations_api.py on data of their own.
        .exclude(method="POST", path_regex=r"^/api/v1/(dead-letters/|runs/cancel$)")
    )
    headers = {"Authorization": f"Bearer {fuzz_key}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 5
    for operation in operations:
        # When requests generated from each operation's schema are sent
        examples = SLOW_EXAMPLES if operation.path in SLOW else MAX_EXAMPLES

        @given(case=operation.as_strategy())
        @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def no_server_error(case: Any) -> None:
            # Then none is answered with a 5xx
            case.call_and_validate(headers=headers, checks=[not_a_server_error], timeout=60)

        no_server_error()
