"""Celery adapters of the ledger package: parse, call the pure code, persist, log, count, return JSON."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy.exc import OperationalError

from worker.application import task
from worker.ledger.service import ledger_config, process
from worker.signals import correlation_of


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
