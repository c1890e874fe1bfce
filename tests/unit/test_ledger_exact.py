"""Ledger arithmetic is exact: balances after any sequence of openings and transfers equal an integer model."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.amounts import MAX_MINOR_UNITS
from ledger.config import LedgerConfig
from ledger.quickrun import MemoryStore, run
from tests.ledger_cases import event

CONFIG = LedgerConfig(amount_limit=Decimal(10) ** 30)  # the limit aside: only the bound is under test here
ACCOUNTS = {"eur-1": ("EUR", 2), "eur-2": ("EUR", 2), "eur-3": ("EUR", 2), "jpy-1": ("JPY", 0), "jpy-2": ("JPY", 0)}
# Near the bound, on both sides of it, and ordinary amounts.
MINOR = st.one_of(
    st.integers(0, 10**6),
    st.integers(MAX_MINOR_UNITS - 10**6, MAX_MINOR_UNITS + 10**6),
    st.integers(0, 10**31),
    st.integers(-(10**6), 0),
)


def _written(minor: int, scale: int, as_text: bool) -> int | str:
    """Minor units as the event carries them: an integer, or a decimal string in major units."""
    if not as_text:
        return minor
    sign, digits = ("-" if minor < 0 else ""), str(abs(minor)).rjust(scale + 1, "0")
    return f"{sign}{digits[: len(digits) - scale]}.{digits[len(digits) - scale :]}" if scale else f"{sign}{digits}"


@dataclass
class Model:
    """The ledger in integer minor units: what is accepted and every balance."""

    balances: dict[str, int] = field(default_factory=dict)
    overdrafts: dict[str, int] = field(default_factory=dict)

    def open(self, account: str, opening: int, overdraft: int) -> bool:
        if account in self.balances or not (0 <= opening < MAX_MINOR_UNITS and 0 <= overdraft < MAX_MINOR_UNITS):
            return False
        self.balances[account], self.overdrafts[account] = opening, overdraft
        return True

    def transfer(self, sender: str, receiver: str, amount: int) -> bool:
        if sender == receiver or sender not in self.balances or receiver not in self.balances:
            return False
        if ACCOUNTS[sender][0] != ACCOUNTS[receiver][0] or not 0 < amount < MAX_MINOR_UNITS:
            return False
        if self.balances[sender] + self.overdrafts[sender] < amount:
            return False
        if self.balances[receiver] + amount >= MAX_MINOR_UNITS:
            return False
        self.balances[sender] -= amount
        self.balances[receiver] += amount
        return True


STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("open"), st.sampled_from(sorted(ACCOUNTS)), MINOR, MINOR, st.booleans()),
        st.tuples(
            st.just("transfer"),
            st.sampled_from(sorted(ACCOUNTS)),
            st.sampled_from(sorted(ACCOUNTS)),
            MINOR,
            st.booleans(),
        ),
    ),
    min_size=1,
    max_size=40,
)


def _events(steps: list[tuple[Any, ...]], model: Model) -> tuple[list[dict[str, Any]], list[str]]:
    events, expected = [], []
    for index, (kind, first, second, third, as_text) in enumerate(steps):
        if kind == "open":
            currency, scale = ACCOUNTS[first]
            data = {"account": first, "currency": currency, "opening_balance": _written(second, scale, as_text)}
            data["overdraft_limit"] = _written(third, scale, not as_text)
            events.append(event(f"e{index}", "account_opened", data, at=index))
            expected.append("accepted" if model.open(first, second, third) else "rejected")
        else:
            currency, scale = ACCOUNTS[first]
            data = {"transaction_id": f"t{index}", "sender": first, "receiver": second, "currency": currency}
            data["amount"] = _written(third, scale, as_text)
            events.append(event(f"e{index}", "transaction_created", data, at=index))
            expected.append("accepted" if model.transfer(first, second, third) else "rejected")
    return events, expected


@settings(max_examples=300, deadline=None)
@given(STEPS)
def test_balances_after_random_openings_and_transfers_equal_an_exact_integer_model(
    steps: list[tuple[Any, ...]],
) -> None:
    # Given a model of the ledger in integer minor units, and the same steps as events
    model = Model()
    events, expected = _events(steps, model)
    # When the ledger runs them in order
    store = MemoryStore()
    results = run(events, store, CONFIG, datetime.now(UTC))
    # Then it accepts what the model accepts, and every balance is the model's to the last minor unit
    assert [r["status"] for r in results] == expected, [r["codes"] for r in results]
    balances = {name: int(account.balance.scaleb(ACCOUNTS[name][1])) for name, account in store.ledger.accounts.items()}
    assert balances == model.balances


def test_the_probes_opening_of_ten_to_the_thirty_plus_one_is_refused_as_out_of_range() -> None:
    opening = event("o1", "account_opened", {"account": "big", "currency": "EUR", "opening_balance": 10**30 + 1})
    [result] = run([opening], MemoryStore(), CONFIG, datetime.now(UTC))
    assert (result["status"], result["codes"]) == ("rejected", ["amount_out_of_range"])


def test_a_transfer_that_would_take_a_balance_past_the_bound_is_refused_and_one_below_it_is_exact() -> None:
    top = MAX_MINOR_UNITS - 1
    stream = [
        event("o1", "account_opened", {"account": "a", "currency": "EUR", "opening_balance": top - 500}, at=1),
        event("o2", "account_opened", {"account": "b", "currency": "EUR", "opening_balance": 1000}, at=2),
        event("t1", "transaction_created", _transfer("t1", "b", "a", "5.00"), at=3),
        event("t2", "transaction_created", _transfer("t2", "b", "a", "0.01"), at=4),
    ]
    store = MemoryStore()
    results = run(stream, store, CONFIG, datetime.now(UTC))
    assert [r["status"] for r in results] == ["accepted", "accepted", "accepted", "rejected"]
    assert results[3]["codes"] == ["amount_out_of_range"]
    assert store.ledger.accounts["a"].balance == Decimal(top).scaleb(-2)
    assert store.ledger.accounts["b"].balance == Decimal("5.00")


def _transfer(transaction_id: str, sender: str, receiver: str, amount: str) -> dict[str, Any]:
    return {
        "transaction_id": transaction_id,
        "sender": sender,
        "receiver": receiver,
        "amount": amount,
        "currency": "EUR",
    }
