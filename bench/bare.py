"""A bare Celery app with no-op tasks: the baseline every fleet figure is divided by."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

from fleet_contract import BROKER_TRANSPORT_OPTIONS

# The fleet's transport options come from fleet_contract, not `worker`: importing anything from `worker` imports
# the fleet app, whose signal handlers (logging, telemetry) are global and would run in this "bare" worker too.
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
    broker_transport_options=dict(BROKER_TRANSPORT_OPTIONS),
)


@app.task(name="bare.noop")
def noop(*_: Any) -> None:
    """Do nothing."""


@app.task(name="bare.collect")
def collect(results: list[Any]) -> int:
    """A chord body: count the header's results."""
    return len(results)
