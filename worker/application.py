"""The Celery app that every fleet process loads (`celery -A worker ...`)."""

from __future__ import annotations

from celery import Celery

from worker import codec, saferepr

# JSON messages and results are decoded with orjson where it gives exactly what kombu's decoder gives.
codec.install()
# The repr of each return value (the task-succeeded event) is written directly where it is plain data.
saferepr.install()

# Task modules: each package's thin adapters. Later packages add theirs here.
TASK_MODULES = ["worker.tasks", "ledger.tasks", "agents.tasks", "beat.tasks"]

# FleetAMQP: the broker connections use worker.transport (kombu's Redis transport, cheaper per consumed message).
app = Celery("fleet", include=TASK_MODULES, amqp="worker.transport:FleetAMQP")
app.config_from_object("celeryconfig")

import worker.alerts  # noqa: E402  (the alert evaluator of worker and beat main processes; docs/reports.md)
import worker.dead_letters  # noqa: E402  (records refused messages)
import worker.signals  # noqa: E402  (connects logging, correlation and metrics to the app)
import worker.telemetry  # noqa: E402  (per-minute aggregates and Prometheus counters; reports.telemetry)
import worker.watchdog  # noqa: E402,F401  (exits a worker that stopped consuming; see docs/RELIABILITY.md)
