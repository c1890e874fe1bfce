"""Multiprocess Prometheus: every fleet process writes its metrics to one shared folder.

prometheus_client picks its value class (in memory, or a file per process in PROMETHEUS_MULTIPROC_DIR)
once, when it is first imported. The `celery` command imports it before our code runs (Flower's plugin
is loaded for every subcommand), so setting the variable is not enough: the class is chosen again here
(a patch, docs/PATCHES.md; with FLEET_STOCK_LIBRARIES=true it is not, and the variable must be set before the
process starts, as `agent up` does for its children).
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import values

from worker.settings import get_settings

ENV = "PROMETHEUS_MULTIPROC_DIR"


def default_dir() -> Path:
    """The shared folder when the variable is not set: `prometheus` beside FLEET_LOG_DIR (var/prometheus)."""
    return (get_settings().log_dir.parent / "prometheus").resolve()


def ensure_multiproc_dir() -> Path:
    """Set (exported, so pool processes and children share it) and create the folder; switch the value class."""
    if not os.environ.get(ENV):
        os.environ[ENV] = str(default_dir())
    path = Path(os.environ[ENV])
    path.mkdir(parents=True, exist_ok=True)
    if not get_settings().stock_libraries:
        _use_multiprocess_values()
    return path


def _use_multiprocess_values() -> None:
    # Metrics made from now on write to the folder; those made before (Flower's own, in a worker) stay in
    # memory, where nothing reads them. A test (tests/unit/test_prometheus_env.py) fails if this attribute goes.
    if not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.get_value_class()
