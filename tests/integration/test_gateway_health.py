"""Readiness probes against the real broker and worker: a queue nobody serves is reported, not waited on."""

from __future__ import annotations

import pytest

from gateway.services import health
from tests.support import WorkerProcess

pytestmark = pytest.mark.integration


def test_a_queue_without_a_worker_is_reported_within_the_timeout(fleet_worker: WorkerProcess) -> None:
    # Given the session worker on agents, ledger and reports, and a queue that no worker reads
    components = health.ping_queues(0.5, queues=("ledger", "nobody-reads-this"))
    # Then the served queue answers with the worker's name and the other is an error naming the timeout
    served, unserved = components
    assert served.status == "ok" and fleet_worker.hostname in served.detail
    assert unserved.status == "error" and "0.5 s" in unserved.detail


def test_readiness_reports_broker_and_database(fleet_worker: WorkerProcess) -> None:
    ok, components = health.readiness(10)
    assert ok, components
    assert [c.name for c in components][:2] == ["broker", "database"]
