"""Celery adapters of the agents package: parse, call the pure code, persist, return JSON."""

from __future__ import annotations
