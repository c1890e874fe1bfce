"""The fleet's Celery app, settings, persistence, logging and process runner."""

from __future__ import annotations

# Before anything imports prometheus_client: every fleet process writes its metrics to one shared folder.
import worker.prometheus_env  # noqa: F401  isort: skip
from worker.application import app

__all__ = ["app"]
