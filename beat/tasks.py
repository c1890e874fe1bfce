"""Celery adapters of the beat package: parse, call the pure code, persist, return JSON."""

from __future__ import annotations
