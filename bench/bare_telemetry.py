"""The bare no-op app with the fleet's telemetry signal handlers connected (`reports.telemetry` decides)."""

from __future__ import annotations

import worker.telemetry  # noqa: F401  (connects the fleet's task signals and flush thread)
from bench.bare import app, collect, noop

__all__ = ["app", "collect", "noop"]
