"""Ledger quick runs through a real worker: every code, bad bodies, idempotency, batches, priority."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from tests.ledger_cases import cases, setup
from tests.support import WorkerProcess

pytestmark = pytest.mark.integration
TIMEOUT = 60


def _send(app: Any, event: Any, priority: int = 5, queue: str = "ledger") -> Any:
    return app.send_task("ledger.quick_run", args=[event], queue=queue, priority=priority)


def _stored(database_url: str, event_id: str) -> Any:
    from worker.db import get_engine
    from worker.ledger.models import LedgerEventRecord

    with get_engine(database_url).connect() as connection:
        table = LedgerEventRecord.__table__
        return connection.execute(select(table).where(table.c.event_id == event_id)).first()


def test_every_code_is_produced_by_a_real_event_through_the_worker(celery_app, fleet_worker, database_url) -> None:
    # Given the setup stream applied through the worker, one event per task, in order
    prefix = f"it{uuid.uuid4().hex[:6]}"
    for event in setup(prefix):
        assert _send(celery_app, event).get(timeout=TIMEOUT)["status"] == "accepted"
    # When each case is sent as its own task
    sent = {code: _send(celery_app, body) for code, body in cases(prefix).items()}
    # Then each comes back with its code deciding, and the rejection is recorded
    for code, async_result in sent.items():
        result = async_result.get(timeout=TIMEOUT)
        assert result["codes"][0] == code, result
        if code not in ("exists", "exists_with_different_fields"):
            row = _stored(database_url, result["event_id"])
            assert row is not None and row.code == code and row.status == "rejected"


def test_bad_bodies_end_as_recorded_rejections_and_the_worker_keeps_serving(celery_app, fleet_worker, database_url):
    # Given a non-JSON body, an oversized one and one with wrong types
    bodies = [
        "{{{ not json",
        json.dumps({"event_id": "x" * 80_000}),
        {
            "event_id": f"w-{uuid.uuid4().hex[:6]}",
            "event_type": "account_opened",
            "timestamp": 5,
            "api_version": "v1",
            "data": {"account": 7, "currency": ["EUR"]},
        },
    ]
    # When they are sent
    results = [_send(celery_app, body).get(timeout=TIMEOUT) for body in bodies]
    # Then each is rejected with its reason and stored
    assert [r["codes"][0] for r in results] == ["malformed_payload", "payload_too_large", "schema_invalid"]
    for result in results:
        assert result["violations"][0]["message"]
        assert _stored(database_url, result["event_id"]).status == "rejected"
    # And the worker still answers
    assert celery_app.send_task("fleet.ping", queue="ledger", priority=0).get(timeout=TIMEOUT)["queue"] == "ledger"


def test_a_batch_gives_the_same_results_as_one_by_one(celery_app, fleet_worker) -> None:
    from datetime import UTC, datetime

    from ledger.generate import generate

    now = datetime.now(UTC)
    one = [i["event"] for i in generate(300, 2, seed=5, now=now, faults=4, prefix=f"one{uuid.uuid4().hex[:5]}")]
    two = [i["event"] for i in generate(300, 2, seed=5, now=now, faults=4, prefix=f"two{uuid.uuid4().hex[:5]}")]
    batch = celery_app.send_task("ledger.quick_run_batch", args=[one], queue="ledger", priority=5).get(timeout=TIMEOUT)
    singles = [_send(celery_app, event) for event in two]
    alone = [s.get(timeout=TIMEOUT) for s in singles]

    def shape(result: dict[str, Any]) -> tuple[Any, ...]:
        return result["status"], tuple(result["codes"]), result["event_type"]

    assert [shape(r) for r in batch["results"]] == [shape(r) for r in alone]
    assert batch["by_status"]["rejected"] >= 3


def test_a_critical_event_overtakes_a_backlog_of_normal_ones(celery_app, database_url) -> None:
    # Given 300 normal events queued on a queue no worker serves yet, then one critical event
    prefix = f"pr{uuid.uuid4().hex[:6]}"
    queue = f"ledger-priority-{prefix}"
    from tests.ledger_cases import event

    normal = [
        _send(celery_app, event(f"{prefix}-n{i}", "account_closed", {"account": f"{prefix}-zz{i}"}), 5, queue)
        for i in range(300)
    ]
    critical = _send(celery_app, event(f"{prefix}-crit", "account_closed", {"account": f"{prefix}-c"}), 0, queue)
    # When a worker starts serving that queue
    worker = WorkerProcess(queues=queue, name=f"prio-{prefix}").start(celery_app)
    try:
        critical.get(timeout=TIMEOUT)
        for item in normal:
            item.get(timeout=TIMEOUT)
    finally:
        worker.stop()
    # Then the critical event started before (almost) every normal one queued ahead of it
    crit_at = _stored(database_url, f"{prefix}-crit").processed_at
    later = sum(1 for i in range(300) if _stored(database_url, f"{prefix}-n{i}").processed_at > crit_at)
    assert later >= 295


def test_each_quick_run_writes_one_json_log_line_with_masked_accounts(celery_app, fleet_worker) -> None:
    from tests.ledger_cases import event
    from tests.support import wait_for

    # Given an event for a recognisable account
    account = f"acc-{uuid.uuid4().hex[:8]}89"
    body = event(
        f"log-{uuid.uuid4().hex[:6]}",
        "account_opened",
        {"account": account, "currency": "EUR"},
        correlation_id="corr-log-1",
    )
    # When it is quick-run through the producer client
    from ledger.client import submit

    [sent] = submit([body], celery_app)
    assert sent.result is not None
    result = sent.result.get(timeout=TIMEOUT)

    # Then the worker wrote one JSON line for it, with the contract's fields and the account masked
    def lines() -> list[dict[str, Any]]:
        found = []
        for line in fleet_worker.log_path.read_text(errors="replace").splitlines():
            if result["event_id"] in line and line.startswith("{"):
                record = json.loads(line)
                if record.get("logger") == "fleet.ledger":
                    found.append(record)
        return found

    [record] = wait_for(lines, timeout=TIMEOUT, what="the quick run's log line")
    assert {k: record[k] for k in ("correlation_id", "event_type", "status", "codes", "api_version")} == {
        "correlation_id": "corr-log-1",
        "event_type": "account_opened",
        "status": "accepted",
        "codes": [],
        "api_version": "v1",
    }
    assert record["duration_ms"] >= 0 and record["accounts"] == ["acc***89"]
    assert account not in fleet_worker.log_path.read_text(errors="replace")


def test_an_event_that_overtakes_its_predecessor_waits_for_it(celery_app, fleet_worker) -> None:
    from tests.ledger_cases import event

    # Given an account with no balance change yet
    prefix = f"sq{uuid.uuid4().hex[:6]}"
    opened = event(f"{prefix}-open", "account_opened", {"account": f"{prefix}-a", "currency": "EUR"}, at=1)
    assert _send(celery_app, opened).get(timeout=TIMEOUT)["status"] == "accepted"
    second = event(
        f"{prefix}-2", "balance_changed", {"account": f"{prefix}-a", "before": "5", "after": "7", "sequence": 2}, at=20
    )
    first = event(
        f"{prefix}-1", "balance_changed", {"account": f"{prefix}-a", "before": "0", "after": "5", "sequence": 1}, at=10
    )
    # When sequence 2 arrives first (sent critical) and sequence 1 after it
    late = _send(celery_app, second, priority=0)
    early = _send(celery_app, first, priority=5)
    # Then both are applied, in sequence order
    assert early.get(timeout=TIMEOUT)["status"] == "accepted"
    assert late.get(timeout=TIMEOUT)["status"] == "accepted"
    from gateway.services.ledger import get_snapshot

    snapshot = get_snapshot(f"{prefix}-2")
    assert snapshot is not None and snapshot["after"] == {f"{prefix}-a": "7"}
