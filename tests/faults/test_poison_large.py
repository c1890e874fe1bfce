"""A 10 MB ledger event: a recorded rejection `payload_too_large`, and the worker keeps consuming."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import select

from tests.support import WorkerProcess

pytestmark = [pytest.mark.faults, pytest.mark.slow]
TEN_MB = 10 * 1024 * 1024


def test_a_ten_megabyte_event_is_rejected_as_too_large_and_the_worker_keeps_consuming(
    celery_app, fleet_worker: WorkerProcess, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    # Given an event whose body is 10 MB of JSON
    event_id = f"huge-{uuid.uuid4().hex[:6]}"  # unreadable: the body is refused before it is parsed
    body = json.dumps({"event_id": event_id, "event_type": "account_opened", "padding": "x" * TEN_MB})

    # When it is sent as a quick run
    result = celery_app.send_task("ledger.quick_run", args=[body], queue="ledger", priority=5).get(timeout=120)

    # Then it is rejected as too large, the rejection is stored, and the worker still answers
    from worker.db import get_engine
    from worker.ledger.models import LedgerEventRecord

    table = LedgerEventRecord.__table__
    with get_engine(database_url).connect() as connection:
        stored = connection.execute(
            select(table.c.status, table.c.code).where(table.c.event_id == result["event_id"])
        ).one()
    assert (result["status"], result["codes"][0]) == ("rejected", "payload_too_large"), result["event_id"]
    assert tuple(stored) == ("rejected", "payload_too_large")
    assert len(json.dumps(result)) < 10_000  # the result does not carry the payload back
    assert celery_app.send_task("fleet.ping", queue="ledger", priority=0).get(timeout=30)["queue"] == "ledger"
    assert fleet_worker.process is not None and fleet_worker.process.poll() is None
