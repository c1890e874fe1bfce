"""The foundation with real components: a private Redis, a real worker process, another app's producer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import uuid
from pathlib import Path

import pytest
from kombu import Exchange, Producer

from tests.support import ROOT, WorkerProcess, run_agent, wait_for
from worker.constants import CORRELATION_HEADER

pytestmark = pytest.mark.integration


def _celery_only_python(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a script the way another app would: site-packages on the path, the fleet's code not."""
    site_packages = sysconfig.get_paths()["purelib"]
    bootstrap = (
        "import sys, runpy; "
        f"sys.path[:0] = [{site_packages!r}]; "
        "import importlib.util as u; "
        "assert u.find_spec('worker') is None and u.find_spec('celeryconfig') is None, 'fleet code visible'; "
        f"sys.argv = {[str(script), *args]!r}; runpy.run_path({str(script)!r}, run_name='__main__')"
    )
    # -I ignores PYTHONPATH and the current folder; -S skips .pth files, so the editable install is invisible.
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", bootstrap], capture_output=True, text=True, timeout=60, cwd="/"
    )


@pytest.mark.parametrize("queue", ["agents", "ledger", "reports"])
def test_ping_from_an_app_with_only_celery_runs_on_each_queue_with_its_correlation_id(
    fleet_worker: WorkerProcess, queue: str
) -> None:
    correlation_id = f"corr-{uuid.uuid4().hex[:8]}"
    done = _celery_only_python(
        ROOT / "examples" / "python_producer.py", os.environ["FLEET_BROKER_URL"], queue, correlation_id
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer == {"hostname": fleet_worker.hostname, "queue": queue, "correlation_id": correlation_id}

    def logged() -> bool:
        for line in fleet_worker.log_path.read_text().splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                if record.get("message") == "pong" and record.get("correlation_id") == correlation_id:
                    return record["queue"] == queue and record["task_name"] == "fleet.ping"
        return False

    wait_for(logged, timeout=10, what="the pong log line with the producer's correlation id")


def test_a_pickle_message_is_refused_logged_and_the_worker_keeps_serving(
    fleet_worker: WorkerProcess, celery_app
) -> None:  # type: ignore[no-untyped-def]
    task_id = str(uuid.uuid4())
    with celery_app.connection_for_write() as connection:
        producer = Producer(connection, exchange=Exchange("ledger", type="direct"), routing_key="ledger")
        producer.publish(
            ((), {}, {}),
            serializer="pickle",
            headers={"task": "fleet.ping", "id": task_id, "lang": "py"},
            priority=0,
            declare=[],
        )

    def refused() -> bool:
        text = fleet_worker.log_path.read_text()
        return "Refusing to deserialize untrusted content of type pickle" in text

    wait_for(refused, timeout=15, what="the pickle refusal in the worker log")
    assert celery_app.send_task("fleet.ping", queue="ledger", priority=5).get(timeout=15)["queue"] == "ledger"
    assert celery_app.AsyncResult(task_id).state == "PENDING"  # the pickled task never ran


def test_the_correlation_id_follows_every_task_of_a_chain(fleet_worker: WorkerProcess, celery_app) -> None:  # type: ignore[no-untyped-def]
    from celery import chain

    ping = celery_app.signature("fleet.ping", options={"queue": "agents", "priority": 5}).set(immutable=True)
    result = chain(ping.clone(), ping.clone().set(queue="ledger"), ping.clone().set(queue="reports")).apply_async(
        headers={"x_correlation_id": "corr-chain"}
    )
    assert result.get(timeout=20) == {
        "hostname": fleet_worker.hostname,
        "queue": "reports",
        "correlation_id": "corr-chain",
    }
    assert result.parent.get(timeout=5)["correlation_id"] == "corr-chain"
    assert result.parent.parent.get(timeout=5)["correlation_id"] == "corr-chain"


def test_agent_status_counts_refused_messages_and_workers(fleet_worker: WorkerProcess, celery_app) -> None:  # type: ignore[no-untyped-def]
    celery_app.send_task("no.such.task.for.status", queue="reports", priority=5)
    done = wait_for(lambda: _status_with_dead_letter(), 30, interval=0.5, what="agent status listing the refusal")
    assert fleet_worker.hostname in done["workers"]
    assert done["queues"]["reports"]["workers"] >= 1


def _status_with_dead_letter() -> dict | None:  # type: ignore[type-arg]
    done = run_agent("status", "--json", timeout=60)
    report = json.loads(done.stdout)
    return report if report.get("dead_letters", {}).get("counts", {}).get("unknown_task") else None


def test_a_recycled_pool_process_writes_every_log_line_before_it_exits(celery_app) -> None:  # type: ignore[no-untyped-def]
    # Pool processes exit with os._exit, right after their last task: its log line must not be left queued.
    # Its own queue: the session's worker serves the fleet's queues and would take some of the tasks.
    queue = f"recycled-{uuid.uuid4().hex[:6]}"
    worker = WorkerProcess(name="recycled", queues=queue, extra=["--max-tasks-per-child", "3"]).start(celery_app)
    try:
        ids = [f"recycle-{uuid.uuid4().hex[:8]}" for _ in range(9)]
        for correlation_id in ids:
            celery_app.send_task(
                "fleet.ping", queue=queue, priority=5, headers={CORRELATION_HEADER: correlation_id}
            ).get(timeout=30)

        def logged() -> set[str]:
            found = set()
            for line in worker.log_path.read_text().splitlines():
                if line.startswith("{"):
                    record = json.loads(line)
                    if record.get("message") == "pong" and record.get("correlation_id") in ids:
                        found.add(record["correlation_id"])
            return found

        wait_for(lambda: logged() == set(ids), timeout=10, what="a pong line for each of the 9 tasks")
    finally:
        worker.stop()
