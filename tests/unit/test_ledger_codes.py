"""Every violation code, produced by a real event against the in-memory store."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ledger.codes import CODES, deciding, markdown_table
from ledger.config import LedgerConfig
from ledger.quickrun import MemoryStore, run
from tests.ledger_cases import cases, setup

NOW = datetime.now(UTC)


def _store() -> MemoryStore:
    store = MemoryStore()
    results = run(setup("p"), store, LedgerConfig(), NOW)
    assert [r["status"] for r in results] == ["accepted"] * len(results), results
    return store


@pytest.mark.parametrize("code", [code.name for code in CODES])
def test_each_code_is_produced_by_its_event(code: str) -> None:
    # Given the setup stream applied
    store = _store()
    # When the event of the case is processed
    [result] = run([cases("p")[code]], store, LedgerConfig(), NOW)
    # Then it is refused with that code deciding (or answered as a duplicate)
    assert result["codes"][0] == code, result
    assert result["status"] == ("duplicate" if code == "exists" else "rejected")


def test_a_rejected_event_changes_no_balance() -> None:
    store = _store()
    before = {k: v.balance for k, v in store.ledger.accounts.items()}
    run(list(cases("p").values()), store, LedgerConfig(), NOW)
    assert {k: v.balance for k, v in store.ledger.accounts.items()} == before


def test_every_violation_is_listed_and_the_first_by_precedence_decides() -> None:
    store = _store()
    event: dict[str, Any] = cases("p")["accounts_must_be_different"]
    event = {**event, "data": {**event["data"], "amount": "5000.001"}}
    [result] = run([event], store, LedgerConfig(), NOW)
    assert result["codes"] == [
        "accounts_must_be_different",
        "amount_precision_exceeded",
        "amount_exceeds_limit",
        "exceeds_balance",
    ]


def test_deciding_code_follows_the_table_order() -> None:
    assert deciding(["exceeds_balance", "schema_invalid", "sequence_gap"]) == "schema_invalid"
    assert markdown_table().count("\n") == len(CODES) + 1


def test_a_redelivered_event_returns_the_original_result_and_applies_nothing() -> None:
    store = _store()
    first = setup("p")[5]
    balances = {k: v.balance for k, v in store.ledger.accounts.items()}
    [again] = run([first], store, LedgerConfig(), NOW)
    assert again["status"] == "duplicate" and again["original_status"] == "accepted"
    assert {k: v.balance for k, v in store.ledger.accounts.items()} == balances
