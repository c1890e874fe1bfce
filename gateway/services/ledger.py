"""Ledger services shared by the CLI and the HTTP API: submit, wait, look up, summarise."""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from celery import Celery
from sqlalchemy import select

from gateway.client import Sent, submit
from ledger import LedgerError
from ledger.config import LedgerConfig, load_config
from ledger.versions import VersionStats, compare
from worker import logging as fleet_logging
from worker.db import get_engine
from worker.ledger.models import LedgerEventRecord, LedgerSnapshot, LedgerVersionCount
from worker.settings import get_settings

EVENTS = LedgerEventRecord.__table__


def fleet_config() -> LedgerConfig:
    """The `ledger` section of the fleet's FLEET_CONFIG."""
    return load_config(get_settings().section("ledger"))


def read_jsonl(path: Path) -> list[dict[str, Any] | str]:
    """Events of a JSONL file; a line that is not a JSON object is kept as text (the worker rejects it)."""
    out: list[dict[str, Any] | str] = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise LedgerError(f"{path} is not UTF-8 text (byte {exc.start}): give a JSONL file of events") from None
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            out.append(line)
            continue
        out.append(value if isinstance(value, dict) else line)
    return out


def send(events: list[dict[str, Any] | str], app: Celery, on_sent: Callable[[Sent], None] | None = None) -> list[Sent]:
    """Route and send events with the fleet's filter and priority rules."""
    # The request's X-Correlation-ID (gateway/correlation.py) when the API sends them; a new one otherwise.
    correlation = fleet_logging.current().get("correlation_id")
    return submit(events, app, config=fleet_config(), on_sent=on_sent, correlation_id=correlation)


def wait(sent: list[Sent], timeout: float = 300.0, on_done: Callable[[], None] | None = None) -> list[dict[str, Any]]:
    """The result of each sent event, in order (skipped ones answered locally)."""
    results: list[dict[str, Any]] = []
    for item in sent:
        if item.result is None:
            results.append({"event_id": item.event_id, "status": "skipped", "codes": [], "reason": item.skipped})
        else:
            results.append(item.result.get(timeout=timeout))
        if on_done is not None:
            on_done()
    return results


def outcomes(results: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Results by outcome: accepted ids, rejected `{event_id, codes}`, duplicate ids, skipped ids (in order)."""
    out: dict[str, list[Any]] = {"accepted": [], "rejected": [], "duplicates": [], "skipped": []}
    for result in results:
        status = result.get("status")
        if status == "rejected":
            out["rejected"].append({"event_id": result.get("event_id"), "codes": result.get("codes", [])})
        elif status in ("accepted", "skipped"):
            out[str(status)].append(result.get("event_id"))
        elif status == "duplicate":
            out["duplicates"].append(result.get("event_id"))
    return out


def get_result(event_id: str) -> dict[str, Any] | None:
    """The stored result of an event."""
    with get_engine().connect() as connection:
        return connection.execute(select(EVENTS.c.result).where(EVENTS.c.event_id == event_id)).scalar()


def get_snapshot(event_id: str) -> dict[str, Any] | None:
    """The snapshot of an event: the event, balances before and after, the result."""
    table = LedgerSnapshot.__table__
    query = select(table.c.body).where(table.c.event_id == event_id).order_by(table.c.created_at)
    with get_engine().connect() as connection:
        return connection.execute(query).scalars().first()


def versions() -> list[VersionStats]:
    """Counts per api_version, each flagged when it departs from the previous version."""
    table = LedgerVersionCount.__table__
    rows: dict[str, VersionStats] = {}
    with get_engine().connect() as connection:
        for row in connection.execute(select(table)):
            stats = rows.setdefault(row.api_version, VersionStats(row.api_version))
            count: int = row._mapping["count"]  # `row.count` is also the tuple method, to mypy
            stats.statuses[row.status] = stats.statuses.get(row.status, 0) + count
            if row.code:
                stats.codes[row.code] = stats.codes.get(row.code, 0) + count
    return compare(list(rows.values()))


@dataclass
class Summary:
    """What `agent ledger quick-run` prints."""

    events: int
    by_status: dict[str, int]
    by_code: dict[str, int]
    success_rate: float
    ttd_p50_ms: float | None
    ttd_p95_ms: float | None
    run_time_s: float
    peak_worker_memory_kb: int | None
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (`--json`)."""
        return asdict(self)


def _ttd(event_ids: list[str]) -> list[float]:
    values: list[float] = []
    with get_engine().connect() as connection:
        for start in range(0, len(event_ids), 900):
            part = event_ids[start : start + 900]
            query = select(EVENTS.c.ttd_ms).where(EVENTS.c.event_id.in_(part), EVENTS.c.ttd_ms.is_not(None))
            values += connection.execute(query).scalars()
    return sorted(values)


def peak_worker_memory_kb(app: Celery) -> int | None:
    """The largest peak resident memory among the workers that answer (ru_maxrss), in KiB."""
    stats = app.control.inspect(timeout=2.0).stats() or {}
    peaks = [int(s.get("rusage", {}).get("maxrss", 0)) for s in stats.values()]
    return max(peaks) if peaks else None


def summarise(results: list[dict[str, Any]], started: float, app: Celery) -> Summary:
    """Success rate (skipped excluded), counts by code, time-to-detect percentiles, run time, memory."""
    by_status = Counter(r["status"] for r in results)
    by_code = Counter(r["codes"][0] for r in results if r.get("codes"))
    counted = sum(n for s, n in by_status.items() if s != "skipped")
    ttd = _ttd([r["event_id"] for r in results if r.get("event_id")])
    return Summary(
        events=len(results),
        by_status=dict(by_status),
        by_code=dict(by_code),
        success_rate=(counted - by_status.get("rejected", 0)) / counted if counted else 1.0,
        ttd_p50_ms=statistics.median(ttd) if ttd else None,
        ttd_p95_ms=ttd[min(len(ttd) - 1, int(0.95 * len(ttd)))] if ttd else None,
        run_time_s=time.perf_counter() - started,
        peak_worker_memory_kb=peak_worker_memory_kb(app),
        rejected=[r for r in results if r["status"] == "rejected"][:20],
    )
