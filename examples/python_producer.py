"""Another application's producer: nothing but `celery` (with its Redis extra) installed.

    python examples/python_producer.py redis://127.0.0.1:6379/0 ledger my-correlation-id

It sends `fleet.ping` by name to one queue and prints the answer as JSON.
"""

from __future__ import annotations

import json
import sys

from celery import Celery

BROKER = sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/0"
QUEUE = sys.argv[2] if len(sys.argv) > 2 else "agents"
CORRELATION_ID = sys.argv[3] if len(sys.argv) > 3 else "example-correlation-id"

app = Celery(broker=BROKER, backend=BROKER)
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_accept_content=["json"],
    # Copy these exactly: a producer and the fleet that disagree never see each other's messages.
    broker_transport_options={
        "queue_order_strategy": "priority",
        "priority_steps": list(range(10)),
        "sep": ":",
    },
)

result = app.send_task(
    "fleet.ping",
    queue=QUEUE,
    priority=5,  # always set one: on Redis a message without a priority jumps every queue
    headers={"x_correlation_id": CORRELATION_ID},
)
print(json.dumps(result.get(timeout=30)))
