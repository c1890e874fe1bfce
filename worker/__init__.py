"""The fleet's Celery app, settings, persistence, logging and process runner."""

from __future__ import annotations

from worker.application import app

__all__ = ["app"]
