"""A failed run resumed from its failed stage without applying a side effect twice, or run again as a new run."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ApiServer
from tests.e2e.test_api_security import bearer, create_key, revoke
from tests.ledger_cases import event, ts
from tests.support import WorkerProcess, wait_for
from worker.agents.models import AgentIdempotencyKey
from worker.db import session_scope

pytestmark = pytest.mark.e2e
QUEUE = "agents-resume"


@pytest.fixture(scope="module")
def flaky_worker(celery_app: Any, session_dir: Path, api_server: ApiServer) -> Iterator[WorkerProcess]:
    """A worker on its own agents queue that also knows `test.until_file`."""
    config = session_dir / "resume.yaml"
    config.write_text("agents:\n  tool_modules: [tests.flaky_tools]\n")
    worker = WorkerProcess(queues=QUEUE, name="resume", env={"FLEET_CONFIG": str(config)}).start(celery_app)
    yield worker
    worker.stop()


@pytest.fixture(scope="module")
def submitter(api_server: ApiServer) -> Iterator[dict[str, Any]]:
    key = create_key("--name", "resume-submitter", "--scope", "run", "--scope", "ledger:write")
    yield key
    revoke(key)


def _call(server: ApiServer, method: str, key: dict[str, Any], path: str, body: Any = None) -> httpx.Response:
    return httpx.request(method, server.url + path, json=body, headers=bearer(key), timeout=30)


def _status(server: ApiServer, key: dict[str, Any], run_id: str) -> dict[str, Any]:
    return dict(_call(server, "GET", key, f"/api/v1/agent/status/{run_id}").json())


def _resting(server: ApiServer, key: dict[str, Any], run_id: str) -> dict[str, Any]:
    done = {"succeeded", "failed", "rejected", "cancelled"}
    return wait_for(lambda: (r := _status(server, key, run_id)).get("status") in done and r, timeout=90,
                    what=f"run {run_id} to end")  # fmt: skip


def test_a_failed_run_resumes_from_its_failed_stage_and_applies_each_side_effect_once(
    api_server: ApiServer, flaky_worker: WorkerProcess, submitter: dict[str, Any], session_dir: Path
) -> None:
    p = f"rs{uuid.uuid4().hex[:6]}"
    for one in (
        event(f"{p}-o1", "account_opened", {"account": f"{p}-a", "currency": "EUR", "opening_balance": "100.00"}),
        event(f"{p}-o2", "account_opened", {"account": f"{p}-b", "currency": "EUR"}),
    ):
        _call(api_server, "POST", submitter, "/api/v1/ledger/events?wait=true", {"events": [one]}).raise_for_status()
    marker = session_dir / f"{p}.ready"
    transfer = {"event_type": "transaction_created", "timestamp": ts(300),
                "data": {"transaction_id": f"{p}-t", "sender": f"{p}-a", "receiver": f"{p}-b", "amount": "40.00",
                         "currency": "EUR"}}  # fmt: skip
    subtasks = [
        {"id": "s1", "tool": "ledger.quick_run", "args": {"event": transfer}},
        {"id": "s2", "tool": "test.until_file", "args": {"path": str(marker)}},
    ]
    body = {"input": f"move 40.00 then check {p}", "options": {"subtasks": subtasks, "queue": QUEUE}}
    # Given a run whose transfer (a side effect) was applied before its next subtask failed
    run_id = _call(api_server, "POST", submitter, "/api/v1/agent/run", body).json()["run_id"]
    failed = _resting(api_server, submitter, run_id)
    assert failed["status"] == "failed" and "does not exist yet" in failed["error"], failed["error"]
    balance = _call(api_server, "GET", submitter, f"/api/v1/ledger/accounts/{p}-a").json()["balance"]
    assert balance == "60.00"
    # When the cause is fixed and the run is resumed from the stage it failed in
    marker.write_text("ready")
    resumed = _call(api_server, "POST", submitter, f"/api/v1/runs/{run_id}/resume")
    assert resumed.status_code == 200, resumed.text
    done = _resting(api_server, submitter, run_id)
    # Then it succeeds, and the transfer was applied once: the balance moved once, its tool was called once
    assert done["status"] == "succeeded", done
    assert [r["status"] for r in done["subtasks"]] == ["succeeded", "succeeded"]
    assert _call(api_server, "GET", submitter, f"/api/v1/ledger/accounts/{p}-a").json()["balance"] == "60.00"
    with session_scope() as session:
        calls = session.query(AgentIdempotencyKey).filter_by(run_id=run_id).all()
        assert {c.subtask_id: c.attempts for c in calls} == {"s1": 1}
    # And a run that did not fail is not resumed
    again = _call(api_server, "POST", submitter, f"/api/v1/runs/{run_id}/resume")
    assert again.status_code == 409 and again.json()["code"] == "not_resumable"


def test_a_run_runs_again_as_a_new_run_linked_to_the_old(
    api_server: ApiServer, flaky_worker: WorkerProcess, submitter: dict[str, Any]
) -> None:
    first = _call(api_server, "POST", submitter, "/api/v1/agent/run", {"input": "compute 6*7"}).json()["run_id"]
    assert _resting(api_server, submitter, first)["status"] == "succeeded"
    again = _call(api_server, "POST", submitter, f"/api/v1/runs/{first}/rerun")
    assert again.status_code == 202 and again.json()["rerun_of"] == first
    second = _resting(api_server, submitter, again.json()["run_id"])
    assert second["status"] == "succeeded" and second["request"]["options"]["rerun_of"] == first
    assert second["output"]["answer"] == _status(api_server, submitter, first)["output"]["answer"]


def test_a_run_is_not_resumed_from_planning_after_its_subtasks_ran(
    api_server: ApiServer, submitter: dict[str, Any], flaky_worker: WorkerProcess
) -> None:
    body = {"input": "x", "options": {"queue": QUEUE, "subtasks": [
        {"id": "s1", "tool": "test.until_file", "args": {"path": "/nonexistent/never"}}]}}  # fmt: skip
    run_id = _call(api_server, "POST", submitter, "/api/v1/agent/run", body).json()["run_id"]
    assert _resting(api_server, submitter, run_id)["status"] == "failed"
    refused = _call(api_server, "POST", submitter, f"/api/v1/runs/{run_id}/resume", {"from_stage": "analyze"})
    assert refused.status_code == 409 and "subtasks ran" in refused.json()["detail"]
    assert json.dumps(_status(api_server, submitter, run_id)["status"]) == '"failed"'
    assert os.path.exists("/nonexistent/never") is False
