"""The database refuses writes for ~12 s: ledger and agent tasks retry with backoff and complete once it returns."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from gateway.services import agents as service
from ledger.config import LedgerConfig
from ledger.generate import generate
from ledger.quickrun import MemoryStore, run
from tests.faults.fleet import fleet_config, stored_balances, stored_statuses
from tests.support import WorkerProcess, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.slow]
OUTAGE_S = 12.0  # longer than the fleet's SQLite busy timeout (10 s): writers get "database is locked"
SINGLES = 200
BATCH = 1_000
WORKFLOWS = 5


@contextmanager
def sqlite_locked(database_url: str) -> Iterator[None]:
    """Hold an exclusive lock on the SQLite file from another connection (in WAL mode: no writer gets in)."""
    connection = sqlite3.connect(make_url(database_url).database, isolation_level=None, timeout=30)
    connection.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        connection.execute("ROLLBACK")
        connection.close()


def _done_but_unwritten(app: Any, task_ids: dict[str, list[str]], database_url: str, prefix: str) -> list[str]:
    """Tasks the result backend calls successful whose events have no row in the database."""
    stored = stored_statuses(database_url, prefix).keys()
    return [t for t, ids in task_ids.items() if app.AsyncResult(t).state == "SUCCESS" and not set(ids) <= stored]


def test_tasks_retry_while_the_database_is_locked_and_complete_once_it_returns(
    celery_app, database_url: str, session_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    # Given a worker, and the database locked by another connection
    prefix = f"dbdown{uuid.uuid4().hex[:6]}"
    queues = f"ledger-{prefix},agents-{prefix}"
    folder = session_dir / prefix
    env = fleet_config(folder, f"agents:\n  queue: agents-{prefix}\n")
    worker = WorkerProcess(queues=queues, concurrency=2, name=prefix, env=env, log_path=folder / "w.out")
    worker.start(celery_app)
    now = datetime.now(UTC)
    openings = [i["event"] for i in generate(SINGLES * 40, 0, seed=5, now=now, prefix=f"{prefix}-o")][:SINGLES]
    batch = [i["event"] for i in generate(BATCH, 0, seed=6, now=now, prefix=f"{prefix}-b")]
    task_ids: dict[str, list[str]] = {}
    try:
        with sqlite_locked(database_url):
            # When ledger events and workflows arrive during the outage
            for event in openings:
                task_ids[celery_app.send_task("ledger.quick_run", args=[event], queue=f"ledger-{prefix}").id] = [
                    event["event_id"]
                ]
            sent = celery_app.send_task("ledger.quick_run_batch", args=[batch], queue=f"ledger-{prefix}")
            task_ids[sent.id] = [e["event_id"] for e in batch]
            subtasks = [{"id": "c1", "tool": "math.calculate", "args": {"expression": "2**10"}}]
            run_ids = [
                service.submit({"input": f"outage {i}", "options": {"queue": f"agents-{prefix}", "subtasks": subtasks}})
                for i in range(WORKFLOWS)
            ]
            wait_for(lambda: "database is locked" in worker.log_path.read_text(), timeout=60, what="a locked write")
            locked_until = time.monotonic() + OUTAGE_S
            wait_for(lambda: time.monotonic() > locked_until, timeout=OUTAGE_S + 5, interval=0.5, what="the outage")
            # Then nothing is reported done that was not written
            during = _done_but_unwritten(celery_app, task_ids, database_url, prefix)
        # And once it returns, everything completes: one result per event, every workflow succeeded
        wait_for(
            lambda: len(stored_statuses(database_url, prefix)) == SINGLES + BATCH,
            timeout=120,
            interval=0.5,
            what="every event stored",
        )
        records = [service.wait_for_run(r, timeout_s=120) for r in run_ids]
    finally:
        worker.stop()
    log = worker.log_path.read_text()
    retries = log.count("Retry in")
    memory = MemoryStore()
    expected = {r["event_id"]: r["status"] for r in run([*openings, *batch], memory, LedgerConfig(), now)}
    balances = stored_balances(database_url, prefix)
    print(
        f"\ndatabase locked {OUTAGE_S:.0f} s: {SINGLES} singles + {BATCH} batch + {WORKFLOWS} workflows; retries"
        f" {retries}; done-but-unwritten {len(during)}; stored {len(stored_statuses(database_url, prefix))}"
    )
    assert during == []
    assert retries > 0
    assert stored_statuses(database_url, prefix) == expected
    assert balances == {a: acc.balance for a, acc in memory.ledger.accounts.items()}
    assert [r["status"] for r in records] == ["succeeded"] * WORKFLOWS
    assert _done_but_unwritten(celery_app, task_ids, database_url, prefix) == []
