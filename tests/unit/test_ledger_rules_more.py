"""Filters, priority rules, sequences, config changes, anomalies and version departures."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from ledger.anomaly import observe, rate_score
from ledger.config import AnomalyConfig, LedgerConfig, load_config
from ledger.events import LedgerEvent, parse
from ledger.filters import route
from ledger.quickrun import MemoryStore, run
from ledger.versions import VersionStats, compare
from tests.ledger_cases import event, setup

NOW = datetime.now(UTC)


def _parsed(body: dict[str, Any]) -> LedgerEvent:
    found = parse(body)
    assert isinstance(found, LedgerEvent), found
    return found


def _tx(amount: str = "5.00", sender: str = "acc-1", contract: bool = False) -> dict[str, Any]:
    data = {"transaction_id": "t", "sender": sender, "receiver": "acc-2", "amount": amount, "currency": "EUR"}
    return event("e", "transaction_created", data)


@pytest.mark.parametrize(
    ("rules", "body", "skipped"),
    [
        ([{"action": "exclude", "event_types": ["transaction_created"]}], _tx(), True),
        ([{"action": "exclude", "account": "acc-9*"}], _tx(), False),
        ([{"action": "exclude", "account": "acc-1*"}], _tx(), True),
        ([{"action": "include", "amount_min": "10"}], _tx("5.00"), True),
        ([{"action": "include", "amount_min": "10"}], _tx("50.00"), False),
        ([{"action": "exclude", "amount_max": "1"}], _tx("0.50"), True),
        ([{"action": "exclude", "contract_id": "k9"}], _tx(), False),
    ],
)
def test_filter_rules_skip_what_they_exclude(rules: list[dict[str, Any]], body: dict[str, Any], skipped: bool) -> None:
    assert route(_parsed(body), load_config({"filters": rules})).skipped is skipped


def test_priority_rules_only_raise_the_level() -> None:
    config = load_config({"priority_rules": [{"level": "critical", "amount_min": "500"}, {"level": "low"}]})
    assert route(_parsed(_tx("600.00")), config).priority == 0
    assert route(_parsed(_tx("6.00")), config).priority == 5


def test_a_bad_config_key_is_named() -> None:
    with pytest.raises(Exception, match=r"ledger\.amount_limitt"):
        load_config({"amount_limitt": 5})


def test_skipped_events_are_recorded_as_skipped() -> None:
    config = load_config({"filters": [{"action": "exclude", "event_types": ["account_closed"]}]})
    [result] = run([event("x", "account_closed", {"account": "a"})], MemoryStore(), config, NOW)
    assert result["status"] == "skipped" and result["codes"] == []


def test_a_config_change_takes_effect_for_the_events_after_it() -> None:
    store = MemoryStore()
    run(setup("p"), store, LedgerConfig(), NOW)
    tx = {"transaction_id": "p-big", "sender": "p-a", "receiver": "p-b", "amount": "200.00", "currency": "EUR"}
    stream = [
        event("p-tx1", "transaction_created", tx),
        event("p-cfg", "config_changed", {"key": "amount_limit", "value": "100"}),
        event("p-tx2", "transaction_created", {**tx, "transaction_id": "p-big2"}),
    ]
    results = run(stream, store, LedgerConfig(), NOW)
    assert [r["status"] for r in results] == ["accepted", "accepted", "rejected"]
    assert results[2]["codes"] == ["amount_exceeds_limit"]


def test_a_sequence_ahead_of_its_predecessor_waits_until_final() -> None:
    store = MemoryStore()
    run(setup("p"), store, LedgerConfig(), NOW)
    ahead = event("p-b3", "balance_changed", {"account": "p-b", "before": "16", "after": "17", "sequence": 3})
    [waiting] = run([ahead], store, LedgerConfig(), NOW, final=False)
    assert waiting["status"] == "waiting" and "p-b3" not in store.ledger.events
    second = event("p-b2", "balance_changed", {"account": "p-b", "before": "15", "after": "16", "sequence": 2})
    results = run([second, ahead], store, LedgerConfig(), NOW, final=False)
    assert [r["status"] for r in results] == ["accepted", "accepted"]


def test_batches_give_the_same_results_as_one_by_one() -> None:
    from ledger.generate import generate

    stream = [item["event"] for item in generate(events=400, anomalies=5, seed=3, now=NOW)]
    together, alone = MemoryStore(), MemoryStore()
    batch = run(stream, together, LedgerConfig(batch_chunk_size=64), NOW)
    single = [run([body], alone, LedgerConfig(), NOW)[0] for body in stream]
    strip = ("duration_ms",)
    assert [{k: v for k, v in r.items() if k not in strip} for r in batch] == [
        {k: v for k, v in r.items() if k not in strip} for r in single
    ]
    assert together.ledger.accounts == alone.ledger.accounts


def test_an_outlier_is_flagged_after_warm_up_and_does_not_feed_the_baseline() -> None:
    config = AnomalyConfig()
    baseline: dict[str, Any] = {}
    for i in range(40):
        score, baseline = observe(baseline, Decimal(100 + i % 7), config)
        assert not score.flagged
    score, after = observe(baseline, Decimal(90_000), config)
    assert score.flagged and after == baseline


def test_no_outlier_is_flagged_during_warm_up() -> None:
    baseline: dict[str, Any] = {}
    score, baseline = observe(baseline, Decimal(10), AnomalyConfig())
    score, baseline = observe(baseline, Decimal(1_000_000), AnomalyConfig())
    assert not score.flagged and score.warming_up


def test_a_burst_of_rejections_per_minute_is_flagged() -> None:
    history = [0.02 + 0.01 * (i % 3) for i in range(40)]
    assert rate_score(history, 0.9, AnomalyConfig()).flagged
    assert not rate_score(history, 0.03, AnomalyConfig()).flagged


def test_a_version_whose_rejection_rate_departs_is_flagged() -> None:
    rows = [
        VersionStats("v1", {"accepted": 95, "rejected": 5}, {"exceeds_balance": 5}),
        VersionStats("v2", {"accepted": 60, "rejected": 40}, {"schema_invalid": 40}),
        VersionStats("v10", {"accepted": 58, "rejected": 42}, {"schema_invalid": 42}),
    ]
    flagged = {row.api_version: row.departs for row in compare(rows)}
    assert flagged == {"v1": False, "v2": True, "v10": False}


def test_the_generator_is_deterministic_for_a_seed() -> None:
    from ledger.generate import generate

    assert generate(300, 3, seed=7, now=NOW) == generate(300, 3, seed=7, now=NOW)
    assert generate(300, 3, seed=7, now=NOW) != generate(300, 3, seed=8, now=NOW)


def test_generated_faults_are_rejected_with_their_label_and_anomalies_flagged() -> None:
    from ledger.generate import generate

    items = generate(3000, anomalies=4, seed=11, now=NOW, faults=4)
    results = run([item["event"] for item in items], MemoryStore(), LedgerConfig(), NOW)
    for item, result in zip(items, results, strict=True):
        label = item["label"]
        if label in (None, "anomaly"):
            assert result["status"] == "accepted", result
        elif label == "duplicate":
            assert result["status"] == "duplicate"
        else:
            assert result["codes"][0] == label
    flagged = [r for r, i in zip(results, items, strict=True) if r.get("anomalies")]
    assert sum(1 for i in items if i["label"] == "anomaly") == 4
    assert sum(1 for r, i in zip(results, items, strict=True) if i["label"] == "anomaly" and r.get("anomalies")) >= 3
    assert len(flagged) <= 12


def test_a_minute_with_a_burst_of_rejections_is_flagged_and_a_normal_one_is_not() -> None:
    from ledger.anomaly import watch_minute

    history = [(100 + i % 5, 2 + i % 3) for i in range(40)]
    assert [kind for kind, _ in watch_minute(history, 101, 60, AnomalyConfig())] == ["rejection_rate"]
    assert [kind for kind, _ in watch_minute(history, 5000, 3, AnomalyConfig())] == ["event_rate"]
    assert watch_minute(history, 102, 3, AnomalyConfig()) == []


def test_a_chunk_whose_accounts_changed_while_it_validated_is_validated_again() -> None:
    from collections.abc import Iterator
    from contextlib import contextmanager

    class Racing(MemoryStore):
        """Another worker spends p-a's money between this chunk's read and its write."""

        raced = False

        @contextmanager
        def transaction(self, write: bool = True) -> Iterator[MemoryStore]:
            if write and not self.raced:
                self.raced = True
                account = self.ledger.accounts["p-a"]
                self.ledger.accounts["p-a"] = account.evolve(balance=Decimal(0), overdraft_limit=Decimal(0))
            yield self

    store = Racing()
    store.raced = True
    run(setup("p"), store, LedgerConfig(), NOW)
    store.raced = False
    tx = {"sender": "p-a", "receiver": "p-b", "amount": "5.00", "currency": "EUR"}
    chunk = [event(f"p-r{i}", "transaction_created", {**tx, "transaction_id": f"p-r{i}"}) for i in range(60)]
    results = run(chunk, store, LedgerConfig(), NOW)
    assert {r["codes"][0] for r in results} == {"exceeds_balance"}
