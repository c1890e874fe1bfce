"""A worker that stops consuming while its queue fills exits with the evidence; a restarted one drains the queue."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.support import WorkerProcess, wait_for
from worker.watchdog import EXIT_STALLED

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def test_a_worker_whose_consumer_is_gone_exits_and_its_replacement_drains_the_queue(
    celery_app, session_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    # Given a worker with a 3 s watchdog, whose consumer of its queue is cancelled (as a silent reconnect failure
    # leaves it: the process alive, the queue no longer read)
    queue = f"ledger-wd{uuid.uuid4().hex[:6]}"
    env = {"FLEET_WATCHDOG_STALL_S": "3"}
    stalled = WorkerProcess(queues=queue, name=f"{queue}-a", env=env).start(celery_app)
    reply = celery_app.control.cancel_consumer(queue, destination=[stalled.hostname], reply=True, timeout=5)
    assert reply, "the worker did not answer cancel_consumer"

    # When messages wait in its queue
    results = [celery_app.send_task("fleet.ping", queue=queue, priority=5) for _ in range(5)]

    # Then it logs the evidence at CRITICAL and exits with EXIT_STALLED, for its supervisor to restart it
    assert stalled.process is not None
    assert stalled.process.wait(60) == EXIT_STALLED
    critical = [line for line in stalled.log_path.read_text().splitlines() if "watchdog: worker stopped" in line]
    assert critical and "CRITICAL" in critical[0] and "queues hold 5 messages" in critical[0]
    # And a restarted worker consumes what waited
    restarted = WorkerProcess(queues=queue, name=f"{queue}-b", env=env).start(celery_app)
    try:
        wait_for(lambda: all(r.ready() for r in results), timeout=60, what="the waiting pings answered")
    finally:
        restarted.stop()
    assert [r.get(timeout=5)["queue"] for r in results] == [queue] * 5
