"""A correlation id given to the API comes back on the response and travels with the tasks the request sent."""

from __future__ import annotations

import subprocess
import uuid

import httpx
import pytest

from tests.e2e.conftest import AGENT, ApiServer
from tests.e2e.test_api_http import _bearer, _create_key
from tests.ledger_cases import event
from tests.support import ROOT

pytestmark = pytest.mark.e2e


def test_the_ledger_result_of_a_request_carries_its_correlation_id(api_server: ApiServer) -> None:
    key = _create_key("--name", "e2e-correlation", "--scope", "admin")
    try:
        # Given a producer that sends its own correlation id with a ledger event
        cid = f"order-{uuid.uuid4().hex[:8]}"
        p = f"corr-{uuid.uuid4().hex[:6]}"
        body = {"events": [event(f"{p}-1", "account_opened", {"account": f"{p}-a", "currency": "EUR"})]}
        # When it submits and waits for the result
        answer = httpx.post(
            api_server.url + "/api/v1/ledger/events?wait=true",
            json=body,
            headers={**_bearer(key), "X-Correlation-ID": cid},
            timeout=60,
        )
        # Then the response echoes the id, and the worker's result carries it (the task got it in its header)
        assert answer.status_code == 202, answer.text
        assert answer.headers["x-correlation-id"] == cid
        assert [r["correlation_id"] for r in answer.json()["results"]] == [cid]
        # And a request without one gets an id of its own, different each time
        first = httpx.get(api_server.url + "/health/live", timeout=10).headers["x-correlation-id"]
        second = httpx.get(api_server.url + "/health/live", timeout=10).headers["x-correlation-id"]
        assert first != second and uuid.UUID(first)
    finally:
        subprocess.run([AGENT, "keys", "revoke", key["key_id"]], cwd=ROOT, capture_output=True, check=True)
