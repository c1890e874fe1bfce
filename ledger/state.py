"""The shadow ledger as the rules see it: a read-only view, an in-memory ledger, and a write overlay."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol


@dataclass(slots=True)
class Account:
    """One account of the shadow ledger; treat as immutable once shared (evolve makes the copies)."""

    account: str
    currency: str
    overdraft_limit: Decimal = Decimal(0)
    balance: Decimal = Decimal(0)
    closed: bool = False
    last_sequence: int = 0
    last_timestamp: datetime | None = None
    baseline: dict[str, Any] = field(default_factory=dict)

    def evolve(self, **changes: Any) -> Account:
        """A copy with some fields changed (hand-written: dataclasses.replace is slow on the hot path)."""
        get = changes.get
        return Account(
            self.account,
            self.currency,
            get("overdraft_limit", self.overdraft_limit),
            get("balance", self.balance),
            get("closed", self.closed),
            get("last_sequence", self.last_sequence),
            get("last_timestamp", self.last_timestamp),
            get("baseline", self.baseline),
        )


@dataclass(slots=True)  # not frozen: made once per event (ledger/body.py, Decoded)
class Applied:
    """An event already processed: the fingerprint of its content and its stored result."""

    fingerprint: str
    result: dict[str, Any]


class LedgerView(Protocol):
    """What the rules read from the shadow ledger."""

    def account(self, account_id: str) -> Account | None:
        """The account, or None when it was never opened."""

    def applied(self, event_id: str) -> Applied | None:
        """The earlier processing of this event id, if any."""

    def transaction_exists(self, transaction_id: str) -> bool:
        """Whether a transaction (or contract execution) id was already used."""

    def config_overrides(self) -> dict[str, Any]:
        """Values set by accepted `config_changed` events, by key."""


@dataclass
class MemoryLedger:
    """An in-memory shadow ledger: the fake for unit tests and the base a batch overlay reads."""

    accounts: dict[str, Account] = field(default_factory=dict)
    events: dict[str, Applied] = field(default_factory=dict)
    transactions: set[str] = field(default_factory=set)
    overrides: dict[str, Any] = field(default_factory=dict)

    def account(self, account_id: str) -> Account | None:
        """The account, or None."""
        return self.accounts.get(account_id)

    def applied(self, event_id: str) -> Applied | None:
        """The earlier processing of this event id, if any."""
        return self.events.get(event_id)

    def transaction_exists(self, transaction_id: str) -> bool:
        """Whether the transaction id was used."""
        return transaction_id in self.transactions

    def config_overrides(self) -> dict[str, Any]:
        """Values set by `config_changed` events."""
        return self.overrides


@dataclass
class Overlay:
    """Changes of a batch kept in memory over a base view, written once at the end."""

    base: LedgerView
    accounts: dict[str, Account] = field(default_factory=dict)
    opened: set[str] = field(default_factory=set)
    events: dict[str, Applied] = field(default_factory=dict)
    transactions: set[str] = field(default_factory=set)
    overrides: dict[str, Any] = field(default_factory=dict)

    def account(self, account_id: str) -> Account | None:
        """The account as changed by this batch, else as in the base."""
        found = self.accounts.get(account_id)
        return found if found is not None else self.base.account(account_id)

    def applied(self, event_id: str) -> Applied | None:
        """The processing of this event id in this batch or before."""
        found = self.events.get(event_id)
        return found if found is not None else self.base.applied(event_id)

    def transaction_exists(self, transaction_id: str) -> bool:
        """Whether the id was used in this batch or before."""
        return transaction_id in self.transactions or self.base.transaction_exists(transaction_id)

    def config_overrides(self) -> dict[str, Any]:
        """Overrides of the base with this batch's changes on top."""
        if not self.overrides:
            return self.base.config_overrides()
        return {**self.base.config_overrides(), **self.overrides}

    def put_account(self, account: Account, *, new: bool = False) -> None:
        """Record an account's new state."""
        self.accounts[account.account] = account
        if new:
            self.opened.add(account.account)

    def commit_to(self, ledger: MemoryLedger) -> None:
        """Apply this overlay to an in-memory ledger (what the SQL store does with its tables)."""
        ledger.accounts.update(self.accounts)
        ledger.events.update(self.events)
        ledger.transactions |= self.transactions
        ledger.overrides.update(self.overrides)
