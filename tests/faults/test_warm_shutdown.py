"""Warm shutdown (SIGTERM) in the middle of batches: tasks in flight finish, the rest is requeued, one result each."""

from __future__ import annotations

import signal
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ledger.config import LedgerConfig
from ledger.generate import generate
from ledger.quickrun import MemoryStore, run
from tests.faults.fleet import broker_holds, fleet_config, stored_balances, stored_statuses
from tests.support import WorkerProcess, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.slow]
STREAMS = 4
EVENTS = 2_000  # per stream, each sent as one batch
SINGLES = 200  # account openings of a fifth stream, sent one by one


def test_a_warm_shutdown_mid_batch_finishes_what_runs_and_requeues_the_rest(
    celery_app, database_url: str, session_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    # Given a worker with two processes, four independent streams sent as batches and single events behind them
    prefix = f"warm{uuid.uuid4().hex[:6]}"
    queue = f"ledger-{prefix}"
    env = fleet_config(session_dir / prefix, "ledger:\n  batch_chunk_size: 100\n")
    now = datetime.now(UTC)
    streams = {
        f"{prefix}s{n}": [i["event"] for i in generate(EVENTS, 0, seed=n, now=now, prefix=f"{prefix}s{n}")]
        for n in range(STREAMS)
    }
    openings = [i["event"] for i in generate(SINGLES * 40, 0, seed=99, now=now, prefix=f"{prefix}o")][:SINGLES]
    first = WorkerProcess(queues=queue, concurrency=2, name=f"{prefix}-a", env=env).start(celery_app)
    for stream in streams.values():
        celery_app.send_task("ledger.quick_run_batch", args=[stream], queue=queue, priority=5)
    for event in openings:
        celery_app.send_task("ledger.quick_run", args=[event], queue=queue, priority=5)

    # When it receives SIGTERM while a batch is half written
    def half_written() -> str | None:
        counts = {p: len(stored_statuses(database_url, p)) for p in streams}
        return next((p for p, c in counts.items() if 0 < c < EVENTS), None)

    running = wait_for(half_written, timeout=60, interval=0.02, what="a batch half written")
    first.signal(signal.SIGTERM)
    exit_code = first.wait_exit(60)
    done_by_first = sum(len(stored_statuses(database_url, p)) for p in [*streams, f"{prefix}o"])
    requeued = broker_holds(celery_app, queue)

    # Then the batch it was running was finished before it exited, and what it had not started is back in the queue
    assert exit_code == 0
    assert len(stored_statuses(database_url, running)) == EVENTS
    assert done_by_first < STREAMS * EVENTS + SINGLES and requeued > 0

    # And a new worker picks the rest up without waiting for any visibility timeout: one result per event
    second = WorkerProcess(queues=queue, name=f"{prefix}-b", env=env).start(celery_app)
    try:
        wait_for(
            lambda: (
                all(len(stored_statuses(database_url, p)) == EVENTS for p in streams)
                and len(stored_statuses(database_url, f"{prefix}o")) == SINGLES
            ),
            timeout=120,
            interval=0.2,
            what="every event stored",
        )
    finally:
        second.stop()
    wrong = 0
    for name, stream in streams.items():
        memory = MemoryStore()
        expected = {r["event_id"]: r["status"] for r in run(stream, memory, LedgerConfig(), now)}
        assert stored_statuses(database_url, name) == expected
        balances = stored_balances(database_url, name)
        wrong += sum(1 for a, acc in memory.ledger.accounts.items() if balances.get(a) != acc.balance)
    print(
        f"\nwarm shutdown: {STREAMS} batches x {EVENTS} + {SINGLES} singles; done by the first worker"
        f" {done_by_first}, requeued messages {requeued}, balances wrong {wrong}"
    )
    assert wrong == 0
