"""The Celery app that every fleet process loads (`celery -A worker ...`)."""

from __future__ import annotations

from celery import Celery

from worker import patches

# Task modules: each package's thin adapters. Later packages add theirs here.
TASK_MODULES = ["worker.tasks", "ledger.tasks", "agents.tasks", "beat.tasks"]

# The fleet's patches of library internals, or none with FLEET_STOCK_LIBRARIES=true (worker/patches.py).
app = Celery("fleet", include=TASK_MODULES, amqp=patches.AMQP_FACTORY)
app.config_from_object("celeryconfig")
patches.install(app)

import worker.dead_letters  # noqa: E402  (records refused messages)
import worker.signals  # noqa: E402  (connects logging, correlation and metrics to the app)
import worker.telemetry  # noqa: E402  (per-minute aggregates and Prometheus counters; reports.telemetry)
import worker.watchdog  # noqa: E402,F401  (exits a worker that stopped consuming; see docs/RELIABILITY.md)
