"""The Node.js producer (examples/node): its raw Celery messages are executed by the fleet."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.ledger_cases import setup
from tests.support import ROOT, WorkerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")]

EXAMPLE = ROOT / "examples" / "node"


@pytest.fixture(scope="session")
def node_producer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example copied to a temporary folder with its locked dependencies installed (`npm ci`)."""
    folder = tmp_path_factory.mktemp("node-producer")
    for name in ("package.json", "package-lock.json", "producer.js"):
        shutil.copy(EXAMPLE / name, folder / name)
    done = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"], cwd=folder, capture_output=True, text=True, timeout=180
    )
    if done.returncode != 0:
        pytest.fail(f"npm ci failed: {done.stderr[-2000:]}")
    return folder / "producer.js"


def run_node(producer: Path, *args: str) -> list[dict[str, Any]]:
    """Run the producer against the session's broker; one parsed JSON line per message sent."""
    done = subprocess.run(
        ["node", str(producer), "--broker", os.environ["FLEET_BROKER_URL"], *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.parametrize(("queue", "priority"), [("agents", 0), ("ledger", 3), ("reports", 8)])
def test_a_ping_from_node_is_answered_on_each_queue_with_its_correlation_id(
    node_producer: Path, fleet_worker: WorkerProcess, queue: str, priority: int
) -> None:
    # Given the session worker on every queue
    # When Node pushes fleet.ping to a queue at a priority, with a correlation id
    correlation = f"node-{queue}"
    [answer] = run_node(
        node_producer,
        "--task",
        "fleet.ping",
        "--queue",
        queue,
        "--priority",
        str(priority),
        "--correlation-id",
        correlation,
        "--wait",
        "60",
    )
    # Then the worker ran it from that queue's priority list and saw the correlation id
    assert answer["status"] == "SUCCESS", answer
    assert answer["list"] == (queue if priority == 0 else f"{queue}:{priority}")
    assert answer["result"]["queue"] == queue
    assert answer["result"]["correlation_id"] == correlation
    assert answer["result"]["hostname"] == fleet_worker.hostname


def test_ledger_events_from_node_are_validated_by_the_fleet(node_producer: Path, fleet_worker: WorkerProcess) -> None:
    # Given two account openings sent by Node as ledger.quick_run at high priority, one message each
    events = setup(f"node{uuid.uuid4().hex[:6]}")[:2]
    args = [arg for event in events for arg in ("--args", json.dumps([event]))]
    answers = run_node(
        node_producer, "--task", "ledger.quick_run", "--queue", "ledger", "--priority", "3", *args, "--wait", "60"
    )
    # Then each came back accepted, under its own event id
    assert [a["status"] for a in answers] == ["SUCCESS", "SUCCESS"], answers
    assert [a["result"]["event_id"] for a in answers] == [e["event_id"] for e in events]
    assert [a["result"]["status"] for a in answers] == ["accepted", "accepted"]
    assert all(a["list"] == "ledger:3" for a in answers)


def test_a_workflow_from_node_runs_through_every_stage(node_producer: Path, fleet_worker: WorkerProcess) -> None:
    # Given a workflow request sent by Node as agents.run_workflow
    request = {"input": "compute (12+30)*2", "mode": "planner", "profile": "local", "options": {}}
    [answer] = run_node(
        node_producer,
        "--task",
        "agents.run_workflow",
        "--queue",
        "agents",
        "--priority",
        "5",
        "--args",
        json.dumps([request]),
        "--correlation-id",
        "node-workflow",
        "--wait",
        "120",
    )
    # Then the run, whose id is the message's task id, succeeded with the computed output
    assert answer["status"] == "SUCCESS", answer
    from gateway.services import agents

    record = agents.run_status(answer["task_id"])
    assert record["status"] == "succeeded", record
    assert "84" in json.dumps(record["output"])
