"""The SQL ledger store on SQLite and PostgreSQL: round trip, redelivery, concurrent delivery."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from ledger.config import LedgerConfig
from ledger.quickrun import run
from tests.ledger_cases import cases, event, setup

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, database_url: str) -> str:
    """The session's SQLite, or a fresh PostgreSQL database."""
    return database_url if request.param == "sqlite" else request.getfixturevalue("postgres_url")


def test_every_code_round_trips_through_the_store(store_url: str) -> None:
    from worker.stores.ledger import SqlLedgerStore

    # Given the setup stream applied in one batch
    prefix = f"st{uuid.uuid4().hex[:6]}"
    store = SqlLedgerStore(store_url)
    assert {r["status"] for r in run(setup(prefix), store, LedgerConfig(), NOW)} == {"accepted"}
    # When every case is processed one by one
    found = {code: run([body], store, LedgerConfig(), NOW, final=True)[0] for code, body in cases(prefix).items()}
    # Then each has its code, and a second delivery returns the stored result
    assert {code: r["codes"][0] for code, r in found.items()} == {code: code for code in found}
    again = run(setup(prefix), store, LedgerConfig(), NOW)
    assert {r["status"] for r in again} == {"duplicate"}
    with store.transaction() as tx:
        ledger = tx.load(set(), {f"{prefix}-a", f"{prefix}-b", f"{prefix}-c"}, set())
    assert str(ledger.accounts[f"{prefix}-a"].balance) == "490.00"
    assert ledger.accounts[f"{prefix}-c"].closed is True


def test_concurrent_delivery_of_one_event_applies_it_once(store_url: str) -> None:
    from worker.stores.ledger import SqlLedgerStore

    prefix = f"cc{uuid.uuid4().hex[:6]}"
    run(setup(prefix), SqlLedgerStore(store_url), LedgerConfig(), NOW)
    transfer = event(
        f"{prefix}-race",
        "transaction_created",
        {
            "transaction_id": f"{prefix}-race",
            "sender": f"{prefix}-a",
            "receiver": f"{prefix}-b",
            "amount": "7.00",
            "currency": "EUR",
        },
    )
    results: list[dict[str, Any]] = []
    barrier = threading.Barrier(4)

    def deliver() -> None:
        store = SqlLedgerStore(store_url)
        barrier.wait()
        results.extend(run([transfer], store, LedgerConfig(), NOW))

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(r["status"] for r in results) == ["accepted", "duplicate", "duplicate", "duplicate"]
    with SqlLedgerStore(store_url).transaction() as tx:
        assert str(tx.load(set(), {f"{prefix}-b"}, set()).accounts[f"{prefix}-b"].balance) == "22.00"
