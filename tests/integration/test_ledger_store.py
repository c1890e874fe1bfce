"""The SQL ledger store on SQLite and PostgreSQL: round trip, redelivery, concurrent delivery."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
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
    from worker.ledger.store import SqlLedgerStore

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


def _transfer(prefix: str, name: str, amount: str, at: float = 100) -> dict[str, Any]:
    """Event and transaction `<prefix>-<name>`: `amount` EUR from the setup's account a to b."""
    data = {"transaction_id": f"{prefix}-{name}", "sender": f"{prefix}-a", "receiver": f"{prefix}-b"}
    return event(f"{prefix}-{name}", "transaction_created", {**data, "amount": amount, "currency": "EUR"}, at=at)


def test_concurrent_delivery_of_one_event_applies_it_once(store_url: str) -> None:
    from worker.ledger.store import SqlLedgerStore

    prefix = f"cc{uuid.uuid4().hex[:6]}"
    run(setup(prefix), SqlLedgerStore(store_url), LedgerConfig(), NOW)
    transfer = _transfer(prefix, "race", "7.00")
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


def test_a_minute_whose_rejection_rate_jumps_raises_one_alert(database_url: str) -> None:
    from sqlalchemy import text

    from worker.db import get_engine
    from worker.ledger.store import SqlLedgerStore

    # Given forty quiet minutes and then a minute where most events were rejected (in 2020, apart from other tests)
    year = 2020 + uuid.uuid4().int % 1000
    start = datetime(year, 1, 1, tzinfo=UTC)
    rows = [{"m": start.replace(minute=i), "e": 100, "r": 2 + i % 3} for i in range(40)]
    rows.append({"m": start.replace(minute=40), "e": 100, "r": 70})
    with get_engine(database_url).begin() as connection:
        connection.execute(text("INSERT INTO ledger_minutes (minute, events, rejected) VALUES (:m, :e, :r)"), rows)
    # When chunks are saved during the following minute, twice
    later = start.replace(minute=41, second=5)
    run(["not json 1"], SqlLedgerStore(database_url), LedgerConfig(), later)
    run(["not json 2"], SqlLedgerStore(database_url), LedgerConfig(), later)
    # Then one rejection_rate alert names that minute
    with get_engine(database_url).connect() as connection:
        kinds = (
            connection.execute(
                text("SELECT kind FROM ledger_alerts WHERE event_id = :s"),
                {"s": f"minute:{start.replace(minute=40).isoformat()}"},
            )
            .scalars()
            .all()
        )
    assert kinds == ["rejection_rate"]


def test_snapshots_older_than_the_retention_are_purged_and_results_kept(database_url: str) -> None:
    from datetime import timedelta

    from sqlalchemy import text

    from ledger.events import decode
    from worker.db import get_engine
    from worker.ledger.store import SqlLedgerStore

    # Given a snapshot written three days ago, with a retention of two days
    body = f"not json {uuid.uuid4().hex}"
    event_id = decode(body, 65536).event_id
    run([body], SqlLedgerStore(database_url, retention_days=2), LedgerConfig(), NOW - timedelta(days=3))
    # When a new process writes today
    run([f"{body} today"], SqlLedgerStore(database_url, retention_days=2), LedgerConfig(), NOW)
    # Then the old snapshot is gone and its result is still there
    with get_engine(database_url).connect() as connection:
        query = "SELECT count(*) FROM {} WHERE event_id = :e"
        snapshots = connection.execute(text(query.format("ledger_snapshots")), {"e": event_id}).scalar_one()
        results = connection.execute(text(query.format("ledger_events")), {"e": event_id}).scalar_one()
    assert (snapshots, results) == (0, 1)


def test_a_config_change_is_stored_and_applies_to_later_chunks(store_url: str) -> None:
    from worker.ledger.store import SqlLedgerStore

    # Given accounts, and an accepted change of the amount limit to 5 (its own chunk)
    prefix = f"cf{uuid.uuid4().hex[:6]}"
    store = SqlLedgerStore(store_url)
    run(setup(prefix), store, LedgerConfig(), NOW)
    change = event(f"{prefix}-limit", "config_changed", {"key": "amount_limit", "value": "5"})
    try:
        assert run([change], store, LedgerConfig(), NOW)[0]["status"] == "accepted"
        # When a transfer of 6 comes in a later chunk
        transfer = event(
            f"{prefix}-six",
            "transaction_created",
            {
                "transaction_id": f"{prefix}-six",
                "sender": f"{prefix}-a",
                "receiver": f"{prefix}-b",
                "amount": "6.00",
                "currency": "EUR",
            },
        )
        [result] = run([transfer], SqlLedgerStore(store_url), LedgerConfig(), NOW)
        # Then the stored limit applies, and the change names the event that made it
        assert result["codes"] == ["amount_exceeds_limit"]
        with store.transaction() as tx:
            assert tx.load(set(), set(), set()).overrides == {"amount_limit": "5"}
            assert tx._rows("SELECT event_id FROM ledger_config WHERE key = ?", ("amount_limit",))[0][0] == (
                f"{prefix}-limit"
            )
    finally:
        # Other tests share this database: put the default limit back.
        restore = event(f"{prefix}-restore", "config_changed", {"key": "amount_limit", "value": "1000"})
        run([restore], store, LedgerConfig(), NOW)


def test_a_timestamp_with_an_offset_is_stored_as_the_same_instant(store_url: str) -> None:
    from worker.ledger.store import SqlLedgerStore

    # Given an account opened at 12:00+02:00 (10:00 UTC), in its own transaction
    prefix = f"tz{uuid.uuid4().hex[:6]}"
    store = SqlLedgerStore(store_url)
    day = (NOW - timedelta(days=1)).date().isoformat()
    opened = event(f"{prefix}-open", "account_opened", {"account": f"{prefix}-a", "currency": "EUR"})
    assert run([{**opened, "timestamp": f"{day}T12:00:00+02:00"}], store, LedgerConfig(), NOW)[0]["codes"] == []
    # When it is closed at 10:30 UTC, in a later transaction that reads it back from the database
    closed = event(f"{prefix}-close", "account_closed", {"account": f"{prefix}-a"})
    [result] = run([{**closed, "timestamp": f"{day}T10:30:00Z"}], store, LedgerConfig(), NOW)
    # Then the close is not earlier than the opening (it was, when 12:00 was stored without its offset)
    assert (result["status"], result["codes"]) == ("accepted", [])


class _Interleaved:
    """A store whose first write transaction starts only after `meanwhile` ran: another writer committing
    between a chunk's optimistic read and its write."""

    def __init__(self, store: Any, meanwhile: Any) -> None:
        self.store, self.meanwhile = store, meanwhile

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[Any]:
        if write and self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            meanwhile()
        with self.store.transaction(write) as tx:
            yield tx


def _chunk_spending(prefix: str, amount: str) -> list[dict[str, Any]]:
    """Enough new accounts for the optimistic path, then a transfer of `amount` from account a to b."""
    from ledger.quickrun import OPTIMISTIC_MIN

    opened = [
        event(f"{prefix}-n{i}", "account_opened", {"account": f"{prefix}-n{i}", "currency": "EUR"}, at=100)
        for i in range(OPTIMISTIC_MIN)
    ]
    return [*opened, _transfer(prefix, "big", amount, at=110)]


def test_a_chunk_validated_while_another_writer_commits_is_validated_again(store_url: str) -> None:
    from worker.ledger.store import SqlLedgerStore

    # Given account a at EUR 490 with an overdraft of 100, and a chunk that moves 500 out of it
    prefix = f"il{uuid.uuid4().hex[:6]}"
    run(setup(prefix), SqlLedgerStore(store_url), LedgerConfig(), NOW)
    drain = _transfer(prefix, "drain", "400.00", at=105)

    # When another writer moves 400 out of a after the chunk read a's balance and before it writes
    def meanwhile() -> None:
        assert run([drain], SqlLedgerStore(store_url), LedgerConfig(), NOW)[0]["status"] == "accepted"

    store = _Interleaved(SqlLedgerStore(store_url), meanwhile)
    results = run(_chunk_spending(prefix, "500.00"), store, LedgerConfig(), NOW)

    # Then the chunk saw the other writer's commit: its transfer is refused, and a stays at 90
    assert results[-1]["status"] == "rejected" and results[-1]["codes"] == ["exceeds_balance"]
    with SqlLedgerStore(store_url).transaction() as tx:
        assert str(tx.load(set(), {f"{prefix}-a"}, set()).accounts[f"{prefix}-a"].balance) == "90.00"


def _break(store_url: str, tx: Any) -> None:
    """Make the transaction's connection fail the way a database does: PostgreSQL ends its session; SQLite's
    connection is made read-only."""
    if not store_url.startswith("postgresql"):
        tx.cursor.execute("PRAGMA query_only = 1")
        return
    from sqlalchemy import text

    from worker.db import make_engine

    [(pid,)] = tx._rows("SELECT pg_backend_pid()")
    admin = make_engine(store_url)
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        admin.dispose()


def test_a_connection_failing_mid_transaction_is_retried_and_the_store_goes_on(store_url: str) -> None:
    from sqlalchemy.exc import OperationalError

    from worker.ledger.store import INSERT_TRANSACTION, SqlLedgerStore
    from worker.ledger.tasks import quick_run

    # Given a write transaction whose connection fails before its first write
    prefix = f"cf{uuid.uuid4().hex[:6]}"
    store = SqlLedgerStore(store_url)
    with pytest.raises(OperationalError) as failed, store.transaction() as tx:
        _break(store_url, tx)
        tx._many(INSERT_TRANSACTION, [(f"{prefix}-t", f"{prefix}-e")])
    # Then the error is SQLAlchemy's OperationalError, the one the ledger tasks retry on
    assert OperationalError in quick_run.autoretry_for and failed.value.orig is not None
    # And nothing was written, and the next transaction works on a new connection
    opened = event(f"{prefix}-open", "account_opened", {"account": f"{prefix}-a", "currency": "EUR"})
    assert run([opened], store, LedgerConfig(), NOW)[0]["status"] == "accepted"
    with store.transaction() as tx:
        assert tx.load(set(), set(), {f"{prefix}-t"}).transactions == set()
