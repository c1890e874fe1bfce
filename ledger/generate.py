"""A seeded, realistic event stream with labelled injected faults and anomalies (demos, tests, benches)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

CURRENCIES = (("EUR", 6), ("USD", 3), ("GBP", 1))
FAULTS = ("amount_exceeds_limit", "receiver_not_found", "amount_precision_exceeded", "duplicate")


@dataclass
class _Account:
    name: str
    currency: str
    balance: Decimal
    typical: float  # median transfer amount on a log scale
    sequence: int = 0


@dataclass
class _Stream:
    rng: random.Random
    prefix: str
    start: datetime
    step: timedelta
    items: list[dict[str, Any]] = field(default_factory=list)
    accounts: list[_Account] = field(default_factory=list)

    def emit(self, event_type: str, data: dict[str, Any], label: str | None = None) -> dict[str, Any]:
        index = len(self.items)
        body = {
            "event_id": f"{self.prefix}-{index:07d}",
            "event_type": event_type,
            "timestamp": (self.start + self.step * index).isoformat().replace("+00:00", "Z"),
            "api_version": "v1",
            "data": data,
        }
        self.items.append({"event": body, "label": label})
        return body

    def amount(self, account: _Account, factor: float = 1.0) -> Decimal:
        value = math.exp(self.rng.gauss(account.typical, 0.25)) * factor
        return Decimal(f"{value:.2f}")

    def pair(self) -> tuple[_Account, _Account]:
        sender = self.rng.choice(self.accounts)
        peers = [a for a in self.accounts if a.currency == sender.currency and a is not sender]
        return sender, self.rng.choice(peers)

    def transfer(self, label: str | None = None, factor: float = 1.0) -> None:
        sender, receiver = self.pair()
        amount = min(self.amount(sender, factor), Decimal("999.00"))
        if amount > sender.balance:
            sender, receiver = receiver, sender
        if amount > sender.balance:
            return self.adjust(sender)
        sender.balance -= amount
        receiver.balance += amount
        tid = f"{self.prefix}-tx-{len(self.items)}"
        self.emit(
            "transaction_created",
            {
                "transaction_id": tid,
                "sender": sender.name,
                "receiver": receiver.name,
                "amount": str(amount),
                "currency": sender.currency,
            },
            label,
        )
        return None

    def adjust(self, account: _Account | None = None) -> None:
        account = account or self.rng.choice(self.accounts)
        delta = self.amount(account) * 3
        before, account.balance = account.balance, account.balance + delta
        account.sequence += 1
        self.emit(
            "balance_changed",
            {
                "account": account.name,
                "before": str(before),
                "after": str(account.balance),
                "delta": str(delta),
                "sequence": account.sequence,
            },
        )

    def contract(self) -> None:
        payer, payee = self.pair()
        amount = min(self.amount(payer), payer.balance, Decimal("999.00"))
        if amount <= 0:
            return self.adjust(payer)
        share = (amount / 3).quantize(Decimal("0.01"))
        payer.balance -= amount
        payee.balance += amount
        index = len(self.items)
        self.emit(
            "contract_executed",
            {
                "contract_id": f"{self.prefix}-k{index % 7}",
                "execution_id": f"{self.prefix}-x{index}",
                "inputs": [{"account": payer.name, "amount": str(amount), "currency": payer.currency}],
                "outputs": [
                    {"account": payee.name, "amount": str(amount - share), "currency": payee.currency},
                    {"account": payee.name, "amount": str(share), "currency": payee.currency},
                ],
            },
        )
        return None

    def fault(self, kind: str) -> None:
        sender, receiver = self.pair()
        data = {
            "transaction_id": f"{self.prefix}-bad-{len(self.items)}",
            "sender": sender.name,
            "receiver": receiver.name,
            "amount": "1.00",
            "currency": sender.currency,
        }
        if kind == "amount_exceeds_limit":
            data["amount"] = "1000.01"
        elif kind == "receiver_not_found":
            data["receiver"] = f"{self.prefix}-ghost"
        elif kind == "amount_precision_exceeded":
            data["amount"] = "1.001"
        else:
            self.items.append({"event": self.items[-1]["event"], "label": "duplicate"})
            return
        self.emit("transaction_created", data, kind)


def generate(
    events: int,
    anomalies: int = 0,
    seed: int = 0,
    now: datetime | None = None,
    faults: int = 0,
    prefix: str | None = None,
) -> list[dict[str, Any]]:
    """`events` events (`{"event": ..., "label": ...}`), ending before `now`, the same for the same seed."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC).replace(second=0, microsecond=0)
    span = timedelta(hours=1)
    stream = _Stream(rng, prefix or f"g{seed}", now - span, span / max(events, 1))
    for index in range(max(4, events // 40)):
        currency = rng.choices([c for c, _ in CURRENCIES], [w for _, w in CURRENCIES])[0]
        account = _Account(
            f"{stream.prefix}-acc-{index:05d}", currency, Decimal(rng.randint(2000, 9000)), rng.uniform(1.5, 3.5)
        )
        stream.accounts.append(account)
        stream.emit(
            "account_opened", {"account": account.name, "currency": currency, "opening_balance": str(account.balance)}
        )
    for index in range(max(4, events // 40)):  # every currency needs two accounts to transfer between
        peers = [a for a in stream.accounts if a.currency == stream.accounts[index].currency]
        if len(peers) < 2 or index < 2:
            stream.accounts[index].currency = "EUR"
            stream.items[index]["event"]["data"]["currency"] = "EUR"
    body = events - len(stream.items)
    specials = rng.sample(range(body // 2, body), min(anomalies + faults, body // 2)) if body > 0 else []
    anomaly_at = set(specials[:anomalies])
    fault_at = dict(zip(specials[anomalies:], (FAULTS[i % len(FAULTS)] for i in range(faults)), strict=False))
    for position in range(body):
        if position in anomaly_at:
            stream.transfer("anomaly", factor=60.0)
        elif position in fault_at:
            stream.fault(fault_at[position])
        else:
            kind = rng.choices(("transfer", "adjust", "contract", "config"), (75, 15, 9, 1))[0]
            if kind == "config":
                stream.emit("config_changed", {"key": "amount_limit", "value": "1000"})
            else:
                getattr(stream, kind)()
    return stream.items[:events]
