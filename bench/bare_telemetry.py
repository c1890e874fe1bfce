"""The bare no-op app with the fleet's telemetry signal handlers connected (`reports.telemetry` decides)."""

from __future__ import annotations

from bench.bare import app, collect, noop
from worker import metrics, telemetry

metrics.use_shared_folder()
telemetry.install()  # the fleet's task signals and flush thread

__all__ = ["app", "collect", "noop"]
