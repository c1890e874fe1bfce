"""A quick run: parse, route, validate and apply a list of events in chunks, one store transaction each."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ledger import LedgerError
from ledger.anomaly import observe
from ledger.body import is_text
from ledger.config import LedgerConfig
from ledger.events import Decoded, LedgerEvent, Violation, accounts_of, build, decode, transaction_key
from ledger.filters import route
from ledger.rules import Decision, validate
from ledger.state import Account, Applied, MemoryLedger, Overlay

# Attempts of a chunk that lost a race with another worker (same event or account written meanwhile).
CONFLICT_ATTEMPTS = 5
# Chunks at least this long validate before taking the write lock; a short one would only read twice.
OPTIMISTIC_MIN = 50


class StoreConflict(LedgerError):
    """Another worker wrote the same event or account meanwhile; the chunk is read and tried again."""


@dataclass(slots=True)
class Record:
    """What one event leaves in the store: its result row, its snapshot, its alerts."""

    event_id: str
    fingerprint: str
    event_type: str | None
    api_version: str | None
    status: str
    codes: list[str]
    result: dict[str, Any]
    snapshot: dict[str, Any]
    timestamp: datetime | None
    keyed: bool = True  # False for a conflicting event id: only its snapshot is stored
    alerts: list[dict[str, Any]] = field(default_factory=list)
    transactions: list[str] = field(default_factory=list)


class LedgerTx(Protocol):
    """One store transaction: read what a chunk needs, then write its changes."""

    def load(self, event_ids: set[str], accounts: set[str], transactions: set[str]) -> MemoryLedger:
        """The shadow ledger rows a chunk reads (and locks, where the database can)."""

    def save(self, overlay: Overlay, records: list[Record], now: datetime) -> None:
        """Write the chunk's changes; StoreConflict when another writer got there first."""


class LedgerStore(Protocol):
    """Where the shadow ledger lives."""

    def transaction(self, write: bool = True) -> AbstractContextManager[LedgerTx]:
        """A transaction: everything saved in it is committed together or not at all.

        `write=False` only reads, takes no lock and waits for no writer.
        """


@dataclass
class MemoryStore:
    """The in-memory store for unit tests: one MemoryLedger plus every record written."""

    ledger: MemoryLedger = field(default_factory=MemoryLedger)
    records: list[Record] = field(default_factory=list)

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[MemoryStore]:
        """No isolation is needed in one process."""
        yield self

    def load(self, event_ids: set[str], accounts: set[str], transactions: set[str]) -> MemoryLedger:
        """The whole ledger (a copy, so a failed chunk leaves it untouched)."""
        return MemoryLedger(
            dict(self.ledger.accounts),
            dict(self.ledger.events),
            set(self.ledger.transactions),
            dict(self.ledger.overrides),
        )

    def save(self, overlay: Overlay, records: list[Record], now: datetime) -> None:
        """Apply the overlay and keep the records."""
        overlay.commit_to(self.ledger)
        self.records += records


@dataclass(slots=True)
class _Item:
    raw: Any
    decoded: Decoded
    parsed: LedgerEvent | list[Violation]


def duplicate_of(original: dict[str, Any]) -> dict[str, Any]:
    """The answer to a redelivered event: the stored result, as status `duplicate` with code `exists`."""
    exists = Violation("exists", "event_id", f"already processed: {original['status']}")
    return {
        **original,
        "status": "duplicate",
        "codes": ["exists"],
        "violations": [exists.to_dict()],
        "original_status": original["status"],
        "original_codes": original["codes"],
    }


def _keys(items: list[_Item]) -> tuple[set[str], set[str], set[str]]:
    events: set[str] = set()
    accounts: set[str] = set()
    transactions: set[str] = set()
    for item in items:
        events.add(item.decoded.event_id)
        if isinstance(item.parsed, LedgerEvent):
            accounts.update(accounts_of(item.parsed.data))
            key = transaction_key(item.parsed.data)
            if key is not None:
                transactions.add(key)
    return events, accounts, transactions


def _money(account: Account | None) -> str | None:
    return None if account is None else format(account.balance, "f")


class _Chunk:
    """Processes the items of one chunk against an overlay."""

    def __init__(self, base: MemoryLedger, config: LedgerConfig, now: datetime, final: bool, correlation: str | None):
        self.overlay = Overlay(base)
        self.config, self.now, self.final, self.correlation = config, now, final, correlation
        self._effective: LedgerConfig | None = None
        self.records: list[Record] = []

    def effective(self) -> LedgerConfig:
        """The config with every accepted `config_changed` so far applied (recomputed only after one)."""
        if self._effective is None:
            self._effective = self.config.changed(self.overlay.config_overrides())
        return self._effective

    def process(self, item: _Item) -> dict[str, Any]:
        started = time.perf_counter()
        decoded, parsed = item.decoded, item.parsed
        earlier = self.overlay.applied(decoded.event_id)
        if earlier is not None and earlier.fingerprint == decoded.fingerprint:
            return duplicate_of(earlier.result)
        config = self.effective()
        # Whether this event id is new: its result is then stored under it (validating changes no event).
        keyed = earlier is None
        if isinstance(parsed, list):
            decision = Decision(status="rejected", violations=parsed)
            return self._record(item, decision, started, None, keyed)
        routed = route(parsed, config)
        if routed.skipped:
            decision = Decision(status="skipped", violations=[Violation("filtered", "", routed.reason)])
            return self._record(item, decision, started, parsed, keyed)
        decision = validate(parsed, self.overlay, config, self.now, final=self.final)
        if decision.status == "waiting":
            return self._result(item, decision, started, parsed)
        return self._record(item, decision, started, parsed, keyed)

    def _result(self, item: _Item, decision: Decision, started: float, event: LedgerEvent | None) -> dict[str, Any]:
        decoded = item.decoded
        codes = [] if decision.status == "skipped" else decision.codes
        return {
            "event_id": decoded.event_id,
            # An unknown type is echoed within the 64 characters of the known ones (and of the stored column).
            "event_type": event.event_type if event else decoded.text("event_type", 64),
            "status": decision.status,
            "codes": codes,
            "violations": [v.to_dict() for v in decision.violations],
            "api_version": event.api_version if event else decoded.text("api_version"),
            "correlation_id": (event.correlation_id if event else decoded.text("correlation_id")) or self.correlation,
            "snapshot_id": None,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
        }

    def _record(
        self, item: _Item, decision: Decision, started: float, event: LedgerEvent | None, keyed: bool
    ) -> dict[str, Any]:
        decoded = item.decoded
        alerts = self._apply(decision, decoded.event_id, event) if decision.status == "accepted" else []
        result = self._result(item, decision, started, event)
        result["snapshot_id"] = decoded.event_id if keyed else f"{decoded.event_id}~{decoded.fingerprint[:12]}"
        if alerts:
            result["anomalies"] = [{"account": a["account"], **a["score"]} for a in alerts]
        before = {acc: _money(state) for acc, state in decision.before.items()}
        after = {acc: _money(self.overlay.account(acc)) for acc in decision.before}
        body = decoded.body if decoded.body is not None else {"raw_sha256": decoded.fingerprint}
        snapshot = {"event": body, "before": before, "after": after, "result": result}
        self.records.append(
            Record(
                decoded.event_id,
                decoded.fingerprint,
                result["event_type"],
                result["api_version"],
                decision.status,
                result["codes"],
                result,
                snapshot,
                event.timestamp if event else None,
                keyed,
                alerts,
                decision.transactions,
            )
        )
        if keyed:
            self.overlay.events[decoded.event_id] = Applied(decoded.fingerprint, result)
        return result

    def _apply(self, decision: Decision, event_id: str, event: LedgerEvent | None) -> list[dict[str, Any]]:
        alerts = self._watch(decision, event_id)
        overlay = self.overlay
        for account in decision.after.values():
            overlay.put_account(account, new=decision.before.get(account.account) is None)
        overlay.transactions.update(decision.transactions)
        if decision.overrides:
            overlay.overrides.update(decision.overrides)
            self._effective = None
        return alerts

    def _watch(self, decision: Decision, event_id: str) -> list[dict[str, Any]]:
        alerts = []
        for account_id, amount in decision.amounts:
            # The accounts in `after` are this decision's own copies: their baseline can be replaced in place.
            account = decision.after.get(account_id)
            if account is None or amount == 0:
                continue
            found, account.baseline = observe(account.baseline, amount, self.config.anomaly)
            if found.flagged:
                alerts.append(
                    {
                        "account": account_id,
                        "event_id": event_id,
                        "amount": format(amount, "f"),
                        "score": found.to_dict(),
                    }
                )
        return alerts


def run(
    raws: list[Any],
    store: LedgerStore,
    config: LedgerConfig,
    now: datetime,
    *,
    final: bool = True,
    correlation_id: str | None = None,
) -> list[dict[str, Any]]:
    """Process events in order, one store transaction per chunk; the result of each, in order."""
    results: list[dict[str, Any]] = []
    if correlation_id is not None and not is_text(correlation_id):  # a producer's header, kept readable
        correlation_id = correlation_id.replace("\x00", "").encode("utf-8", "backslashreplace").decode()
    size = config.batch_chunk_size
    for start in range(0, len(raws), size):
        results += _run_chunk(raws[start : start + size], store, config, now, final, correlation_id)
    return results


def _run_chunk(
    raws: list[Any], store: LedgerStore, config: LedgerConfig, now: datetime, final: bool, correlation: str | None
) -> list[dict[str, Any]]:
    items = []
    for raw in raws:
        decoded = decode(raw, config.payload_limit_bytes)
        items.append(_Item(raw, decoded, build(decoded, config)))
    keys = _keys(items)
    if len(items) >= OPTIMISTIC_MIN:
        results = _optimistic(items, keys, store, config, now, final, correlation)
        if results is not None:
            return results
    for attempt in range(CONFLICT_ATTEMPTS):
        try:
            with store.transaction() as tx:
                chunk = _Chunk(tx.load(*keys), config, now, final, correlation)
                results = [chunk.process(item) for item in items]
                tx.save(chunk.overlay, chunk.records, now)
            return results
        except StoreConflict:
            if attempt == CONFLICT_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _optimistic(
    items: list[_Item],
    keys: tuple[set[str], set[str], set[str]],
    store: LedgerStore,
    config: LedgerConfig,
    now: datetime,
    final: bool,
    correlation: str | None,
) -> list[dict[str, Any]] | None:
    """Validate without holding the write lock, then write only if nothing the chunk read has changed.

    Two workers then validate in parallel and queue only for the writes; None when the rows changed
    meanwhile (or a write raced), and the caller validates again under the lock.
    """
    with store.transaction(write=False) as tx:
        base = tx.load(*keys)
    chunk = _Chunk(base, config, now, final, correlation)
    results = [chunk.process(item) for item in items]
    try:
        with store.transaction() as tx:
            fresh = tx.load(*keys)
            if not _same(fresh, base):
                return None
            tx.save(chunk.overlay, chunk.records, now)
    except StoreConflict:
        return None
    return results


def _same(fresh: MemoryLedger, base: MemoryLedger) -> bool:
    return (
        fresh.accounts == base.accounts
        and fresh.events.keys() == base.events.keys()
        and fresh.transactions == base.transactions
        and fresh.overrides == base.overrides
    )


def preview(raws: list[Any], store: LedgerStore, config: LedgerConfig, now: datetime) -> list[dict[str, Any]]:
    """What processing the events in order would do, without writing anything: per event its result and the
    balances before and after of the accounts it touches (the same validation as `run`, on a read transaction
    whose overlay is thrown away)."""
    items = []
    for raw in raws:
        decoded = decode(raw, config.payload_limit_bytes)
        items.append(_Item(raw, decoded, build(decoded, config)))
    with store.transaction(write=False) as tx:
        chunk = _Chunk(tx.load(*_keys(items)), config, now, True, None)
        out = []
        for item in items:
            kept = len(chunk.records)
            result = chunk.process(item)
            snapshot = chunk.records[-1].snapshot if len(chunk.records) > kept else {}
            out.append({"result": result, "before": snapshot.get("before", {}), "after": snapshot.get("after", {})})
    return out
