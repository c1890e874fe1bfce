"""The bare no-op app with every fleet signal handler connected: JSON logging with the task context,
correlation ids on publish, per-minute telemetry and Prometheus counters (what `worker.application` adds)."""

from __future__ import annotations

import worker.signals
import worker.telemetry  # noqa: F401  (per-minute aggregates, Prometheus counters, flush thread)
from bench.bare import app, collect, noop

__all__ = ["app", "collect", "noop"]
