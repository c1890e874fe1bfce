"""Helpers of the fault tests: a ledger stream cut into order-safe segments, what the database holds and Redis keeps."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select

from tests.support import WorkerProcess


@dataclass
class Segment:
    """Events sent together: ordered batches (one `ledger.quick_run_batch` each) and single events."""

    batches: list[list[dict[str, Any]]] = field(default_factory=list)
    singles: list[dict[str, Any]] = field(default_factory=list)

    @property
    def event_ids(self) -> set[str]:
        """Every event id of the segment."""
        return {e["event_id"] for batch in self.batches for e in batch} | {e["event_id"] for e in self.singles}


def accounts_of(event: dict[str, Any]) -> set[str]:
    """Every account an event touches."""
    data = event["data"]
    found = {data[k] for k in ("account", "sender", "receiver") if isinstance(data.get(k), str)}
    for leg in [*data.get("inputs", []), *data.get("outputs", [])]:
        found.add(leg["account"])
    return found


def segments(stream: list[dict[str, Any]], size: int, mixed_every: int = 2) -> list[Segment]:
    """Cut the stream so that events sent concurrently commute; segments are sent one after the other.

    Every `mixed_every`-th segment (from the second) is mixed, the others go as one batch. In a mixed one, a
    `balance_changed` must see exactly the transfers before it, so every event touching an account that has one
    goes, in stream order, in a small batch; the rest (transfers and contracts between other accounts, which
    commute) go as single events.
    """
    out: list[Segment] = []
    for number, start in enumerate(range(0, len(stream), size)):
        chunk = stream[start : start + size]
        if number % mixed_every != 1:
            out.append(Segment(batches=[chunk]))
            continue
        pinned = set().union(*(accounts_of(e) for e in chunk if e["event_type"] == "balance_changed"))
        ordered = [e for e in chunk if accounts_of(e) & pinned or e["event_type"] == "config_changed"]
        singles = [e for e in chunk if not (accounts_of(e) & pinned or e["event_type"] == "config_changed")]
        out.append(Segment(batches=[ordered] if ordered else [], singles=singles))
    return out


def stored_statuses(database_url: str, prefix: str) -> dict[str, str]:
    """Event id -> stored status of every ledger result whose id starts with the prefix."""
    from worker.db import get_engine
    from worker.ledger.models import LedgerEventRecord

    table = LedgerEventRecord.__table__
    with get_engine(database_url).connect() as connection:
        rows = connection.execute(select(table.c.event_id, table.c.status).where(table.c.event_id.like(f"{prefix}-%")))
        return {row.event_id: row.status for row in rows}


def stored_balances(database_url: str, prefix: str) -> dict[str, Decimal]:
    """Account -> shadow balance of every account whose name starts with the prefix."""
    from worker.db import get_engine
    from worker.ledger.models import LedgerAccount

    table = LedgerAccount.__table__
    with get_engine(database_url).connect() as connection:
        rows = connection.execute(select(table.c.account, table.c.balance).where(table.c.account.like(f"{prefix}-%")))
        return {row.account: Decimal(row.balance) for row in rows}


def broker_holds(app: Any, queue: str) -> int:
    """Messages of a queue still in Redis: waiting in its priority lists or delivered and not acknowledged."""
    import json

    import redis

    client = redis.Redis.from_url(app.conf.broker_url)
    try:
        sep = app.conf.broker_transport_options["sep"]
        waiting = sum(int(client.llen(q)) for q in [queue, *(f"{queue}{sep}{p}" for p in range(1, 10))])
        held = sum(1 for raw in client.hvals("unacked") if json.loads(raw)[2] == queue)
        return waiting + held
    finally:
        client.close()


def fleet_config(folder: Path, text: str) -> dict[str, str]:
    """Environment of a worker reading `text` as its FLEET_CONFIG (and the test tools' effects folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "fleet.yaml"
    # Their thousands of tasks stay out of the day's report figures that tests/integration/test_reports.py reads.
    path.write_text(text + "reports:\n  telemetry: false\n")
    return {"FLEET_CONFIG": str(path), "FLEET_TEST_EFFECTS_DIR": str(folder)}


def lines(path: Path) -> list[str]:
    """The non-empty lines of a file (none if it does not exist)."""
    return path.read_text().split() if path.exists() else []


def alive(workers: Iterable[WorkerProcess]) -> bool:
    """Whether every worker process is running."""
    return all(w.process is not None and w.process.poll() is None for w in workers)
