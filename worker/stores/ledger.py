"""The SQL shadow ledger: loads what a chunk needs in a few queries and writes its changes in bulk."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, event, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from ledger.quickrun import Record, StoreConflict
from ledger.state import Account, Applied, MemoryLedger, Overlay
from worker.db import make_engine, normalise_url
from worker.models.ledger import (
    LedgerAccount,
    LedgerAlert,
    LedgerConfigValue,
    LedgerEventRecord,
    LedgerMinute,
    LedgerSnapshot,
    LedgerTransaction,
    LedgerVersionCount,
)

ACCOUNTS = LedgerAccount.__table__
EVENTS = LedgerEventRecord.__table__
TRANSACTIONS = LedgerTransaction.__table__
SNAPSHOTS = LedgerSnapshot.__table__
CONFIG = LedgerConfigValue.__table__
VERSIONS = LedgerVersionCount.__table__
MINUTES = LedgerMinute.__table__
ALERTS = LedgerAlert.__table__
# Bound parameters per IN (...) query: far below SQLite's and PostgreSQL's limits.
IN_CHUNK = 900
# Purge expired snapshots at most this often per process.
PURGE_EVERY = timedelta(minutes=10)


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _chunks(values: Iterable[str]) -> Iterator[list[str]]:
    items = sorted(values)
    for start in range(0, len(items), IN_CHUNK):
        yield items[start : start + IN_CHUNK]


@functools.cache
def ledger_engine(url: str) -> Engine:
    """An engine whose SQLite transactions take the write lock at BEGIN, so two workers never interleave."""
    engine = make_engine(url)
    if normalise_url(url).startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _no_implicit_begin(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin_immediate(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class SqlLedgerTx:
    """One database transaction of the ledger store."""

    def __init__(self, connection: Connection, store: SqlLedgerStore) -> None:
        self.connection, self.store = connection, store
        self.postgres = connection.dialect.name == "postgresql"
        self.known: set[str] = set()

    def load(self, event_ids: set[str], accounts: set[str], transactions: set[str]) -> MemoryLedger:
        """The rows the chunk reads; on PostgreSQL its accounts are locked until commit."""
        ledger = MemoryLedger()
        run = self.connection.execute
        for part in _chunks(accounts):
            query = select(ACCOUNTS).where(ACCOUNTS.c.account.in_(part))
            for row in run(query.with_for_update() if self.postgres else query):
                ledger.accounts[row.account] = Account(
                    row.account,
                    row.currency,
                    Decimal(row.overdraft_limit),
                    Decimal(row.balance),
                    row.closed,
                    row.last_sequence,
                    _aware(row.last_timestamp),
                    row.baseline or {},
                )
        self.known = set(ledger.accounts)
        for part in _chunks(event_ids):
            query = select(EVENTS.c.event_id, EVENTS.c.fingerprint, EVENTS.c.result).where(EVENTS.c.event_id.in_(part))
            for row in run(query):
                ledger.events[row.event_id] = Applied(row.fingerprint, row.result)
        for part in _chunks(transactions):
            query = select(TRANSACTIONS.c.transaction_id).where(TRANSACTIONS.c.transaction_id.in_(part))
            ledger.transactions.update(run(query).scalars())
        ledger.overrides = {row.key: row.value for row in run(select(CONFIG.c.key, CONFIG.c.value))}
        return ledger

    def save(self, overlay: Overlay, records: list[Record], now: datetime) -> None:
        """Insert and update every row of the chunk; StoreConflict when another writer won a race."""
        try:
            self._accounts(overlay)
            self._events(records, now)
            self._small(overlay, records, now)
        except IntegrityError as exc:
            raise StoreConflict(f"concurrent write: {exc.orig}") from exc

    def _accounts(self, overlay: Overlay) -> None:
        rows = [_account_row(account) for account in overlay.accounts.values()]
        new = [row for row in rows if row["account"] not in self.known]
        old = [{**row, "key": row["account"]} for row in rows if row["account"] in self.known]
        if new:
            self.connection.execute(ACCOUNTS.insert(), new)
        if old:
            update = ACCOUNTS.update().where(ACCOUNTS.c.account == bindparam("key"))
            values = {name: bindparam(name) for name in old[0] if name not in ("account", "key")}
            self.connection.execute(update.values(values), old)

    def _events(self, records: list[Record], now: datetime) -> None:
        keyed = [
            {
                "event_id": r.event_id,
                "fingerprint": r.fingerprint,
                "event_type": r.event_type,
                "api_version": r.api_version,
                "status": r.status,
                "code": r.codes[0] if r.codes else "",
                "result": r.result,
                "processed_at": now,
                "ttd_ms": (now - r.timestamp).total_seconds() * 1000 if r.timestamp else None,
            }
            for r in records
            if r.keyed
        ]
        if keyed:
            self.connection.execute(EVENTS.insert(), keyed)
        snapshots = [
            {"snapshot_id": r.result["snapshot_id"], "event_id": r.event_id, "created_at": now, "body": r.snapshot}
            for r in records
        ]
        if snapshots:
            insert = self._insert(SNAPSHOTS).on_conflict_do_nothing(index_elements=["snapshot_id"])
            self.connection.execute(insert, snapshots)

    def _small(self, overlay: Overlay, records: list[Record], now: datetime) -> None:
        run = self.connection.execute
        used = [{"transaction_id": t, "event_id": r.event_id} for r in records for t in r.transactions]
        if used:
            run(TRANSACTIONS.insert(), used)
        for key, value in overlay.overrides.items():
            run(delete(CONFIG).where(CONFIG.c.key == key))
            run(CONFIG.insert(), {"key": key, "value": value, "event_id": ""})
        alerts = [
            {"at": now, "kind": "amount", "account": a["account"], "event_id": a["event_id"], "details": a}
            for r in records
            for a in r.alerts
        ]
        if alerts:
            run(ALERTS.insert(), alerts)
        self._counters(records, now)

    def _counters(self, records: list[Record], now: datetime) -> None:
        versions = Counter((r.api_version or "", r.status, r.codes[0] if r.codes else "") for r in records)
        if versions:
            insert = self._insert(VERSIONS)
            rows = [{"api_version": v, "status": s, "code": c, "count": n} for (v, s, c), n in versions.items()]
            self.connection.execute(
                insert.on_conflict_do_update(
                    index_elements=["api_version", "status", "code"],
                    set_={"count": VERSIONS.c.count + insert.excluded.count},
                ),
                rows,
            )
        counted = [r for r in records if r.status != "skipped"]
        if counted:
            minute = now.replace(second=0, microsecond=0)
            insert = self._insert(MINUTES)
            rejected = sum(1 for r in counted if r.status == "rejected")
            self.connection.execute(
                insert.on_conflict_do_update(
                    index_elements=["minute"],
                    set_={
                        "events": MINUTES.c.events + insert.excluded.events,
                        "rejected": MINUTES.c.rejected + insert.excluded.rejected,
                    },
                ),
                {"minute": minute, "events": len(counted), "rejected": rejected},
            )
        self.store.purge(self.connection, now)

    def _insert(self, table: Any) -> Any:
        return (postgresql.insert if self.postgres else sqlite.insert)(table)


def _account_row(account: Account) -> dict[str, Any]:
    return {
        "account": account.account,
        "currency": account.currency,
        "overdraft_limit": format(account.overdraft_limit, "f"),
        "balance": format(account.balance, "f"),
        "closed": account.closed,
        "last_sequence": account.last_sequence,
        "last_timestamp": account.last_timestamp,
        "baseline": account.baseline,
    }


class SqlLedgerStore:
    """The shadow ledger in the fleet's database."""

    def __init__(self, url: str, retention_days: int = 30) -> None:
        self.engine = ledger_engine(url)
        self.retention = timedelta(days=retention_days)
        self._purged: datetime | None = None

    @contextmanager
    def transaction(self) -> Iterator[SqlLedgerTx]:
        """One database transaction: all of a chunk's effects, or none."""
        with self.engine.begin() as connection:
            yield SqlLedgerTx(connection, self)

    def purge(self, connection: Connection, now: datetime) -> None:
        """Drop snapshots older than the retention, at most once per PURGE_EVERY in this process."""
        if self._purged is not None and now - self._purged < PURGE_EVERY:
            return
        self._purged = now
        connection.execute(delete(SNAPSHOTS).where(SNAPSHOTS.c.created_at < now - self.retention))
