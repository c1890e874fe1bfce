"""The ledger's processing on the fleet's runtime: validate and apply events in order against the SQL shadow ledger,
log and count each one. The ledger's Celery tasks, the agents' ledger tool and the approval preview all go through here.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from ledger.config import LedgerConfig, load_config
from ledger.quickrun import run
from worker import otel
from worker.ledger.store import SqlLedgerStore
from worker.masking import mask_identifier
from worker.metrics import LEDGER_EVENTS, LEDGER_QUICK_RUN_SECONDS
from worker.settings import get_settings

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
