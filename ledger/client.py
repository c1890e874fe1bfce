"""Send ledger events to the fleet by task name, routed by the filter and priority rules.

Usable from any application with only celery installed: it imports nothing of the fleet's worker.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from celery import Celery
from celery.result import AsyncResult

from ledger.body import decode
from ledger.config import LedgerConfig
from ledger.events import LedgerEvent, build
from ledger.filters import DEFAULT_LEVEL, route

TASK_NAME = "ledger.quick_run"
QUEUE = "ledger"
CORRELATION_HEADER = "x_correlation_id"
# Producers and workers must agree on these, or messages sit in Redis lists no worker reads.
BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
    "queue_order_strategy": "priority",
    "priority_steps": list(range(10)),
    "sep": ":",
}


@dataclass
class Sent:
    """One event handed to the broker (or skipped by a filter rule before sending)."""

    event_id: str | None
    priority: int
    skipped: str | None = None
    result: AsyncResult | None = field(default=None, repr=False)


def producer_app(broker_url: str, backend_url: str | None = None) -> Celery:
    """A minimal Celery app that can send ledger events with the fleet's transport options."""
    app = Celery("ledger-producer", broker=broker_url, backend=backend_url or broker_url)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        broker_transport_options=BROKER_TRANSPORT_OPTIONS,
    )
    return app


def submit(
    events: Iterable[dict[str, Any] | str],
    app: Celery | None = None,
    *,
    broker_url: str | None = None,
    config: LedgerConfig | None = None,
    correlation_id: str | None = None,
    on_sent: Callable[[Sent], None] | None = None,
) -> list[Sent]:
    """Route each event (skip it, or pick its priority) and send it as `ledger.quick_run`."""
    if app is None:
        if broker_url is None:
            raise ValueError("give a Celery app or a broker URL")
        app = producer_app(broker_url)
    config = config or LedgerConfig()
    correlation_id = correlation_id or str(uuid.uuid4())
    sent: list[Sent] = []
    with app.producer_or_acquire() as producer:
        for event in events:
            decoded = decode(event, config.payload_limit_bytes)
            parsed = build(decoded, config)
            # The id the worker's result will carry, also for an event it is going to reject.
            event_id = decoded.event_id
            decision = route(parsed, config) if isinstance(parsed, LedgerEvent) else None
            if decision is not None and decision.skipped:
                item = Sent(event_id, decision.priority, decision.reason)
            else:
                level = decision.priority if decision else DEFAULT_LEVEL
                result = app.send_task(
                    TASK_NAME,
                    args=[event],
                    # What Celery logs and shows in Flower instead of the event (which names accounts).
                    # An id that failed validation may hold anything: it stays out of logs and Flower.
                    argsrepr=f"[<ledger event {parsed.event_id if isinstance(parsed, LedgerEvent) else 'unparsed'}>]",
                    queue=QUEUE,
                    priority=level,
                    producer=producer,
                    headers={CORRELATION_HEADER: correlation_id},
                )
                item = Sent(event_id, level, None, result)
            sent.append(item)
            if on_sent is not None:
                on_sent(item)
    return sent
