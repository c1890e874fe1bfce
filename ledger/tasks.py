"""Celery adapters of the ledger package: parse, call the pure code, persist, return JSON."""

from __future__ import annotations
