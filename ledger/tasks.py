"""Celery adapters of the ledger package: parse, call the pure code, persist, log, count, return JSON."""

from __future__ import annotations

import functools
import logging
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import OperationalError

from ledger.config import LedgerConfig, load_config
from ledger.quickrun import run
from worker import otel
from worker.application import task
from worker.masking import mask_identifier
from worker.metrics import LEDGER_EVENTS, LEDGER_QUICK_RUN_SECONDS
from worker.settings import get_settings
from worker.signals import correlation_of
from worker.stores.ledger import SqlLedgerStore

log = logging.getLogger("fleet.ledger")

_ACCOUNT_KEYS = ("account", "sender", "receiver")


@functools.cache
def ledger_config() -> LedgerConfig:
    """The validated `ledger` section of FLEET_CONFIG, read once per process."""
    return load_config(get_settings().section("ledger"))


@functools.cache
def ledger_store() -> SqlLedgerStore:
    """The SQL shadow ledger of this process."""
    config = ledger_config()
    return SqlLedgerStore(get_settings().database_url, config.snapshot_retention_days, config.anomaly)


def _accounts(data: dict[str, Any]) -> list[str]:
    found = [v for k in _ACCOUNT_KEYS if isinstance(v := data.get(k), str)]
    for side in ("inputs", "outputs"):
        legs = data.get(side)
        found += (
            [leg["account"] for leg in legs if isinstance(leg, dict) and isinstance(leg.get("account"), str)]
            if (isinstance(legs, list))
            else []
        )
    return [mask_identifier(account) for account in dict.fromkeys(found)]


def _log(raw: Any, result: dict[str, Any], config: LedgerConfig) -> None:
    data = raw.get("data") if isinstance(raw, dict) else None
    fields: dict[str, Any] = {}
    if isinstance(data, dict):
        fields["accounts"] = _accounts(data)
        for key in config.sensitive_fields:
            if isinstance(value := data.get(key), str):
                fields[key] = mask_identifier(value)
    level = logging.WARNING if result["status"] == "rejected" else logging.INFO
    log.log(
        level,
        "ledger event %s",
        result["status"],
        extra={
            "category": "ledger",
            "correlation_id": result["correlation_id"],
            "event_id": result["event_id"],
            "event_type": result["event_type"],
            "status": result["status"],
            "codes": result["codes"],
            "duration_ms": result["duration_ms"],
            "api_version": result["api_version"],
            **fields,
            "violations": result["violations"][:5] if result["status"] == "rejected" else [],
        },
    )


def _event_span(result: dict[str, Any]) -> None:
    # One span per event under the task's: the batch decided them together, so each is marked, not timed.
    with otel.span(
        "ledger.event",
        **{
            "ledger.event_id": str(result.get("event_id")),
            "ledger.event_type": result.get("event_type"),
            "ledger.status": result["status"],
            "ledger.code": result["codes"][0] if result["codes"] else "",
            "ledger.duration_ms": result.get("duration_ms"),
        },
    ):
        pass


def process(
    raws: list[Any], correlation_id: str | None, *, final: bool = True, batch: bool = False
) -> list[dict[str, Any]]:
    """Validate and apply events in order against the SQL ledger; log and count each one.

    In a batch, accepted events are counted but not logged one by one unless `log_accepted_in_batches`
    (a JSON log line costs more than validating and storing the event); every other status is logged.
    """
    started = time.perf_counter()
    config = ledger_config()
    results = run(raws, ledger_store(), config, datetime.now(UTC), final=final, correlation_id=correlation_id)
    quiet = batch and not config.log_accepted_in_batches
    counts: Counter[tuple[str, str]] = Counter()
    for raw, result in zip(raws, results, strict=True):
        if result["status"] == "waiting":
            continue
        if otel.enabled():
            _event_span(result)
        counts[result["status"], result["codes"][0] if result["codes"] else ""] += 1
        if not (quiet and result["status"] == "accepted"):
            _log(raw, result, config)
    for (status, code), count in counts.items():
        LEDGER_EVENTS.labels(status, code).inc(count)
    elapsed = time.perf_counter() - started
    LEDGER_QUICK_RUN_SECONDS.observe(elapsed)
    if batch:
        log.info(
            "ledger batch done",
            extra={
                "category": "ledger",
                "events": len(results),
                "correlation_id": correlation_id,
                "by_status": dict(Counter(r["status"] for r in results)),
                "duration_ms": round(elapsed * 1000, 1),
            },
        )
    return results


@task(
    name="ledger.quick_run",
    bind=True,
    acks_late=True,
    track_started=False,  # a quick run lasts milliseconds: a STARTED write per event would cost more
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=10,
)
def quick_run(self: Any, event: dict[str, Any] | str) -> dict[str, Any]:
    """Validate and apply one event; an event whose sequence predecessor is missing waits a bounded time."""
    config = ledger_config()
    final = self.request.retries * config.sequence_retry_countdown >= config.sequence_wait_seconds
    [result] = process([event], correlation_of(self.request), final=final)
    if result["status"] == "waiting":
        waits = int(config.sequence_wait_seconds / config.sequence_retry_countdown) + 2
        raise self.retry(countdown=config.sequence_retry_countdown, max_retries=waits + 10)
    return result


@task(
    name="ledger.quick_run_batch",
    bind=True,
    acks_late=True,
    # A batch lasts well under a second; its STARTED state would store the whole list once more (extended
    # results carry the arguments): ~1.4 MB encoded and written per 5,000 events. Flower still shows it started.
    track_started=False,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=10,
)
def quick_run_batch(self: Any, events: list[Any]) -> dict[str, Any]:
    """Validate and apply a list in order, one transaction per chunk; results as if sent one by one."""
    results = process(list(events), correlation_of(self.request), final=True, batch=True)
    return {"count": len(results), "by_status": dict(Counter(r["status"] for r in results)), "results": results}
