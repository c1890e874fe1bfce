"""Flower as operators start it (`celery -A worker flower`): shows the session's workers, only with credentials."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

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
