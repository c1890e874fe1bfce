"""Text no store can hold, in any string of an event: a clear rejection of that event alone, nothing stored raw."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.config import LedgerConfig
from ledger.quickrun import MemoryStore, run
from tests.ledger_cases import event, setup
from tests.unstorable import spoiled_events, storable

NOW = datetime.now(UTC)


@settings(max_examples=400, deadline=None)
@given(spoiled_events())
def test_an_event_with_unstorable_text_anywhere_is_rejected_with_a_clear_code_and_nothing_raw_is_kept(
    spoiled: dict[str, Any],
) -> None:
    store = MemoryStore()
    [result] = run([spoiled], store, LedgerConfig(), NOW)
    assert result["status"] == "rejected" and result["codes"][0] in {"invalid_identifier", "schema_invalid"}, result
    assert store.ledger.accounts == {}
    assert all(storable(r.result) and storable(r.snapshot) and storable(r.event_id) for r in store.records)


@settings(max_examples=100, deadline=None)
@given(st.lists(spoiled_events(), min_size=1, max_size=4, unique_by=lambda e: json.dumps(e, sort_keys=True)))
def test_in_a_batch_only_the_events_with_unstorable_text_are_rejected(spoiled: list[dict[str, Any]]) -> None:
    good = setup("ok")[:4]
    store = MemoryStore()
    results = run([good[0], *spoiled, *good[1:]], store, LedgerConfig(), NOW)
    statuses = [r["status"] for r in results]
    assert statuses == ["accepted", *(["rejected"] * len(spoiled)), "accepted", "accepted", "accepted"], results
    assert set(store.ledger.accounts) == {"ok-a", "ok-b", "ok-y", "ok-c"}


@pytest.mark.parametrize(
    ("where", "change", "code", "field"),
    [
        ("event id", lambda e: e.update(event_id="evt-\ud800"), "invalid_identifier", "event_id"),
        ("account", lambda e: e["data"].update(account="a\ud800"), "invalid_identifier", "data.account"),
        ("correlation id", lambda e: e.update(correlation_id="c\ud800"), "schema_invalid", "correlation_id"),
        ("api version", lambda e: e.update(api_version="v\ud800"), "schema_invalid", "api_version"),
        ("event type", lambda e: e.update(event_type="account_opened\ud800"), "schema_invalid", "event_type"),
        ("data key", lambda e: e["data"].update({"k\ud800": 1}), "schema_invalid", "data.k\\ud800"),
        ("NUL in a type", lambda e: e.update(event_type="x\x00"), "schema_invalid", "event_type"),
        ("NUL in an id", lambda e: e.update(event_id="e\x00"), "invalid_identifier", "event_id"),
    ],
)
def test_each_field_the_probe_named_gets_its_code_and_field(where: str, change: Any, code: str, field: str) -> None:
    spoiled = event("evt-1", "account_opened", {"account": "a", "currency": "EUR"})
    change(spoiled)
    [result] = run([spoiled], MemoryStore(), LedgerConfig(), NOW)
    assert (result["codes"], result["violations"][0]["field"]) == ([code], field), where
    # The result keeps the producer's id when that id is text, else a stable one derived from the content
    spoiled_id = field == "event_id"
    assert result["event_id"].startswith("raw-") if spoiled_id else result["event_id"] == "evt-1"


def test_a_correlation_id_header_that_is_no_text_is_kept_escaped() -> None:
    ok = event("evt-2", "account_opened", {"account": "a2", "currency": "EUR"})
    [result] = run([ok], MemoryStore(), LedgerConfig(), NOW, correlation_id="order-\ud800\x00")
    assert result["status"] == "accepted" and result["correlation_id"] == "order-\\ud800"
    assert json.dumps(result, ensure_ascii=False).encode()
