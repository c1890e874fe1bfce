"""The Node.js producer (examples/node): its raw Celery messages are executed by the fleet."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

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
