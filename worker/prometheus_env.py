"""Multiprocess Prometheus: PROMETHEUS_MULTIPROC_DIR must be set before prometheus_client is imported."""

from __future__ import annotations

import os
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"


def ensure_multiproc_dir() -> Path:
    """Set (default: beside FLEET_LOG_DIR, i.e. var/prometheus) and create the shared metrics folder."""
    if not os.environ.get(ENV):
        from worker.settings import get_settings

        # Exported, so the worker's pool processes and the processes it starts share the folder.
        os.environ[ENV] = str((get_settings().log_dir.parent / "prometheus").resolve())
    path = Path(os.environ[ENV])
    path.mkdir(parents=True, exist_ok=True)
    return path
