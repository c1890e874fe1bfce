"""A bare Celery app with no-op tasks: the baseline every fleet figure is divided by."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

from worker.constants import PRIORITY_SEP, PRIORITY_STEPS

BROKER = os.environ.get("FLEET_BROKER_URL", "redis://127.0.0.1:6379/0")

app = Celery("bare", broker=BROKER, backend=BROKER)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_default_queue="bare",
    task_default_priority=5,
    worker_prefetch_multiplier=1,
    task_acks_late=True,
    worker_hijack_root_logger=False,
    # The same transport options as the fleet, so the broker does the same work.
    broker_transport_options={
        "queue_order_strategy": "priority",
        "priority_steps": PRIORITY_STEPS,
        "sep": PRIORITY_SEP,
    },
)


@app.task(name="bare.noop")
def noop(*_: Any) -> None:
    """Do nothing."""


@app.task(name="bare.collect")
def collect(results: list[Any]) -> int:
    """A chord body: count the header's results."""
    return len(results)
