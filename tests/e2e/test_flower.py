"""Flower as operators start it (`celery -A worker flower`): shows the session's workers, only with credentials."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import ROOT, WorkerProcess, wait_for
from worker.redis_server import free_port

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not (ROOT / "flowerconfig.py").exists(), reason="flowerconfig.py (basic auth) not merged yet"),
]


@pytest.fixture(scope="module")
def flower(fleet_worker: WorkerProcess, session_dir: Path) -> Iterator[str]:
    """`celery -A worker flower` on a free port, reading flowerconfig.py (basic auth from FLEET_FLOWER_AUTH)."""
    port = free_port()
    log_path = session_dir / "log" / "flower.out"
    command = [sys.executable, "-m", "celery", "-A", "worker", "flower", f"--port={port}"]
    command.append(f"--db={session_dir / 'flower.db'}")
    with log_path.open("ab") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=dict(os.environ), stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"flower exited: {log_path.read_text(errors='replace')[-2000:]}")
        try:
            httpx.get(url + "/healthcheck", timeout=2)
        except httpx.TransportError:
            return False
        return True

    wait_for(up, timeout=60, what="flower to listen")
    yield url
    process.terminate()
    process.wait(20)


def test_flower_lists_the_session_worker_with_credentials(flower: str, fleet_worker: WorkerProcess) -> None:
    user, password = os.environ["FLEET_FLOWER_AUTH"].split(":", 1)

    def listed() -> dict[str, object] | None:
        answer = httpx.get(flower + "/api/workers", params={"refresh": "1"}, auth=(user, password), timeout=30)
        assert answer.status_code == 200, answer.text
        workers = answer.json()
        return workers if fleet_worker.hostname in workers else None

    workers = wait_for(listed, timeout=60, interval=1, what=f"{fleet_worker.hostname} in Flower's /api/workers")
    assert fleet_worker.hostname in workers


def test_flower_refuses_requests_without_credentials(flower: str) -> None:
    assert httpx.get(flower + "/api/workers", timeout=10).status_code == 401
    assert httpx.get(flower + "/api/workers", auth=("tester", "wrong"), timeout=10).status_code == 401


def test_flowers_metrics_need_its_credentials_and_its_healthcheck_says_only_ok(flower: str) -> None:
    user, password = os.environ["FLEET_FLOWER_AUTH"].split(":", 1)
    # Flower serves /metrics to anyone by design; flowerconfig.py puts it behind the same basic auth
    assert httpx.get(flower + "/metrics", timeout=10).status_code == 401
    assert httpx.get(flower + "/metrics", auth=(user, "wrong"), timeout=10).status_code == 401
    metrics = httpx.get(flower + "/metrics", auth=(user, password), timeout=30)
    assert metrics.status_code == 200 and "flower_" in metrics.text
    health = httpx.get(flower + "/healthcheck", timeout=10)
    assert health.status_code == 200 and health.text == "OK"


FINAL = {"SUCCESS", "FAILURE", "REVOKED", "REJECTED"}


def _flower_tasks(flower: str) -> dict[str, dict[str, Any]]:
    user, password = os.environ["FLEET_FLOWER_AUTH"].split(":", 1)
    answer = httpx.get(flower + "/api/tasks", params={"limit": 5000}, auth=(user, password), timeout=30)
    assert answer.status_code == 200, answer.text
    tasks: dict[str, dict[str, Any]] = answer.json()
    return tasks


def _flower_listening(flower: str, celery_app: Any) -> None:
    """Flower receives this worker's events: a ping it sees (its receiver connects after its HTTP server)."""
    probe = celery_app.send_task("fleet.ping", queue="agents", priority=0)
    probe.get(timeout=60)
    wait_for(lambda: _flower_tasks(flower).get(probe.id, {}).get("state") == "SUCCESS", 60, 0.5, "Flower's events")


def test_flower_shows_a_finished_workflow_as_finished_under_its_own_names(
    flower: str, fleet_worker: WorkerProcess, celery_app: Any
) -> None:
    _flower_listening(flower, celery_app)
    # Given a workflow whose executor fans out two subtasks (a chord), run to its end
    request = {"input": "how many runs by status? then summarise", "mode": "planner", "profile": "local", "options": {}}
    result = celery_app.send_task("agents.run_workflow", args=[request], queue="agents", priority=5)
    record = result.get(timeout=120)
    assert record["status"] == "succeeded" and record["run_id"] == result.id

    # Then Flower lists the run's root task under its own name, and every task of the run in a final state
    def settled() -> dict[str, dict[str, Any]] | None:
        mine = {k: v for k, v in _flower_tasks(flower).items() if k == result.id or v.get("root_id") == result.id}
        names = {t.get("name") for t in mine.values()}
        stages = {"agents.analyze", "agents.gate", "agents.execute", "agents.run_subtask", "agents.verify"}
        done = stages <= names and all(t.get("state") in FINAL for t in mine.values())
        return mine if done else None

    try:
        mine = wait_for(settled, 60, 0.5, "every task of the run final in Flower")
    except AssertionError:
        mine = {k: v for k, v in _flower_tasks(flower).items() if k == result.id or v.get("root_id") == result.id}
        raise AssertionError({k: (v.get("name"), v.get("state")) for k, v in mine.items()}) from None
    root = mine[result.id]
    assert (root["name"], root["state"]) == ("agents.run_workflow", "SUCCESS")
    assert [t["state"] for t in mine.values() if t["name"] == "agents.execute"] == ["SUCCESS"]
    assert sum(t["name"] == "agents.run_subtask" for t in mine.values()) == 2


def test_flower_names_a_refused_message_for_an_unknown_task(
    flower: str, fleet_worker: WorkerProcess, celery_app: Any
) -> None:
    _flower_listening(flower, celery_app)
    # Given a message for a task no worker knows, from another app's producer (it sends no task-sent event)
    from gateway.client import make_app

    producer = make_app(os.environ["FLEET_BROKER_URL"])
    sent = producer.send_task("billing.no_such_task", args=[1], queue="ledger", priority=5)

    # Then Flower lists it failed under the name it was sent with, saying why
    def listed() -> dict[str, Any] | None:
        task = _flower_tasks(flower).get(sent.id)
        return task if task and task.get("state") == "FAILURE" else None

    task = wait_for(listed, 60, 0.5, "the refused task in Flower")
    assert task["name"] == "billing.no_such_task"
    assert "NotRegistered" in str(task.get("exception"))
