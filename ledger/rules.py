"""Validate one event against the shadow ledger: every violation found, the deciding one, the effects."""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, Inexact, Overflow, localcontext
from typing import Any

from ledger.amounts import LEDGER_CONTEXT, fits_scale, in_range, to_decimal
from ledger.codes import PRECEDENCE
from ledger.config import CHANGEABLE_KEYS, LedgerConfig, check_change
from ledger.events import (
    AccountClosed,
    AccountOpened,
    BalanceChanged,
    ConfigChanged,
    ContractExecuted,
    LedgerEvent,
    TransactionCreated,
    Violation,
)
from ledger.state import Account, LedgerView


@dataclass(slots=True)
class Decision:
    """The outcome of validating one event and the effects to apply when it is accepted."""

    status: str  # accepted | rejected | duplicate | waiting
    violations: list[Violation] = field(default_factory=list)
    before: dict[str, Account | None] = field(default_factory=dict)
    after: dict[str, Account] = field(default_factory=dict)
    transactions: list[str] = field(default_factory=list)
    overrides: dict[str, Any] = field(default_factory=dict)
    amounts: list[tuple[str, Decimal]] = field(default_factory=list)
    stored: dict[str, Any] | None = None

    @property
    def codes(self) -> list[str]:
        """Codes in precedence order, the deciding one first, without repeats."""
        if not self.violations:
            return []
        return sorted({v.code for v in self.violations}, key=PRECEDENCE.__getitem__)


class _Check:
    """Collects violations and the accounts' new states while one event is checked."""

    def __init__(self, event: LedgerEvent, view: LedgerView, config: LedgerConfig) -> None:
        self.event, self.view, self.config = event, view, config
        self.decision = Decision(status="accepted")

    def fail(self, code: str, where: str, message: str) -> None:
        self.decision.violations.append(Violation(code, where, message))

    def account(self, account_id: str) -> Account | None:
        if account_id in self.decision.after:
            return self.decision.after[account_id]
        found = self.view.account(account_id)
        if found is not None:
            self.decision.before.setdefault(account_id, found)
        return found

    def put(self, account: Account, **changes: Any) -> None:
        """Record the account's new state: one fresh copy per change, owned by this decision."""
        balance = changes.get("balance")
        if balance is not None and not in_range(balance, self.config.scale(account.currency)):
            self.fail("amount_out_of_range", "data", f"the balance of {account.account!r} would be {balance}")
        before = self.decision.before
        if account.account not in before:
            before[account.account] = self.view.account(account.account)
        self.decision.after[account.account] = account.evolve(last_timestamp=self._latest(account), **changes)

    def _latest(self, account: Account) -> datetime:
        last = account.last_timestamp
        return self.event.timestamp if last is None or self.event.timestamp > last else last

    def bounded(self, value: Decimal, scale: int, where: str) -> None:
        if not in_range(value, scale):
            self.fail("amount_out_of_range", where, f"{value} is beyond 10^18 minor units")

    def amount(self, raw: int | str, currency: str, where: str, *, positive: bool = True) -> Decimal:
        scale = self.config.scale(currency)
        value = to_decimal(raw, scale)
        self.bounded(value, scale, where)
        if positive and value <= 0:
            self.fail("amount_must_be_positive", where, f"{value} is not positive")
        elif not positive and value < 0:
            self.fail("amount_must_be_positive", where, f"{value} is negative")
        if not fits_scale(value, scale):
            self.fail("amount_precision_exceeded", where, f"{value} has more than {scale} decimals for {currency}")
        return value

    def value(self, raw: int | str, currency: str, where: str) -> Decimal:
        scale = self.config.scale(currency)
        value = to_decimal(raw, scale)
        self.bounded(value, scale, where)
        if not fits_scale(value, scale):
            self.fail("amount_precision_exceeded", where, f"{value} has more than {scale} decimals for {currency}")
        return value

    def limit(self, value: Decimal, where: str) -> None:
        if value > self.config.amount_limit:
            self.fail("amount_exceeds_limit", where, f"{value} above the limit {self.config.amount_limit}")

    def existing(self, account_id: str, where: str, missing: str, closed: str | None) -> Account | None:
        found = self.account(account_id)
        if found is None:
            self.fail(missing, where, f"account {account_id!r} not found")
        elif closed is not None and found.closed:
            self.fail(closed, where, f"account {account_id!r} is closed")
        return found

    def currency(self, account: Account | None, currency: str, where: str) -> None:
        if account is not None and account.currency != currency:
            self.fail("currency_mismatch", where, f"{currency} but account {account.account!r} is {account.currency}")

    def covers(self, account: Account | None, amount: Decimal, where: str) -> None:
        if account is not None and account.balance + account.overdraft_limit < amount:
            self.fail("exceeds_balance", where, f"{amount} exceeds balance + overdraft of {account.account!r}")


def validate(
    event: LedgerEvent, view: LedgerView, config: LedgerConfig, now: datetime, *, final: bool = True
) -> Decision:
    """Check an event; `final=False` answers `waiting` instead of `sequence_gap` for a missing predecessor."""
    earlier = view.applied(event.event_id)
    if earlier is not None and earlier.fingerprint == event.fingerprint:
        return Decision(
            status="duplicate", violations=[Violation("exists", "event_id", "already processed")], stored=earlier.result
        )
    check = _Check(event, view, config)
    if earlier is not None:
        check.fail("exists_with_different_fields", "event_id", "this event id was used with different content")
    if event.timestamp > now + _seconds(config.max_skew_seconds):
        check.fail("timestamp_in_future", "timestamp", f"{event.timestamp.isoformat()} is ahead of {now.isoformat()}")
    _apply(check, event)
    _regress(check)
    decision = check.decision
    if decision.status == "waiting" and final:
        decision.status = "accepted"
        check.fail("sequence_gap", "data.sequence", "the previous sequence of this account never arrived")
    if decision.violations:
        decision.status = "rejected"
    if decision.status != "accepted":
        decision.after, decision.transactions, decision.overrides, decision.amounts = {}, [], {}, []
    return decision


def _apply(check: _Check, event: LedgerEvent) -> None:
    """The event type's rules, computed in the ledger's context: exact, or refused."""
    with localcontext(LEDGER_CONTEXT):
        try:
            _BY_TYPE[type(event.data)](check, event.data)
        except (Inexact, Overflow) as exc:  # an amount or balance beyond the bound (one stored before it)
            check.fail("amount_out_of_range", "data", f"not computed exactly ({type(exc).__name__})")


@functools.lru_cache(maxsize=64)
def _seconds(seconds: float) -> timedelta:
    """A config's seconds as a timedelta, made once per value instead of once per event."""
    return timedelta(seconds=seconds)


def _regress(check: _Check) -> None:
    tolerance = _seconds(check.config.regress_tolerance_seconds)
    for account_id, before in check.decision.before.items():
        last = before.last_timestamp if before is not None else None
        if last is not None and check.event.timestamp < last - tolerance:
            check.fail("timestamp_must_not_regress", "timestamp", f"earlier than the last event of {account_id!r}")


def _opened(check: _Check, data: AccountOpened) -> None:
    if check.account(data.account) is not None:
        check.fail("account_exists", "data.account", f"account {data.account!r} already exists")
        return
    overdraft = check.amount(data.overdraft_limit, data.currency, "data.overdraft_limit", positive=False)
    balance = check.amount(data.opening_balance, data.currency, "data.opening_balance", positive=False)
    check.put(Account(data.account, data.currency, overdraft_limit=overdraft, balance=balance))


def _closed(check: _Check, data: AccountClosed) -> None:
    found = check.existing(data.account, "data.account", "account_not_found", None)
    if found is not None:
        check.put(found, closed=True)


def _transaction(check: _Check, data: TransactionCreated) -> None:
    if check.view.transaction_exists(data.transaction_id):
        check.fail("transaction_id_exists", "data.transaction_id", f"{data.transaction_id!r} already used")
    if data.sender == data.receiver:
        check.fail("accounts_must_be_different", "data.receiver", "sender and receiver are the same account")
    sender = check.existing(data.sender, "data.sender", "sender_not_found", "sender_closed")
    receiver = check.existing(data.receiver, "data.receiver", "receiver_not_found", "receiver_closed")
    check.currency(sender, data.currency, "data.currency")
    check.currency(receiver, data.currency, "data.currency")
    amount = check.amount(data.amount, data.currency, "data.amount")
    check.limit(amount, "data.amount")
    check.covers(sender, amount, "data.amount")
    if sender is None or receiver is None or data.sender == data.receiver:
        return
    check.put(sender, balance=sender.balance - amount)
    check.put(receiver, balance=receiver.balance + amount)
    check.decision.transactions.append(data.transaction_id)
    check.decision.amounts += [(data.sender, amount), (data.receiver, amount)]


def _balance(check: _Check, data: BalanceChanged) -> None:
    found = check.account(data.account)
    if found is None:
        check.fail("account_not_found", "data.account", f"account {data.account!r} not found")
        return
    before = check.value(data.before, found.currency, "data.before")
    after = check.value(data.after, found.currency, "data.after")
    if found.closed:
        code = "sender_closed" if after < before else "receiver_closed"
        check.fail(code, "data.account", f"account {data.account!r} is closed")
    if data.sequence is not None and not _in_sequence(check, found, data.sequence):
        return
    if before != found.balance:
        check.fail("balance_mismatch", "data.before", f"before {before} but the shadow balance is {found.balance}")
    if data.delta is not None:
        delta = check.value(data.delta, found.currency, "data.delta")
        if after - before != delta:
            check.fail("balance_mismatch", "data.delta", f"after - before = {after - before}, delta {delta}")
    if after < -found.overdraft_limit:
        check.fail("exceeds_balance", "data.after", f"{after} is below the overdraft limit")
    check.put(found, balance=after, last_sequence=data.sequence or found.last_sequence)
    check.decision.amounts.append((data.account, abs(after - before)))


def _in_sequence(check: _Check, found: Account, sequence: int) -> bool:
    expected = found.last_sequence + 1
    if sequence < expected:
        check.fail("sequence_gap", "data.sequence", f"sequence {sequence} already applied (last {found.last_sequence})")
        return False
    if sequence > expected:
        check.decision.status = "waiting"
        return False
    return True


def _contract(check: _Check, data: ContractExecuted) -> None:
    key = f"contract:{data.contract_id}:{data.execution_id}"
    if check.view.transaction_exists(key):
        check.fail("transaction_id_exists", "data.execution_id", f"execution {data.execution_id!r} already applied")
    totals: dict[str, Decimal] = defaultdict(Decimal)
    moves: list[tuple[str, Decimal]] = []
    for side, legs, sign in (("inputs", data.inputs, -1), ("outputs", data.outputs, 1)):
        closed = "sender_closed" if sign < 0 else "receiver_closed"
        for index, leg in enumerate(legs):
            where = f"data.{side}.{index}"
            found = check.existing(leg.account, f"{where}.account", "account_not_found", closed)
            check.currency(found, leg.currency, f"{where}.currency")
            amount = check.amount(leg.amount, leg.currency, f"{where}.amount")
            check.limit(amount, f"{where}.amount")
            totals[leg.currency] += sign * amount
            moves.append((leg.account, sign * amount))
    for currency, total in totals.items():
        if total != 0:
            check.fail("contract_unbalanced", "data.outputs", f"{currency} inputs and outputs differ by {total}")
    if check.decision.violations:
        return
    for account_id, change in moves:
        current = check.account(account_id)
        assert current is not None  # every leg's account was found above
        if change < 0:
            check.covers(current, -change, "data.inputs")
        check.put(current, balance=current.balance + change)
        check.decision.amounts.append((account_id, abs(change)))
    check.decision.transactions.append(key)


def _config(check: _Check, data: ConfigChanged) -> None:
    if data.key not in check.config.config_keys or data.key not in CHANGEABLE_KEYS:
        check.fail("config_key_not_allowed", "data.key", f"{data.key!r} is not a changeable key")
        return
    problem = check_change(data.key, data.value, check.config)
    if problem:
        check.fail("config_value_invalid", "data.value", f"{data.key}: {problem}"[:300])
        return
    check.decision.overrides[data.key] = data.value


_BY_TYPE: dict[type, Any] = {
    AccountOpened: _opened,
    AccountClosed: _closed,
    TransactionCreated: _transaction,
    BalanceChanged: _balance,
    ContractExecuted: _contract,
    ConfigChanged: _config,
}
