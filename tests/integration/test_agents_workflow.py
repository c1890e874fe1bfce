"""Agent workflows through a real Redis and the session's real worker process."""

from __future__ import annotations

import uuid

import pytest

from gateway.services import agents as service
from tests.support import WorkerProcess

pytestmark = pytest.mark.integration

TEXT = "Celery is a task queue. It runs work in the background on many workers. Redis keeps the tasks. The weather is nice."


def test_a_run_through_the_service_succeeds_with_the_answer_stages_and_verdicts(fleet_worker: WorkerProcess) -> None:
    record = service.run(f"compute (12+30)*2 and summarise: {TEXT}", timeout_s=60)

    assert record["status"] == "succeeded", record["error"]
    assert record["output"]["results"]["s1"]["value"] == "84"
    assert record["output"]["answer"].startswith("(12+30)*2 = 84\n")
    assert [s["stage"] for s in record["stages"]] == ["analyze", "gate", "execute", "verify"]
    assert all(s["status"] == "succeeded" and s["duration_ms"] > 0 for s in record["stages"])
    assert record["stages"][1]["output"]["verdict"]["decision"] == "approve"
    assert record["stages"][3]["output"]["verification"]["passed"] is True
    assert list(record["timeline"]) == ["pending", "analyzing", "gated", "executing", "verifying", "succeeded"]


def test_send_task_from_another_app_resolves_to_the_final_run_record(fleet_worker: WorkerProcess, celery_app) -> None:  # type: ignore[no-untyped-def]
    request = {"input": "compute 42*2", "mode": "planner", "profile": "local", "options": {}}

    result = celery_app.send_task("agents.run_workflow", args=[request], queue="agents", priority=5)
    record = result.get(timeout=60)

    assert record["run_id"] == result.id
    assert record["status"] == "succeeded"
    assert record["output"]["results"]["s1"]["value"] == "84"


def test_a_dependent_subtask_receives_its_predecessors_output(fleet_worker: WorkerProcess) -> None:
    record = service.run("how many runs by status? then summarise", timeout_s=60)

    assert record["status"] == "succeeded", record["error"]
    query, summary = record["subtasks"]
    assert query["tool"] == "sql.query" and query["output"]["row_count"] >= 1
    # The rows' digest (how many, the total), not their listing
    assert summary["args"]["text"].startswith(f"{query['output']['row_count']} rows; total runs: ")


def test_a_request_no_tool_fits_is_rejected_with_the_reason(fleet_worker: WorkerProcess) -> None:
    record = service.run("tell me a joke", timeout_s=60)

    assert record["status"] == "rejected"
    assert "no tool fits" in record["error"]
    assert [s["stage"] for s in record["stages"]] == ["analyze", "gate"]


def test_a_tool_error_ends_the_run_failed_with_the_error(fleet_worker: WorkerProcess) -> None:
    record = service.run("compute 1/0", timeout_s=60)

    assert record["status"] == "failed"
    assert "s1 (math.calculate:v1): arithmetic error: DivisionByZero" in record["error"]


def test_the_same_idempotency_key_maps_a_repeated_request_to_the_same_run(fleet_worker: WorkerProcess) -> None:
    key = f"key-{uuid.uuid4().hex[:8]}"

    first = service.run("compute 6*7", idempotency_key=key, timeout_s=60)
    second = service.run("compute 6*7", idempotency_key=key, timeout_s=60)

    assert second["run_id"] == first["run_id"]
    assert second["status"] == "succeeded"


def test_a_held_run_waits_for_approval_then_executes_without_planning_again(fleet_worker: WorkerProcess) -> None:
    held = service.run("compute 6*7", options={"require_approval": True}, timeout_s=60)
    assert held["status"] == "awaiting_approval"
    planned_at = held["stages"][0]["ended_at"]

    service.approve(held["run_id"], actor="tester")
    record = service.wait_for_run(held["run_id"], timeout_s=60)

    assert record["status"] == "succeeded"
    assert record["output"]["results"]["s1"]["value"] == "42"
    assert record["stages"][0]["ended_at"] == planned_at
    assert record["stages"][1]["output"]["approved_by"] == "tester"


def test_a_held_run_can_be_rejected_by_a_person(fleet_worker: WorkerProcess) -> None:
    held = service.run("compute 6*7", options={"require_approval": True}, timeout_s=60)

    record = service.reject(held["run_id"], actor="tester", reason="not today")

    assert record["status"] == "rejected"
    assert record["error"] == "rejected by tester: not today"


def test_replaying_a_local_run_is_identical(fleet_worker: WorkerProcess) -> None:
    record = service.run(f"compute (12+30)*2 and summarise: {TEXT}", timeout_s=60)

    for stage in ("analyze", "gate", "execute", "verify"):
        replayed = service.replay(record["run_id"], from_stage=stage)
        assert replayed["identical"] is True, replayed["diff"]
        assert replayed["diff"] == [] and replayed["config_diff"] == []


def test_progress_events_cover_every_stage_and_subtask_and_resume_from_an_id(fleet_worker: WorkerProcess) -> None:
    record = service.run(f"compute 2+2 and summarise: {TEXT}", timeout_s=60)

    events = list(service.progress(record["run_id"], timeout_s=10))
    kinds = [(e["type"], e.get("stage") or e.get("subtask_id") or e.get("status")) for _id, e in events]
    resumed = list(service.progress(record["run_id"], last_event_id=events[2][0], timeout_s=10))

    assert kinds[0] == ("stage_started", "analyze") and kinds[-1] == ("run_finished", "succeeded")
    assert {("subtask_finished", "s1"), ("subtask_finished", "s2"), ("stage_finished", "verify")} <= set(kinds)
    assert [e for e in events[3:]] == resumed


def test_a_repeated_tool_call_is_answered_from_the_cache(fleet_worker: WorkerProcess) -> None:
    expression = f"{uuid.uuid4().int % 1000}*3"
    first = service.run(f"compute {expression}", timeout_s=60)
    second = service.run(f"compute {expression}", timeout_s=60)

    assert first["subtasks"][0]["cached"] is False
    assert second["subtasks"][0]["cached"] is True
    assert second["output"]["cache_hits"] == 1


def test_every_run_keeps_a_config_snapshot_with_secrets_masked(fleet_worker: WorkerProcess) -> None:
    record = service.run("compute 6*7", options={"note": "snap"}, timeout_s=60)

    snap = service.snapshot(record["run_id"])

    assert snap["run_id"] == record["run_id"] and snap["mode"] == "planner"
    assert snap["profile"]["name"] == "local" and snap["options"] == {"note": "snap"}
    assert {t["ref"] for t in snap["tools"]} >= {"math.calculate:v1", "sql.query:v1"}
    assert all(len(t["schema_hash"]) == 16 for t in snap["tools"])
    assert snap["input"]["input"] == "compute 6*7" and snap["output"] == record["output"]
    assert snap["status"] == "succeeded" and len(snap["git_commit"] or "x" * 40) == 40
    assert snap["settings"]["flower_auth"] == "***"


def test_a_ledger_event_goes_through_the_ledger_once_and_the_balance_query_then_sees_it(
    fleet_worker: WorkerProcess,
) -> None:
    account = f"acc-{uuid.uuid4().hex[:8]}"
    event = {"event_type": "account_opened", "timestamp": "2026-01-01T00:00:00Z",
             "data": {"account": account, "currency": "EUR", "opening_balance": "12.50"}}  # fmt: skip
    subtasks = [{"id": "s1", "tool": "ledger.quick_run", "args": {"event": event}}]

    record = service.run("open an account", options={"subtasks": subtasks}, timeout_s=60)
    balances = service.run("잔액 조회하고 요약해줘", timeout_s=60)

    assert record["status"] == "succeeded", record["error"]
    result = record["subtasks"][0]
    assert result["output"]["status"] == "accepted", result["output"]
    assert result["output"]["event_id"] == result["idempotency_key"] == f"{record['run_id']}:s1"
    assert balances["status"] == "succeeded", balances["error"]
    query, summary = balances["subtasks"]
    assert {"account": account, "currency": "EUR", "balance": "12.50"} in query["output"]["rows"]
    assert summary["args"]["text"].startswith(f"{query['output']['row_count']}건, 잔액 합계 ")
