"""A plain Celery producer against a real worker: a forged `agents.run_subtask` runs nothing but the approved plan,
and a workflow without an API key's scopes waits for approval before any side effect."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from sqlalchemy import select

from agents.errors import RunNotFound
from gateway.services import agents as service
from gateway.services import ledger as ledger_service
from tests.ledger_cases import event
from tests.support import WorkerProcess, wait_for
from worker.db import session_scope
from worker.models.core import AuditEvent

pytestmark = pytest.mark.integration
QUEUE = "agents-forged"
# What the README gives other applications to copy.
TRANSPORT = {"queue_order_strategy": "priority", "priority_steps": list(range(10)), "sep": ":"}


@pytest.fixture(scope="module")
def folder(session_dir: Path) -> Path:
    path = session_dir / QUEUE
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def forged_worker(celery_app, database_url: str, folder: Path) -> Iterator[WorkerProcess]:  # type: ignore[no-untyped-def]
    """A worker on its own queue knowing the test tools, with `test.effect` blocked by policy."""
    config = folder / "fleet.yaml"
    config.write_text(
        f"agents:\n  queue: {QUEUE}\n  tool_modules: [tests.agent_tools]\n  blocked_tools: [test.effect]\n"
    )
    env = {"FLEET_CONFIG": str(config), "FLEET_TEST_EFFECTS_DIR": str(folder)}
    worker = WorkerProcess(queues=QUEUE, concurrency=2, name=QUEUE, env=env).start(celery_app)
    yield worker
    worker.stop()


@pytest.fixture
def producer(celery_app) -> Iterator[Celery]:  # type: ignore[no-untyped-def]
    """Another application's producer: plain Celery, the broker URL and the documented transport options."""
    url = celery_app.conf.broker_url
    app = Celery("forger", broker=url, backend=url, set_as_current=False)
    app.conf.broker_transport_options = TRANSPORT
    yield app
    app.close()


def _status(run_id: str) -> str:
    try:
        return str(service.run_status(run_id)["status"])
    except RunNotFound:
        return "not recorded yet"


def _refusals(run_id: str) -> list[dict[str, Any]]:
    query = select(AuditEvent).where(AuditEvent.action == "subtask_refused", AuditEvent.subject == run_id)
    with session_scope() as session:
        return [{"actor": e.actor, **e.details} for e in session.scalars(query)]


def test_forged_subtasks_are_refused_and_audited_while_the_approved_plan_runs_on(
    forged_worker: WorkerProcess, producer: Celery, folder: Path
) -> None:
    # Given a run executing its approved plan: s1 holds until released, then s2 summarises its output
    release = folder / "release"
    plan = [
        {"id": "s1", "tool": "test.hold", "args": {"release": str(release)}},
        {"id": "s2", "tool": "text.summarize", "args": {}, "depends_on": ["s1"]},
    ]
    run_id = service.run("held", options={"queue": QUEUE, "subtasks": plan}, wait=False)["run_id"]
    wait_for(lambda: _status(run_id) == "executing", timeout=60, what="the run to execute")
    # When a plain producer sends run_subtask by name: a subtask the plan does not hold, naming the blocked tool,
    # and one replacing the approved s2
    forged = [
        {"run_id": run_id, "subtask_id": "s9", "spec": {"id": "s9", "tool": "test.effect", "args": {}}},
        {"run_id": run_id, "subtask_id": "s2", "spec": {"id": "s2", "tool": "test.effect", "args": {}}},
    ]
    sent = [producer.send_task("agents.run_subtask", kwargs=k, queue=QUEUE, priority=5) for k in forged]
    answers = [result.get(timeout=60) for result in sent]
    # Then the worker refused both while the run was executing, ran nothing of theirs, and audited each
    assert [(a["subtask_id"], a["status"]) for a in answers] == [("s9", "refused"), ("s2", "refused")]
    assert "not a subtask of the run's plan" in answers[0]["error"]
    assert answers[1]["error"].endswith("differs from the approved plan's s2 (text.summarize:v1) in tool, depends_on")
    assert service.run_status(run_id)["status"] == "executing"
    assert not (folder / "calls.log").exists(), "the blocked tool ran"
    refusals = _refusals(run_id)
    assert sorted((r["subtask_id"], r["tool"], r["actor"]) for r in refusals) == [
        ("s2", "test.effect", "broker"), ("s9", "test.effect", "broker"),
    ]  # fmt: skip
    # And once released, the run finishes with the approved subtasks only
    release.touch()
    record = service.wait_for_run(run_id, timeout_s=60)
    assert record["status"] == "succeeded", record["error"]
    assert [(s["subtask_id"], s["tool"]) for s in record["subtasks"]] == [("s1", "test.hold"), ("s2", "text.summarize")]
    assert record["output"]["results"]["s2"]["summary"] == '{"released": true}'


def test_a_workflow_from_a_plain_producer_waits_for_approval_before_any_side_effect(
    forged_worker: WorkerProcess, producer: Celery
) -> None:
    # Given a workflow sent by another application (no API key, so no scopes) that would write the ledger
    opening = event(f"plain-{uuid.uuid4().hex[:8]}", "account_opened", {"account": "plain-acc", "currency": "EUR"})
    request = {"input": "open it", "options": {"queue": QUEUE, "subtasks": [
        {"id": "s1", "tool": "ledger.quick_run", "args": {"event": opening}}]}}  # fmt: skip
    run_id = str(uuid.uuid4())
    producer.send_task("agents.run_workflow", args=[request], task_id=run_id, queue=QUEUE, priority=5)
    # Then the gatekeeper holds it for a person, and the ledger has not seen the event
    wait_for(lambda: _status(run_id) == "awaiting_approval", timeout=60, what="the run to be held")
    gate = next(s for s in service.run_status(run_id)["stages"] if s["stage"] == "gate")
    assert gate["output"]["verdict"]["reasons"] == [
        "s1: ledger.quick_run:v1 has side effects and the run names no API key's scopes"
    ]
    assert ledger_service.get_result(opening["event_id"]) is None
