"""Every place the fleet replaces a library's internals, switched on here for the fleet's app.

Each is pinned by the lock files and guarded by tests/unit/test_library_tripwires.py; docs/PATCHES.md says what
each does, why, and how to check it after an upgrade. FLEET_STOCK_LIBRARIES=true runs the app on the libraries'
own code instead: the way back the day an upgrade breaks a patch. The choice is made when the app's configuration
is first read, not at import: a test or a command may still set the environment after importing the app.
Two live where they must act: prometheus_client's value class in worker/prometheus_env.py (before the first
metric, same setting), and Flower's /metrics route in flowerconfig.py (kept even when stock: a security control).
"""

from __future__ import annotations

from typing import Any

from celery.app.amqp import AMQP

from worker import codec, saferepr
from worker.settings import get_settings
from worker.transport import FleetAMQP

# `Celery(amqp=...)`: the factory below, which picks the broker connections' transport when first used.
AMQP_FACTORY = "worker.patches:amqp"
# Celery's consumer with dead letters recorded (its public hooks only), and with task events batched as well
# (Celery's private `_flush_events`).
STOCK_CONSUMER = "worker.dead_letters:DeadLetterConsumer"
FLEET_CONSUMER = "worker.task_events:FleetConsumer"


def stock_libraries() -> bool:
    """Whether this process runs on the libraries' own code (FLEET_STOCK_LIBRARIES)."""
    return get_settings().stock_libraries


def amqp(app: Any) -> AMQP:
    """The app's AMQP helper: FleetAMQP (kombu's Redis transport with the fleet's channel) unless stock."""
    return AMQP(app=app) if stock_libraries() else FleetAMQP(app=app)


def install(app: Any) -> None:
    """Switch the patches on (or not) once the app's configuration is read: JSON decoder, saferepr, consumer."""
    app.on_after_configure.connect(_configured, sender=app, weak=False)


def _configured(sender: Any = None, source: Any = None, **_: Any) -> None:
    if stock_libraries():
        source.worker_consumer = STOCK_CONSUMER
        return
    # JSON messages and results are decoded with orjson where it gives exactly what kombu's decoder gives.
    codec.install()
    # The repr of each return value (the task-succeeded event) is written directly where it is plain data.
    saferepr.install()
    source.worker_consumer = FLEET_CONSUMER
