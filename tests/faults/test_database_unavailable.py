"""The database is away mid-stream (SQLite locked, PostgreSQL stopped): tasks retry with backoff and complete."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from gateway.services import agents as service
from ledger.config import LedgerConfig
from ledger.generate import generate
from ledger.quickrun import MemoryStore, run
from tests.faults.conftest import FleetDatabase
from tests.faults.fleet import fleet_config, stored_balances, stored_statuses
from tests.support import PostgresServer, WorkerProcess, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.slow]
# Counted from the first write that met the outage; for SQLite that comes after its busy timeout (10 s).
OUTAGE_S = 12.0
SINGLES = 200
BATCH = 1_000
WORKFLOWS = 5
REPORT_DAY = "2019-06-03"  # a day no other test reports on


@contextmanager
def sqlite_locked(database_url: str) -> Iterator[None]:
    """Hold an exclusive lock on the SQLite file from another connection (in WAL mode: no writer gets in)."""
    connection = sqlite3.connect(make_url(database_url).database, isolation_level=None, timeout=30)
    connection.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        connection.execute("ROLLBACK")
        connection.close()


@contextmanager
def postgres_stopped(server: PostgresServer) -> Iterator[None]:
    """Stop the server (open connections are cut, new ones refused); start it again at the end."""
    server.stop()
    try:
        yield
    finally:
        server.start()


@dataclass
class Database:
    """A database the fleet writes to, and how to take it away."""

    url: str
    outage: Callable[[], AbstractContextManager[None]]
    symptom: str  # what the worker logs once a write met the outage
    described: str
    password: str | None = None  # must never be printed


@pytest.fixture
def database(fleet_database: FleetDatabase, database_url: str) -> Database:
    """The session's SQLite file, locked; or the private PostgreSQL cluster, stopped."""
    server = fleet_database.server
    if server is None:
        return Database(database_url, lambda: sqlite_locked(database_url), "database is locked", "SQLite locked")
    return Database(server.url("fleet"), lambda: postgres_stopped(server), "Retry in", "PostgreSQL stopped",
                    server.password)  # fmt: skip


def _reported_done(app: Any, task_ids: dict[str, list[str]]) -> dict[str, list[str]]:
    """Task id -> event ids of every task the result backend calls successful."""
    return {t: ids for t, ids in task_ids.items() if app.AsyncResult(t).state == "SUCCESS"}


def _unwritten(done: dict[str, list[str]], database_url: str, prefix: str) -> list[str]:
    """Tasks among `done` whose events have no row in the database (a finished task writes nothing later)."""
    stored = stored_statuses(database_url, prefix).keys()
    return [t for t, ids in done.items() if not set(ids) <= stored]


def _retries(log: str) -> int:
    """Retries a worker logged (one line each)."""
    return sum("Retry in" in line for line in log.splitlines())


def _reports(database_url: str) -> list[str]:
    """The days of the stored reports of REPORT_DAY."""
    from worker.db import get_engine

    with get_engine(database_url).connect() as connection:
        rows = connection.execute(
            text("SELECT report_date FROM status_reports WHERE report_date = :d"), {"d": REPORT_DAY}
        )
        return [str(row.report_date) for row in rows]


def test_tasks_retry_while_the_database_is_away_and_complete_once_it_returns(
    celery_app, database: Database, session_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    # Given a worker writing a stream of events, and one making reports (its own: the first's processes are busy
    # with retries during the outage, and the report must meet the outage, not come after it)
    prefix = f"dbdown{uuid.uuid4().hex[:6]}"
    queues = f"ledger-{prefix},agents-{prefix}"
    folder = session_dir / prefix
    env = {**fleet_config(folder, f"agents:\n  queue: agents-{prefix}\n"), "FLEET_DATABASE_URL": database.url}
    worker = WorkerProcess(queues=queues, concurrency=2, name=prefix, env=env, log_path=folder / "w.out")
    reporter = WorkerProcess(queues=f"reports-{prefix}", name=f"{prefix}-r", env=env, log_path=folder / "r.out")
    worker.start(celery_app)
    reporter.start(celery_app)
    now = datetime.now(UTC)
    openings = [i["event"] for i in generate(SINGLES * 40, 0, seed=5, now=now, prefix=f"{prefix}-o")][:SINGLES]
    batch = [i["event"] for i in generate(BATCH, 0, seed=6, now=now, prefix=f"{prefix}-b")]
    task_ids: dict[str, list[str]] = {}

    def send(event: dict[str, Any]) -> None:
        sent = celery_app.send_task("ledger.quick_run", args=[event], queue=f"ledger-{prefix}")
        task_ids[sent.id] = [event["event_id"]]

    try:
        for event in openings[: SINGLES // 2]:
            send(event)
        wait_for(lambda: len(stored_statuses(database.url, prefix)) >= SINGLES // 8, timeout=60, what="first writes")
        # When the database goes away mid-stream, and more events and workflows arrive during the outage
        began, seen = time.monotonic(), len(worker.log_path.read_text())
        with database.outage():
            report = celery_app.send_task(
                "reports.daily_status", args=[REPORT_DAY, "manual"], queue=f"reports-{prefix}"
            )
            for event in openings[SINGLES // 2 :]:
                send(event)
            sent = celery_app.send_task("ledger.quick_run_batch", args=[batch], queue=f"ledger-{prefix}")
            task_ids[sent.id] = [e["event_id"] for e in batch]
            subtasks = [{"id": "c1", "tool": "math.calculate", "args": {"expression": "2**10"}}]
            run_ids = [
                service.submit({"input": f"outage {i}", "options": {"queue": f"agents-{prefix}", "subtasks": subtasks}})
                for i in range(WORKFLOWS)
            ]
            wait_for(lambda: database.symptom in worker.log_path.read_text()[seen:], timeout=60, what="a failed write")
            away_until = time.monotonic() + OUTAGE_S
            wait_for(lambda: time.monotonic() > away_until, timeout=OUTAGE_S + 5, interval=0.5, what="the outage")
            done_during = _reported_done(celery_app, task_ids)
        away_s = time.monotonic() - began
        # Then nothing reported done during the outage was left unwritten (read once it is back: a stopped
        # PostgreSQL cannot be read)
        during = _unwritten(done_during, database.url, prefix)
        # And once it returns, everything completes: one result per event, every workflow succeeded
        wait_for(
            lambda: len(stored_statuses(database.url, prefix)) == SINGLES + BATCH,
            timeout=180,
            interval=0.5,
            what="every event stored",
        )
        records = [service.wait_for_run(r, timeout_s=180) for r in run_ids]
        reported = report.get(timeout=400)  # its retries wait 10, 20, 40 ... s
    finally:
        worker.stop()
        reporter.stop()
    log = worker.log_path.read_text() + reporter.log_path.read_text()
    retries = _retries(log)
    report_retries = _retries(reporter.log_path.read_text())
    memory = MemoryStore()
    expected = {r["event_id"]: r["status"] for r in run([*openings, *batch], memory, LedgerConfig(), now)}
    stored = stored_statuses(database.url, prefix)
    print(
        f"\n{database.described} {away_s:.0f} s: {SINGLES} singles + {BATCH} batch + {WORKFLOWS} workflows;"
        f" retries {retries}; reported done during it {len(done_during)} tasks, unwritten {len(during)};"
        f" stored {len(stored)}; report {reported['date']} stored after {report_retries} retries"
    )
    assert during == []
    assert retries > 0
    assert stored == expected
    assert stored_balances(database.url, prefix) == {a: acc.balance for a, acc in memory.ledger.accounts.items()}
    assert [r["status"] for r in records] == ["succeeded"] * WORKFLOWS
    assert report_retries > 0
    assert reported["stored"] is True and reported["date"] == REPORT_DAY and _reports(database.url) == [REPORT_DAY]
    assert _unwritten(_reported_done(celery_app, task_ids), database.url, prefix) == []
    # And the errors the workers logged while the database was away do not show its password
    assert database.password is None or database.password not in log
