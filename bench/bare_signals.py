"""The bare no-op app with every fleet signal handler connected: JSON logging with the task context,
correlation ids on publish, per-minute telemetry and Prometheus counters (what `worker.application` adds)."""

from __future__ import annotations

from bench.bare import app, collect, noop
from worker import metrics, signals, telemetry

# As create_app does for these handlers: metrics in the shared folder, then the handlers connected.
metrics.use_shared_folder()
signals.install()
telemetry.install()  # per-minute aggregates, Prometheus counters, flush thread

__all__ = ["app", "collect", "noop"]
