"""The SQL shadow ledger: loads what a chunk needs in a few queries and writes its changes in bulk.

Statements are plain SQL run at the driver level (executemany): SQLAlchemy's statement building and
per-row bind processing were most of a batch's time in profiles. Transactions too are begun and committed
on the pooled driver connection: SQLAlchemy's Connection, its `begin` event and its execution context cost
more than the transaction itself (docs/PERFORMANCE.md). The SQL is the same on SQLite and PostgreSQL
except for the placeholder and `FOR UPDATE`.
"""

from __future__ import annotations

import atexit
import fcntl
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TextIO, cast

import orjson
from sqlalchemy import Engine, event
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from ledger.anomaly import watch_minute
from ledger.config import AnomalyConfig
from ledger.events import dumps
from ledger.quickrun import Record, StoreConflict
from ledger.state import Account, Applied, MemoryLedger, Overlay
from worker.db import make_engine, normalise_url

# Bound parameters per IN (...) query: far below SQLite's and PostgreSQL's limits.
IN_CHUNK = 900
# Purge expired snapshots at most this often per process.
PURGE_EVERY = timedelta(minutes=10)
SELECT_ACCOUNTS = (
    "SELECT account, currency, overdraft_limit, balance, closed, last_sequence, last_timestamp, baseline "
    "FROM ledger_accounts WHERE account IN ({})"
)
SELECT_EVENTS = "SELECT event_id, fingerprint, result FROM ledger_events WHERE event_id IN ({})"
SELECT_TRANSACTIONS = "SELECT transaction_id FROM ledger_transactions WHERE transaction_id IN ({})"
SELECT_CONFIG = "SELECT key, value FROM ledger_config"
INSERT_ACCOUNT = (
    "INSERT INTO ledger_accounts (account, currency, overdraft_limit, balance, closed, last_sequence, "
    "last_timestamp, baseline) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
UPDATE_ACCOUNT = (
    "UPDATE ledger_accounts SET currency = ?, overdraft_limit = ?, balance = ?, closed = ?, last_sequence = ?, "
    "last_timestamp = ?, baseline = ? WHERE account = ?"
)
INSERT_EVENT = (
    "INSERT INTO ledger_events (event_id, fingerprint, event_type, api_version, status, code, result, "
    "processed_at, ttd_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_SNAPSHOT = (
    "INSERT INTO ledger_snapshots (snapshot_id, event_id, created_at, body) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (snapshot_id) DO NOTHING"
)
INSERT_TRANSACTION = "INSERT INTO ledger_transactions (transaction_id, event_id) VALUES (?, ?)"
UPSERT_CONFIG = (
    "INSERT INTO ledger_config (key, value, event_id) VALUES (?, ?, ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, event_id = excluded.event_id"
)
INSERT_ALERT = "INSERT INTO ledger_alerts (at, kind, account, event_id, details) VALUES (?, ?, ?, ?, ?)"
UPSERT_VERSION = (
    "INSERT INTO ledger_version_counts (api_version, status, code, count) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (api_version, status, code) DO UPDATE SET count = ledger_version_counts.count + excluded.count"
)
UPSERT_MINUTE = (
    "INSERT INTO ledger_minutes (minute, events, rejected) VALUES (?, ?, ?) ON CONFLICT (minute) DO UPDATE "
    "SET events = ledger_minutes.events + excluded.events, rejected = ledger_minutes.rejected + excluded.rejected"
)
SELECT_MINUTES = "SELECT minute, events, rejected FROM ledger_minutes WHERE minute <= ? ORDER BY minute DESC LIMIT ?"
SELECT_MINUTE_ALERT = "SELECT id FROM ledger_alerts WHERE event_id = ? AND account IS NULL"
DELETE_SNAPSHOTS = "DELETE FROM ledger_snapshots WHERE created_at < ?"
# SQLite's DATETIME always has a bind processor (to its ISO text).
_SQLITE_TIME = cast("Callable[[Any], Any]", sqlite.DATETIME().bind_processor(sqlite.dialect()))


def _chunks(values: Iterable[str]) -> Iterator[list[str]]:
    items = sorted(values)
    for start in range(0, len(items), IN_CHUNK):
        yield items[start : start + IN_CHUNK]


_engines: dict[str, Engine] = {}
_locks: dict[tuple[str, int], TextIO] = {}


def _lock_file(path: str, pid: int) -> TextIO:
    # One open file per process (a forked child opens its own: flock locks belong to the open file).
    if (path, pid) not in _locks:
        _locks[path, pid] = open(path, "a")  # noqa: SIM115  (closed at exit)
    return _locks[path, pid]


@atexit.register
def _close() -> None:
    # Close what the caches hold before the interpreter tears down (no ResourceWarning at exit).
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()
    for lock in _locks.values():
        lock.close()
    _locks.clear()


def ledger_engine(url: str) -> Engine:
    """The writers' engine: its SQLite connections begin no transaction of their own, so the store's
    `BEGIN IMMEDIATE` takes the write lock at the start and two workers never interleave."""
    if url in _engines:
        return _engines[url]
    engine = _engines[url] = make_engine(url, json_serializer=dumps)
    if normalise_url(url).startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _no_implicit_begin(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

    return engine


def reader_engine(url: str) -> Engine:
    """An engine for lock-free reads (SQLite's default deferred transactions)."""
    key = f"reader:{url}"
    if key not in _engines:
        _engines[key] = make_engine(url, json_serializer=dumps)
    return _engines[key]


class SqlLedgerTx:
    """One database transaction of the ledger store."""

    def __init__(self, connection: Any, store: SqlLedgerStore, lock: bool = True) -> None:
        # A pooled DBAPI connection: statements skip SQLAlchemy's per-call machinery (a tenth of a
        # millisecond each, most of a single event's database time).
        self.store, self.lock = store, lock
        self.cursor = connection.cursor()
        self.postgres = store.postgres
        self.known: set[str] = set()

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        self.cursor.execute(sql.replace("?", "%s") if self.postgres else sql, tuple(params))
        return list(self.cursor.fetchall())

    def _many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self.cursor.executemany(sql.replace("?", "%s") if self.postgres else sql, rows)

    def _json(self, value: Any) -> Any:
        # psycopg decodes json columns itself; SQLite hands back the text.
        return orjson.loads(value) if not self.postgres and isinstance(value, str | bytes) else value

    def _time(self, value: datetime | None) -> Any:
        return value if self.postgres or value is None else _SQLITE_TIME(value)

    def _read_time(self, value: Any) -> datetime | None:
        if value is None:
            return None
        found = value if isinstance(value, datetime) else datetime.fromisoformat(value)
        return found.replace(tzinfo=UTC) if found.tzinfo is None else found

    def load(self, event_ids: set[str], accounts: set[str], transactions: set[str]) -> MemoryLedger:
        """The rows the chunk reads; on PostgreSQL its accounts are locked until commit."""
        ledger = MemoryLedger()
        lock = " FOR UPDATE" if self.postgres and self.lock else ""
        for part in _chunks(accounts):
            for row in self._rows(SELECT_ACCOUNTS.format(", ".join("?" * len(part))) + lock, part):
                ledger.accounts[row[0]] = Account(
                    row[0],
                    row[1],
                    Decimal(row[2]),
                    Decimal(row[3]),
                    bool(row[4]),
                    row[5],
                    self._read_time(row[6]),
                    self._json(row[7]) or {},
                )
        self.known = set(ledger.accounts)
        for part in _chunks(event_ids):
            for row in self._rows(SELECT_EVENTS.format(", ".join("?" * len(part))), part):
                ledger.events[row[0]] = Applied(row[1], self._json(row[2]))
        for part in _chunks(transactions):
            ledger.transactions.update(
                r[0] for r in self._rows(SELECT_TRANSACTIONS.format(", ".join("?" * len(part))), part)
            )
        ledger.overrides = {row[0]: self._json(row[1])["v"] for row in self._rows(SELECT_CONFIG)}
        return ledger

    def save(self, overlay: Overlay, records: list[Record], now: datetime) -> None:
        """Insert and update every row of the chunk; StoreConflict when another writer won a race."""
        try:
            self._accounts(overlay)
            self._events(records, now)
            self._rest(overlay, records, now)
        except self.store.dbapi.IntegrityError as exc:
            raise StoreConflict(f"concurrent write: {exc}") from exc

    def _accounts(self, overlay: Overlay) -> None:
        new, old = [], []
        for a in overlay.accounts.values():
            values = (
                a.currency,
                format(a.overdraft_limit, "f"),
                format(a.balance, "f"),
                a.closed,
                a.last_sequence,
                self._time(a.last_timestamp),
                dumps(a.baseline),
            )
            if a.account in self.known:
                old.append((*values, a.account))
            else:
                new.append((a.account, *values))
        self._many(INSERT_ACCOUNT, new)
        self._many(UPDATE_ACCOUNT, old)

    def _events(self, records: list[Record], now: datetime) -> None:
        at = self._time(now)
        keyed = [
            (
                r.event_id,
                r.fingerprint,
                r.event_type,
                r.api_version,
                r.status,
                r.codes[0] if r.codes else "",
                dumps(r.result),
                at,
                (now - r.timestamp).total_seconds() * 1000 if r.timestamp else None,
            )
            for r in records
            if r.keyed
        ]
        self._many(INSERT_EVENT, keyed)
        self._many(INSERT_SNAPSHOT, [(r.result["snapshot_id"], r.event_id, at, dumps(r.snapshot)) for r in records])

    def _rest(self, overlay: Overlay, records: list[Record], now: datetime) -> None:
        at = self._time(now)
        self._many(INSERT_TRANSACTION, [(t, r.event_id) for r in records for t in r.transactions])
        setters = {
            r.snapshot["event"]["data"]["key"]: r.event_id
            for r in records
            if r.event_type == "config_changed" and r.status == "accepted"
        }
        self._many(
            UPSERT_CONFIG,
            [(key, dumps({"v": value}), setters.get(key, "")) for key, value in overlay.overrides.items()],
        )
        self._many(
            INSERT_ALERT, [(at, "amount", a["account"], a["event_id"], dumps(a)) for r in records for a in r.alerts]
        )
        versions = Counter((r.api_version or "", r.status, r.codes[0] if r.codes else "") for r in records)
        self._many(UPSERT_VERSION, [(*key, n) for key, n in versions.items()])
        counted = [r for r in records if r.status != "skipped"]
        if counted:
            rejected = sum(1 for r in counted if r.status == "rejected")
            self._many(UPSERT_MINUTE, [(self._time(now.replace(second=0, microsecond=0)), len(counted), rejected)])
        self._watch_minutes(now)
        if self.store.purge_due(now):
            self._many(DELETE_SNAPSHOTS, [(self._time(now - self.store.retention),)])

    def _watch_minutes(self, now: datetime) -> None:
        # Once per minute and process: score the minute before this one against the minutes before it.
        minute = now.replace(second=0, microsecond=0) - timedelta(minutes=1)
        if self.store.watched is not None and self.store.watched >= minute:
            return
        self.store.watched = minute
        subject = f"minute:{minute.isoformat()}"
        if self._rows(SELECT_MINUTE_ALERT, (subject,)):
            return
        rows = self._rows(SELECT_MINUTES, (self._time(minute), self.store.anomaly.window + 1))
        if not rows or self._read_time(rows[0][0]) != minute:
            return
        history = [(int(r[1]), int(r[2])) for r in reversed(rows[1:])]
        for kind, score in watch_minute(history, int(rows[0][1]), int(rows[0][2]), self.store.anomaly):
            details = {"minute": minute.isoformat(), "events": rows[0][1], "rejected": rows[0][2], **score.to_dict()}
            self._many(INSERT_ALERT, [(self._time(now), kind, None, subject, dumps(details))])


class SqlLedgerStore:
    """The shadow ledger in the fleet's database."""

    def __init__(self, url: str, retention_days: int = 30, anomaly: AnomalyConfig | None = None) -> None:
        self.engine = ledger_engine(url)
        # Reads of the optimistic pass: plain transactions that take no write lock.
        self.reader = reader_engine(url)
        self.dbapi: Any = self.engine.dialect.loaded_dbapi
        self.anomaly = anomaly or AnomalyConfig()
        self.watched: datetime | None = None
        self.postgres = self.engine.dialect.name == "postgresql"
        self.retention = timedelta(days=retention_days)
        self._purged: datetime | None = None
        database = make_url(normalise_url(url)).database
        # Writers of one SQLite file queue on a lock file: flock wakes the next one at once, where SQLite's
        # busy handler would sleep in growing steps (most of a task's time with two processes).
        self._lock_path = None if self.postgres or not database or database == ":memory:" else f"{database}.lock"

    @contextmanager
    def _writer(self) -> Iterator[None]:
        if self._lock_path is None:
            yield
            return
        lock = _lock_file(self._lock_path, os.getpid())
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    @contextmanager
    def _connection(self, engine: Engine) -> Iterator[Any]:
        """A pooled driver connection, rolled back on error; the driver's OperationalError (database locked,
        server gone) is raised as SQLAlchemy's, which the ledger tasks retry."""
        try:
            connection = engine.raw_connection()
            try:
                yield connection
            except BaseException as exc:
                self._discard(connection, exc)
                raise
            finally:
                connection.close()
        except self.dbapi.OperationalError as exc:
            raise OperationalError("ledger transaction", None, exc) from exc

    def _discard(self, connection: Any, exc: BaseException) -> None:
        # Rolled back first, whatever happens next: that releases SQLite's write lock at once (closing the
        # connection would not while a cursor of it is still referenced, by the traceback for instance).
        # After the driver's OperationalError (a server gone, a file locked or read-only) the connection is
        # then closed, not pooled: the next transaction opens a new one.
        try:
            connection.rollback()
        except self.dbapi.Error:
            connection.invalidate()
            return
        if isinstance(exc, self.dbapi.OperationalError):
            connection.invalidate()

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[SqlLedgerTx]:
        """One database transaction: all of a chunk's effects, or none; `write=False` reads without locks."""
        if not write:
            with self._connection(self.reader) as connection:
                yield SqlLedgerTx(connection, self, lock=False)
                connection.rollback()
            return
        with self._writer(), self._connection(self.engine) as connection:
            if not self.postgres:
                # The write lock at BEGIN: two SQLite writers never interleave (psycopg begins by itself).
                connection.cursor().execute("BEGIN IMMEDIATE")
            yield SqlLedgerTx(connection, self)
            connection.commit()

    def purge_due(self, now: datetime) -> bool:
        """Whether expired snapshots should be dropped now (at most once per PURGE_EVERY per process)."""
        if self._purged is not None and now - self._purged < PURGE_EVERY:
            return False
        self._purged = now
        return True
