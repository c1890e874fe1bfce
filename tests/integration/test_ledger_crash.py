"""A worker killed with SIGKILL in the middle of a batch: after restart, one result per event, exact balances."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from celery.exceptions import TimeoutError as CeleryTimeout
from sqlalchemy import func, select

from ledger.config import LedgerConfig
from ledger.generate import generate
from ledger.quickrun import MemoryStore, run
from tests.support import WorkerProcess, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.slow]
EVENTS = 20_000


def _count(database_url: str, prefix: str) -> int:
    from worker.db import get_engine
    from worker.ledger.models import LedgerEventRecord

    table = LedgerEventRecord.__table__
    with get_engine(database_url).connect() as connection:
        query = select(func.count()).select_from(table).where(table.c.event_id.like(f"{prefix}-%"))
        return int(connection.execute(query).scalar_one())


def _balances(database_url: str, prefix: str) -> dict[str, Decimal]:
    from worker.db import get_engine
    from worker.ledger.models import LedgerAccount

    table = LedgerAccount.__table__
    with get_engine(database_url).connect() as connection:
        rows = connection.execute(select(table.c.account, table.c.balance).where(table.c.account.like(f"{prefix}-%")))
        return {row.account: Decimal(row.balance) for row in rows}


def _redeliver_unacknowledged(app: Any) -> None:
    # What the broker does once the visibility timeout expires, without waiting an hour for it.
    with app.connection_for_write(transport_options={"visibility_timeout": 0}) as connection:
        connection.default_channel.qos.restore_visible(num=100, interval=1)


def test_a_batch_killed_midway_ends_with_one_result_per_event_and_exact_balances(
    celery_app, database_url: str, session_dir: Path
) -> None:
    # Given a worker with small chunks and a stream of 20,000 events sent as one batch
    prefix = f"crash{uuid.uuid4().hex[:6]}"
    queue = f"ledger-{prefix}"
    config = session_dir / f"{prefix}.yaml"
    config.write_text("ledger:\n  batch_chunk_size: 200\n")
    env = {"FLEET_CONFIG": str(config)}
    stream = [item["event"] for item in generate(EVENTS, 0, seed=9, now=datetime.now(UTC), prefix=prefix)]
    worker = WorkerProcess(queues=queue, name=f"{prefix}-a", env=env).start(celery_app)
    batch = celery_app.send_task("ledger.quick_run_batch", args=[stream], queue=queue, priority=5)
    # When it is killed after some chunks were committed and before all were
    committed = wait_for(lambda: _count(database_url, prefix), timeout=120, what="a first chunk committed")
    worker.kill()
    at_kill = _count(database_url, prefix)
    assert 0 < committed <= at_kill < EVENTS, f"killed after {at_kill} of {EVENTS} events: not mid-batch"
    # And the unacknowledged batch is redelivered to a restarted worker
    _redeliver_unacknowledged(celery_app)
    restarted = WorkerProcess(queues=queue, name=f"{prefix}-b", env=env).start(celery_app)
    try:
        results = batch.get(timeout=240)["results"]
    except CeleryTimeout:
        raise AssertionError(f"the redelivered batch did not finish: {restarted.tail(60)}") from None
    finally:
        restarted.stop()
    # Then every event has exactly one stored result, as if the stream had run once
    memory = MemoryStore()
    expected = run(stream, memory, LedgerConfig(), datetime.now(UTC))
    assert _count(database_url, prefix) == EVENTS
    statuses = [r.get("original_status", r["status"]) for r in results]
    assert statuses == [r["status"] for r in expected]
    assert sum(1 for r in results if r["status"] == "duplicate") == at_kill
    # And every balance equals the one computed independently from the stream
    assert _balances(database_url, prefix) == {k: v.balance for k, v in memory.ledger.accounts.items()}
