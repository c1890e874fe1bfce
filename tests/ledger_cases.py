"""One real event per violation code, over a small setup stream; shared by unit and integration tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def ts(seconds: float) -> str:
    """A timestamp `seconds` after T0, as the envelope carries it."""
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def event(event_id: str, event_type: str, data: dict[str, Any], at: float = 100, **envelope: Any) -> dict[str, Any]:
    """An event envelope."""
    return {
        "event_id": event_id,
        "event_type": event_type,
        "timestamp": ts(at),
        "api_version": "v1",
        "data": data,
        **envelope,
    }


def setup(p: str) -> list[dict[str, Any]]:
    """Accounts a (EUR 500, overdraft 100), b (EUR), y (JPY), c (closed); one transfer; a balance change."""
    return [
        event(
            f"{p}-s1",
            "account_opened",
            {"account": f"{p}-a", "currency": "EUR", "opening_balance": "500", "overdraft_limit": 10000},
            at=1,
        ),
        event(f"{p}-s2", "account_opened", {"account": f"{p}-b", "currency": "EUR"}, at=2),
        event(f"{p}-s3", "account_opened", {"account": f"{p}-y", "currency": "JPY", "opening_balance": 1000}, at=3),
        event(f"{p}-s4", "account_opened", {"account": f"{p}-c", "currency": "EUR"}, at=4),
        event(f"{p}-s5", "account_closed", {"account": f"{p}-c"}, at=5),
        event(
            f"{p}-s6",
            "transaction_created",
            {
                "transaction_id": f"{p}-t1",
                "sender": f"{p}-a",
                "receiver": f"{p}-b",
                "amount": "10.00",
                "currency": "EUR",
            },
            at=50,
        ),
        event(
            f"{p}-s7",
            "balance_changed",
            {"account": f"{p}-b", "before": "10", "after": "15", "delta": 500, "sequence": 1},
            at=60,
        ),
    ]


def _tx(p: str, n: str, sender: str, receiver: str, amount: Any, currency: str = "EUR", **kw: Any) -> dict[str, Any]:
    data = {
        "transaction_id": f"{p}-tx-{n}",
        "sender": f"{p}-{sender}",
        "receiver": f"{p}-{receiver}",
        "amount": amount,
        "currency": currency,
    }
    return event(f"{p}-{n}", "transaction_created", data, **kw)


def cases(p: str) -> dict[str, Any]:
    """code -> a raw body (str) or an event (dict) that the setup stream makes fail with that code."""
    big = event(f"{p}-big", "config_changed", {"key": "amount_limit", "value": "x" * 70_000})
    leg = {"currency": "EUR"}
    return {
        "malformed_payload": f"this is {{ not json ({p})",
        "payload_too_large": json.dumps(big),
        "schema_invalid": event(f"{p}-schema", "transaction_created", {"transaction_id": "t", "sender": 5}),
        "unsupported_event_type": event(f"{p}-type", "account_renamed", {}),
        "unsupported_api_version": {**event(f"{p}-ver", "account_closed", {"account": f"{p}-b"}), "api_version": "v0"},
        "invalid_identifier": event(f"{p}-id", "account_opened", {"account": "acc\u202e1", "currency": "EUR"}),
        "timestamp_in_future": event(
            f"{p}-fut", "account_opened", {"account": f"{p}-f", "currency": "EUR"}, at=3600 * 5
        ),
        "timestamp_must_not_regress": _tx(p, "regress", "a", "b", "1.00", at=10),
        "exists": setup(p)[1],
        "exists_with_different_fields": {
            **setup(p)[1],
            "timestamp": ts(100),
            "data": {"account": f"{p}-b", "currency": "USD"},
        },
        "transaction_id_exists": {
            **_tx(p, "dup-tid", "a", "b", "1.00"),
            "data": {**_tx(p, "x", "a", "b", "1.00")["data"], "transaction_id": f"{p}-t1"},
        },
        "account_exists": event(f"{p}-again", "account_opened", {"account": f"{p}-a", "currency": "EUR"}),
        "accounts_must_be_different": _tx(p, "self", "a", "a", "1.00"),
        "sender_not_found": _tx(p, "nosender", "zz", "b", "1.00"),
        "receiver_not_found": _tx(p, "noreceiver", "a", "zz", "1.00"),
        "account_not_found": event(f"{p}-close-zz", "account_closed", {"account": f"{p}-zz"}),
        "sender_closed": _tx(p, "fromclosed", "c", "b", "1.00"),
        "receiver_closed": _tx(p, "toclosed", "a", "c", "1.00"),
        "currency_mismatch": _tx(p, "usd", "a", "b", "1.00", "USD"),
        "amount_must_be_positive": _tx(p, "zero", "a", "b", "0"),
        # The probe's 10**30 + 1 minor units: accepted once, a later transfer then lost 0.01 (#18).
        "amount_out_of_range": event(
            f"{p}-huge", "account_opened", {"account": f"{p}-huge", "currency": "EUR", "opening_balance": 10**30 + 1}
        ),
        "amount_precision_exceeded": _tx(p, "prec", "a", "b", "1.005"),
        "amount_exceeds_limit": _tx(p, "limit", "a", "b", "1000.01"),
        "exceeds_balance": _tx(p, "overdraw", "b", "a", "16.00"),
        "balance_mismatch": event(f"{p}-bal", "balance_changed", {"account": f"{p}-a", "before": "1", "after": "2"}),
        "sequence_gap": event(
            f"{p}-seq", "balance_changed", {"account": f"{p}-b", "before": "15", "after": "16", "sequence": 3}
        ),
        "contract_unbalanced": event(
            f"{p}-k",
            "contract_executed",
            {
                "contract_id": "k1",
                "execution_id": f"{p}-x1",
                "inputs": [{"account": f"{p}-a", "amount": "5", **leg}],
                "outputs": [{"account": f"{p}-b", "amount": "4", **leg}],
            },
        ),
        "config_key_not_allowed": event(f"{p}-cfg1", "config_changed", {"key": "database_url", "value": "x"}),
        "config_value_invalid": event(f"{p}-cfg2", "config_changed", {"key": "amount_limit", "value": "-5"}),
    }
