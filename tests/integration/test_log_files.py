"""JSON log files of a prefork worker: each pool process writes and rotates a file of its own."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support import WorkerProcess, wait_for

pytestmark = pytest.mark.integration


def _lines(log_dir: Path, stem: str) -> list[dict[str, Any]]:
    """Every line of `<stem>.jsonl` and its rotated copies, each parsed (an interleaved line fails here)."""
    return [json.loads(line) for path in log_dir.glob(f"{stem}.jsonl*") for line in path.read_text().splitlines()]


def _ping_all(celery_app, queue: str, count: int) -> list[str]:  # type: ignore[no-untyped-def]
    results = [celery_app.send_task("fleet.ping", queue=queue, priority=5) for _ in range(count)]
    return [str(result.get(timeout=60)["correlation_id"]) for result in results]


def test_each_pool_process_rotates_its_own_file_and_keeps_its_newest_lines(
    celery_app, database_url: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    # Given a prefork worker with two pool processes whose log files rotate every 4 KiB, 10 kept
    name = f"logs{uuid.uuid4().hex[:6]}"
    log_dir = tmp_path / "log"
    config = tmp_path / "fleet.yaml"
    config.write_text("logging:\n  max_bytes: 4096\n  backup_count: 10\n")
    env = {"FLEET_LOG_DIR": str(log_dir), "FLEET_CONFIG": str(config)}
    worker = WorkerProcess(queues=name, name=name, concurrency=2, env=env, log_path=tmp_path / "worker.out")
    worker.start(celery_app)
    main = f"worker-{name}"

    def refused(task: str) -> bool:
        return any(task in path.read_text() for path in log_dir.glob(f"{main}.jsonl*"))

    try:
        # When the pool logs enough to rotate many times, and the main process logs between the bursts
        _ping_all(celery_app, name, 100)
        celery_app.send_task("fleet.no_such_task_one", queue=name, priority=5)
        wait_for(lambda: refused("fleet.no_such_task_one"), timeout=30, what="the first refusal logged")
        _ping_all(celery_app, name, 400)
        celery_app.send_task("fleet.no_such_task_two", queue=name, priority=5)
        wait_for(lambda: refused("fleet.no_such_task_two"), timeout=30, what="the second refusal logged")
        newest = _ping_all(celery_app, name, 40)
    finally:
        worker.stop()

    # Then the main process's file holds its own lines, both refusals, and no task line of the pool
    main_lines = _lines(log_dir, main)
    assert not [line for line in main_lines if line["message"] == "pong"]
    refusals = [line["message"] for line in main_lines if "unregistered task" in line["message"]]
    assert len(refusals) == 2 and all(any(task in r for r in refusals) for task in ("_one", "_two"))
    # And the pool processes wrote files of their own (Celery's %n%I naming), rotated past 4 KiB
    child_files = sorted(p.name for p in log_dir.glob(f"{main}-*.jsonl"))
    assert child_files and set(child_files) <= {f"{main}-1.jsonl", f"{main}-2.jsonl"}
    assert len(list(log_dir.glob(f"{main}-*.jsonl.*"))) >= 10
    # And every pong of the last burst is there once, whole, with the task's correlation id
    pongs = [line["correlation_id"] for stem in (f"{main}-1", f"{main}-2") for line in _lines(log_dir, stem)]
    assert sorted(c for c in pongs if c in set(newest)) == sorted(newest)
