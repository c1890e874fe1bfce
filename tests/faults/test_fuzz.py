"""Property-based fuzzing: generated ledger events and workflow requests never crash the pure code, every result
has a known status and code, and transfers conserve the sum of balances per currency."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from agents.memory import MemoryCache, MemoryEvents
from agents.memory import MemoryStore as AgentStore
from agents.models import TERMINAL_STATUSES, WorkflowRequest
from agents.profiles import LocalProfile
from agents.replay import run_inline
from agents.runner import Ports
from agents.tools import default_registry
from ledger.amounts import to_decimal
from ledger.codes import BY_NAME
from ledger.config import LedgerConfig
from ledger.quickrun import MemoryStore, run

pytestmark = [pytest.mark.faults, pytest.mark.slow]
NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
ACCOUNTS = [f"acc-{i}" for i in range(6)]
STATUSES = {"accepted", "rejected", "duplicate"}
FUZZ: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": list(HealthCheck),
    "derandomize": True,
    "database": None,
}

amounts = st.one_of(
    st.decimals(min_value=0, max_value=1500, places=2).map(str),
    st.decimals(min_value=-5, max_value=5, places=3).map(str),
    st.sampled_from(["0", "-1", "1e3", "NaN", "abc", "", "1000.00", "1000.01", " 5"]),
    st.integers(-10, 2000),
)
account = st.one_of(st.sampled_from(ACCOUNTS), st.text(max_size=5))
currency = st.sampled_from(["EUR", "USD", "eur", "XXXX"])
leg = st.fixed_dictionaries({"account": account, "amount": amounts, "currency": currency})
DATA = {
    "account_opened": st.fixed_dictionaries(
        {"account": account, "currency": currency, "opening_balance": amounts},
        optional={"overdraft_limit": amounts},
    ),
    "account_closed": st.fixed_dictionaries({"account": account}),
    "transaction_created": st.fixed_dictionaries(
        {
            "transaction_id": st.sampled_from(["t1", "t2", "t3", "t4"]),
            "sender": account,
            "receiver": account,
            "amount": amounts,
            "currency": currency,
        }
    ),
    "balance_changed": st.fixed_dictionaries(
        {"account": account, "before": amounts, "after": amounts},
        optional={"delta": amounts, "sequence": st.integers(-1, 4)},
    ),
    "contract_executed": st.fixed_dictionaries(
        {
            "contract_id": st.just("k1"),
            "execution_id": st.sampled_from(["x1", "x2", "x3"]),
            "inputs": st.lists(leg, min_size=0, max_size=3),
            "outputs": st.lists(leg, min_size=0, max_size=3),
        }
    ),
    "config_changed": st.fixed_dictionaries(
        {"key": st.sampled_from(["amount_limit", "max_skew_seconds", "nope"]), "value": st.one_of(amounts, st.none())}
    ),
}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def events(draw: st.DrawFn, kinds: tuple[str, ...] = (*DATA, "unknown", "garbage", "text")) -> dict[str, Any] | str:
    """A plausible event (often valid, often subtly wrong) or, now and then, garbage."""
    kind = draw(st.sampled_from(kinds))
    if kind == "garbage":
        return draw(st.dictionaries(st.text(max_size=10), json_values, max_size=5))
    if kind == "text":
        return draw(st.text(max_size=40))
    body: dict[str, Any] = {
        "event_id": f"e{draw(st.integers(0, 80))}",
        "event_type": kind,
        "timestamp": (NOW - timedelta(seconds=draw(st.integers(-400, 4000)))).isoformat().replace("+00:00", "Z"),
        "api_version": draw(st.sampled_from(["v1", "v1", "v2", "v9"])),
        "data": draw(DATA.get(kind, json_values)),
    }
    return body


def _decimal(value: Any) -> Decimal:
    """An accepted amount in major units (an integer is minor units; both currencies here have scale 2)."""
    return to_decimal(value, 2)


def _created_per_currency(stream: list[Any], results: list[dict[str, Any]]) -> dict[str, Decimal]:
    """Money that entered the ledger: accepted openings and balance adjustments (transfers only move it)."""
    created: dict[str, Decimal] = defaultdict(Decimal)
    currency_of: dict[str, str] = {}
    for event, result in zip(stream, results, strict=True):
        if result["status"] != "accepted":
            continue
        data = event["data"]
        if event["event_type"] == "account_opened":
            currency_of[data["account"]] = data["currency"]
            created[data["currency"]] += _decimal(data.get("opening_balance", "0"))
        elif event["event_type"] == "balance_changed":
            created[currency_of[data["account"]]] += _decimal(data["after"]) - _decimal(data["before"])
    return created


def test_ten_thousand_generated_events_get_known_results_and_conserve_money_per_currency() -> None:
    seen: list[int] = []

    @settings(max_examples=250, **FUZZ)
    @given(st.lists(events(), min_size=40, max_size=80))
    def check(stream: list[Any]) -> None:
        memory = MemoryStore()
        results = run(stream, memory, LedgerConfig(), NOW)
        seen.append(len(stream))
        assert len(results) == len(stream)
        for result in results:
            assert result["status"] in STATUSES, result
            assert set(result["codes"]) <= BY_NAME.keys(), result
            assert result["status"] != "rejected" or result["codes"], result
        held: dict[str, Decimal] = defaultdict(Decimal)
        for acc in memory.ledger.accounts.values():
            held[acc.currency] += acc.balance
        created = _created_per_currency(stream, results)
        assert {c: v for c, v in held.items() if v} == {c: v for c, v in created.items() if v}

    check()
    print(f"\nfuzz: {sum(seen)} generated ledger events in {len(seen)} streams")
    assert sum(seen) >= 10_000


TOOLS = ["math.calculate", "text.summarize", "sql.query", "ledger.balance", "system.info", "nope.tool"]
subtask = st.fixed_dictionaries(
    {"id": st.sampled_from(["s1", "s2", "s3"]), "tool": st.sampled_from(TOOLS), "args": st.dictionaries(
        st.sampled_from(["expression", "text", "query", "account"]), st.text(max_size=30), max_size=2)},
    optional={"depends_on": st.lists(st.sampled_from(["s1", "s2", "s3"]), max_size=2)},
)  # fmt: skip
requests = st.fixed_dictionaries(
    {"input": st.one_of(st.text(max_size=60), st.from_regex(r"compute [0-9+*/() .-]{1,20}", fullmatch=True))},
    optional={"options": st.fixed_dictionaries({}, optional={
        "subtasks": st.lists(subtask, max_size=3), "priority": st.sampled_from(["high", "low", "urgent", 3, 42]),
        "require_approval": st.booleans()})},
)  # fmt: skip


def test_hundreds_of_generated_workflow_requests_end_in_a_known_state() -> None:
    seen: list[str] = []

    @settings(max_examples=300, **FUZZ)
    @given(requests)
    def check(raw: dict[str, Any]) -> None:
        try:
            request = WorkflowRequest.model_validate(raw)
        except ValidationError:
            seen.append("refused")  # refused at the door, with the reason, before any task exists
            return
        ports = Ports(store=AgentStore(), events=MemoryEvents(), registry=default_registry(),
                      profiles=lambda _name: LocalProfile(), cache=MemoryCache())  # fmt: skip
        ports.store.create_run("r1", request, "agents")
        record = run_inline("r1", ports)
        assert record.status in TERMINAL_STATUSES | {"awaiting_approval"}, record
        assert record.status != "failed" or record.error, record
        seen.append(record.status)

    check()
    print(f"\nfuzz: {len(seen)} workflow requests: " + ", ".join(f"{s} {seen.count(s)}" for s in sorted(set(seen))))
    assert len(seen) >= 300


_RENAMED = ("account", "sender", "receiver", "transaction_id", "execution_id", "contract_id")


def _own(event: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The event with its ids and accounts prefixed, so that examples do not meet in the shared database."""
    data = event["data"]
    if isinstance(data, dict):
        data = {k: f"{prefix}{v}" if k in _RENAMED and isinstance(v, str) else v for k, v in data.items()}
        for side in ("inputs", "outputs"):
            if isinstance(data.get(side), list):
                data[side] = [{**leg, "account": f"{prefix}{leg['account']}"} for leg in data[side]]
    return {**event, "event_id": f"{prefix}{event['event_id']}", "data": data}


@pytest.mark.integration
def test_generated_events_through_a_real_worker_get_the_results_of_the_pure_code(celery_app, fleet_worker) -> None:  # type: ignore[no-untyped-def]
    seen: list[int] = []
    # config_changed would change the limits of the session's shared ledger for later tests
    structured = events(kinds=tuple(k for k in DATA if k != "config_changed"))

    @settings(max_examples=6, **FUZZ)
    @given(st.lists(structured, min_size=50, max_size=60))
    def check(stream: list[dict[str, Any]]) -> None:
        prefix = f"fz{len(seen)}{uuid.uuid4().hex[:6]}-"
        stream = [_own(e, prefix) for e in stream]
        now = datetime.now(UTC)
        batch = celery_app.send_task("ledger.quick_run_batch", args=[stream], queue="ledger", priority=5)
        results = batch.get(timeout=60)["results"]
        expected = run(stream, MemoryStore(), LedgerConfig(), now)
        seen.append(len(stream))
        assert [(r["status"], r["codes"]) for r in results] == [(r["status"], r["codes"]) for r in expected]

    check()
    print(f"\nfuzz: {sum(seen)} generated events through the worker, each with the pure code's result")
    assert sum(seen) >= 300
