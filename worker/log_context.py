"""The fields of the current task or request that every log line carries, and each line's category."""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "fleet_log_context", default=MappingProxyType({})
)


def bind(**fields: Any) -> None:
    """Add fields to every log line of the current task or request."""
    _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})


def clear() -> None:
    """Forget the fields bound for the previous task or request."""
    _context.set({})


def current() -> dict[str, Any]:
    """The fields bound now."""
    return dict(_context.get())


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Bind fields for the duration of a block."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


# Every line has a category; a logger's name gives it unless the call passes extra={"category": ...}.
CATEGORIES = frozenset({"system", "agent", "ledger", "api", "audit", "performance", "security", "reliability"})
_CATEGORY_BY_LOGGER: tuple[tuple[str, str], ...] = (
    ("fleet.audit", "audit"),
    ("fleet.security", "security"),
    ("fleet.ledger", "ledger"),
    ("fleet.agents", "agent"),
    ("fleet.agent", "agent"),
    ("fleet.api", "api"),
    ("fleet.gateway", "api"),
    ("uvicorn", "api"),
    ("fleet.performance", "performance"),
    ("fleet.reliability", "reliability"),
)


def category_of(logger_name: str) -> str:
    """The default category of a logger's lines: by its name prefix, `system` otherwise."""
    for prefix, category in _CATEGORY_BY_LOGGER:
        if logger_name == prefix or logger_name.startswith(prefix + "."):
            return category
    return "system"


class ContextFilter(logging.Filter):
    """Copies the bound context onto each record, before it leaves the task's thread."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        if not hasattr(record, "category"):
            record.category = category_of(record.name)
        return True
