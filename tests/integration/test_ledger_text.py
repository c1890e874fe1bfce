"""Unstorable text (lone surrogates, NUL) in ledger events, on SQLite and PostgreSQL: the store and real workers.

An event holding "\\ud800" in any string crashed `ledger.quick_run` in the SQL store (no result, no dead letter)
and failed its whole batch; NUL did the same on PostgreSQL only.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from ledger.config import LedgerConfig
from ledger.quickrun import run
from tests.junk import generated
from tests.ledger_cases import event
from tests.support import WorkerProcess
from tests.unstorable import spoiled_events, storable

pytestmark = pytest.mark.integration
CLEAR = {"invalid_identifier", "schema_invalid"}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, database_url: str) -> Iterator[str]:
    """The session's SQLite, or a fresh PostgreSQL database (this process's pool of it closed afterwards)."""
    from worker.db import get_engine

    if request.param == "sqlite":
        yield database_url
        return
    url = request.getfixturevalue("postgres_url")
    yield url
    get_engine(url).dispose()


def _opening(prefix: str, name: str) -> dict[str, Any]:
    return event(f"{prefix}-{name}", "account_opened", {"account": f"{prefix}-{name}", "currency": "EUR"})


def _stored(url: str, event_id: str) -> Any:
    from worker.db import get_engine
    from worker.ledger.models import LedgerEventRecord

    table = LedgerEventRecord.__table__
    with get_engine(url).connect() as connection:
        return connection.execute(select(table.c.result).where(table.c.event_id == event_id)).scalar()


def test_a_batch_with_unstorable_text_in_the_sql_store_rejects_those_events_and_applies_the_others(
    store_url: str,
) -> None:
    from worker.ledger.store import SqlLedgerStore

    store = SqlLedgerStore(store_url)

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(spoiled_events(), min_size=1, max_size=3, unique_by=lambda e: json.dumps(e, sort_keys=True)))
    def check(spoiled: list[dict[str, Any]]) -> None:
        # Given good events around events holding a lone surrogate or NUL somewhere
        prefix = f"tx{uuid.uuid4().hex[:8]}"
        batch = [_opening(prefix, "a"), *spoiled, _opening(prefix, "b")]
        # When the batch runs against the SQL store
        results = run(batch, store, LedgerConfig(), datetime.now(UTC))
        # Then the good events are applied and each spoiled one is refused with a clear code (or, when hypothesis
        # replays an example, answered as the duplicate of its first refusal)
        assert [r["status"] for r in results[:: len(results) - 1]] == ["accepted", "accepted"]
        refused = results[1:-1]
        assert all(r["status"] in {"rejected", "duplicate"} for r in refused), refused
        assert all(r["codes"][0] in CLEAR | {"exists"} for r in refused), refused
        # And every result can be read back from the database
        assert all(storable(r) and _stored(store_url, r["event_id"]) is not None for r in results)

    check()


@pytest.fixture
def worker_on(store_url: str, celery_app: Any) -> Iterator[str]:
    """A worker process of its own on a queue of its own, storing in the store's database; the queue name."""
    queue = f"ledger-text-{uuid.uuid4().hex[:6]}"
    worker = WorkerProcess(queues=queue, name=queue, env={"FLEET_DATABASE_URL": store_url}).start(celery_app)
    yield queue
    worker.stop()


def test_through_real_workers_each_event_with_unstorable_text_gets_its_result(worker_on: str, celery_app: Any) -> None:
    # Given events with a lone surrogate or NUL in one to three of their strings (keys or values, any depth)
    spoiled = generated(spoiled_events(), 20)
    prefix = f"tw{uuid.uuid4().hex[:8]}"
    # When each goes as a ledger.quick_run, and all go in one ledger.quick_run_batch between two good events
    singles = [celery_app.send_task("ledger.quick_run", args=[e], queue=worker_on, priority=5) for e in spoiled]
    batch = [_opening(prefix, "a"), *spoiled, _opening(prefix, "b")]
    summary = celery_app.send_task("ledger.quick_run_batch", args=[batch], queue=worker_on, priority=5)
    # Then every single one has a result with a clear code (the first delivery of each, or its duplicate)
    answers = [s.get(timeout=60) for s in singles]
    assert all(a["status"] in {"rejected", "duplicate"} and storable(a) for a in answers), answers
    assert all(a["codes"][0] in CLEAR | {"exists"} for a in answers), answers
    # And the batch applied its good events and answered each spoiled one
    results = summary.get(timeout=60)["results"]
    assert results[0]["status"] == results[-1]["status"] == "accepted"
    assert {r["status"] for r in results[1:-1]} <= {"rejected", "duplicate"}
